"""The 2-D shallow-water equations and the radial dam break of PDEBench (FINAL_PAPER.md section 6).

Equations (depth ``h``, velocity ``(u, v)``, gravity ``g``; conserved ``q = (h, hu, hv)``)::

    h_t  + (hu)_x            + (hv)_y            = 0
    hu_t + (hu^2 + g h^2/2)_x + (huv)_y           = 0
    hv_t + (huv)_x           + (hv^2 + g h^2/2)_y = 0

Scheme: a conservative, dimensionally unsplit finite-volume method on cell averages. Faces get
MUSCL values of the primitive variables ``(h, u, v)`` with the MC limiter (or minmod), the
normal flux is HLL with Einfeldt's wave speeds, and the tangential momentum is carried
upwind with the mass flux (the HLLC treatment of a passive scalar). Time: SSP-RK2 (Heun) or
SSP-RK3 with a CFL step ``dt (max(|u|+c)/dx + max(|v|+c)/dy) <= cfl``, ``c = sqrt(g h)``,
chosen per trajectory at the start of each output interval and split into equal substeps.
Boundaries: ``"outflow"`` (zero-gradient ghost cells, PDEBench's extrapolation),
``"reflective"`` (closed walls: mirrored cells with the normal momentum negated; mass is
conserved to round-off) or ``"periodic"``.

Layout: ``q (B, 3, nx, ny)`` float64, axis 0 of the grid is x; cell centres
``lo + (j + 1/2) dx``. Every trajectory of a batch steps with its own ``dt``, so a
trajectory's result does not depend on the batch it runs in.

Also here: the exact wet-bed dam-break (Stoker) solution used to verify the solver,
:func:`stoker_solution`.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch

from pymsde.backends.protocol import resolve_backend
from pymsde.numerics.padding import pad_axis
from pymsde.systems.solvers import compute_threads
from pymsde.util.errors import ConfigError, StabilityError
from pymsde.util.progress import progress

SWE_BOUNDARIES = ("outflow", "reflective", "periodic")
LIMITERS = ("mc", "minmod")
#: Defaults of the radial dam break (PDEBench ``radial_dam_break.yaml``; FINAL_PAPER.md 6.1)
DAM_DOMAIN = (-2.5, 2.5)
DAM_DEFAULTS = {"n_grid": 128, "n_steps": 101, "t_end": 1.0, "g": 1.0, "h_in": 2.0, "h_out": 1.0,
                "radius": (0.3, 0.7), "noise": 1e-2}


def cell_centres(n: int, lo: float, hi: float) -> np.ndarray:
    """``(n,)`` cell centres ``lo + (j + 1/2) (hi - lo) / n`` of a finite-volume axis."""
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


def _limited_slope(a: torch.Tensor, b: torch.Tensor, limiter: str) -> torch.Tensor:
    """Limited slope of a cell from its backward ``a`` and forward ``b`` differences:
    ``minmod(a, b)`` or MC ``minmod(2a, 2b, (a + b)/2)``, written as
    ``(sign a + sign b) * min(|a|, |b|, |a + b|/4)`` (zero where the signs differ)."""
    m = torch.minimum(a.abs(), b.abs())
    if limiter == "minmod":
        return 0.5 * (torch.sign(a) + torch.sign(b)) * m
    return (torch.sign(a) + torch.sign(b)) * torch.minimum(m, 0.25 * (a + b).abs())


def _ghosts(w: torch.Tensor, dim: int, boundary: str, normal: int) -> torch.Tensor:
    """Two ghost cells per side along ``dim`` of primitive ``w (B, 3, nx, ny)``; ``normal`` the
    channel of the velocity normal to that axis (negated by reflective walls)."""
    if boundary != "reflective":
        return pad_axis(w, dim, 2, 2, boundary == "periodic")
    n = w.shape[dim]
    lo = w.narrow(dim, 0, 2).flip(dim)
    hi = w.narrow(dim, n - 2, 2).flip(dim)
    sign = torch.ones(3, dtype=w.dtype, device=w.device)
    sign[normal] = -1.0
    shape = [1] * w.dim()
    shape[1] = 3
    sign = sign.view(shape)
    return torch.cat([lo * sign, w, hi * sign], dim=dim)


def hll_flux(hl, unl, utl, hr, unr, utr, g: float):
    """Normal flux through faces from left/right states (depth, normal and tangential velocity).

    HLL with Einfeldt's wave speeds for ``(h, h u_n)``; the tangential momentum is carried
    upwind by the mass flux (HLLC's passive-scalar flux). Returns ``(F_h, F_n, F_t)``, each of
    the inputs' shape, in (depth x velocity) and (depth x velocity^2) units.
    """
    sql, sqr = torch.sqrt(hl), torch.sqrt(hr)
    sg = math.sqrt(g)
    u_roe = (sql * unl + sqr * unr) / (sql + sqr)
    c_roe = torch.sqrt((0.5 * g) * (hl + hr))
    s_l = torch.clamp(torch.minimum(unl - sg * sql, u_roe - c_roe), max=0.0)
    s_r = torch.clamp(torch.maximum(unr + sg * sqr, u_roe + c_roe), min=0.0)
    inv = 1.0 / (s_r - s_l)
    ml, mr = hl * unl, hr * unr
    slr = s_l * s_r
    f_h = (s_r * ml - s_l * mr + slr * (hr - hl)) * inv
    f_n = (s_r * (ml * unl + (0.5 * g) * hl * hl) - s_l * (mr * unr + (0.5 * g) * hr * hr)
           + slr * (mr - ml)) * inv
    f_t = f_h * torch.where(f_h > 0, utl, utr)
    return f_h, f_n, f_t


def _axis_divergence(w: torch.Tensor, dim: int, boundary: str, g: float, limiter: str) -> torch.Tensor:
    """``(F_{i+1/2} - F_{i-1/2})`` along spatial ``dim`` (2 = x, 3 = y) of ``w (B, 3, nx, ny)``,
    as ``(B, 3, nx, ny)`` in the conserved ordering ``(h, hu, hv)``."""
    normal, tang = (1, 2) if dim == 2 else (2, 1)
    wp = _ghosts(w, dim, boundary, normal)
    n = w.shape[dim]
    d = wp.narrow(dim, 1, n + 3) - wp.narrow(dim, 0, n + 3)          # n + 3 differences
    s = _limited_slope(d.narrow(dim, 0, n + 2), d.narrow(dim, 1, n + 2), limiter)  # cells 1..n+2
    c = wp.narrow(dim, 1, n + 2)
    left = (c + 0.5 * s).narrow(dim, 0, n + 1)                      # faces -1/2 .. n-1/2
    right = (c - 0.5 * s).narrow(dim, 1, n + 1)
    f_h, f_n, f_t = hll_flux(left[:, 0], left[:, normal], left[:, tang],
                             right[:, 0], right[:, normal], right[:, tang], g)
    flux = [f_h, f_n, f_t] if normal == 1 else [f_h, f_t, f_n]
    flux = torch.stack(flux, dim=1)
    return flux.narrow(dim, 1, n) - flux.narrow(dim, 0, n)


def to_primitive(q: torch.Tensor) -> torch.Tensor:
    """``(h, hu, hv) -> (h, u, v)`` along channel axis 1 of ``(B, 3, nx, ny)``."""
    h = q[:, :1]
    return torch.cat([h, q[:, 1:] / h], dim=1)


def swe_rhs(q: torch.Tensor, dx: Sequence[float], boundary: Sequence[str], g: float = 1.0,
            limiter: str = "mc") -> torch.Tensor:
    """Semi-discrete right-hand side ``dq/dt (B, 3, nx, ny)`` of conserved ``q (B, 3, nx, ny)``.

    ``dx``: cell sizes ``(dx, dy)`` (length); ``boundary``: one of :data:`SWE_BOUNDARIES` per axis.
    """
    w = to_primitive(q)
    return -(_axis_divergence(w, 2, boundary[0], g, limiter) / dx[0]
             + _axis_divergence(w, 3, boundary[1], g, limiter) / dx[1])


def wave_rate(q: torch.Tensor, dx: Sequence[float], g: float = 1.0) -> torch.Tensor:
    """``(B,)`` CFL rate ``max(|u| + c)/dx + max(|v| + c)/dy`` per trajectory (1 / time)."""
    h = q[:, 0]
    c = torch.sqrt(g * h)
    ax = ((q[:, 1] / h).abs() + c).amax(dim=(1, 2))
    ay = ((q[:, 2] / h).abs() + c).amax(dim=(1, 2))
    return ax / dx[0] + ay / dx[1]


def ssp_step(q: torch.Tensor, dt: torch.Tensor, dx, boundary, g: float, limiter: str, order: int) -> torch.Tensor:
    """One SSP Runge-Kutta step (``order`` 2: Heun, 3: Shu-Osher) with per-trajectory
    ``dt (B, 1, 1, 1)`` (time)."""
    q1 = q + dt * swe_rhs(q, dx, boundary, g, limiter)
    if order == 2:
        return 0.5 * (q + q1 + dt * swe_rhs(q1, dx, boundary, g, limiter))
    q2 = 0.75 * q + 0.25 * (q1 + dt * swe_rhs(q1, dx, boundary, g, limiter))
    return q / 3.0 + (2.0 / 3.0) * (q2 + dt * swe_rhs(q2, dx, boundary, g, limiter))


def _check_options(boundary, limiter: str, rk: int, cfl: float, g: float) -> tuple[str, str]:
    boundary = (boundary, boundary) if isinstance(boundary, str) else tuple(boundary)
    if len(boundary) != 2 or any(b not in SWE_BOUNDARIES for b in boundary):
        raise ConfigError(f"swe: boundary {boundary!r}; expected one or two of {SWE_BOUNDARIES}")
    if limiter not in LIMITERS:
        raise ConfigError(f"swe: limiter {limiter!r}; expected one of {LIMITERS}")
    if rk not in (2, 3):
        raise ConfigError(f"swe: rk = {rk!r}; expected 2 (SSP-RK2) or 3 (SSP-RK3)")
    if not 0 < cfl <= 1:
        raise ConfigError(f"swe: cfl = {cfl}; expected 0 < cfl <= 1 (0.5 is the TVD limit)")
    if not (g > 0 and math.isfinite(g)):
        raise ConfigError(f"swe: g = {g}; expected a positive gravity")
    return boundary


def swe_run(q0: torch.Tensor, t_out: torch.Tensor, dx: Sequence[float], g: float, boundary: Sequence[str],
            cfl: float, limiter: str, rk: int, channels: str, *, show_progress: bool = False,
            desc: str = "swe") -> tuple[torch.Tensor, torch.Tensor]:
    """A whole shallow-water run: the time loop of :func:`integrate_swe`.

    The torch implementation of the backend kernel of the same name
    (:mod:`pymsde.backends.protocol`). Each output interval ``t_out[i] - t_out[i - 1]`` is split
    per trajectory into ``n_b = ceil(interval x wave_rate / cfl)`` equal SSP-RK steps, the rate
    taken at the start of the interval; a trajectory whose ``n_b`` steps are done keeps its state
    while the others of the batch step on. The step is ``interval x (1 / n_b)`` evaluated in
    float32 (torch's ``float / int64 tensor`` is ``reciprocal() * float`` in the default dtype),
    then widened to float64: kept as it was, so the data generated so far are reproduced.

    Args:
        q0: ``(B, 3, nx, ny)`` float64 conserved state ``(h, hu, hv)``, positive depth.
        t_out: ``(n_t,)`` float64 increasing output times (``t_out[0]`` the time of ``q0``).
        dx, g, boundary, cfl, limiter, rk: as :func:`integrate_swe` (``boundary`` one name per axis).
        channels: ``"h"`` (save the depth) or ``"all"`` (save ``(h, hu, hv)``).
    Returns:
        ``(out (B, n_t, 1 or 3, nx, ny) float64, steps (B,) int64)``: the saved states and the
        number of steps each trajectory took.
    Raises:
        StabilityError: a non-finite or non-positive depth at the end of an output interval.
    """
    q = q0
    dt_out = torch.diff(t_out)
    sel = slice(0, 1) if channels == "h" else slice(0, 3)
    out = q.new_empty((q.shape[0], t_out.numel(), sel.stop, *q.shape[2:]))
    out[:, 0] = q[:, sel]
    steps = torch.zeros(q.shape[0], dtype=torch.int64)
    for i in progress(range(1, t_out.numel()), desc=desc, unit="frame", enabled=show_progress, leave=False):
        interval = float(dt_out[i - 1])
        n_b = torch.ceil(interval * wave_rate(q, dx, g) / cfl - 1e-9).clamp(min=1).to(torch.int64)
        dt = (interval / n_b).view(-1, 1, 1, 1).to(q.dtype)
        for k in range(int(n_b.max())):
            new = ssp_step(q, dt, dx, boundary, g, limiter, rk)
            q = new if k < int(n_b.min()) else torch.where((k < n_b).view(-1, 1, 1, 1), new, q)
        steps += n_b
        if not (bool(torch.isfinite(q).all()) and bool((q[:, 0] > 0).all())):
            raise StabilityError(f"swe: the depth became non-positive or non-finite before t = {float(t_out[i]):.4g} "
                                 f"(cfl = {cfl}); reduce cfl")
        out[:, i] = q[:, sel]
    return out, steps


def integrate_swe(q0, t_out, dx: Sequence[float], g: float = 1.0, boundary="outflow", cfl: float = 0.4,
                  limiter: str = "mc", rk: int = 2, channels: str = "h", show_progress: bool = False,
                  desc: str = "swe", backend="torch") -> tuple[np.ndarray, dict]:
    """Solve the shallow-water equations from ``q0`` and save at the times ``t_out``.

    Args:
        q0: ``(B, 3, nx, ny)`` conserved initial state ``(h, hu, hv)`` (numpy or torch; float64 inside).
        t_out: ``(n_t,)`` uniform output times (time units), ``t_out[0]`` the time of ``q0``.
        dx: cell sizes ``(dx, dy)``; g: gravity; boundary: one name or one per axis
            (:data:`SWE_BOUNDARIES`); cfl: CFL number of the step (<= 0.5 keeps MUSCL TVD);
            limiter: ``"mc"`` or ``"minmod"``; rk: 2 or 3 (SSP Runge-Kutta order).
        channels: ``"h"`` saves the depth only, ``"all"`` saves ``(h, hu, hv)``.
        backend: ``"torch"``, ``"julia"``, ``"auto"`` or a resolved ``Backend``
            (:func:`pymsde.backends.protocol.resolve_backend`); a non-torch backend runs the
            whole time loop in one kernel call (:func:`swe_run`; no progress bar).
    Returns:
        ``(out, info)``: ``out (B, n_t, 1 or 3, nx, ny)`` float64; ``info`` with the number of
        steps taken per trajectory (``steps``), the scheme, the options and the backend.
    Raises:
        ConfigError: bad options or a non-positive initial depth. StabilityError: a
        non-finite or non-positive depth during the run. BackendUnavailableError: ``"julia"``
        asked for and Julia cannot start.
    """
    boundary = _check_options(boundary, limiter, rk, cfl, g)
    if channels not in ("h", "all"):
        raise ConfigError(f"swe: channels {channels!r}; expected 'h' (the depth) or 'all' (h, hu, hv)")
    q = torch.as_tensor(np.asarray(q0, dtype=np.float64) if not torch.is_tensor(q0) else q0).to(torch.float64)
    if q.dim() != 4 or q.shape[1] != 3:
        raise ConfigError(f"swe: q0 of shape {tuple(q.shape)}; expected (B, 3, nx, ny)")
    if not bool((q[:, 0] > 0).all()) or not bool(torch.isfinite(q).all()):
        raise ConfigError("swe: the initial depth must be finite and positive everywhere (no dry cells)")
    t_out = np.asarray(t_out, dtype=np.float64)
    dt_out = np.diff(t_out)
    if t_out.ndim != 1 or t_out.size < 2 or not (dt_out > 0).all():
        raise ConfigError(f"swe: output times of shape {t_out.shape}; expected >= 2 increasing times")
    be = resolve_backend(backend)
    args = (q, torch.as_tensor(t_out), tuple(float(d) for d in dx), float(g), boundary, float(cfl), limiter,
            int(rk), channels)
    if be.accelerated:
        out, steps = be.swe_run(*args)
    else:
        with compute_threads():
            out, steps = swe_run(*args, show_progress=show_progress, desc=desc)
    info = {"scheme": f"finite volume, MUSCL ({limiter}) on (h, u, v), HLL fluxes, SSP-RK{rk}",
            "cfl": cfl, "boundary": list(boundary), "steps": steps.tolist(), "backend": be.name}
    return out.numpy(), info


def dam_break_state(radius, n_grid: int = 128, domain=DAM_DOMAIN, h_in: float = 2.0, h_out: float = 1.0,
                    centre=(0.0, 0.0)) -> np.ndarray:
    """``(B, 3, n, n)`` initial state: depth ``h_in`` at cell centres within ``radius`` of
    ``centre`` (``r <= radius``, point sampled as PyClaw sets ``q``), ``h_out`` outside, at rest."""
    radius = np.atleast_1d(np.asarray(radius, dtype=np.float64))
    x = cell_centres(int(n_grid), *domain)
    r = np.sqrt((x[:, None] - centre[0]) ** 2 + (x[None, :] - centre[1]) ** 2)
    q = np.zeros((radius.size, 3, x.size, x.size))
    q[:, 0] = np.where(r[None] <= radius[:, None, None], h_in, h_out)
    return q


def radial_dam_break(radius, n_grid: int = 128, n_steps: int = 101, t_end: float = 1.0, g: float = 1.0,
                     h_in: float = 2.0, h_out: float = 1.0, boundary="outflow", show_progress: bool = False,
                     **solver) -> tuple[np.ndarray, dict]:
    """The clean radial dam break on ``[-2.5, 2.5]^2`` for each radius.

    Args:
        radius: ``(B,)`` dam radii (length). n_grid: cells per axis. n_steps: saved times on
            ``[0, t_end]``, t = 0 included. g, h_in, h_out: gravity and the inner/outer depths.
        boundary, **solver: as :func:`integrate_swe` (``cfl``, ``limiter``, ``rk``, ``channels``, ``backend``).
    Returns:
        ``(h, info)``: ``h (B, n_steps, 1, n_grid, n_grid)`` float64 depth (not the perturbation).
    """
    radius = np.atleast_1d(np.asarray(radius, dtype=np.float64))
    if not (np.isfinite(radius).all() and (radius > 0).all()):
        raise ConfigError(f"swe: dam radii must be positive and finite; found min {radius.min():.4g}")
    if not (h_in > 0 and h_out > 0):
        raise ConfigError(f"swe: depths h_in = {h_in}, h_out = {h_out}; expected positive depths")
    if int(n_grid) < 4 or int(n_steps) < 2 or not t_end > 0:
        raise ConfigError(f"swe: n_grid = {n_grid}, n_steps = {n_steps}, t_end = {t_end}; expected n_grid >= 4, "
                          f"n_steps >= 2, t_end > 0")
    q0 = dam_break_state(radius, n_grid, DAM_DOMAIN, h_in, h_out)
    dx = (DAM_DOMAIN[1] - DAM_DOMAIN[0]) / int(n_grid)
    t = np.linspace(0.0, float(t_end), int(n_steps))
    return integrate_swe(q0, t, (dx, dx), g, boundary, show_progress=show_progress, **solver)


def sample_dam_break(rng: np.random.Generator, n: int, grid) -> tuple[np.ndarray, dict]:
    """A ``CaseSpec.sample_ic`` for the radial dam break: ``n`` radii ``r ~ U(0.3, 0.7)`` (the
    first draw of ``rng``, as :func:`iter_swe_chunks` draws them) and the initial depth
    perturbation ``h - 1`` on the ``grid.shape`` cells of ``[-2.5, 2.5]^2``:
    ``(u0 (n, 1, N, N), {"radius": [...]})``."""
    radius = rng.uniform(*DAM_DEFAULTS["radius"], int(n))
    q = dam_break_state(radius, int(grid.shape[0]), DAM_DOMAIN, DAM_DEFAULTS["h_in"], DAM_DEFAULTS["h_out"])
    return q[:, :1] - DAM_DEFAULTS["h_out"], {"radius": radius.tolist()}


def iter_swe_chunks(n_traj: int = 1000, seed: int = 0, chunk: int = 25, noise: float = 1e-2,
                    dtype=np.float64, show_progress: bool = True, batch: int = 1, lo: int = 0, hi: int | None = None,
                    **options) -> Iterator[dict]:
    """Generate the ``shallow_water_2d`` data set chunk by chunk (bounded memory).

    Radii ``r ~ U(0.3, 0.7)`` are drawn for all trajectories from ``default_rng(seed)``; the
    noise of trajectory ``i`` from ``default_rng([seed, i])``, so the data depend on neither
    ``chunk`` nor ``batch``. ``batch`` trajectories are stepped together (on a CPU 1 is
    fastest: one trajectory's working set stays in cache; docs/swe_cylinder.md). Options:
    ``n_grid``, ``n_steps``, ``t_end``, ``g``, ``h_in``, ``h_out``, ``radius_range`` and the
    solver's (:func:`radial_dam_break`, ``backend`` included: pass a resolved ``Backend`` to
    resolve it once). ``lo``, ``hi``: generate only trajectories ``lo .. hi - 1`` (a shard), with
    the same values as in the whole set.

    Yields:
        dicts with ``index (b,)`` trajectory indices, ``u (b, n_steps, 1, n, n)`` the depth
        perturbation ``h - h_out`` plus noise N(0, noise^2) (``dtype``), ``mu (b, 1)`` the
        dam radius, ``radii`` (all ``n_traj``), ``t (n_steps,)`` and ``info`` (``steps``: internal
        steps per trajectory).
    """
    hi = int(n_traj) if hi is None else int(hi)
    if int(n_traj) < 1 or int(chunk) < 1 or int(batch) < 1 or not 0 <= int(lo) < hi <= int(n_traj):
        raise ConfigError(f"swe: n_traj = {n_traj}, trajectories [{lo}, {hi}), chunk = {chunk}, batch = {batch}; "
                          f"expected positive sizes and 0 <= lo < hi <= n_traj")
    if not noise >= 0:
        raise ConfigError(f"swe: noise = {noise}; expected a non-negative standard deviation")
    r_lo, r_hi = options.pop("radius_range", DAM_DEFAULTS["radius"])
    if not 0 < r_lo <= r_hi:
        raise ConfigError(f"swe: radius_range = ({r_lo}, {r_hi}); expected 0 < lo <= hi")
    radii = np.random.default_rng(seed).uniform(r_lo, r_hi, int(n_traj))
    h_out = float(options.get("h_out", 1.0))
    bar = progress(total=hi - int(lo), desc="shallow_water_2d", unit="traj", enabled=show_progress)
    for start in range(int(lo), hi, int(chunk)):
        idx = np.arange(start, min(start + int(chunk), hi))
        parts, steps = [], []
        for b in range(0, idx.size, int(batch)):
            h, info = radial_dam_break(radii[idx[b:b + int(batch)]], **options)
            parts.append((h - h_out).astype(dtype) if noise == 0 else h - h_out)
            steps += info["steps"]
            bar.update(h.shape[0])
        u = np.concatenate(parts)
        del parts
        if noise > 0:
            for j, i in enumerate(idx):
                u[j] += noise * np.random.default_rng([int(seed), int(i)]).standard_normal(u.shape[1:])
        t = np.linspace(0.0, float(options.get("t_end", 1.0)), u.shape[1])
        yield {"index": idx, "u": u.astype(dtype, copy=False), "mu": radii[idx, None], "radii": radii, "t": t,
               "info": {**info, "steps": steps}}
    bar.close()


def generate_swe(n_traj: int = 1000, seed: int = 0, chunk: int = 25, noise: float = 1e-2, dtype=np.float64,
                 show_progress: bool = True, batch: int = 1, **options) -> dict:
    """The whole data set in memory (``u (n_traj, n_steps, 1, n, n)``, ``mu (n_traj, 1)``,
    ``t (n_steps,)``, ``x (n,)`` cell centres, ``info``); see :func:`iter_swe_chunks`. For
    the paper's 1000 trajectories (6.6 GB in float32) iterate the chunks and write them instead."""
    parts = list(iter_swe_chunks(n_traj, seed, chunk, noise, dtype, show_progress, batch, **options))
    n = parts[0]["u"].shape[-1]
    return {"u": np.concatenate([p["u"] for p in parts]), "mu": np.concatenate([p["mu"] for p in parts]),
            "t": parts[0]["t"], "x": cell_centres(n, *DAM_DOMAIN),
            "info": {**parts[0]["info"], "steps": [k for p in parts for k in p["info"]["steps"]]}}


def stoker_middle_state(h_l: float, h_r: float, g: float = 1.0, tol: float = 1e-14) -> tuple[float, float]:
    """``(h_m, u_m)`` of the wet-bed dam break (left depth ``h_l`` > right ``h_r``, both at rest):
    a left rarefaction and a right shock, ``2 (sqrt(g h_l) - sqrt(g h_m)) = (h_m - h_r)
    sqrt(g (h_m + h_r) / (2 h_m h_r))``, solved by Newton's method."""
    if not h_l > h_r > 0:
        raise ConfigError(f"stoker: depths h_l = {h_l}, h_r = {h_r}; expected h_l > h_r > 0 (wet bed)")

    def f(h):   # the velocity jump across both waves and its derivative in h
        k = math.sqrt(0.5 * g * (1.0 / h + 1.0 / h_r))
        val = 2.0 * (math.sqrt(g * h) - math.sqrt(g * h_l)) + (h - h_r) * k
        der = math.sqrt(g / h) + k - (h - h_r) * g / (4.0 * k * h * h)
        return val, der

    h = 0.5 * (h_l + h_r)
    for _ in range(100):
        val, der = f(h)
        step = val / der
        h -= step
        if abs(step) < tol * h:
            break
    else:
        raise StabilityError("stoker: Newton's iteration for the middle depth did not converge")
    return h, 2.0 * (math.sqrt(g * h_l) - math.sqrt(g * h))


def stoker_solution(x, t: float, h_l: float, h_r: float, g: float = 1.0, x0: float = 0.0):
    """Exact depth and velocity ``(h, u)`` (arrays of ``x``'s shape) at time ``t > 0`` of the dam
    break with ``h_l`` for ``x < x0`` and ``h_r`` for ``x > x0``, water at rest."""
    x = np.asarray(x, dtype=np.float64)
    h_m, u_m = stoker_middle_state(h_l, h_r, g)
    c_l, c_m = math.sqrt(g * h_l), math.sqrt(g * h_m)
    s = h_m * u_m / (h_m - h_r)                       # shock speed (mass jump condition)
    xi = (x - x0) / t
    h = np.where(xi < -c_l, h_l, np.where(xi < u_m - c_m, (2 * c_l - xi) ** 2 / (9 * g), np.where(xi < s, h_m, h_r)))
    u = np.where(xi < -c_l, 0.0, np.where(xi < u_m - c_m, 2 * (c_l + xi) / 3, np.where(xi < s, u_m, 0.0)))
    return h, u


__all__ = ["SWE_BOUNDARIES", "DAM_DEFAULTS", "cell_centres", "hll_flux", "swe_rhs", "wave_rate", "ssp_step",
           "swe_run", "integrate_swe", "dam_break_state", "radial_dam_break", "sample_dam_break", "iter_swe_chunks",
           "generate_swe", "stoker_middle_state", "stoker_solution"]
