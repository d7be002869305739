"""Boundary padding and stencil gathers on a grid, for tensors laid out ``(B, C, *grid)``.

These are the two operations every stencil in pymsde is built from (the simulators'
finite differences, the learned drift's neighbourhoods, the encoder's coarse-graining):

- :func:`pad` extends each spatial axis by ``width`` points: a periodic axis wraps around,
  a Dirichlet axis repeats its edge value (``"edge"``) or uses zeros (``"zeros"``).
- :func:`gather_stencil` collects, for each grid point, the values of the ``(2r+1)^d``
  neighbourhood around it, in row-major offset order (first axis slowest, offsets from
  ``-r`` to ``+r``), as the last dimension.

The Julia package mirrors both with the same conventions (``julia/src/stencils.jl``).
"""
from __future__ import annotations

import itertools
from typing import Sequence

import torch

DIRICHLET_PAD_MODES = ("edge", "zeros")


def pad(x: torch.Tensor, width: int | Sequence[int], boundary: Sequence[str],
        dirichlet_mode: str = "edge") -> torch.Tensor:
    """Pad the trailing ``len(boundary)`` axes of ``x`` by ``width`` points on each side.

    Args:
        x: tensor ``(..., *grid)``; the last ``len(boundary)`` axes are spatial.
        width: points added on each side, one number or one per axis.
        boundary: ``"periodic"`` or ``"dirichlet"`` per spatial axis.
        dirichlet_mode: ``"edge"`` (repeat the boundary value) or ``"zeros"``.

    Returns:
        tensor ``(..., *(n + 2 * width))``.
    """
    nd = len(boundary)
    widths = [int(width)] * nd if isinstance(width, int) else [int(w) for w in width]
    if dirichlet_mode not in DIRICHLET_PAD_MODES:
        raise ValueError(f"dirichlet_mode {dirichlet_mode!r}; expected one of {DIRICHLET_PAD_MODES}")
    for i, (w, bc) in enumerate(zip(widths, boundary)):
        if w == 0:
            continue
        dim = x.dim() - nd + i
        n = x.shape[dim]
        if bc == "periodic":
            if w > n:
                raise ValueError(f"periodic padding of {w} points on an axis of {n} points")
            lo = x.narrow(dim, n - w, w)
            hi = x.narrow(dim, 0, w)
        elif bc == "dirichlet":
            if dirichlet_mode == "edge":
                lo = x.narrow(dim, 0, 1).expand(*x.shape[:dim], w, *x.shape[dim + 1:])
                hi = x.narrow(dim, n - 1, 1).expand(*x.shape[:dim], w, *x.shape[dim + 1:])
            else:
                shape = (*x.shape[:dim], w, *x.shape[dim + 1:])
                lo = hi = x.new_zeros(shape)
        else:
            raise ValueError(f"unknown boundary type {bc!r}; expected 'periodic' or 'dirichlet'")
        x = torch.cat([lo, x, hi], dim=dim)
    return x


def stencil_offsets(radius: int, ndim: int) -> list[tuple[int, ...]]:
    """The neighbourhood offsets in the order :func:`gather_stencil` uses."""
    return list(itertools.product(range(-radius, radius + 1), repeat=ndim))


def gather_stencil(x: torch.Tensor, radius: int, boundary: Sequence[str],
                   dirichlet_mode: str = "edge") -> torch.Tensor:
    """Neighbourhood values around every grid point.

    Args:
        x: tensor ``(B, C, *grid)``.
        radius: stencil radius ``r``; the neighbourhood has ``(2r+1)^d`` points.
        boundary: boundary type per spatial axis (``d = len(boundary)``).

    Returns:
        tensor ``(B, *grid, C * (2r+1)^d)``, channel slowest, then offsets in
        :func:`stencil_offsets` order.
    """
    nd = len(boundary)
    grid = x.shape[-nd:]
    xp = pad(x, radius, boundary, dirichlet_mode)
    cols = []
    for off in stencil_offsets(radius, nd):
        sl = [slice(None)] * (x.dim() - nd)
        sl += [slice(radius + o, radius + o + n) for o, n in zip(off, grid)]
        cols.append(xp[tuple(sl)])
    stacked = torch.stack(cols, dim=2)                     # (B, C, K, *grid)
    stacked = stacked.flatten(1, 2)                        # (B, C*K, *grid)
    return stacked.movedim(1, -1)                          # (B, *grid, C*K)
