"""Boundary padding and stencil gathers on a grid, for tensors laid out ``(B, C, *grid)``.

These are the operations every stencil in pymsde is built from (the simulators' finite
differences, the learned drift's neighbourhoods, the encoder's coarse-graining):

- :func:`pad_axis` extends one axis by ``lo`` points before and ``hi`` after it, by index
  gather: periodic wraps (``j mod n``, so widths may exceed the axis: the decoder pads the
  coarse grid by several kernel half-widths), otherwise the edge value repeats. The index
  vectors are cached (bounded, per size, widths, rule and device).
- :func:`pad` extends each spatial axis by ``width`` points by the axis' boundary kind
  (:data:`PAD_RULES`):

  ========== ============================================================================
  periodic   wrap around (at most once: the Julia port refuses the same inputs)
  dirichlet  repeat the edge value (``dirichlet_mode="edge"``) or zeros (``"zeros"``)
  outflow    repeat the edge value: a zero-gradient (open) boundary, whatever the mode
  slip       mirror about the boundary face (ghost ``-1 - k`` is point ``k``) with the
             velocity component normal to the wall negated: a free-slip wall. On a field
             of ``d`` channels on ``d`` axes, channel ``i`` is the velocity along axis
             ``i`` (the convention of the flow cases and of ``plot_vorticity``; in 1-D the
             one channel is the velocity, odd); a scalar field (one channel on 2 or 3
             axes) is mirrored evenly. Exact for cell-centred values of a field whose
             normal component is odd and tangential ones even about the wall.
  ========== ============================================================================

- :func:`gather_stencil` collects, for each grid point, the values of the ``(2r+1)^d``
  neighbourhood around it, in row-major offset order (first axis slowest, offsets from
  ``-r`` to ``+r``), as the last dimension.
- :func:`check_padding` is the one check of a padding request (torch and the Julia bridge).

The Julia package mirrors both with the same conventions (``julia/src/stencils.jl``).
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Sequence

import torch

from pymsde.util.errors import ConfigError

DIRICHLET_PAD_MODES = ("edge", "zeros")

#: How :func:`pad` extends an axis of each boundary kind (the kinds of ``pymsde.data.BOUNDARY_TYPES``).
PAD_RULES = {"periodic": "wrap", "dirichlet": "edge", "outflow": "edge", "slip": "mirror"}


@lru_cache(maxsize=256)
def _pad_index(n: int, lo: int, hi: int, rule: str, device: torch.device) -> torch.Tensor:
    idx = torch.arange(-lo, n + hi, device=device)
    if rule == "wrap":
        return idx.remainder(n)
    if rule == "mirror":                            # symmetric about the faces: -1 -> 0, n -> n - 1
        return torch.where(idx < 0, -1 - idx, torch.where(idx >= n, 2 * n - 1 - idx, idx))
    return idx.clamp(0, n - 1)


def pad_axis(x: torch.Tensor, dim: int, lo: int, hi: int, periodic: bool) -> torch.Tensor:
    """Pad axis ``dim`` of ``x`` by ``lo`` / ``hi`` points: wrap (periodic) or repeat the edge."""
    return _pad_rule(x, dim, lo, hi, "wrap" if periodic else "edge")


def _pad_rule(x: torch.Tensor, dim: int, lo: int, hi: int, rule: str) -> torch.Tensor:
    if lo == 0 and hi == 0:
        return x
    return x.index_select(dim, _pad_index(x.shape[dim], int(lo), int(hi), rule, x.device))


def check_padding(widths: Sequence[int], shape: Sequence[int], boundary: Sequence[str],
                  dirichlet_mode: str = "edge") -> None:
    """Refuse what :func:`pad` cannot do, before any work: an unknown kind or mode, a periodic or
    slip pad wider than its axis (it would wrap or mirror more than once), a slip axis on a
    field that is neither a scalar nor a velocity (``C`` not 1 or the number of axes).

    Args:
        widths: points added on each side, per spatial axis.
        shape: the padded tensor's shape ``(..., *grid)``; with a slip axis ``(..., C, *grid)``.
        boundary: the kind per spatial axis.

    Raises:
        ConfigError: one line naming the axis and the kind.
    """
    nd = len(boundary)
    if dirichlet_mode not in DIRICHLET_PAD_MODES:
        raise ConfigError(f"dirichlet_mode {dirichlet_mode!r}; expected one of {DIRICHLET_PAD_MODES}")
    grid = tuple(shape)[len(shape) - nd:]
    for axis, (w, n, bc) in enumerate(zip(widths, grid, boundary)):
        if bc not in PAD_RULES:
            raise ConfigError(f"unknown boundary type {bc!r}; expected one of {tuple(PAD_RULES)}")
        if bc in ("periodic", "slip") and w > n:
            what = "periodic padding" if bc == "periodic" else "slip padding (a mirror image)"
            raise ConfigError(f"{what} of {w} points on an axis of {n} points")
        if bc == "slip" and w > 0 and (len(shape) <= nd or shape[len(shape) - nd - 1] not in (1, nd)):
            found = "no channel axis" if len(shape) <= nd else f"{shape[len(shape) - nd - 1]} channels"
            raise ConfigError(f"slip boundary on axis {axis}: the field has {found}; expected {nd} (the velocity, "
                              f"channel i along axis i)" + (" or 1 (a scalar)" if nd > 1 else ""))


def pad(x: torch.Tensor, width: int | Sequence[int], boundary: Sequence[str],
        dirichlet_mode: str = "edge") -> torch.Tensor:
    """Pad the trailing ``len(boundary)`` axes of ``x`` by ``width`` points on each side.

    Args:
        x: tensor ``(..., *grid)``; the last ``len(boundary)`` axes are spatial (with a slip
            axis: ``(..., C, *grid)``, see the module docstring).
        width: points added on each side, one number or one per axis.
        boundary: ``"periodic"``, ``"dirichlet"``, ``"outflow"`` or ``"slip"`` per spatial axis.
        dirichlet_mode: ``"edge"`` (repeat the boundary value) or ``"zeros"`` (Dirichlet axes).

    Returns:
        tensor ``(..., *(n + 2 * width))``.

    Raises:
        ConfigError: see :func:`check_padding`.
    """
    nd = len(boundary)
    widths = [int(width)] * nd if isinstance(width, int) else [int(w) for w in width]
    check_padding(widths, x.shape, boundary, dirichlet_mode)
    for i, (w, bc) in enumerate(zip(widths, boundary)):
        if w == 0:
            continue
        dim = x.dim() - nd + i
        if bc == "dirichlet" and dirichlet_mode == "zeros":
            zeros = x.new_zeros((*x.shape[:dim], w, *x.shape[dim + 1:]))
            x = torch.cat([zeros, x, zeros], dim=dim)
            continue
        x = _pad_rule(x, dim, w, w, PAD_RULES[bc])
        if bc == "slip" and x.shape[x.dim() - nd - 1] == nd:
            # the wall-normal velocity (channel i on axis i) is odd about the wall
            sign = torch.ones((nd, x.shape[dim]), dtype=x.dtype, device=x.device)
            sign[i, :w] = -1.0
            sign[i, -w:] = -1.0
            x = x * sign.reshape(nd, *([1] * i), -1, *([1] * (nd - 1 - i)))
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
