"""The benchmark cases of METHOD.md section 8: PDE, domain, grid, parameters, initial-
condition distribution, observation noise, split, and the coarse grid of the baseline.

Every default below is the paper's recipe; :func:`pymsde.systems.simulate` overrides any of
them by keyword.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pymsde.data.grid import Grid


def _positive_normal(rng: np.random.Generator, mean: float, std: float, n: int) -> np.ndarray:
    """``n`` draws of N(mean, std^2) conditioned on > 0: a width V <= 0 turns the Gaussian bump
    into exp(+x^2/|V|) (Burgers' V = N(0.01, 0.0025^2) is <= 0 once in ~31,000 draws). Only the
    bad draws are redrawn, after the others, so every data set without one is unchanged."""
    x = rng.normal(mean, std, n)
    bad = x <= 0
    while bad.any():
        x[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = x <= 0
    return x


def _ic_burgers1d(rng: np.random.Generator, n: int, grid: Grid) -> tuple[np.ndarray, dict]:
    # u0 = A exp(-(x - 0.5)^2 / V), A ~ N(0.25, 0.05^2), V ~ N(0.01, 0.0025^2) conditioned on V > 0
    amp = rng.normal(0.25, 0.05, n)
    var = _positive_normal(rng, 0.01, 0.0025, n)
    (x,) = grid.mesh()
    u0 = amp[:, None] * np.exp(-(x[None, :] - 0.5) ** 2 / var[:, None])
    return u0[:, None], {"A": amp.tolist(), "V": var.tolist()}


def _ic_kdv1d(rng: np.random.Generator, n: int, grid: Grid) -> tuple[np.ndarray, dict]:
    # u0 = A cos(pi x) exp(-(x - 7.5)^2 / V), A ~ N(2, 0.1^2), V ~ N(1, 0.1^2) conditioned on V > 0
    amp = rng.normal(2.0, 0.1, n)
    var = _positive_normal(rng, 1.0, 0.1, n)
    (x,) = grid.mesh()
    u0 = amp[:, None] * np.cos(np.pi * x[None, :]) * np.exp(-(x[None, :] - 7.5) ** 2 / var[:, None])
    return u0[:, None], {"A": amp.tolist(), "V": var.tolist()}


def _ic_burgers2d(rng: np.random.Generator, n: int, grid: Grid) -> tuple[np.ndarray, dict]:
    # u0 = c1 exp(-((x-0.3)^2 + (y-0.3)^2) / c2), c1 ~ N(1, 0.1^2), c2 = (0.2 + 0.01 N(0,1))^2
    c1 = rng.normal(1.0, 0.1, n)
    c2 = (0.2 + 0.01 * rng.standard_normal(n)) ** 2
    x, y = grid.mesh()
    r2 = (x - 0.3) ** 2 + (y - 0.3) ** 2
    u0 = c1[:, None, None] * np.exp(-r2[None] / c2[:, None, None])
    return u0[:, None], {"c1": c1.tolist(), "c2": c2.tolist()}


@dataclass(frozen=True)
class CaseSpec:
    """One benchmark case (defaults of METHOD.md section 8).

    Attributes:
        name: case key in :data:`CASES`.
        pde: ``"burgers"`` (``u_t + u sum_a u_{x_a} = nu lap u``) or ``"kdv"``
            (``u_t + u u_x + d u_xxx = 0``).
        domain: ``(lo, hi)`` per axis; boundary: ``"periodic"`` / ``"dirichlet"`` per axis.
        n_grid: fine grid points per axis; coarse: coarse cells per axis (baseline, model).
        params: PDE coefficients (``{"nu": ...}`` or ``{"d": ...}``).
        n_traj, t_end, n_steps: trajectories, final time, saved times (``n_steps`` includes t = 0,
            so the output step is ``t_end / (n_steps - 1)``).
        noise: standard deviation of the Gaussian observation noise added to the saved data.
        split: train/val/test fractions (largest-remainder rounding: 10 -> 8/1/1, 20 -> 18/1/1
            with the 0.9/0.05/0.05 of Burgers 2-D).
        sample_ic: ``(rng, n, grid) -> (u0 (n, 1, *grid), {parameter: list})``.
    """

    name: str
    pde: str
    domain: tuple[tuple[float, float], ...]
    boundary: tuple[str, ...]
    n_grid: tuple[int, ...]
    coarse: tuple[int, ...]
    params: dict
    n_traj: int
    t_end: float
    n_steps: int
    noise: float
    split: tuple[float, float, float]
    sample_ic: Callable[[np.random.Generator, int, Grid], tuple[np.ndarray, dict]] = field(repr=False)

    def grid(self, n_grid: tuple[int, ...] | None = None) -> Grid:
        """The fine :class:`Grid` (default size or ``n_grid``)."""
        return Grid(tuple(n_grid or self.n_grid), self.domain, self.boundary)


CASES: dict[str, CaseSpec] = {
    "burgers1d": CaseSpec("burgers1d", "burgers", ((0.0, 1.0),), ("periodic",), (1000,), (20,),
                          {"nu": 5e-4}, 10, 1.0, 1001, 1e-3, (0.8, 0.1, 0.1), _ic_burgers1d),
    "kdv1d": CaseSpec("kdv1d", "kdv", ((0.0, 10.0),), ("periodic",), (1000,), (20,),
                      {"d": 0.02}, 10, 1.0, 1001, 1e-2, (0.8, 0.1, 0.1), _ic_kdv1d),
    "burgers2d": CaseSpec("burgers2d", "burgers", ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"),
                          (128, 128), (8, 8), {"nu": 5e-3}, 20, 1.0, 1001, 1e-3, (0.9, 0.05, 0.05),
                          _ic_burgers2d),
}

__all__ = ["CaseSpec", "CASES"]
