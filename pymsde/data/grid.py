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

Time: observation times are evenly spaced; :func:`uniform_step` is the one check of that
(relative tolerance :data:`DT_RTOL`), used by the data layer and by the solvers alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pymsde.util.errors import ConfigError, DataError

#: The boundary kinds of a grid axis. ``"periodic"`` wraps; the others are open axes whose end
#: points are grid points (spacing ``(hi - lo) / (n - 1)``): ``"dirichlet"`` (held values),
#: ``"outflow"`` (zero gradient) and ``"slip"`` (a free-slip wall: the wall-normal velocity odd,
#: the rest even). The model pads its coarse field by them (:mod:`pymsde.numerics.padding`);
#: the built-in simulators' finite differences take periodic and Dirichlet axes only.
BOUNDARY_TYPES = ("periodic", "dirichlet", "outflow", "slip")

#: Relative tolerance of the uniform-step check: every step of a trajectory must lie within
#: ``DT_RTOL * dt`` of the trajectory's mean step. Loose enough for times stored in float32
#: (relative rounding ~6e-8 of t, i.e. ~6e-5 of dt for 1000 steps over [0, 1]), tight enough to
#: catch a missing or duplicated frame (an error of 100 % of dt).
DT_RTOL = 1e-4


@dataclass(frozen=True)
class Grid:
    """A rectilinear 1-D or 2-D grid.

    Attributes:
        shape: points per axis, e.g. ``(1000,)`` or ``(128, 128)``.
        domain: ``(lo, hi)`` per axis, in the units of the data.
        boundary: one of :data:`BOUNDARY_TYPES` per axis.
    """

    shape: tuple[int, ...]
    domain: tuple[tuple[float, float], ...]
    boundary: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(n) for n in self.shape)
            integral = all(not isinstance(n, (bool, str)) and float(n) == int(n) for n in self.shape)
            domain = tuple((float(lo), float(hi)) for lo, hi in np.asarray(self.domain, dtype=float).reshape(-1, 2))
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"grid: shape {self.shape!r} / domain {self.domain!r}; expected integer sizes and "
                            f"(lo, hi) numbers per axis") from None
        if not integral:
            raise DataError(f"grid: shape {tuple(self.shape)!r}; expected integer sizes per axis")
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


def uniform_step(t: Any, what: str = "t", error: type[Exception] = DataError) -> np.ndarray:
    """The one check of uniformly spaced times, shared by the data layer and the solvers.

    ``t`` is ``(n_t,)`` or ``(n_traj, n_t)``, finite and strictly increasing; every step of a
    row must lie within ``DT_RTOL`` (relative) of the row's mean step, which admits times
    stored in float32 (``torch.linspace`` in float32 writes steps off by ~1e-5 relative) and
    catches a missing or duplicated frame. Returns the mean step of each row (float64,
    ``(n_traj,)`` or a 0-d array); raises ``error`` naming ``what`` otherwise.
    """
    t = np.asarray(t, dtype=np.float64)
    rows = t.reshape(1, -1) if t.ndim == 1 else t
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise error(f"{what}: times of shape {t.shape}; expected at least 2 times (n_t,) or (n_traj, n_t)")
    if not np.isfinite(rows).all():
        i, k = np.argwhere(~np.isfinite(rows))[0]
        raise error(f"{what}: non-finite value {rows[i, k]} at trajectory {i}, time index {k}")
    steps = np.diff(rows, axis=1)
    if not (steps > 0).all():
        i, k = np.argwhere(~(steps > 0))[0]
        raise error(f"{what}: not strictly increasing in trajectory {i}: t[{k}] = {rows[i, k]!r}, "
                    f"t[{k + 1}] = {rows[i, k + 1]!r}")
    mean_step = (rows[:, -1] - rows[:, 0]) / (rows.shape[1] - 1)
    dev = np.abs(steps - mean_step[:, None]) / mean_step[:, None]
    if (dev > DT_RTOL).any():
        i, k = np.unravel_index(int(np.argmax(dev)), dev.shape)
        raise error(f"{what}: non-uniform time step in trajectory {i}: t[{k + 1}] - t[{k}] = "
                    f"{steps[i, k]!r}, expected the trajectory's step {mean_step[i]!r} "
                    f"(relative tolerance {DT_RTOL})")
    return mean_step if t.ndim == 2 else mean_step.reshape(())
