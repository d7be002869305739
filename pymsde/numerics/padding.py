"""Boundary padding and stencil gathers on a grid, for tensors laid out ``(B, C, *grid)``.

These are the operations every stencil in pymsde is built from (the simulators' finite
differences, the learned drift's neighbourhoods, the encoder's coarse-graining):

- :func:`pad_axis` extends one axis by ``lo`` points before and ``hi`` after it, by index
  gather: periodic wraps (``j mod n``, so widths may exceed the axis: the decoder pads the
  coarse grid by several kernel half-widths), Dirichlet repeats the edge value. The index
  vectors are cached (bounded, per size, widths, rule and device).
- :func:`pad` extends each spatial axis by ``width`` points: a periodic axis wraps around
  (at most once: the Julia port refuses the same inputs), a Dirichlet axis repeats its edge
  value (``"edge"``) or uses zeros (``"zeros"``).
- :func:`gather_stencil` collects, for each grid point, the values of the ``(2r+1)^d``
  neighbourhood around it, in row-major offset order (first axis slowest, offsets from
  ``-r`` to ``+r``), as the last dimension.

The Julia package mirrors both with the same conventions (``julia/src/stencils.jl``).
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Sequence

import torch

from pymsde.util.errors import ConfigError

DIRICHLET_PAD_MODES = ("edge", "zeros")


@lru_cache(maxsize=256)
def _pad_index(n: int, lo: int, hi: int, periodic: bool, device: torch.device) -> torch.Tensor:
    idx = torch.arange(-lo, n + hi, device=device)
    return idx.remainder(n) if periodic else idx.clamp(0, n - 1)


def pad_axis(x: torch.Tensor, dim: int, lo: int, hi: int, periodic: bool) -> torch.Tensor:
    """Pad axis ``dim`` of ``x`` by ``lo`` / ``hi`` points: wrap (periodic) or repeat the edge."""
    if lo == 0 and hi == 0:
        return x
    return x.index_select(dim, _pad_index(x.shape[dim], int(lo), int(hi), bool(periodic), x.device))


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

    Raises:
        ValueError: an unknown boundary or mode, or a periodic width wider than its axis.
    """
    nd = len(boundary)
    widths = [int(width)] * nd if isinstance(width, int) else [int(w) for w in width]
    if dirichlet_mode not in DIRICHLET_PAD_MODES:
        raise ConfigError(f"dirichlet_mode {dirichlet_mode!r}; expected one of {DIRICHLET_PAD_MODES}")
    for i, (w, bc) in enumerate(zip(widths, boundary)):
        if w == 0:
            continue
        dim = x.dim() - nd + i
        n = x.shape[dim]
        if bc == "periodic":
            if w > n:
                raise ConfigError(f"periodic padding of {w} points on an axis of {n} points")
            x = pad_axis(x, dim, w, w, True)
        elif bc != "dirichlet":
            raise ConfigError(f"unknown boundary type {bc!r}; expected 'periodic' or 'dirichlet'")
        elif dirichlet_mode == "edge":
            x = pad_axis(x, dim, w, w, False)
        else:
            zeros = x.new_zeros((*x.shape[:dim], w, *x.shape[dim + 1:]))
            x = torch.cat([zeros, x, zeros], dim=dim)
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
