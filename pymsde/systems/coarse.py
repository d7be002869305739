"""The under-resolved DNS baseline (docs/method.md section 7): coarse-grain a fine initial
condition, solve the same PDE on the coarse mesh, map the solution back to the fine grid.

- :func:`coarse_grain`: block average over ``s`` consecutive fine points per axis (the coarse
  value stands for its block and sits at the block centre, as in ``pymsde.data.grid``).
- :func:`refine`: back to the fine grid, designed so that ``coarse_grain(refine(c)) == c``
  (to round-off): ``"linear"`` (default) is the conservative piecewise-linear reconstruction
  with minmod-limited slopes (no new extrema, exact block averages); ``"spectral"`` (periodic
  axes) is the band-limited trigonometric field whose block averages are ``c``
  (``kernels.spectral.fourier_interpolate`` with deconvolution); ``"constant"`` repeats each value.
- :func:`solve_coarse`: the coarse solve.

  * Burgers (1-D 20 cells, 2-D 8x8): finite volume on the block averages, MUSCL-minmod
    reconstruction, Rusanov flux, central viscous flux, SSP-RK3 (``kernels.pde.burgers_fv_rhs``).
    Why: the grid Reynolds number ``max|u| H / nu`` is 25-40 at 20 cells (Burgers 1-D,
    A ~ 0.25-0.4) and ~25 at 8 x 8 (Burgers 2-D), far above the ~2 where central
    differences stop being monotone;
    the Rusanov/minmod scheme is TVD (total variation and extrema cannot grow, conservative),
    so the solution stays bounded by the initial data and runs to the end. (The fine-grid
    schemes run on 20 cells stay finite but create new extrema: max 0.295 from initial data
    in [0, 0.262], see ``kernels.pde``.) Dirichlet axes:
    the face values of the domain are held at the fine initial condition's boundary values
    (block-averaged along the face), imposed through ghost cells ``2 u_b - c``.
  * KdV (20 points): Fourier-Galerkin with 3/2-rule dealiasing and ETDRK4 on the values at the
    block centres (the band-limited field whose block averages are the coarse-grained initial
    condition). Why: the Galerkin-truncated KdV conserves ``sum |u_hat|^2`` exactly (the
    nonlinear term does no work on the retained modes), so the coarse solution is bounded for
    all time however under-resolved, while the stiff dispersion ``i d k^3`` is integrated
    exactly. Output: the trigonometric interpolant of those values on the fine grid.
  * Shallow water (swe2d, 8 x 8 cells): the fine-grid finite-volume scheme of ``systems.swe``
    (MUSCL-MC, HLL, SSP-RK2, outflow boundaries) on the coarse cells, from the block averages of
    the depth ``h = h_out + u`` at rest (the data hold the depth only; the dam break starts at
    rest). Output ``h - h_out``, refined linearly.
  * Cylinder wake (cylinder2d, 32 x 8 cells, 8 per unit, D = one cell): the incompressible
    solver of ``systems.cylinder`` (MAC projection, immersed disc, SSP-RK3) on the output box
    ``[0, 4] x [0, 1]`` (its convective outflow at x = 4, as the paper's FEniCS box), started
    from the block averages of ``(u, v)`` turned into face values and projected; so its first
    frame is the projected field, not exactly the coarse-grained data. Output refined linearly.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from pymsde.data.grid import Grid
from pymsde.numerics import pde
from pymsde.numerics import spectral
from pymsde.backends.protocol import resolve_backend
from pymsde.systems.cases import CASES, CaseSpec
from pymsde.backends.protocol import BACKEND_NAMES, Backend
from pymsde.systems.solvers import (RK4_IMAG, _check_finite, _check_times, _substeps, compute_threads, kdv_dt_limit,
                                    march, spectral_run)
from pymsde.systems import cylinder, swe
from pymsde.util.errors import ConfigError

REFINE_METHODS = ("linear", "spectral", "constant")
FV_CFL = 0.5        # SSP-RK3 + MUSCL-minmod: TVD for dt (sum_a max|u| / H_a + sum_a 2 nu / H_a^2) <= 1/2


def _as_tensor(u) -> tuple[torch.Tensor, bool]:
    if isinstance(u, torch.Tensor):
        return u, True
    return torch.as_tensor(np.asarray(u)), False


def _check_factors(shape: Sequence[int], factors: Sequence[int], what: str) -> tuple[int, ...]:
    factors = tuple(int(s) for s in factors)
    if len(factors) > len(shape):
        raise ConfigError(f"{what}: {len(factors)} factors for an array of rank {len(shape)}")
    grid = tuple(shape[-len(factors):])
    for axis, (n, s) in enumerate(zip(grid, factors)):
        if s < 1 or n % s:
            raise ConfigError(f"{what}: factor {s} on spatial axis {axis} does not divide its {n} points; "
                              f"expected a positive divisor of {n}")
    return factors


def coarse_grain(u, factors: Sequence[int], boundary: Sequence[str] | None = None):
    """Block average over ``factors[a]`` consecutive points of each trailing spatial axis.

    Args:
        u: ``(..., *grid)`` numpy array or torch tensor (e.g. ``(B, C, *grid)`` or
            ``(n, n_t, C, *grid)``); the last ``len(factors)`` axes are spatial.
        factors: integer factor per spatial axis (``grid[a] = factors[a] * coarse[a]``).
        boundary: accepted for the interface; the block average is the same for every type.
    Returns:
        ``(..., *coarse)`` of the input's type and dtype.
    """
    x, is_torch = _as_tensor(u)
    if not x.is_floating_point():
        x = x.to(torch.float64)          # block means of integer data are not integers
    factors = _check_factors(x.shape, factors, "coarse_grain")
    nd = len(factors)
    lead = x.shape[: x.dim() - nd]
    shape = list(lead)
    for n, s in zip(x.shape[-nd:], factors):
        shape += [n // s, s]
    y = x.reshape(shape).mean(dim=tuple(len(lead) + 2 * a + 1 for a in range(nd)))
    return y if is_torch else y.numpy()


def _refine_axis_linear(c: torch.Tensor, dim: int, s: int, boundary: str) -> torch.Tensor:
    n = c.shape[dim]
    if boundary == "periodic" and n > 1:
        cp = torch.cat([c.narrow(dim, n - 1, 1), c, c.narrow(dim, 0, 1)], dim=dim)
    else:   # Dirichlet: edge copies give zero one-sided differences, i.e. a flat end block
        cp = torch.cat([c.narrow(dim, 0, 1), c, c.narrow(dim, n - 1, 1)], dim=dim)
    d = cp.narrow(dim, 1, n + 1) - cp.narrow(dim, 0, n + 1)
    slope = pde.minmod(d.narrow(dim, 0, n), d.narrow(dim, 1, n))
    xi = (torch.arange(s, dtype=c.dtype) - (s - 1) / 2) / s          # offsets in coarse-cell units, sum 0
    shape = [1] * (c.dim() + 1)
    shape[dim + 1] = s
    fine = c.unsqueeze(dim + 1) + slope.unsqueeze(dim + 1) * xi.reshape(shape)
    return fine.flatten(dim, dim + 1)


def _refine_axis_constant(c: torch.Tensor, dim: int, s: int) -> torch.Tensor:
    return c.repeat_interleave(s, dim=dim)


def _refine_axis_spectral(c: torch.Tensor, dim: int, s: int, deconvolve: bool = True) -> torch.Tensor:
    return spectral.fourier_interpolate(c.movedim(dim, -1), s, deconvolve=deconvolve).movedim(-1, dim)


def refine(u_coarse, factors: Sequence[int], boundary: Sequence[str], grid: Grid | None = None,
           method: str = "linear"):
    """Map coarse block averages back to the fine grid; ``coarse_grain(refine(c)) == c``.

    Args:
        u_coarse: ``(..., *coarse)`` numpy array or torch tensor (float).
        factors: refinement factor per spatial axis.
        boundary: boundary type per spatial axis (periodic axes wrap the neighbour of the end
            blocks; Dirichlet axes use flat end blocks).
        grid: optional fine :class:`Grid`, checked against ``coarse * factors``.
        method: ``"linear"`` (conservative piecewise-linear, minmod slopes; second order where
            smooth, no new extrema), ``"spectral"`` (periodic axes only; exact for fields of
            modes ``|m| < n_coarse / 2``) or ``"constant"``.
    Returns:
        ``(..., *fine)`` of the input's type.
    """
    x, is_torch = _as_tensor(u_coarse)
    if method not in REFINE_METHODS:
        raise ConfigError(f"refine: method {method!r}; expected one of {REFINE_METHODS}")
    factors = tuple(int(s) for s in factors)
    nd = len(factors)
    if len(boundary) != nd or any(s < 1 for s in factors):
        raise ConfigError(f"refine: {nd} factors {factors} and {len(boundary)} boundary types; expected one "
                          f"positive factor and one boundary type per spatial axis")
    if grid is not None and tuple(grid.shape) != tuple(n * s for n, s in zip(x.shape[-nd:], factors)):
        raise ConfigError(f"refine: coarse shape {tuple(x.shape[-nd:])} times factors {factors} is not the "
                          f"fine grid {grid.shape}")
    for a, bc in enumerate(boundary):
        dim = x.dim() - nd + a
        if method == "linear":
            x = _refine_axis_linear(x, dim, factors[a], bc)
        elif method == "constant":
            x = _refine_axis_constant(x, dim, factors[a])
        else:
            if bc != "periodic":
                raise ConfigError(f"refine: method 'spectral' needs periodic axes; axis {a} is {bc!r}")
            x = _refine_axis_spectral(x, dim, factors[a])
    return x if is_torch else x.numpy()


def _case_params(case: str | CaseSpec, params: dict | None) -> tuple[CaseSpec, dict]:
    if isinstance(case, str):
        if case not in CASES:
            raise ConfigError(f"solve_coarse: unknown case {case!r}; expected one of {sorted(CASES)}")
        case = CASES[case]
    merged = dict(case.params)
    for key, value in (params or {}).items():
        if key not in merged:
            raise ConfigError(f"solve_coarse: parameter {key!r} is not one of case {case.name!r}'s "
                              f"{sorted(merged)}")
        merged[key] = float(value)
    return case, merged


def _face_values(u0: torch.Tensor, factors: Sequence[int], boundary: Sequence[str]):
    """Per Dirichlet axis: the fine boundary values on the two faces, block-averaged along the
    other axes, shaped like the coarse field with that axis of size 1."""
    out = []
    nd = len(boundary)
    for a, bc in enumerate(boundary):
        if bc != "dirichlet":
            out.append(None)
            continue
        dim = 2 + a
        n = u0.shape[dim]
        fac = [1 if b == a else factors[b] for b in range(nd)]
        lo = coarse_grain(u0.narrow(dim, 0, 1), fac)
        hi = coarse_grain(u0.narrow(dim, n - 1, 1), fac)
        out.append((lo, hi))
    return out


def fv_dt_limit(umax: float, cell: Sequence[float], nu: float) -> float:
    """Largest TVD step of the coarse finite-volume Burgers scheme (SSP-RK3, MUSCL-minmod)."""
    rate = sum(umax / h for h in cell) + sum(2 * nu / h ** 2 for h in cell)
    return math.inf if rate == 0 else FV_CFL / rate


def burgers_fv_run(c0: torch.Tensor, dt: float, n_sub: int, n_out: int, dx: Sequence[float], nu: float,
                   boundary: Sequence[str], face_values, *, show_progress: bool = False) -> torch.Tensor:
    """A whole coarse finite-volume Burgers solve: ``n_out - 1`` intervals of ``n_sub`` SSP-RK3 steps.

    The torch implementation of the backend kernel of the same name
    (:mod:`pymsde.backends.protocol`).

    Args:
        c0: ``(B, C, *cells)`` float64 initial cell averages.
        dt: internal SSP-RK3 step; n_sub: steps per output interval; n_out: outputs incl. ``c0``.
        dx, nu, boundary, face_values: as :func:`pymsde.numerics.pde.burgers_fv_rhs`.
    Returns:
        ``(B, n_out, C, *cells)`` with ``[:, 0] = c0`` and ``[:, i]`` after ``i * n_sub`` steps.
    """
    def rhs(v):
        return pde.burgers_fv_rhs(v, dx, nu, boundary, face_values)

    return march(lambda c: pde.ssprk3_step(rhs, c, dt), c0, n_sub, n_out, show_progress=show_progress,
                 desc="coarse")


def advection_dt_limit(speed: float, cell: float) -> float:
    """Largest stable RK4 step of periodic central-difference advection: the eigenvalues
    ``-i c sin(k H) / H`` reach ``|c| / H``, and RK4 holds the imaginary segment up to 2.8284.

    Args:
        speed: ``c`` (length / time); cell: coarse spacing ``H`` (length).
    Returns:
        the step limit (time units); ``inf`` when ``c = 0``.
    """
    return math.inf if speed == 0 else RK4_IMAG * cell / abs(speed)


def advection_cd_rhs(c: torch.Tensor, speed: float, cell: float) -> torch.Tensor:
    """``-c (u_{i+1} - u_{i-1}) / (2 H)`` on a periodic last axis: ``(B, C, n)`` -> ``(B, C, n)``.

    On block averages this is the finite-volume scheme with the central face value
    ``(u_i + u_{i+1}) / 2``: the differences telescope, so ``sum_i u_i`` is conserved exactly.
    """
    return (torch.roll(c, 1, dims=-1) - torch.roll(c, -1, dims=-1)).mul_(speed / (2.0 * cell))


def advection_cd_run(c0: torch.Tensor, dt: float, n_sub: int, n_out: int, speed: float, cell: float, *,
                     show_progress: bool = False) -> torch.Tensor:
    """A whole coarse advection solve: ``n_out - 1`` output intervals of ``n_sub`` RK4 steps of
    :func:`advection_cd_rhs`.

    Torch only: not one of the backend kernels of :mod:`pymsde.backends.protocol` (there is no
    Julia mirror), so :func:`solve_coarse` runs it on torch whatever backend is asked.

    Args:
        c0: ``(B, C, n)`` float64 initial coarse values (block averages).
        dt: internal RK4 step (time units); n_sub: steps per output interval; n_out: outputs
            including ``c0``; speed: ``c`` (length / time); cell: spacing ``H`` (length).
    Returns:
        ``(B, n_out, C, n)`` with ``[:, 0] = c0`` and ``[:, i]`` after ``i * n_sub`` steps.
    """
    def rhs(v):
        return advection_cd_rhs(v, speed, cell)

    return march(lambda c: pde.rk4_step(rhs, c, dt), c0, n_sub, n_out, show_progress=show_progress,
                 desc="coarse")


def _coarse_burgers(c, u0, h_out, dt, cell, par, grid, factors, be, show_progress):
    nu = par["nu"]
    faces = _face_values(u0, factors, grid.boundary)
    umax = float(c.abs().max())
    for fv in faces:
        if fv is not None:
            umax = max(umax, float(fv[0].abs().max()), float(fv[1].abs().max()))
    what = "solve_coarse (finite volume)"
    n_sub, h = _substeps(h_out[0], dt, fv_dt_limit(umax, cell, nu), 0.8, what)   # StabilityError beyond it
    args = (c, h, n_sub, h_out[1], cell, nu, grid.boundary, faces)
    if be.accelerated:
        return be.burgers_fv_run(*args), what, h
    with compute_threads(c.numel()):
        return burgers_fv_run(*args, show_progress=show_progress), what, h


def _coarse_kdv(c, h_out, dt, par, grid, factors, be, show_progress):
    nc = c.shape[-1]
    length = grid.domain[0][1] - grid.domain[0][0]
    k = spectral.wavenumbers(nc, length)
    mask = spectral.dealias_mask(nc, "3/2")
    c_hat = torch.fft.rfft(c) / spectral.block_average_symbol(nc, factors[0]) * mask
    v0 = torch.fft.irfft(c_hat, n=nc)                      # values at the block centres
    what = "solve_coarse (Fourier-Galerkin)"
    limit = kdv_dt_limit(2.0 * float(v0.abs().max()), float(k[mask].max()))
    n_sub, h = _substeps(h_out[0], dt, limit, 0.8, what)
    args = (c_hat, spectral.etd_coefficients(pde.kdv_linear_symbol(k, par["d"]), h), k, mask, nc, "3/2",
            n_sub, h_out[1])
    if be.accelerated:
        return be.spectral_run(*args), what, h
    with compute_threads(c_hat.numel()):
        return spectral_run(*args, show_progress=show_progress, desc="coarse"), what, h


def _coarse_advection(c, h_out, dt, cell, par, show_progress):
    what = "solve_coarse (central-difference advection)"
    n_sub, h = _substeps(h_out[0], dt, advection_dt_limit(par["c"], cell[0]), 0.8, what)
    with compute_threads(c.numel()):
        return advection_cd_run(c, h, n_sub, h_out[1], par["c"], cell[0], show_progress=show_progress), what, h


def _coarse_swe(c, t_out, cell, par, be, show_progress):
    """Coarse shallow water from the block averages ``c (B, 1, *cells)`` of ``u = h - h_out``
    (the time loop: the kernel ``swe_run`` of the backend ``be``)."""
    h_out = par.get("h_out", swe.DAM_DEFAULTS["h_out"])
    q0 = torch.zeros((c.shape[0], 3, *c.shape[2:]), dtype=torch.float64)
    q0[:, 0] = c[:, 0] + h_out
    t = np.asarray(t_out, dtype=np.float64)
    out, info = swe.integrate_swe(q0, t - t[0], cell, g=par["g"], boundary="outflow", show_progress=show_progress,
                                  desc="coarse", backend=be)
    h = float(t[-1] - t[0]) / max(1, int(np.mean(info["steps"])))          # the mean internal step
    return torch.as_tensor(out - h_out), "solve_coarse (finite-volume shallow water)", h


def _coarse_cylinder(c, t_out, spec, par, be, show_progress):
    """Coarse cylinder flow from the block averages ``c (B, 2, nx, ny)`` of ``(u, v)`` (the time
    loop of each trajectory: the kernel ``cylinder_run`` of the backend ``be``)."""
    (x_lo, x_hi), (y_lo, y_hi) = spec.domain
    per_unit = c.shape[2] / (x_hi - x_lo)
    if per_unit != int(per_unit) or c.shape[3] != per_unit * (y_hi - y_lo):
        raise ConfigError(f"solve_coarse: coarse grid {tuple(c.shape[2:])} for case {spec.name!r}; expected square "
                          f"cells, (4 n, n)")
    t = np.asarray(t_out, dtype=np.float64)
    setup = cylinder.CylinderSetup(u_in=par["u_in"], nu=par["nu"], length=x_hi - x_lo, out_length=x_hi - x_lo,
                                   height=y_hi - y_lo, cells_per_unit=int(per_unit), refine=1,
                                   t_end=float(t[-1] - t[0]), dt_out=float(t[-1] - t[0]) / (len(t) - 1),
                                   perturbation=0.0)
    runs = [cylinder.run_cylinder(setup, show_progress=show_progress, initial=ci.numpy(), backend=be) for ci in c]
    h = setup.dt_out * (len(t) - 1) / max(1, runs[0]["steps"])
    return torch.as_tensor(np.stack([r["u"] for r in runs])), "solve_coarse (incompressible, MAC projection)", h


def _torch_only(backend) -> None:
    """Check a backend name without starting Julia (for the loops without a Julia mirror)."""
    if not isinstance(backend, Backend) and backend not in BACKEND_NAMES:
        raise ConfigError(f"backend {backend!r}; expected one of {BACKEND_NAMES}")


def solve_coarse(case: str | CaseSpec, u0_fine, t_out, factors: Sequence[int] | None = None,
                 params: dict | None = None, grid: Grid | None = None, refine_method: str | None = None,
                 dt: float | None = None, return_coarse: bool = False, show_progress: bool = False,
                 backend: str = "torch"):
    """Under-resolved DNS: the case's PDE solved on the coarse mesh, returned on the fine grid.

    Args:
        case: case name or :class:`CaseSpec` (PDE, domain, boundary types, default coarse grid);
            swe2d and cylinder2d step with the CFL step (no ``dt``).
        u0_fine: ``(n, C, *grid)`` fine initial fields (numpy or torch; float64 used inside).
        t_out: ``(n_t,)`` uniform output times; ``t_out[0]`` is the time of ``u0_fine``.
        factors: coarsening factor per axis (default: fine shape / the case's coarse grid
            20, 20, 8 x 8, 20, 8 x 8, 32 x 8 -- e.g. 50 for 1000 -> 20, 16 for 128 -> 8).
        params: PDE coefficients overriding the case's (``{"nu": ...}``, ``{"d": ...}`` or
            ``{"c": ...}``).
        grid: fine grid (default: the case's domain and boundary with ``u0_fine``'s shape).
        refine_method: map back to the fine grid (default ``"linear"`` for Burgers and advection;
            KdV always interpolates its band-limited solution spectrally).
        dt: internal step (default: automatic, 0.8 x the limit); a larger one than the limit
            raises StabilityError.
        return_coarse: also return the coarse solution ``(n, n_t, C, *coarse)``: block averages
            (Burgers, advection) or the values at the block centres (KdV).
        backend: ``"torch"`` (default), ``"julia"`` or ``"auto"``
            (``kernels.backend.resolve_backend``). A non-torch backend runs the whole coarse time
            loop in one kernel call (``burgers_fv_run`` / ``spectral_run`` / ``swe_run`` /
            ``cylinder_run``, one call per trajectory for the cylinder; no progress bar);
            the set-up and the map back to the fine grid stay in torch. The advection loop
            (wave1d) has no Julia mirror and runs on torch whatever backend is asked (the name
            is checked; Julia is not started).
    Returns:
        ``u_fine (n, n_t, C, *grid)`` float64 numpy (and the coarse solution if asked).
        ``coarse_grain(u_fine[:, 0]) == coarse_grain(u0_fine)`` (KdV: except the coarse Nyquist mode).
    """
    spec, par = _case_params(case, params)
    u0, _ = _as_tensor(u0_fine)
    u0 = u0.to(torch.float64)
    if u0.dim() != 2 + len(spec.boundary):
        raise ConfigError(f"solve_coarse: u0_fine of shape {tuple(u0.shape)}; expected (n, C, *grid) with "
                          f"{len(spec.boundary)} spatial axes for case {spec.name!r}")
    fine_shape = tuple(u0.shape[2:])
    grid = grid or spec.grid(fine_shape)
    if tuple(grid.shape) != fine_shape:
        raise ConfigError(f"solve_coarse: grid {grid.shape} does not match u0_fine's grid {fine_shape}")
    if factors is None:
        factors = grid.coarsening_factors(spec.coarse)     # ConfigError when it does not divide
    factors = _check_factors(u0.shape, factors, "solve_coarse")
    h_out = (_check_times(t_out, "solve_coarse"), len(t_out))     # (output step, outputs)
    if spec.pde == "advection":
        _torch_only(backend)
    else:
        be = resolve_backend(backend)   # before any work: an unavailable "julia" fails at once
    if dt is not None and spec.pde in ("swe", "incompressible"):
        raise ConfigError(f"solve_coarse: dt = {dt} for case {spec.name!r}; its step is chosen by the CFL "
                          f"condition (leave dt out)")
    c = coarse_grain(u0, factors)
    cell = tuple(h * s for h, s in zip(grid.spacing, factors))
    if spec.pde == "burgers":
        coarse, what, h = _coarse_burgers(c, u0, h_out, dt, cell, par, grid, factors, be, show_progress)
    elif spec.pde == "kdv":
        coarse, what, h = _coarse_kdv(c, h_out, dt, par, grid, factors, be, show_progress)
    elif spec.pde == "advection":
        coarse, what, h = _coarse_advection(c, h_out, dt, cell, par, show_progress)
    elif spec.pde == "swe":
        coarse, what, h = _coarse_swe(c, t_out, cell, par, be, show_progress)
    elif spec.pde == "incompressible":
        coarse, what, h = _coarse_cylinder(c, t_out, spec, par, be, show_progress)
    else:  # pragma: no cover - CASES only holds these PDEs
        raise ConfigError(f"solve_coarse: no coarse solver for PDE {spec.pde!r}")
    _check_finite(coarse[:, -1], what, h)

    # map back one trajectory at a time: the temporaries of a full Burgers 2-D refine would
    # be several times the 2.6 GB result
    fine = np.empty((coarse.shape[0], h_out[1], *u0.shape[1:]), dtype=np.float64)
    for i in range(coarse.shape[0]):
        if spec.pde == "kdv":
            fine[i] = spectral.fourier_interpolate(coarse[i], factors[0], deconvolve=False).numpy()
        else:
            fine[i] = refine(coarse[i], factors, grid.boundary, method=refine_method or "linear").numpy()
    return (fine, coarse.numpy()) if return_coarse else fine


__all__ = ["coarse_grain", "refine", "solve_coarse", "burgers_fv_run", "fv_dt_limit", "REFINE_METHODS",
           "advection_cd_run", "advection_cd_rhs", "advection_dt_limit"]
