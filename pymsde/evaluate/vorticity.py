"""The vorticity of a two-channel 2-D velocity field, a diagnostic of the flow cases' forecasts
(drawn by :func:`pymsde.evaluate.plots.plot_vorticity`): numpy in, numpy out."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pymsde.util.errors import DataError


def _derivative(f: np.ndarray, c: np.ndarray, axis: int, periodic: bool) -> np.ndarray:
    """``df/dc`` along ``axis``: central differences (second order), wrapping on a periodic axis,
    second-order one-sided at the two ends otherwise."""
    if periodic:
        h = float(c[1] - c[0])
        return (np.roll(f, -1, axis) - np.roll(f, 1, axis)) / (2.0 * h)
    return np.gradient(f, c, axis=axis, edge_order=2)


def vorticity(u: np.ndarray, v: np.ndarray, x: np.ndarray | None = None, y: np.ndarray | None = None,
              periodic: Sequence[bool] = (False, False)) -> np.ndarray:
    """The vorticity ``dv/dx - du/dy`` of a 2-D velocity field by finite differences.

    Args:
        u, v: ``(..., nx, ny)`` the velocity components along the first (x) and second (y) axis.
        x, y: ``(nx,)``, ``(ny,)`` point coordinates (default: indices).
        periodic: per axis, wrap around (equal spacing ``x[1] - x[0]``) instead of one-sided
            differences at the ends.

    Returns:
        ``(..., nx, ny)``; second-order accurate, exact for fields linear in x and y.
    """
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if u.shape != v.shape or u.ndim < 2:
        raise DataError(f"vorticity: u {u.shape} and v {v.shape}; expected one shape (..., nx, ny)")
    coords = []
    for name, c, n, per in zip("xy", (x, y), u.shape[-2:], periodic):
        c = np.arange(n, dtype=float) if c is None else np.asarray(c, dtype=float).reshape(-1)
        if c.size != n or n < 3:
            raise DataError(f"vorticity: {c.size} {name} coordinates for {n} points; expected equal, at least 3")
        coords.append(c)
    return (_derivative(v, coords[0], -2, bool(periodic[0]))
            - _derivative(u, coords[1], -1, bool(periodic[1])))
