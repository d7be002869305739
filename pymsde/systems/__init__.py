"""Fine-grid simulators of the benchmark PDEs and the coarse-grid (under-resolved DNS) solver.

- :func:`simulate` draws initial conditions of a case of :data:`CASES` (METHOD.md section 8),
  solves the PDE on the fine grid and returns a :class:`~pymsde.data.trajectories.Trajectories`
  with observation noise, the case parameters in ``attrs`` and a train/val/test split.
- :func:`coarse_grain`, :func:`refine`, :func:`solve_coarse`: the baseline of METHOD.md
  section 7 (see ``pymsde.systems.coarse``).

The numerics live in ``pymsde.numerics.pde`` / ``stencils`` / ``spectral``; the time loops in
``pymsde.systems.solvers``. Schemes, orders and stability limits: ``docs/simulators.md``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pymsde.data.trajectories import Trajectories
from pymsde.systems.cases import CASES, CaseSpec
from pymsde.systems.coarse import coarse_grain, refine, solve_coarse
from pymsde.systems.solvers import burgers_dt_limit, integrate_burgers, integrate_kdv, kdv_dt_limit
from pymsde.backends.protocol import resolve_backend
from pymsde.util.errors import ConfigError

_OVERRIDES = {"nu", "d", "noise", "dt", "order", "dealias", "u0", "split", "safety", "scheme"}


def _split_counts(n: int, fractions: tuple[float, float, float]) -> dict[str, int]:
    # Counts rather than fractions so that small data sets (tests, demos) still get a split:
    # val and test get at least one trajectory each once there are three or more.
    if n < 3:
        return {"train": n}
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def simulate(case: str, n_traj: int | None = None, seed: int = 0, n_grid: int | tuple[int, ...] | None = None,
             n_steps: int | None = None, t_end: float | None = None, backend: str = "torch",
             progress: bool = True, **overrides: Any) -> Trajectories:
    """Simulate trajectories of a benchmark case on the fine grid.

    Args:
        case: ``"burgers1d"``, ``"kdv1d"`` or ``"burgers2d"`` (keys of :data:`CASES`).
        n_traj: number of trajectories (default: the case's, 10 / 10 / 20).
        seed: seed of ``numpy.random.default_rng``: initial-condition parameters, then noise,
            then the split permutation. Same arguments, same data (bit for bit).
        n_grid: fine points per axis (an int applies to every axis).
        n_steps: saved times including ``t = 0`` (default 1001); output step ``t_end / (n_steps - 1)``.
        t_end: final time (default 1).
        backend: ``"torch"``, ``"julia"`` or ``"auto"`` (``pymsde.backends.protocol.resolve_backend``:
            ``"julia"`` raises BackendUnavailableError when Julia cannot start; ``"auto"`` falls back
            to torch and logs why). A Julia run steps the whole loop in one call (no progress bar).
        progress: show a progress bar over the output steps.
        **overrides: ``nu`` (Burgers viscosity), ``d`` (KdV dispersion), ``noise`` (std of the
            Gaussian observation noise; 0 keeps the clean solution), ``dt`` (internal step;
            StabilityError beyond the scheme's limit), ``scheme`` (Burgers: ``"auto"`` = pseudo-spectral
            ETDRK4 on a periodic 1-D grid, central differences + RK4 otherwise; ``"fd"``,
            ``"spectral"``), ``order`` (central-difference order, 2/4/6, default 4),
            ``dealias`` (spectral schemes, ``"2/3"`` or ``"3/2"``), ``safety`` (fraction of the
            stability limit used by the automatic step, default 0.8), ``u0`` (explicit initial
            fields ``(n_traj, C, *grid)`` or ``(n_traj, *grid)`` instead of random draws; sets
            ``n_traj`` when it is not given),
            ``split`` (train/val/test fractions).

    Returns:
        :class:`Trajectories` with ``u (n_traj, n_steps, 1, *grid)`` float64, ``t (n_traj, n_steps)``,
        ``mu = f = None``, and ``attrs``: ``case``, ``pde``, the PDE coefficients, ``seed``,
        ``noise``, ``ic`` (the drawn initial-condition parameters), ``coarse`` (the baseline's
        coarse grid), ``scheme``, ``dt_internal``, ``substeps``, ``dt_limit`` and ``split``.
    """
    if case not in CASES:
        raise ConfigError(f"simulate: unknown case {case!r}; expected one of {sorted(CASES)}")
    unknown = set(overrides) - _OVERRIDES
    if unknown:
        raise ConfigError(f"simulate: unknown option(s) {sorted(unknown)}; expected a subset of {sorted(_OVERRIDES)}")
    be = resolve_backend(backend)     # ConfigError / BackendUnavailableError before any work
    spec: CaseSpec = CASES[case]
    if n_traj is None:
        n_traj = len(overrides["u0"]) if "u0" in overrides else spec.n_traj
    n_traj = int(n_traj)
    if n_grid is None:
        shape = spec.n_grid
    else:
        sizes = np.atleast_1d(np.asarray(n_grid))
        if sizes.ndim != 1 or sizes.size not in (1, len(spec.n_grid)):
            raise ConfigError(f"simulate: n_grid = {n_grid!r}; expected an int or {len(spec.n_grid)} sizes "
                              f"for case {case!r}")
        shape = tuple(int(v) for v in np.broadcast_to(sizes, (len(spec.n_grid),)))
    n_steps = spec.n_steps if n_steps is None else int(n_steps)
    t_end = spec.t_end if t_end is None else float(t_end)
    if n_traj < 1:
        raise ConfigError(f"simulate: n_traj = {n_traj}; expected at least 1")
    if n_steps < 2:
        raise ConfigError(f"simulate: n_steps = {n_steps}; expected at least 2 saved times")
    if not t_end > 0:
        raise ConfigError(f"simulate: t_end = {t_end}; expected a positive final time")
    grid = spec.grid(shape)
    noise = float(overrides.get("noise", spec.noise))
    if noise < 0:
        raise ConfigError(f"simulate: noise = {noise}; expected a non-negative standard deviation")

    rng = np.random.default_rng(seed)
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

    t = np.linspace(0.0, t_end, n_steps)
    dt = overrides.get("dt")
    safety = float(overrides.get("safety", 0.8))
    if spec.pde == "burgers":
        nu = float(overrides.get("nu", spec.params["nu"]))
        if nu < 0:
            raise ConfigError(f"simulate: nu = {nu}; expected a non-negative viscosity")
        params = {"nu": nu}
        order = int(overrides.get("order", 4))
        u, info = integrate_burgers(u0, t, grid.spacing, nu, grid.boundary, dt=dt, order=order,
                                    safety=safety, show_progress=progress,
                                    scheme=str(overrides.get("scheme", "auto")),
                                    dealias=str(overrides.get("dealias", "2/3")), backend=be.name)
    else:
        d = float(overrides.get("d", spec.params["d"]))
        params = {"d": d}
        lo, hi = grid.domain[0]
        u, info = integrate_kdv(u0, t, hi - lo, d, dt=dt, dealias=str(overrides.get("dealias", "2/3")),
                                safety=safety, show_progress=progress, backend=be.name)
    if noise > 0:
        # one trajectory at a time: no second full-size array (Burgers 2-D is 2.6 GB)
        for i in range(n_traj):
            u[i] += noise * rng.standard_normal(u.shape[1:])

    attrs = {"case": case, "pde": spec.pde, **params, "seed": int(seed), "noise": noise, "ic": ic_params,
             "coarse": list(spec.coarse), **info}
    traj = Trajectories(u=u, t=np.broadcast_to(t, (n_traj, n_steps)).copy(), domain=np.asarray(grid.domain),
                        boundary=grid.boundary, mu=None, f=None, attrs=attrs)
    fractions = tuple(overrides.get("split", spec.split))
    return traj.split(_split_counts(n_traj, fractions), seed=seed)


__all__ = ["simulate", "CASES", "CaseSpec", "coarse_grain", "refine", "solve_coarse", "integrate_burgers",
           "integrate_kdv", "burgers_dt_limit", "kdv_dt_limit"]
