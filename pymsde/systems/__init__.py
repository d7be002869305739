"""Fine-grid simulators of the benchmark PDEs and the coarse-grid (under-resolved DNS) solver.

- :func:`simulate` draws initial conditions of a case of :data:`CASES` (docs/method.md section 8;
  kdv1d and wave1d: the final paper, FINAL_PAPER.md sections 2-3; swe2d and cylinder2d: sections
  5-6, through ``pymsde.systems.flows``), solves the PDE on the fine grid (wave1d: writes the
  exact advected pulse) and returns a :class:`~pymsde.data.trajectories.Trajectories` with
  observation noise, the case parameters in ``attrs`` and a train/val/test split.
- :func:`coarse_grain`, :func:`refine`, :func:`solve_coarse`: the baseline of docs/method.md
  section 7 (see ``pymsde.systems.coarse``).

The numerics live in ``pymsde.numerics.pde`` / ``stencils`` / ``spectral``; the time loops in
``pymsde.systems.solvers``. Schemes, orders and stability limits: ``docs/simulators.md``.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from pymsde.data.grid import uniform_step
from pymsde.data.io import file_format, save
from pymsde.data.stream import shard_attrs, shard_path, shard_slice, stream_writer
from pymsde.data.trajectories import Trajectories
from pymsde.systems.cases import CASES, CaseSpec, as_stored, split_sizes, storage_dtype
from pymsde.systems import flows
from pymsde.systems.coarse import coarse_grain, refine, solve_coarse
from pymsde.systems.solvers import (advect_fourier, burgers_dt_limit, gaussian_pulse_advection, integrate_burgers,
                                    integrate_kdv, kdv_dt_limit)
from pymsde.backends.protocol import BACKEND_NAMES, Backend, resolve_backend
from pymsde.util.errors import ConfigError, check_memory, check_seed

_COMMON_OPTIONS = {"noise", "u0", "split"}
_SOLVER_OPTIONS = {"dt", "order", "dealias", "safety", "scheme"}       # time-stepping choices
_OVERRIDES = {"nu", "d", "c"} | _COMMON_OPTIONS | _SOLVER_OPTIONS


def _record_split(traj: Trajectories, split, n_traj: int, seed: int) -> Trajectories:
    """Record the train/val/test split: three integer counts summing to ``n_traj`` are used as
    given (e.g. ``(8, 1, 1)``); fractions are rounded by :func:`~pymsde.systems.cases.split_sizes`."""
    return traj.split(split_sizes(split, n_traj), seed=seed)


def _backend_for(spec: CaseSpec, backend, overrides: dict) -> Backend | None:
    """The resolved backend; None for the closed-form advection case, which runs no solver
    (the name is still checked, but Julia is not started)."""
    if spec.pde != "advection":
        return resolve_backend(backend)   # ConfigError / BackendUnavailableError before any work
    if not isinstance(backend, Backend) and backend not in BACKEND_NAMES:
        raise ConfigError(f"backend {backend!r}; expected one of {BACKEND_NAMES}")
    unused = sorted(set(overrides) & (_SOLVER_OPTIONS | {"nu", "d"}))
    if unused:
        raise ConfigError(f"simulate: option(s) {unused} do not apply to case {spec.name!r}, whose field is "
                          f"written in closed form (its options: c, noise, u0, split)")
    return None


def _count(value, name: str, lo: int) -> int:
    """An integer argument >= ``lo`` (an integral float such as 1e3 is accepted); ConfigError naming it."""
    try:
        ok = not isinstance(value, (bool, str)) and float(value) == int(value)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or int(value) < lo:
        raise ConfigError(f"simulate: {name} = {value!r}; expected an integer >= {lo}")
    return int(value)


def _sizes(spec: CaseSpec, n_traj, n_grid, n_steps, t_end, overrides: dict, shard=None):
    """Validated ``(n_traj, grid shape, n_steps, t_end, noise)`` from the arguments and defaults;
    a size whose data would not fit in memory is refused here, before anything is allocated
    (for shard ``(k, n)``: the trajectories of that shard; a bad shard is refused too)."""
    if n_traj is None:
        n_traj = len(overrides["u0"]) if "u0" in overrides else spec.n_traj
    n_traj = _count(n_traj, "n_traj", 1)
    if n_grid is None:
        shape = spec.n_grid
    else:
        sizes = np.atleast_1d(np.asarray(n_grid, dtype=object))
        if sizes.ndim != 1 or sizes.size not in (1, len(spec.n_grid)):
            raise ConfigError(f"simulate: n_grid = {n_grid!r}; expected an int or {len(spec.n_grid)} sizes "
                              f"for case {spec.name!r}")
        shape = tuple(_count(v, "n_grid", 2) for v in np.broadcast_to(sizes, (len(spec.n_grid),)))
    n_steps = spec.n_steps if n_steps is None else _count(n_steps, "n_steps", 2)
    try:
        t_end = spec.t_end if t_end is None else float(t_end)
        noise = float(overrides.get("noise", spec.noise))
    except (TypeError, ValueError):
        raise ConfigError(f"simulate: t_end = {t_end!r}, noise = {overrides.get('noise')!r}; expected numbers") from None
    if not (math.isfinite(t_end) and t_end > 0):
        raise ConfigError(f"simulate: t_end = {t_end}; expected a finite positive final time")
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"simulate: noise = {noise}; expected a non-negative (finite) standard deviation")
    lo, hi = (0, n_traj) if shard is None else shard_slice(n_traj, *shard)
    held = hi - lo
    # the saved field (float64) and a few fields' worth of solver state per trajectory
    n_values = held * math.prod(shape) * (2 if spec.pde == "incompressible" else 1)
    hint = "lower n_traj, n_steps or n_grid" + (f", or stream it to HDF5 (pymsde simulate {spec.name} --out FILE.h5)"
                                               if spec.pde == "swe" else "")
    check_memory(8.0 * n_values * (n_steps + 8), f"simulate {spec.name}: n_traj {held} x n_steps {n_steps} x "
                 f"n_grid {shape} float64 values", hint=hint)
    return n_traj, shape, n_steps, t_end, noise


def _initial_fields(spec: CaseSpec, overrides: dict, rng: np.random.Generator, n_traj: int, shape, grid):
    """``(u0 (n_traj, 1, *grid), ic parameters)``: the given ``u0`` or the case's random draw."""
    if "u0" in overrides:
        u0 = np.asarray(overrides["u0"], dtype=np.float64)
        if u0.shape == (n_traj, *shape):
            u0 = u0[:, None]
        if u0.shape != (n_traj, 1, *shape):
            raise ConfigError(f"simulate: u0 of shape {u0.shape}; expected ({n_traj}, 1, *{shape}) "
                              f"or ({n_traj}, *{shape})")
        ic_params: dict = {"given": True}
    else:
        u0, ic_params = spec.sample_ic(rng, n_traj, grid)
    if not np.isfinite(u0).all():
        raise ConfigError("simulate: initial condition u0 has non-finite values")
    return u0, ic_params


def _solve_fine(spec: CaseSpec, u0: np.ndarray, ic_params: dict, t: np.ndarray, grid, overrides: dict,
                be: Backend | None, progress: bool) -> tuple[np.ndarray, dict, dict]:
    """The clean fine-grid solution ``(u (n, n_t, 1, *grid), PDE coefficients, solver info)``."""
    dt = overrides.get("dt")
    safety = float(overrides.get("safety", 0.8))
    lo, hi = grid.domain[0]
    if spec.pde == "burgers":
        nu = float(overrides.get("nu", spec.params["nu"]))
        if nu < 0:
            raise ConfigError(f"simulate: nu = {nu}; expected a non-negative viscosity")
        order = int(overrides.get("order", 4))
        u, info = integrate_burgers(u0, t, grid.spacing, nu, grid.boundary, dt=dt, order=order,
                                    safety=safety, show_progress=progress,
                                    scheme=str(overrides.get("scheme", "auto")),
                                    dealias=str(overrides.get("dealias", "2/3")), backend=be.name)
        return u, {"nu": nu}, info
    if spec.pde == "kdv":
        d = float(overrides.get("d", spec.params["d"]))
        u, info = integrate_kdv(u0, t, hi - lo, d, dt=dt, dealias=str(overrides.get("dealias", "2/3")),
                                safety=safety, show_progress=progress, backend=be.name)
        return u, {"d": d}, info
    c = float(overrides.get("c", spec.params["c"]))
    if not np.isfinite(c):
        raise ConfigError(f"simulate: c = {c}; expected a finite advection speed")
    if ic_params.get("given"):
        u = advect_fourier(u0, t, c, hi - lo)
        scheme = "closed form: the given u0 translated by c t (exact Fourier shift)"
    else:
        u = gaussian_pulse_advection(grid.coordinates(0), t, ic_params["width"], ic_params["centre"], c, hi - lo)
        scheme = "closed form: exp(-(d / w)^2), d the periodic distance to x0 + c t"
    return u, {"c": c}, {"scheme": scheme, "backend": "numpy"}


def _score_steps(spec: CaseSpec, t: np.ndarray) -> dict:
    """``{"score_steps", "score_t_end"}`` for a case scored on its leading times only: the
    number of saved times ``t <= spec.score_t_end`` (wave1d: 201 at the default grid)."""
    if spec.score_steps is None:
        return {}
    t_score = spec.score_t_end
    tol = 1e-9 * (t[1] - t[0])
    return {"score_steps": int(max(1, np.count_nonzero(t <= t_score + tol))), "score_t_end": float(t_score)}


def simulate(case: str, n_traj: int | None = None, seed: int = 0, n_grid: int | tuple[int, ...] | None = None,
             n_steps: int | None = None, t_end: float | None = None, backend: str = "torch",
             progress: bool = True, **overrides: Any) -> Trajectories:
    """Simulate trajectories of a benchmark case on the fine grid.

    Args:
        case: ``"burgers1d"``, ``"kdv1d"``, ``"burgers2d"``, ``"wave1d"``, ``"swe2d"`` or
            ``"cylinder2d"`` (keys of :data:`CASES`; the last two: ``pymsde.systems.flows``,
            whose options are ``flows.FLOW_OPTIONS``).
        n_traj: number of trajectories (default: the case's, 10 / 20 / 30 / 30 / 1000 / 1).
        seed: seed of ``numpy.random.default_rng``: initial-condition parameters, then noise,
            then the split permutation. Same arguments, same data (bit for bit).
        n_grid: fine points per axis (an int applies to every axis).
        n_steps: saved times including ``t = 0`` (default 1001); output step ``t_end / (n_steps - 1)``.
        t_end: final time (default 1).
        backend: ``"torch"``, ``"julia"`` or ``"auto"`` (``pymsde.backends.protocol.resolve_backend``:
            ``"julia"`` raises BackendUnavailableError when Julia cannot start; ``"auto"`` falls back
            to torch and logs why). A Julia run steps the whole loop in one call (no progress bar).
            wave1d runs no solver (closed form, numpy): the name is checked, Julia is not started.
        progress: show a progress bar over the output steps.
        **overrides: ``nu`` (Burgers viscosity), ``d`` (KdV dispersion), ``c`` (wave1d advection
            speed, length / time), ``noise`` (std of the
            Gaussian observation noise; 0 keeps the clean solution), ``dt`` (internal step;
            StabilityError beyond the scheme's limit), ``scheme`` (Burgers: ``"auto"`` = pseudo-spectral
            ETDRK4 on a periodic 1-D grid, central differences + RK4 otherwise; ``"fd"``,
            ``"spectral"``), ``order`` (central-difference order, 2/4/6, default 4),
            ``dealias`` (spectral schemes, ``"2/3"`` or ``"3/2"``), ``safety`` (fraction of the
            stability limit used by the automatic step, default 0.8), ``u0`` (explicit initial
            fields ``(n_traj, C, *grid)`` or ``(n_traj, *grid)`` instead of random draws; sets
            ``n_traj`` when it is not given; wave1d translates it exactly by ``c t``),
            ``split`` (train/val/test fractions, or three integer counts summing to ``n_traj``
            such as ``(8, 1, 1)``, used as given). The time-stepping options (``dt``, ``scheme``,
            ``order``, ``dealias``, ``safety``) raise ConfigError for wave1d.

    Returns:
        :class:`Trajectories` with ``u (n_traj, n_steps, 1, *grid)`` float64, ``t (n_traj, n_steps)``,
        ``mu = f = None``, and ``attrs``: ``case``, ``pde``, the PDE coefficient (``nu``, ``d`` or
        ``c``), ``seed``, ``noise``, ``ic`` (the drawn initial-condition parameters; wave1d:
        ``width`` per trajectory and ``centre``), ``coarse`` (the baseline's coarse grid),
        ``scheme``, ``backend``, ``dt_internal``, ``substeps``, ``dt_limit`` (time-stepped cases)
        and ``split``; for a case scored on its first times only (wave1d) also ``score_steps``
        (the number of leading saved times the paper scores: those with ``t <= score_t_end``,
        201 at the defaults) and ``score_t_end`` (0.2).
    """
    spec, seed = _request(case, seed, overrides)
    n_traj, shape, n_steps, t_end, noise = _sizes(spec, n_traj, n_grid, n_steps, t_end, overrides)
    if spec.pde in flows.FLOW_OPTIONS:
        be = flows.check_backend(spec, backend)
        return flows.simulate_flow(spec, n_traj, shape, n_steps, t_end, noise, seed, overrides, progress, backend=be)
    be = _backend_for(spec, backend, overrides)
    u, t, grid, attrs = _simulate_pde(spec, n_traj, shape, n_steps, t_end, noise, seed, overrides, be, progress)
    traj = Trajectories(u=u, t=np.broadcast_to(t, (n_traj, n_steps)).copy(), domain=np.asarray(grid.domain),
                        boundary=grid.boundary, mu=None, f=None, attrs=attrs)
    return _record_split(traj, overrides.get("split", spec.split), n_traj, seed)


def _request(case: str, seed, overrides: dict) -> tuple[CaseSpec, int]:
    """The case's spec and the checked seed; ConfigError for an unknown case or option."""
    if case not in CASES:
        raise ConfigError(f"simulate: unknown case {case!r}; expected one of {sorted(CASES)}")
    spec: CaseSpec = CASES[case]
    if spec.pde in flows.FLOW_OPTIONS:
        flows.check_options(spec, overrides)
    else:
        unknown = set(overrides) - _OVERRIDES
        if unknown:
            raise ConfigError(f"simulate: unknown option(s) {sorted(unknown)}; expected a subset of "
                              f"{sorted(_OVERRIDES)}")
    return spec, check_seed(seed, "simulate: seed")


def _simulate_pde(spec: CaseSpec, n_traj: int, shape, n_steps: int, t_end: float, noise: float, seed: int,
                  overrides: dict, be: Backend | None, progress: bool, part: tuple[int, int] | None = None):
    """``(u, t, grid, attrs)`` of burgers1d / kdv1d / burgers2d / wave1d: all ``n_traj``
    trajectories, or only ``part = (lo, hi)`` of them with the values they have in the whole set.

    One generator ``default_rng(seed)`` draws the initial-condition parameters of all
    trajectories, then the noise of trajectory 0, 1, ... in turn. A part draws the same
    parameters (all of them: cheap), solves its trajectories only (:func:`_solve_part`: the
    internal step of the whole set) and regenerates and discards the noise of the trajectories
    before ``lo`` (:func:`_skip_normals`): numpy's normal sampler consumes a value-dependent
    number of bits (ziggurat rejections), so the stream cannot be jumped, only replayed."""
    grid = spec.grid(shape)
    rng = np.random.default_rng(seed)
    u0, ic_params = _initial_fields(spec, overrides, rng, n_traj, shape, grid)
    t = np.linspace(0.0, t_end, n_steps)
    lo, hi = (0, n_traj) if part is None else part
    if part is None:
        u, params, info = _solve_fine(spec, u0, ic_params, t, grid, overrides, be, progress)
    else:
        u, params, info = _solve_part(spec, u0, ic_params, t, grid, overrides, be, progress, lo, hi)
    if noise > 0:
        _skip_normals(rng, lo * math.prod(u.shape[1:]))
        # one trajectory at a time: no second full-size array (Burgers 2-D is 2.6 GB)
        for i in range(hi - lo):
            u[i] += noise * rng.standard_normal(u.shape[1:])
    attrs = {"case": spec.name, "pde": spec.pde, **params, "seed": int(seed), "noise": noise, "ic": ic_params,
             "coarse": list(spec.coarse), **info, **_score_steps(spec, t)}
    return u, t, grid, attrs


def _skip_normals(rng: np.random.Generator, n: int, block: int = 2 ** 20) -> None:
    """Advance ``rng`` past ``n`` standard normals, drawn (and dropped) ``block`` at a time."""
    while n > 0:
        rng.standard_normal(min(n, block))
        n -= block


def _solve_part(spec: CaseSpec, u0: np.ndarray, ic_params: dict, t: np.ndarray, grid, overrides: dict,
                be: Backend | None, progress: bool, lo: int, hi: int) -> tuple[np.ndarray, dict, dict]:
    """:func:`_solve_fine` of trajectories ``lo .. hi - 1`` as the whole set solves them.

    The automatic internal step is set by the largest ``|u0|`` of the whole set, so it is found
    by the solver itself on that one trajectory over one output interval (the same ``dt_out``),
    and the part is solved with that step given as ``dt`` (the same substeps and step, tested);
    a ``dt`` of the caller is checked there against the whole set's stability limit, as the
    whole run checks it. Solutions are per trajectory (element-wise, batched FFTs), so the
    part's values are those of the whole set's run, bit for bit."""
    if spec.pde == "advection":     # closed form, per trajectory
        ic = ic_params if ic_params.get("given") else {**ic_params, "width": ic_params["width"][lo:hi]}
        return _solve_fine(spec, u0[lo:hi], ic, t, grid, overrides, be, progress)
    if float(overrides.get("safety", 0.8)) > 1:
        raise ConfigError(f"simulate: safety = {overrides['safety']} with shards; expected at most 1 (a shard "
                          f"runs at the whole set's step, which a safety above 1 may not let it take)")
    big = int(np.argmax(np.abs(u0).reshape(len(u0), -1).max(axis=1)))
    dt_out = float(uniform_step(t))
    _, _, probe = _solve_fine(spec, u0[big:big + 1], ic_params, np.array([0.0, dt_out]), grid, overrides, be, False)
    u, params, info = _solve_fine(spec, u0[lo:hi], ic_params, t, grid, {**overrides, "dt": probe["dt_internal"]},
                                  be, progress)
    if (info["dt_internal"], info["substeps"]) != (probe["dt_internal"], probe["substeps"]):
        raise ConfigError(f"simulate: the shard's internal step {info['dt_internal']!r} x {info['substeps']} "
                          f"differs from the whole set's {probe['dt_internal']!r} x {probe['substeps']} (a bug)")
    return u, params, {**info, "dt_limit": probe["dt_limit"]}


def simulate_to_file(case: str, path, n_traj: int | None = None, seed: int = 0, n_grid=None, n_steps: int | None = None,
                     t_end: float | None = None, backend: str = "torch", progress: bool = True,
                     dtype: str | None = None, shard: tuple[int, int] | None = None, **overrides: Any) -> dict:
    """Simulate ``case`` into the file ``path`` and return a summary dict (``path``, ``n_traj``,
    ``n_t``, ``grid``, ``dt``, ``dtype``, ``min``, ``max``, ``splits``, ``seconds``).

    ``shard = (k, n)``: write only shard ``k`` of ``n`` (1-based) of that data set, the
    trajectories ``pymsde.data.stream.shard_slice(n_traj, k, n)``, to the HDF5 file
    ``shard_path(path, k, n)`` beside ``path`` (:func:`simulate_shard`);
    ``pymsde.data.stream.merge_shards(path)`` then writes ``path``.

    ``swe2d`` into HDF5 (``.h5`` / ``.hdf5``) is streamed: each chunk of trajectories is written
    as it is produced (``u`` float32, chunked per trajectory, atomic; ``flows.stream_swe``), in
    the memory of one chunk. Every other request is :func:`simulate` then
    :func:`pymsde.data.io.save` of ``u`` in ``dtype`` (``"float32"`` / ``"float64"``; default
    the case's ``storage_dtype``: float32 for burgers2d; :func:`~pymsde.systems.cases.as_stored`).
    """
    fmt = file_format(path, for_writing=True)
    if shard is not None:
        return simulate_shard(case, path, shard, n_traj=n_traj, seed=seed, n_grid=n_grid, n_steps=n_steps, t_end=t_end,
                              backend=backend, progress=progress, dtype=dtype, **overrides)
    spec = CASES.get(case)
    if spec is not None and spec.pde == "swe" and fmt == "hdf5":
        if dtype not in (None, "float32"):
            raise ConfigError(f"simulate_to_file: dtype = {dtype!r}; {case} is streamed to HDF5 as float32")
        flows.check_options(spec, overrides)
        seed = check_seed(seed, "simulate: seed")
        n_traj_, shape, n_steps_, t_end_, noise = _sizes_streamed(spec, n_traj, n_grid, n_steps, t_end, overrides)
        be = flows.check_backend(spec, backend)
        return flows.stream_swe(spec, path, n_traj_, shape, n_steps_, t_end_, noise, seed, overrides, progress,
                                backend=be)
    want = storage_dtype(case, dtype)                    # a bad dtype is refused before the run
    start = time.perf_counter()
    traj = simulate(case, n_traj=n_traj, seed=seed, n_grid=n_grid, n_steps=n_steps, t_end=t_end, backend=backend,
                    progress=progress, **overrides)
    seconds = time.perf_counter() - start
    traj = as_stored(traj, want)
    out = save(traj, path)
    return {"path": out, "case": case, "n_traj": traj.n_traj, "n_t": traj.n_t, "grid": traj.grid_shape,
            "boundary": traj.boundary, "dt": traj.dt, "dtype": str(traj.u.dtype), "min": float(traj.u.min()),
            "max": float(traj.u.max()), "splits": {k: len(v) for k, v in traj.splits.items()}, "seconds": seconds}


def simulate_shard(case: str, path, shard: tuple[int, int], n_traj: int | None = None, seed: int = 0, n_grid=None,
                   n_steps: int | None = None, t_end: float | None = None, backend: str = "torch",
                   progress: bool = True, dtype: str | None = None, **overrides: Any) -> dict:
    """Write shard ``k`` of ``n`` of the data set ``simulate_to_file(case, path, ...)`` would
    write: its trajectories ``[lo, hi) = shard_slice(n_traj, k, n)`` with the values they have in
    the whole set (bit for bit, in ``u``, ``mu`` and ``t``), streamed atomically to the HDF5 file
    ``shard_path(path, k, n)`` (``u`` in the dtype of the whole file), with the whole set's
    ``attrs`` and the record ``attrs["shard"]`` (``pymsde.data.stream.shard_attrs``).

    swe2d goes through ``flows.stream_swe`` (radii of all trajectories drawn, noise keyed by
    trajectory); burgers1d, kdv1d, burgers2d and wave1d through :func:`_simulate_pde` (the
    sequential noise replayed). cylinder2d (one trajectory) is refused. Memory: the shard's
    trajectories (swe2d: one chunk). Returns the summary of :func:`simulate_to_file` with
    ``path`` the shard file, ``n_traj`` its trajectories, ``shard``, ``trajectories`` and
    ``n_traj_total``."""
    if file_format(path, for_writing=True) != "hdf5":
        raise ConfigError(f"simulate: {path}: shards are streamed HDF5 files; expected an output name ending in "
                          f".h5 or .hdf5")
    spec, seed = _request(case, seed, overrides)
    if spec.split_by == "time" or spec.pde == "incompressible":
        raise ConfigError(f"simulate: {case} is one trajectory (split in time); it cannot be generated in shards, "
                          f"expected one process without --shard")
    k, n_shards = shard
    if spec.pde == "swe":
        if dtype not in (None, "float32"):
            raise ConfigError(f"simulate_to_file: dtype = {dtype!r}; {case} is streamed to HDF5 as float32")
        n_traj, shape, n_steps, t_end, noise = _sizes_streamed(spec, n_traj, n_grid, n_steps, t_end, overrides)
        shard_slice(n_traj, k, n_shards)                    # a bad shard before any work
        be = flows.check_backend(spec, backend)
        return flows.stream_swe(spec, path, n_traj, shape, n_steps, t_end, noise, seed, overrides, progress,
                                backend=be, shard=(k, n_shards))
    want = storage_dtype(case, dtype)
    n_traj, shape, n_steps, t_end, noise = _sizes(spec, n_traj, n_grid, n_steps, t_end, overrides, shard=(k, n_shards))
    lo, hi = shard_slice(n_traj, k, n_shards)
    be = _backend_for(spec, backend, overrides)
    split = _whole_split(overrides.get("split", spec.split), n_traj, seed)      # a bad split before the run
    start = time.perf_counter()
    u, t, grid, attrs = _simulate_pde(spec, n_traj, shape, n_steps, t_end, noise, seed, overrides, be, progress,
                                      part=(lo, hi))
    out = shard_path(path, k, n_shards)
    with stream_writer(out, u.shape, t, grid.domain, grid.boundary, dtype=want) as w:
        w.write(0, u)
        w.attrs = shard_attrs({**attrs, "split": split}, k, n_shards, n_traj)
    return {"path": out, "case": case, "n_traj": hi - lo, "n_traj_total": n_traj, "shard": (k, n_shards),
            "trajectories": (lo, hi), "n_t": n_steps, "grid": tuple(shape), "boundary": grid.boundary,
            "dt": float(t[1] - t[0]), "dtype": want, "min": float(w.vmin.min()), "max": float(w.vmax.max()),
            "splits": {name: len(v) for name, v in split.items()}, "seconds": time.perf_counter() - start}


def _whole_split(split, n_traj: int, seed: int) -> dict[str, list[int]]:
    """``attrs["split"]`` of the whole set of ``n_traj`` trajectories, as :func:`simulate`
    records it (the one implementation, ``Trajectories.split``, on a stand-in of that size)."""
    stand_in = Trajectories(u=np.zeros((n_traj, 2, 1, 2)), t=np.array([0.0, 1.0]), domain=np.array([[0.0, 1.0]]),
                            boundary=("periodic",))
    return _record_split(stand_in, split, n_traj, seed).attrs["split"]


def _sizes_streamed(spec: CaseSpec, n_traj, n_grid, n_steps, t_end, overrides):
    """:func:`_sizes` without the whole-data-set memory check (a streamed run holds one chunk)."""
    probe = _sizes(spec, 1, n_grid, n_steps, t_end, overrides)
    n_traj = spec.n_traj if n_traj is None else _count(n_traj, "n_traj", 1)
    return (n_traj, *probe[1:])


__all__ = ["simulate", "simulate_to_file", "simulate_shard", "CASES", "CaseSpec", "coarse_grain", "refine", "solve_coarse", "integrate_burgers",
           "integrate_kdv", "burgers_dt_limit", "kdv_dt_limit", "gaussian_pulse_advection", "advect_fourier"]
