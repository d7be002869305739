"""The spatial grid of a field: shape, extent and boundary type per axis.

Point placement (the convention every part of pymsde uses):

- periodic axis on ``[lo, hi)`` with ``N`` points: ``x_j = lo + j * (hi - lo) / N``,
  spacing ``(hi - lo) / N``; the point ``hi`` is the same as ``lo`` and is not stored.
- Dirichlet axis on ``[lo, hi]`` with ``N`` points: ``x_j = lo + j * (hi - lo) / (N - 1)``,
  both end points are grid nodes, spacing ``(hi - lo) / (N - 1)``. Simulators hold the values
  on the two end nodes fixed ("boundary values held").

A coarse grid divides each axis into blocks of ``s`` consecutive fine points
(``N_coarse = N / s``, an integer); a coarse value stands for its block and sits at the
block's centre.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pymsde.util.errors import ConfigError, DataError

BOUNDARY_TYPES = ("periodic", "dirichlet")


@dataclass(frozen=True)
class Grid:
    """A rectilinear 1-D or 2-D grid.

    Attributes:
        shape: points per axis, e.g. ``(1000,)`` or ``(128, 128)``.
        domain: ``(lo, hi)`` per axis, in the units of the data.
        boundary: ``"periodic"`` or ``"dirichlet"`` per axis.
    """

    shape: tuple[int, ...]
    domain: tuple[tuple[float, float], ...]
    boundary: tuple[str, ...]

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        domain = tuple((float(lo), float(hi)) for lo, hi in np.asarray(self.domain, dtype=float).reshape(-1, 2))
        boundary = tuple(str(b) for b in self.boundary)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "boundary", boundary)
        if not 1 <= len(shape) <= 3:
            raise DataError(f"grid: expected 1 to 3 spatial axes, found {len(shape)}")
        if len(domain) != len(shape) or len(boundary) != len(shape):
            raise DataError(f"grid: shape has {len(shape)} axes but domain has {len(domain)} and "
                            f"boundary has {len(boundary)}; expected one entry per axis")
        for axis, (n, (lo, hi), bc) in enumerate(zip(shape, domain, boundary)):
            if bc not in BOUNDARY_TYPES:
                raise DataError(f"grid: unknown boundary type {bc!r} on axis {axis}; "
                                f"expected one of {BOUNDARY_TYPES}")
            if n < 2:
                raise DataError(f"grid: axis {axis} has {n} points; expected at least 2")
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise DataError(f"grid: domain of axis {axis} is ({lo}, {hi}); expected finite lo < hi")

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of grid points."""
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> tuple[float, ...]:
        """Distance between neighbouring points, per axis."""
        return tuple((hi - lo) / (n if bc == "periodic" else n - 1)
                     for n, (lo, hi), bc in zip(self.shape, self.domain, self.boundary))

    def coordinates(self, axis: int) -> np.ndarray:
        """Coordinates of the points along ``axis`` (float64, length ``shape[axis]``)."""
        n = self.shape[axis]
        lo, hi = self.domain[axis]
        if self.boundary[axis] == "periodic":
            return lo + (hi - lo) * np.arange(n) / n
        return np.linspace(lo, hi, n)

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Coordinate arrays of shape ``self.shape`` (``indexing='ij'``)."""
        return tuple(np.meshgrid(*(self.coordinates(a) for a in range(self.ndim)), indexing="ij"))

    def coarsening_factors(self, coarse_shape: Sequence[int]) -> tuple[int, ...]:
        """The integer factor ``s`` per axis with ``shape = s * coarse_shape``.

        Raises ConfigError when the coarse grid has another number of axes, a non-positive
        size, or does not divide the fine grid.
        """
        coarse_shape = tuple(int(c) for c in coarse_shape)
        if len(coarse_shape) != self.ndim:
            raise ConfigError(f"coarse grid {coarse_shape} has {len(coarse_shape)} axes; "
                              f"the fine grid {self.shape} has {self.ndim}")
        factors = []
        for axis, (n, c) in enumerate(zip(self.shape, coarse_shape)):
            if c <= 0:
                raise ConfigError(f"coarse grid: axis {axis} has size {c}; expected a positive size")
            if n % c:
                raise ConfigError(f"coarse grid: {c} cells on axis {axis} do not divide the fine grid's "
                                  f"{n} points; expected a divisor of {n}")
            factors.append(n // c)
        return tuple(factors)

    def coarsen(self, coarse_shape: Sequence[int]) -> "Grid":
        """The coarse grid of ``coarse_shape`` blocks (same domain and boundary types).

        The coarse grid's ``coordinates`` are not the block centres for Dirichlet axes (the
        block-centre convention is the encoder's business); use :meth:`block_centres`.
        """
        self.coarsening_factors(coarse_shape)
        return Grid(tuple(int(c) for c in coarse_shape), self.domain, self.boundary)

    def block_centres(self, coarse_shape: Sequence[int], axis: int) -> np.ndarray:
        """Centre coordinate of each block of fine points along ``axis``."""
        s = self.coarsening_factors(coarse_shape)[axis]
        x = self.coordinates(axis)
        return x.reshape(-1, s).mean(axis=1)
