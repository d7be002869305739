"""The two generated flow cases of :data:`~pymsde.systems.cases.CASES`: ``swe2d`` and ``cylinder2d``.

``pymsde.systems.simulate`` hands these cases here once their sizes are validated. The numerics
are ``pymsde.systems.swe`` (the radial dam break) and ``pymsde.systems.cylinder`` (the wake at
Re = 160); set-ups, verification and timings: docs/swe_cylinder.md.

- ``swe2d`` (FINAL_PAPER.md 6.1): ``u = h - 1`` (1 channel) plus noise N(0, noise^2) (default
  0.01), ``mu[:, 0]`` the dam radius r ~ U(0.3, 0.7), 101 frames on [0, 1], 128 x 128 cell
  centres of [-2.5, 2.5]^2. Seeding as :func:`~pymsde.systems.swe.iter_swe_chunks` (radii
  from ``default_rng(seed)``, the noise of trajectory i from ``default_rng([seed, i])``), so a
  trajectory does not depend on how many are generated with it, nor on the shard that
  generates it (:func:`~pymsde.systems.swe.iter_swe_chunks` with ``lo``/``hi``, ``stream_swe(shard=...)``). Split: consecutive
  trajectories as the paper's assemble script (the first 90 % train, the next 5 % val, the
  rest test: 900/50/50 of 1000).
- ``cylinder2d`` (FINAL_PAPER.md 5.1): ``u = (u, v)`` (2 channels) on the 320 x 80 cell centres
  of [0, 4] x [0, 1], 1501 frames every 0.01, one trajectory, no noise by default; split in
  time (``attrs["time_split"]``): train frames [0, 1301), val [1301, 1401), test [1401, 1501),
  i.e. t in [0, 13], (13, 14], (14, 15]. ``n_grid = (nx, ny)`` must keep square cells
  (``nx / 4 = ny``, the cells per unit).

Both are stored on the domain shrunk by half a cell (``Grid.coordinates`` are the cell centres),
with the grid boundary kinds of their case (swe2d outflow, cylinder2d Dirichlet in x and slip in
y; :mod:`pymsde.systems.cases`); ``attrs["boundary_physical"]`` holds the physical kinds per side.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from pymsde.backends.protocol import Backend, resolve_backend
from pymsde.data.splits import time_split_counts
from pymsde.data.stream import shard_attrs, shard_path, shard_slice, stream_writer
from pymsde.data.trajectories import Trajectories
from pymsde.systems import cylinder, swe
from pymsde.systems.cases import CaseSpec, split_sizes
from pymsde.util.errors import ConfigError, check_memory

#: The options each flow case accepts beyond the sizes (``simulate(..., **overrides)``).
FLOW_OPTIONS = {"swe": {"noise", "split", "g", "cfl", "limiter", "rk", "batch", "chunk"},
                "incompressible": {"noise", "split", "nu", "refine", "length", "cfl", "perturbation"}}


def check_backend(spec: CaseSpec, backend) -> Backend:
    """The resolved backend of a flow case, before any work (:func:`resolve_backend`: ConfigError
    for an unknown name, BackendUnavailableError for ``"julia"`` without a working Julia). Its
    time loop is the kernel ``swe_run`` (swe2d) or ``cylinder_run`` (cylinder2d)."""
    return resolve_backend(backend)


def check_options(spec: CaseSpec, overrides: dict) -> None:
    unknown = sorted(set(overrides) - FLOW_OPTIONS[spec.pde])
    if unknown:
        raise ConfigError(f"simulate: unknown option(s) {unknown} for case {spec.name!r}; expected a subset of "
                          f"{sorted(FLOW_OPTIONS[spec.pde])}")


def _common_attrs(spec: CaseSpec, grid, seed: int, noise: float) -> dict:
    return {"case": spec.name, "pde": spec.pde, "seed": int(seed), "noise": float(noise), "coarse": list(spec.coarse),
            "cell_centred": True, "domain_physical": [list(d) for d in spec.domain],
            "boundary_physical": [list(b) for b in spec.boundary_physical]}


# ----------------------------------------------------------------------------- swe2d

def swe_options(spec: CaseSpec, shape, n_steps: int, t_end: float, overrides: dict) -> dict:
    """Keyword arguments of :func:`pymsde.systems.swe.iter_swe_chunks` for these sizes and options."""
    if shape[0] != shape[1]:
        raise ConfigError(f"simulate: n_grid = {tuple(shape)} for case {spec.name!r}; expected a square grid "
                          f"(the dam break on [-2.5, 2.5]^2)")
    opts = {"n_grid": int(shape[0]), "n_steps": int(n_steps), "t_end": float(t_end),
            "g": float(overrides.get("g", spec.params["g"])), "batch": int(overrides.get("batch", 1))}
    for key in ("cfl", "limiter", "rk"):
        if key in overrides:
            opts[key] = overrides[key]
    return opts


def swe_split(spec: CaseSpec, split, n_traj: int) -> dict[str, list[int]]:
    """Consecutive trajectories per part, as the paper's assemble script (900/50/50 of 1000)."""
    counts = split_sizes(spec.split if split is None else split, n_traj)
    out, start = {}, 0
    for name, c in counts.items():
        if c:
            out[name] = list(range(start, start + c))
        start += c
    return out


def swe_attrs(spec: CaseSpec, grid, seed: int, noise: float, opts: dict, radii, steps, split) -> dict:
    """The ``attrs`` of a swe2d data set (the same in memory and streamed)."""
    return {**_common_attrs(spec, grid, seed, noise), "backend": opts["backend"].name, "g": opts["g"],
            "h_in": swe.DAM_DEFAULTS["h_in"], "h_out": swe.DAM_DEFAULTS["h_out"],
            "field": "h - 1 (depth minus the outer depth)",
            "mu_names": ["dam_radius"], "ic": {"radius": [float(r) for r in radii]},
            "scheme": "finite volume, MUSCL (mc) on (h, u, v), HLL fluxes, SSP-RK2, CFL 0.4 (systems.swe)",
            "steps": [int(k) for k in steps], "split": split}


def simulate_swe(spec: CaseSpec, n_traj: int, shape, n_steps: int, t_end: float, noise: float, seed: int,
                 overrides: dict, progress: bool, backend="torch") -> Trajectories:
    """The swe2d data set in memory: ``u (n_traj, n_steps, 1, N, N)`` float64 (the streamed HDF5
    path, ``systems.simulate_to_file``, writes float32 in bounded memory)."""
    opts = {**swe_options(spec, shape, n_steps, t_end, overrides), "backend": resolve_backend(backend)}
    grid = spec.grid(shape)
    u = np.empty((n_traj, n_steps, 1, *shape))
    mu = np.empty((n_traj, 1))
    steps: list[int] = []
    for part in swe.iter_swe_chunks(n_traj, seed, chunk=int(overrides.get("chunk", 25)), noise=noise,
                                    show_progress=progress, **opts):
        u[part["index"]] = part["u"]
        mu[part["index"]] = part["mu"]
        steps += part["info"]["steps"]
    attrs = swe_attrs(spec, grid, seed, noise, opts, mu[:, 0], steps, swe_split(spec, overrides.get("split"), n_traj))
    return Trajectories(u=u, t=np.linspace(0.0, t_end, n_steps), domain=np.asarray(grid.domain),
                        boundary=grid.boundary, mu=mu, attrs=attrs)


def stream_swe(spec: CaseSpec, path, n_traj: int, shape, n_steps: int, t_end: float, noise: float, seed: int,
               overrides: dict, progress: bool, dtype=np.float32, backend="torch", shard=None) -> dict:
    """Generate swe2d chunk by chunk straight into the HDF5 file ``path`` (``u`` float32,
    chunked per trajectory, written atomically: ``pymsde.data.stream``); the same values as
    :func:`simulate_swe` rounded to ``dtype``. Peak memory: one chunk of ``chunk`` (default 25)
    trajectories in float64, about 3 x 8 x chunk x n_steps x N^2 bytes (0.8 GB at the
    defaults), not the data set. ``shard = (k, n)``: only shard ``k`` of ``n``'s trajectories,
    into ``shard_path(path, k, n)`` (``pymsde.data.stream.merge_shards`` joins them). Returns a
    summary (path, sizes, value range, splits, seconds; with a shard also ``shard``,
    ``trajectories``, ``n_traj_total``)."""
    opts = {**swe_options(spec, shape, n_steps, t_end, overrides), "backend": resolve_backend(backend)}
    chunk = int(overrides.get("chunk", 25))
    if chunk < 1:
        raise ConfigError(f"simulate: chunk = {chunk}; expected a positive number of trajectories")
    lo, hi = (0, n_traj) if shard is None else shard_slice(n_traj, *shard)
    check_memory(3 * 8.0 * min(chunk, hi - lo) * n_steps * math.prod(shape),
                 f"simulate {spec.name}: a chunk of {min(chunk, hi - lo)} trajectories x {n_steps} x {tuple(shape)} "
                 f"float64 values", hint="lower chunk")
    grid = spec.grid(shape)
    t = np.linspace(0.0, t_end, n_steps)
    split = swe_split(spec, overrides.get("split"), n_traj)
    start = time.perf_counter()
    radii, steps = None, []
    out = Path(path) if shard is None else shard_path(path, *shard)
    with stream_writer(out, (hi - lo, n_steps, 1, *shape), t, grid.domain, grid.boundary, n_mu=1, dtype=dtype) as w:
        for part in swe.iter_swe_chunks(n_traj, seed, chunk=chunk, noise=noise, show_progress=progress, lo=lo, hi=hi,
                                        **opts):
            w.write(int(part["index"][0]) - lo, part["u"], mu=part["mu"])
            radii = part["radii"]
            steps += part["info"]["steps"]
        attrs = swe_attrs(spec, grid, seed, noise, opts, radii, steps, split)
        w.attrs = attrs if shard is None else shard_attrs(attrs, *shard, n_traj, per_trajectory=("steps",))
    summary = {"path": out, "case": spec.name, "n_traj": hi - lo, "n_t": n_steps, "grid": tuple(shape),
               "boundary": grid.boundary, "dt": float(t[1] - t[0]), "dtype": str(np.dtype(dtype)),
               "min": float(w.vmin.min()), "max": float(w.vmax.max()), "splits": {k: len(v) for k, v in split.items()},
               "seconds": time.perf_counter() - start}
    if shard is not None:
        summary.update(shard=tuple(shard), trajectories=(lo, hi), n_traj_total=n_traj)
    return summary


# ----------------------------------------------------------------------------- cylinder2d

def cylinder_setup(spec: CaseSpec, shape, n_steps: int, t_end: float, overrides: dict) -> cylinder.CylinderSetup:
    """The :class:`~pymsde.systems.cylinder.CylinderSetup` of these sizes: cells per unit from
    ``shape``, ``dt_out = t_end / (n_steps - 1)``; ConfigError for non-square cells."""
    (x_lo, x_hi), (y_lo, y_hi) = spec.domain
    per_unit = shape[0] / (x_hi - x_lo)
    if per_unit != int(per_unit) or shape[1] != per_unit * (y_hi - y_lo):
        raise ConfigError(f"simulate: n_grid = {tuple(shape)} for case {spec.name!r}; expected square cells, "
                          f"(nx, ny) = (4 n, n) with n cells per unit (default (320, 80))")
    fields = {"cells_per_unit": int(per_unit), "t_end": float(t_end), "dt_out": float(t_end) / (n_steps - 1),
              "nu": float(overrides.get("nu", spec.params["nu"])), "u_in": float(spec.params["u_in"]),
              "out_length": x_hi - x_lo, "height": y_hi - y_lo}
    for key in ("refine", "length", "cfl", "perturbation"):
        if key in overrides:
            fields[key] = overrides[key]
    return cylinder.CylinderSetup(**fields).check()


def time_split(spec: CaseSpec, split, n_steps: int) -> dict[str, list[int]]:
    """``attrs["time_split"]``: consecutive frame intervals from counts or fractions of the frames."""
    counts = split_sizes(spec.split if split is None else split, n_steps, "n_steps (frames)")
    return time_split_counts(n_steps, [counts.get(k, 0) for k in ("train", "val", "test")])


def simulate_cylinder(spec: CaseSpec, n_traj: int, shape, n_steps: int, t_end: float, noise: float, seed: int,
                      overrides: dict, progress: bool, backend="torch") -> Trajectories:
    """The cylinder2d data set: ``u (1, n_steps, 2, nx, ny)`` float64, split in time."""
    if n_traj != 1:
        raise ConfigError(f"simulate: n_traj = {n_traj} for case {spec.name!r}; expected 1 (the run is "
                          f"deterministic: every trajectory would be the same)")
    setup = cylinder_setup(spec, shape, n_steps, t_end, overrides)
    splits = time_split(spec, overrides.get("split"), n_steps)          # refuse a bad split before the run
    run = cylinder.run_cylinder(setup, show_progress=progress, backend=backend)
    u = run["u"][None]
    if noise > 0:
        u += noise * np.random.default_rng(seed).standard_normal(u.shape)
    grid = spec.grid(shape)
    attrs = {**_common_attrs(spec, grid, seed, noise), "nu": setup.nu, "u_in": setup.u_in,
             "reynolds": setup.reynolds, "field": "velocity (u, v), cell averages", "backend": run["backend"],
             "scheme": "MAC projection, 3rd-order upwind advection, SSP-RK3, immersed disc (systems.cylinder)",
             "steps": int(run["steps"]), "max_div_internal": float(run["max_div"].max()),
             "setup": run["setup"], "time_split": splits, **_wake_numbers(run, setup)}
    return Trajectories(u=u, t=run["t"], domain=np.asarray(grid.domain), boundary=grid.boundary, attrs=attrs)


def _wake_numbers(run: dict, setup) -> dict:
    """Mean drag and the Strouhal number over t >= 8 (the verification window), for runs that
    reach t = 10; none for shorter ones."""
    t = run["t"]
    if t[-1] < 10.0:
        return {}
    late = t[1:] >= 8.0
    st = cylinder.strouhal(run["cl"][late], setup.dt_out, 2 * setup.radius, setup.u_in)
    return {"cd_mean_t8": float(run["cd"][late].mean()), "strouhal_t8": float(st)}


def simulate_flow(spec: CaseSpec, n_traj: int, shape, n_steps: int, t_end: float, noise: float, seed: int,
                  overrides: dict, progress: bool, backend="torch") -> Trajectories:
    """Dispatch a validated swe2d / cylinder2d request (see the module docstring); ``backend``
    a name or the :class:`Backend` of :func:`check_backend`."""
    fn = simulate_swe if spec.pde == "swe" else simulate_cylinder
    return fn(spec, n_traj, tuple(shape), int(n_steps), float(t_end), float(noise), int(seed), overrides, progress,
              backend=backend)


__all__ = ["FLOW_OPTIONS", "simulate_flow", "simulate_swe", "stream_swe", "simulate_cylinder", "swe_options", "swe_split",
           "swe_attrs", "cylinder_setup", "time_split", "check_backend", "check_options"]
