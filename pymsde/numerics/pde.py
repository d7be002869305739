"""Right-hand sides and single time steps of the benchmark PDEs (pure torch, float64).

Every function here is a plain function of tensors and numbers, with no state and no
Python loop over grid points, so that a backend switch can route it and the Julia package
can mirror it one to one. Fields are laid out ``(B, C, *grid)``; spectral states are rfft
coefficients ``(B, C, n // 2 + 1)`` of a 1-D periodic field.

Fine-grid schemes
-----------------
- Burgers (any dimension): ``u_t + u sum_a u_{x_a} = nu lap u``, method of lines with central
  differences of order 4 (``kernels.stencils``) and classical RK4 (:func:`burgers_rk4_step`).
  The advection term is written in the skew-symmetric split form
  ``u u_x = (1/3) (u^2)_x + (1/3) u u_x`` (both parts equal for smooth u): with an
  antisymmetric periodic difference operator the semi-discrete scheme then conserves
  ``sum u`` exactly and its advection neither produces nor destroys ``sum u^2`` (no
  nonlinear instability of the plain central form). On Dirichlet axes the two boundary
  nodes are held fixed (their time derivative is zero).
- KdV and 1-D periodic Burgers: ``u_t + (u^2/2)_x = L u`` with ``L = -d d^3/dx^3`` or
  ``nu d^2/dx^2``, Fourier pseudo-spectral in space, ETDRK4 in time
  (:func:`advection_etdrk4_step`, Cox-Matthews with Kassam-Trefethen coefficients): the stiff
  linear term (``i d k^3``, ``-nu k^2``) is integrated exactly, so the step is limited only by
  the advection ``dt max|u| k_max``. The nonlinear term ``-(1/2) i k FFT(u^2)`` is dealiased
  (2/3 rule or 3/2 padding). The mean (mode 0) is conserved exactly.

Coarse-grid scheme (under-resolved DNS baseline)
------------------------------------------------
- Burgers finite volume (:func:`burgers_fv_rhs`): cell averages, MUSCL reconstruction with
  the minmod limiter, Rusanov (local Lax-Friedrichs) flux for ``u^2 / 2`` on every axis,
  central viscous flux, SSP-RK3 (:func:`ssprk3_step`). TVD under
  ``dt (sum_a max|u| / H_a + sum_a 2 nu / H_a^2) <= 1/2``:
  no new extrema. At 20 cells (grid Reynolds number 25-40) the fine-grid schemes stay finite
  but oscillate: from the block-averaged Burgers 1-D initial conditions (3 trajectories,
  range [0, 0.262]) the central scheme reached max 0.295 and min -0.005, the pseudo-spectral
  one min -0.026.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from pymsde.numerics.stencils import apply_central, central_weights, ghost_extend
from pymsde.numerics.spectral import padded_square

# ----------------------------------------------------------------------------- Burgers (FD)


def burgers_rhs(u: torch.Tensor, dx: Sequence[float], nu: float, boundary: Sequence[str],
                order: int = 4) -> torch.Tensor:
    """``du/dt = -u sum_a du/dx_a + nu lap u`` by central differences (skew-symmetric form).

    Args:
        u: ``(B, C, *grid)`` float64 field.
        dx: grid spacing per spatial axis (length units).
        nu: viscosity (length^2 / time).
        boundary: ``"periodic"`` or ``"dirichlet"`` per axis; Dirichlet boundary nodes get a
            zero time derivative (values held fixed).
        order: accuracy order of the central differences (2, 4 or 6).
    Returns:
        ``(B, C, *grid)``, units of u per time.
    """
    n_c = u.shape[1]
    w = torch.cat([u, u * u], dim=1)          # one padding serves d/dx of u and of u^2
    out = None
    for a, bc in enumerate(boundary):
        dim = 2 + a
        n = u.shape[dim]
        wp = ghost_extend(w, dim, order, bc)
        d1 = apply_central(wp, dim, n, [c / dx[a] for c in central_weights(1, order)])
        d2 = apply_central(wp[:, :n_c], dim, n, [c * nu / dx[a] ** 2 for c in central_weights(2, order)])
        # skew-symmetric advection: (1/3) (u^2)_x + (1/3) u u_x
        term = d2 - (d1[:, n_c:] + u * d1[:, :n_c]) * (1.0 / 3.0)
        out = term if out is None else out + term
    for a, bc in enumerate(boundary):
        if bc == "dirichlet":
            dim = 2 + a
            out.narrow(dim, 0, 1).zero_()
            out.narrow(dim, u.shape[dim] - 1, 1).zero_()
    return out


def rk4_step(rhs: Callable[[torch.Tensor], torch.Tensor], u: torch.Tensor, dt: float) -> torch.Tensor:
    """One classical Runge-Kutta step (order 4) of ``du/dt = rhs(u)``. Stability: the
    eigenvalues ``lambda dt`` of the linearised rhs must lie in the RK4 region, which contains
    the imaginary segment ``|Im| <= 2.8284`` and the real segment ``[-2.78, 0]``."""
    k1 = rhs(u)
    k2 = rhs(torch.add(u, k1, alpha=dt / 2))
    k3 = rhs(torch.add(u, k2, alpha=dt / 2))
    k4 = rhs(torch.add(u, k3, alpha=dt))
    acc = k1.add_(k4).add_(k2.add_(k3), alpha=2.0)
    return torch.add(u, acc, alpha=dt / 6)


def burgers_rk4_step(u: torch.Tensor, dt: float, dx: Sequence[float], nu: float, boundary: Sequence[str],
                     order: int = 4) -> torch.Tensor:
    """One RK4 step of :func:`burgers_rhs` (fine-grid Burgers). Shapes as in ``burgers_rhs``."""
    return rk4_step(lambda v: burgers_rhs(v, dx, nu, boundary, order), u, dt)


# ----------------------------------------------------------------------------- KdV (spectral)


def kdv_linear_symbol(k: torch.Tensor, d: float) -> torch.Tensor:
    """Fourier symbol of ``-d d^3/dx^3``: ``i d k^3`` (purely imaginary, complex128)."""
    return 1j * d * k.to(torch.complex128) ** 3


def burgers_linear_symbol(k: torch.Tensor, nu: float) -> torch.Tensor:
    """Fourier symbol of ``nu d^2/dx^2``: ``-nu k^2`` (complex128)."""
    return (-nu * k.to(torch.float64) ** 2).to(torch.complex128)


def conservative_advection_hat(v_hat: torch.Tensor, k: torch.Tensor, mask: torch.Tensor, n: int,
                               dealias: str = "2/3") -> torch.Tensor:
    """rfft of ``-(u^2 / 2)_x`` for ``u = irfft(v_hat, n)``, dealiased.

    Args:
        v_hat: ``(..., n // 2 + 1)`` complex128 rfft coefficients.
        k: ``(n // 2 + 1,)`` angular wavenumbers.
        mask: ``(n // 2 + 1,)`` bool, modes kept (:func:`kernels.spectral.dealias_mask`).
        n: number of grid points.
        dealias: ``"2/3"`` (square on the grid, drop modes outside ``mask``) or ``"3/2"``
            (square on a 3/2-padded grid, exact for every kept mode).
    Returns:
        ``(..., n // 2 + 1)`` complex128, zero outside ``mask``.
    """
    return _advection_hat(v_hat, advection_multiplier(k, mask), n, dealias)


def advection_multiplier(k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``-(1/2) i k`` on the kept modes, 0 elsewhere: ``rfft(-(u^2/2)_x) = multiplier * rfft(u^2)``."""
    return torch.where(mask, -0.5j * k.to(torch.complex128), 0)


def _advection_hat(v_hat: torch.Tensor, g: torch.Tensor, n: int, dealias: str) -> torch.Tensor:
    if dealias == "3/2":
        sq = padded_square(v_hat, n)
    else:
        u = torch.fft.irfft(v_hat, n=n)
        sq = torch.fft.rfft(u * u)
    return sq * g


def etdrk4_step(v_hat: torch.Tensor, coeffs: Sequence[torch.Tensor],
                nonlinear: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """One ETDRK4 step (Cox & Matthews 2002) of ``v' = L v + N(v)`` with diagonal ``L``.

    Args:
        v_hat: state ``(..., M)`` (complex spectral coefficients).
        coeffs: ``(E, E2, Q, f1, f2, f3)`` from ``kernels.spectral.etd_coefficients(L, dt)``.
        nonlinear: ``N``, maps ``(..., M) -> (..., M)``.
    Fourth order in dt; ``L`` is integrated exactly (no stability limit from it).
    """
    e, e2, q, f1, f2, f3 = coeffs
    e2v = e2 * v_hat
    nv = nonlinear(v_hat)
    a = e2v + q * nv
    na = nonlinear(a)
    b = e2v + q * na
    nb = nonlinear(b)
    c = e2 * a + q * (2 * nb - nv)
    nc = nonlinear(c)
    return e * v_hat + f1 * nv + 2 * f2 * (na + nb) + f3 * nc


def advection_etdrk4_step(v_hat: torch.Tensor, coeffs: Sequence[torch.Tensor], k: torch.Tensor, mask: torch.Tensor,
                    n: int, dealias: str = "2/3") -> torch.Tensor:
    """One ETDRK4 step of pseudo-spectral ``u_t + (u^2/2)_x = L u`` on one periodic axis: KdV
    (``L = i d k^3``) or 1-D Burgers (``L = -nu k^2``); only the coefficients differ.

    ``v_hat (B, C, n // 2 + 1)`` complex128; ``coeffs`` from
    ``etd_coefficients(kdv_linear_symbol(k, d), dt)`` (or ``burgers_linear_symbol(k, nu)``); ``k``, ``mask``, ``n``, ``dealias`` as in
    :func:`conservative_advection_hat`.
    """
    g = advection_multiplier(k, mask)
    return etdrk4_step(v_hat, coeffs, lambda w: _advection_hat(w, g, n, dealias))


# ----------------------------------------------------------------------------- Burgers (FV, coarse)


def minmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The minmod limiter: the argument of smaller magnitude when both have one sign, else 0."""
    return 0.5 * (torch.sign(a) + torch.sign(b)) * torch.minimum(a.abs(), b.abs())


def burgers_fv_rhs(c: torch.Tensor, dx: Sequence[float], nu: float, boundary: Sequence[str],
                   face_values: Sequence[tuple[torch.Tensor, torch.Tensor] | None]) -> torch.Tensor:
    """Finite-volume ``dc/dt`` of ``u_t + sum_a (u^2 / 2)_{x_a} = nu lap u`` on cell averages.

    Args:
        c: ``(B, C, *cells)`` cell averages (float64).
        dx: cell width per axis.
        nu: viscosity.
        boundary: per axis; ``"periodic"`` wraps, ``"dirichlet"`` uses ghost cells
            ``2 u_b - c`` (odd reflection through the prescribed face value ``u_b``).
        face_values: per axis, ``None`` (periodic) or ``(lo, hi)``: the fixed face values,
            each shaped like ``c`` with that axis of size 1.
    Scheme: MUSCL-minmod face states, Rusanov flux ``(F(uL) + F(uR)) / 2 - max(|uL|,|uR|)
    (uR - uL) / 2``, viscous flux ``-nu (c_{i+1} - c_i) / dx``. Second order where smooth, TVD.
    Returns ``(B, C, *cells)``.
    """
    out = None
    for a, bc in enumerate(boundary):
        dim = 2 + a
        n = c.shape[dim]
        if bc == "periodic":
            cp = torch.cat([c.narrow(dim, n - 2, 2), c, c.narrow(dim, 0, 2)], dim=dim)
        else:
            lo, hi = face_values[a]
            g_lo = 2 * lo - c.narrow(dim, 0, 2).flip(dim)          # ghosts -2, -1
            g_hi = 2 * hi - c.narrow(dim, n - 2, 2).flip(dim)      # ghosts n, n+1
            cp = torch.cat([g_lo, c, g_hi], dim=dim)               # (.., n + 4, ..)
        d = cp.narrow(dim, 1, n + 3) - cp.narrow(dim, 0, n + 3)    # differences, n + 3
        slope = minmod(d.narrow(dim, 0, n + 2), d.narrow(dim, 1, n + 2))  # cells 1 .. n+2 of cp
        cc = cp.narrow(dim, 1, n + 2)
        ul = (cc + 0.5 * slope).narrow(dim, 0, n + 1)              # left state at faces 0..n
        ur = (cc - 0.5 * slope).narrow(dim, 1, n + 1)              # right state at faces 0..n
        flux = 0.25 * (ul * ul + ur * ur) - 0.5 * torch.maximum(ul.abs(), ur.abs()) * (ur - ul)
        flux = flux - (nu / dx[a]) * d.narrow(dim, 1, n + 1)
        term = (flux.narrow(dim, 0, n) - flux.narrow(dim, 1, n)) * (1.0 / dx[a])
        out = term if out is None else out + term
    return out


def ssprk3_step(rhs: Callable[[torch.Tensor], torch.Tensor], u: torch.Tensor, dt: float) -> torch.Tensor:
    """One strong-stability-preserving RK3 step (Shu-Osher): keeps the TVD property of the
    forward-Euler step under the same time-step limit."""
    u1 = torch.add(u, rhs(u), alpha=dt)
    u2 = 0.75 * u + 0.25 * torch.add(u1, rhs(u1), alpha=dt)
    return u * (1.0 / 3.0) + (2.0 / 3.0) * torch.add(u2, rhs(u2), alpha=dt)


__all__ = ["burgers_rhs", "rk4_step", "burgers_rk4_step", "kdv_linear_symbol", "burgers_linear_symbol",
           "conservative_advection_hat", "advection_multiplier", "etdrk4_step", "advection_etdrk4_step", "burgers_fv_rhs", "ssprk3_step", "minmod"]
