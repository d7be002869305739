"""Boundary padding along one axis by index gather (private to the model layer).

:func:`pymsde.numerics.padding.pad` pads every axis by the same rule via ``narrow`` + ``cat``;
the model needs a different width per axis and side, and widths larger than the axis
itself (the decoder pads the coarse grid by several kernel half-widths), which a periodic
index ``j mod n`` handles with one ``index_select``. Index vectors are cached per
(size, widths, rule, device) so the hot path allocates nothing but the output.
"""
from __future__ import annotations

import torch

_CACHE: dict[tuple, torch.Tensor] = {}


def pad_index(n: int, lo: int, hi: int, periodic: bool, device: torch.device) -> torch.Tensor:
    """Indices into an axis of ``n`` points for ``lo`` points before and ``hi`` after it.

    Periodic axes wrap (``j mod n``); Dirichlet axes repeat the edge value (clamp).
    """
    key = (n, lo, hi, periodic, device)
    idx = _CACHE.get(key)
    if idx is None:
        idx = torch.arange(-lo, n + hi, device=device)
        idx = idx.remainder(n) if periodic else idx.clamp(0, n - 1)
        _CACHE[key] = idx
    return idx


def pad_axis(x: torch.Tensor, dim: int, lo: int, hi: int, periodic: bool) -> torch.Tensor:
    """Pad axis ``dim`` of ``x`` by ``lo``/``hi`` points (wrap or edge repeat)."""
    if lo == 0 and hi == 0:
        return x
    return x.index_select(dim, pad_index(x.shape[dim], lo, hi, periodic, x.device))
