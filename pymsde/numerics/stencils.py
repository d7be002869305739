"""Finite-difference stencils on a grid, for tensors laid out ``(B, C, *grid)``.

Central differences of even accuracy order ``p`` (2, 4, 6) use ``p + 1`` points
(radius ``r = p / 2``) and are applied along one spatial axis at a time:

- periodic axis: the stencil wraps around (``numerics.padding.pad``);
- Dirichlet axis: ``r`` ghost points on each side are filled by polynomial extrapolation
  of degree ``p`` through the ``p + 1`` points nearest the boundary (:func:`extrapolation_weights`).
  The central stencil applied to the padded array then equals, at the points within ``r``
  of a boundary, the one-sided stencil of the same ``p + 1`` points: the first derivative
  keeps order ``p`` there, the second derivative drops to ``p - 1`` on those ``r`` points
  (the global error of a diffusion problem keeps order ``p``; measured in
  ``tests/test_systems_burgers.py``). Values at the boundary nodes themselves are computed the
  same way; simulators that hold boundary values fixed ignore them.

The weights are exact rationals (``fd_weights``, moment equations solved in fractions) in float64.
Everything is float64-safe and batched; there are no Python loops over grid points.
The Julia package mirrors :func:`derivative` with the same ghost-point rule.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Sequence

import torch

from pymsde.numerics.padding import pad_axis
from pymsde.util.errors import ConfigError


ACCURACY_ORDERS = (2, 4, 6)


@lru_cache(maxsize=None)
def fd_weights(deriv: int, offsets: tuple[int, ...]) -> tuple[float, ...]:
    """Weights ``w`` with ``f^(deriv)(0) ~ sum_i w_i f(offsets_i)`` on a unit-spaced grid.

    Exact in rational arithmetic, returned as floats; exact for polynomials
    of degree ``len(offsets) - 1``. Divide by ``dx**deriv`` for spacing ``dx``.
    """
    n = len(offsets)
    if deriv >= n:
        raise ConfigError(f"fd_weights: derivative {deriv} needs more than {n} points")
    # Moment conditions sum_i w_i x_i^k = k! [k == deriv], k = 0..n-1, solved exactly by
    # Gauss-Jordan elimination in rationals (n <= 7, so cost is irrelevant).
    fact = 1
    for k in range(1, deriv + 1):
        fact *= k
    a = [[Fraction(o) ** k for o in offsets] + [Fraction(fact if k == deriv else 0)] for k in range(n)]
    for col in range(n):
        piv = next(i for i in range(col, n) if a[i][col] != 0)
        a[col], a[piv] = a[piv], a[col]
        inv = 1 / a[col][col]
        a[col] = [v * inv for v in a[col]]
        for i in range(n):
            if i != col and a[i][col] != 0:
                f = a[i][col]
                a[i] = [vi - f * vc for vi, vc in zip(a[i], a[col])]
    return tuple(float(a[i][n]) for i in range(n))


@lru_cache(maxsize=None)
def central_weights(deriv: int, order: int) -> tuple[float, ...]:
    """Central stencil weights for offsets ``-r .. r``, ``r = order // 2`` (unit spacing)."""
    if order not in ACCURACY_ORDERS:
        raise ConfigError(f"accuracy order {order}; expected one of {ACCURACY_ORDERS}")
    r = order // 2
    if deriv > 2 * r:
        raise ConfigError(f"derivative {deriv} needs a wider stencil than order {order}")
    return fd_weights(deriv, tuple(range(-r, r + 1)))


@lru_cache(maxsize=None)
def extrapolation_weights(order: int) -> tuple[tuple[float, ...], ...]:
    """Ghost-point weights for a Dirichlet axis: row ``g`` (``g = 1 .. r``) gives the value at
    the point ``g`` outside the boundary as a combination of the ``order + 1`` points nearest
    the boundary, ordered from the boundary inwards (degree-``order`` extrapolation)."""
    r = order // 2
    pts = tuple(range(order + 1))
    return tuple(fd_weights(0, tuple(p + g for p in pts)) for g in range(1, r + 1))


@lru_cache(maxsize=None)
def _ghost_matrices(order: int) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """``(W_lo, W_hi)``, each ``(order + 1, r)``: ghost values as ``near @ W``.

    ``near`` holds the ``order + 1`` points nearest the boundary in grid order (low side:
    points ``0 .. p``; high side: points ``n-1-p .. n-1``); the ``r`` columns are the ghosts in
    grid order (low side: ``-r .. -1``; high side: ``n .. n-1+r``).
    """
    w = extrapolation_weights(order)
    r, m = order // 2, order + 1
    lo = tuple(tuple(w[g - 1][i] for g in range(r, 0, -1)) for i in range(m))
    hi = tuple(tuple(w[g - 1][m - 1 - i] for g in range(1, r + 1)) for i in range(m))
    return lo, hi


@lru_cache(maxsize=None)
def _ghost_tensors(order: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # built once per (order, dtype): no host-to-tensor copies inside time loops
    return tuple(torch.tensor(w, dtype=dtype) for w in _ghost_matrices(order))


def ghost_extend(u: torch.Tensor, dim: int, order: int, boundary: str) -> torch.Tensor:
    """``u`` extended by ``r = order // 2`` ghost points at both ends of tensor dim ``dim``.

    Periodic: wrap-around (:func:`pymsde.numerics.padding.pad_axis`). Dirichlet: ghost
    points by degree-``order`` polynomial extrapolation through the ``order + 1`` points
    nearest each boundary (one small matmul per side) -- not a padding but the closure that
    keeps the central stencil's order at the boundary.
    """
    r = order // 2
    n = u.shape[dim]
    if boundary == "periodic":
        if r > n:
            raise ConfigError(f"periodic padding of {r} points on an axis of {n} points")
        return pad_axis(u, dim, r, r, True)
    if boundary != "dirichlet":
        raise ConfigError(f"unknown boundary type {boundary!r}; expected 'periodic' or 'dirichlet'")
    m = order + 1
    if n < m:
        raise ConfigError(f"Dirichlet axis of {n} points; the order-{order} closure needs at least {m}")
    w_lo, w_hi = _ghost_tensors(order, u.dtype)
    lo = (u.narrow(dim, 0, m).movedim(dim, -1) @ w_lo).movedim(-1, dim)
    hi = (u.narrow(dim, n - m, m).movedim(dim, -1) @ w_hi).movedim(-1, dim)
    return torch.cat([lo, u, hi], dim=dim)


def apply_central(up: torch.Tensor, dim: int, n: int, weights: Sequence[float]) -> torch.Tensor:
    """Central stencil ``sum_j w_j up[i + j]`` on a padded tensor (``n`` outputs along ``dim``).

    Symmetric / antisymmetric weight pairs are combined first (``w_j (x_{+j} +- x_{-j})``),
    which halves the multiplications of the usual derivative stencils.
    """
    r = (len(weights) - 1) // 2
    out = None
    if weights[r] != 0.0:
        out = up.narrow(dim, r, n) * weights[r]
    for j in range(1, r + 1):
        wp, wm = weights[r + j], weights[r - j]
        if wp == 0.0 and wm == 0.0:
            continue
        xp, xm = up.narrow(dim, r + j, n), up.narrow(dim, r - j, n)
        if wp == wm:
            term = (xp + xm) * wp
        elif wp == -wm:
            term = (xp - xm) * wp
        else:
            term = xp * wp + xm * wm
        out = term if out is None else out + term
    if out is None:                    # every weight zero (e.g. a zero viscosity): the zero field
        out = torch.zeros_like(up.narrow(dim, r, n))
    return out


def derivative(u: torch.Tensor, axis: int, deriv: int, dx: float, boundary: str,
               order: int = 4) -> torch.Tensor:
    """Finite-difference derivative of order ``deriv`` (1 or 2) along one spatial axis.

    Args:
        u: ``(B, C, *grid)`` tensor (any float dtype; float64 for simulations).
        axis: spatial axis index ``0 .. ndim-1`` (tensor dim ``2 + axis``).
        deriv: 1 (``d/dx``) or 2 (``d^2/dx^2``).
        dx: grid spacing along the axis, in the domain's length unit.
        boundary: ``"periodic"`` or ``"dirichlet"`` (see the module docstring).
        order: accuracy order 2, 4 or 6 of the central stencil.

    Returns:
        ``(B, C, *grid)``, units of ``u`` per length^deriv.
    """
    dim = 2 + axis
    w = [c / dx ** deriv for c in central_weights(deriv, order)]
    return apply_central(ghost_extend(u, dim, order, boundary), dim, u.shape[dim], w)


def gradient(u: torch.Tensor, dx: Sequence[float], boundary: Sequence[str], order: int = 4) -> list[torch.Tensor]:
    """First derivative along every spatial axis: list of ``(B, C, *grid)`` tensors."""
    return [derivative(u, a, 1, dx[a], boundary[a], order) for a in range(len(boundary))]


def laplacian(u: torch.Tensor, dx: Sequence[float], boundary: Sequence[str], order: int = 4) -> torch.Tensor:
    """Sum of second derivatives over the spatial axes, ``(B, C, *grid)``."""
    out = derivative(u, 0, 2, dx[0], boundary[0], order)
    for a in range(1, len(boundary)):
        out = out + derivative(u, a, 2, dx[a], boundary[a], order)
    return out


@lru_cache(maxsize=None)
def symbol_bounds(order: int) -> tuple[float, float]:
    """Largest ``|symbol|`` of the central first and second derivative stencils on a unit grid:

    ``max_theta |sum_j w1_j sin(j theta)|`` and ``max_theta |sum_j w2_j cos(j theta)|`` — the
    spectral radii (per ``1/dx`` and ``1/dx^2``) that set the explicit time-step limits of a
    periodic method of lines. Dirichlet ghost-point closures are covered by the safety factor
    of the simulators (checked in the tests).
    """
    import math

    w1, w2 = central_weights(1, order), central_weights(2, order)
    r = order // 2
    best1 = best2 = 0.0
    for k in range(2001):
        th = math.pi * k / 2000
        s1 = sum(w1[j + r] * math.sin(j * th) for j in range(-r, r + 1))
        s2 = sum(w2[j + r] * math.cos(j * th) for j in range(-r, r + 1))
        best1, best2 = max(best1, abs(s1)), max(best2, abs(s2))
    return best1, best2


__all__ = ["ACCURACY_ORDERS", "fd_weights", "central_weights", "extrapolation_weights", "ghost_extend",
           "apply_central", "derivative",
           "gradient", "laplacian", "symbol_bounds"]
