"""The benchmark cases: PDE, domain, grid, parameters, initial-condition distribution,
observation noise, split, the coarse grid of the baseline and the scored time steps.

Sources of the defaults: burgers1d follows docs/method.md section 8; kdv1d, wave1d and burgers2d
follow the final paper's data scripts (``datasets/kdv_1d/gen_data.py``, ``datasets/wave_1d/gen_data.py``
and ``datasets/burgers_2d/gen_data.py`` of the paper's repository, ailersic/multiscale-visde;
FINAL_PAPER.md sections 2-4); swe2d and cylinder2d follow FINAL_PAPER.md sections 6.1 and 5.1
(generated in-house by ``systems.swe`` and ``systems.cylinder``, docs/swe_cylinder.md).
:func:`pymsde.systems.simulate` overrides any of them by keyword; the earlier KdV draw (10
trajectories split 8/1/1) is ``simulate("kdv1d", n_traj=10, split=(8, 1, 1))``, the earlier
Burgers 2-D draw (20 split 18/1/1, stored in float64) ``simulate("burgers2d", n_traj=20,
split=(18, 1, 1))`` saved with ``dtype="float64"`` (``pymsde simulate burgers2d --n-traj 20
--split 18,1,1 --dtype float64``).

Storage: simulators compute and return float64; :attr:`CaseSpec.storage_dtype` is the dtype of
``u`` in the files ``pymsde simulate``, :func:`pymsde.systems.simulate_to_file` and the benchmark
write (:func:`as_stored`): float32 for burgers2d (the paper's 30 x 1001 x 128^2 set: 1.97 GB
instead of 3.94 GB), float64 for the others.

The two flow cases are stored at cell centres: each axis is an open axis on the physical domain
shrunk by half a cell (``cell_centred=True``), so ``Grid.coordinates`` gives the cell centres
``lo + (j + 1/2) dx``. Their grid boundary kinds say how the model pads them: swe2d
``("outflow", "outflow")``, cylinder2d ``("dirichlet", "slip")`` (the inflow and outflow of x
share one kind per axis; the walls of y are free-slip). The physical kind of each side is in
``boundary_physical`` (recorded as ``attrs["boundary_physical"]``). Data generated before
2026-12-02 recorded ``"dirichlet"`` for every axis (the same padding except on the slip walls).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pymsde.data.grid import Grid
from pymsde.systems.solvers import gaussian_pulse_advection
from pymsde.systems.swe import sample_dam_break
from pymsde.util.errors import ConfigError


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


def _ic_none(rng: np.random.Generator, n: int, grid: Grid) -> tuple[np.ndarray, dict]:
    raise ConfigError("cylinder2d: the run starts from uniform flow plus a fixed perturbation; it draws no "
                      "initial condition (simulate it with pymsde.systems.simulate)")


def _ic_wave1d(rng: np.random.Generator, n: int, grid: Grid) -> tuple[np.ndarray, dict]:
    # u0 = exp(-(d(x, 0) / w)^2), d the periodic (nearest-image) distance, w ~ U(0.01, 0.02);
    # the paper stores mu = 0, so the width is an initial-condition parameter, not a mu
    width = rng.uniform(0.01, 0.02, n)
    (x,) = grid.mesh()
    lo, hi = grid.domain[0]
    u0 = gaussian_pulse_advection(x, np.zeros(1), width, centre=0.0, speed=1.0, length=hi - lo)[:, 0]
    return u0, {"width": width.tolist(), "centre": 0.0}


@dataclass(frozen=True)
class CaseSpec:
    """One benchmark case (its paper defaults; sources in the module docstring).

    Attributes:
        name: case key in :data:`CASES`.
        pde: ``"burgers"`` (``u_t + u sum_a u_{x_a} = nu lap u``), ``"kdv"``
            (``u_t + u u_x + d u_xxx = 0``) or ``"advection"`` (``u_t + c u_x = 0``, written in
            closed form by the simulator).
        domain: ``(lo, hi)`` per axis; boundary: ``"periodic"`` / ``"dirichlet"`` per axis.
        n_grid: fine grid points per axis; coarse: coarse cells per axis (baseline, model).
        params: PDE coefficients (``{"nu": ...}``, ``{"d": ...}`` or ``{"c": ...}``; units of
            the domain and of time: nu length^2/time, d length^3/time, c length/time).
        n_traj, t_end, n_steps: trajectories, final time, saved times (``n_steps`` includes t = 0,
            so the output step is ``t_end / (n_steps - 1)``).
        noise: standard deviation of the Gaussian observation noise added to the saved data.
        split: train/val/test fractions, rounded per part by :func:`split_sizes`
            (10 -> 8/1/1 with 0.8/0.1/0.1, 20 -> 18/1/1 with 0.9/0.05/0.05, 20 -> 10/5/5 with
            0.5/0.25/0.25, 30 -> 20/5/5 with 2/3, 1/6, 1/6).
        sample_ic: ``(rng, n, grid) -> (u0 (n, 1, *grid), {parameter: list})``.
        score_steps: the paper scores the case's forecasts on the first ``score_steps`` saved
            times only (wave1d: 201 of 1001, t in [0, 0.2]); None: every saved time. The
            simulator records it as ``attrs["score_steps"]`` (see ``simulate``).
        cell_centred: the grid holds cell centres of ``domain`` (each axis stored as Dirichlet
            on the domain shrunk by half a cell; see :meth:`grid`).
        boundary_physical: the physical boundary kind of each side, ``((lo, hi), ...)`` per
            axis (``"outflow"``, ``"inflow"``, ``"slip"``), or None.
        split_by: ``"trajectory"`` (``split`` divides the trajectories) or ``"time"``
            (``split`` divides the frames of every trajectory: ``attrs["time_split"]``).
        storage_dtype: ``"float32"`` or ``"float64"``: the dtype of ``u`` in the data files
            written for the case (:func:`as_stored`); the simulator itself works in float64.
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
    score_steps: int | None = None
    cell_centred: bool = False
    boundary_physical: tuple | None = None
    split_by: str = "trajectory"
    storage_dtype: str = "float64"

    def grid(self, n_grid: tuple[int, ...] | None = None) -> Grid:
        """The fine :class:`Grid` (default size or ``n_grid``). For a cell-centred case the
        domain of each axis is ``(lo + dx/2, hi - dx/2)``, ``dx = (hi - lo) / N``."""
        shape = tuple(n_grid or self.n_grid)
        if not self.cell_centred:
            return Grid(shape, self.domain, self.boundary)
        domain = tuple((lo + 0.5 * (hi - lo) / n, hi - 0.5 * (hi - lo) / n) for n, (lo, hi) in zip(shape, self.domain))
        return Grid(shape, domain, self.boundary)

    @property
    def score_t_end(self) -> float | None:
        """The last scored time of the default time grid (wave1d: 0.2), or None."""
        if self.score_steps is None:
            return None
        return self.t_end * (self.score_steps - 1) / (self.n_steps - 1)


CASES: dict[str, CaseSpec] = {
    "burgers1d": CaseSpec("burgers1d", "burgers", ((0.0, 1.0),), ("periodic",), (1000,), (20,),
                          {"nu": 5e-4}, 10, 1.0, 1001, 1e-3, (0.8, 0.1, 0.1), _ic_burgers1d),
    # final paper: 20 trajectories split 10/5/5 (the earlier reference draw: 10, split 8/1/1)
    "kdv1d": CaseSpec("kdv1d", "kdv", ((0.0, 10.0),), ("periodic",), (1000,), (20,),
                      {"d": 0.02}, 20, 1.0, 1001, 1e-2, (0.5, 0.25, 0.25), _ic_kdv1d),
    # final paper, section 4: 30 trajectories split 20/5/5, stored as float32 (the earlier draw:
    # 20, split 18/1/1, float64)
    "burgers2d": CaseSpec("burgers2d", "burgers", ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"),
                          (128, 128), (8, 8), {"nu": 5e-3}, 30, 1.0, 1001, 1e-3, (20 / 30, 5 / 30, 5 / 30),
                          _ic_burgers2d, storage_dtype="float32"),
    # final paper, section 3: a Gaussian pulse advected once around the periodic unit interval
    "wave1d": CaseSpec("wave1d", "advection", ((0.0, 1.0),), ("periodic",), (1000,), (20,),
                       {"c": 1.0}, 30, 1.0, 1001, 1e-3, (20 / 30, 5 / 30, 5 / 30), _ic_wave1d,
                       score_steps=201),
    # final paper, section 6: PDEBench's radial dam break, u = h - 1, mu[:, 0] = the dam radius
    "swe2d": CaseSpec("swe2d", "swe", ((-2.5, 2.5), (-2.5, 2.5)), ("outflow", "outflow"), (128, 128), (8, 8),
                      {"g": 1.0}, 1000, 1.0, 101, 1e-2, (0.9, 0.05, 0.05), sample_dam_break, cell_centred=True,
                      boundary_physical=(("outflow", "outflow"), ("outflow", "outflow"))),
    # final paper, section 5: the wake at Re = 160, (u, v), one trajectory split in time
    # x: inflow (held) and outflow, one kind per axis: "dirichlet" (the edge repeats, as an outflow
    # would); y: the slip walls
    "cylinder2d": CaseSpec("cylinder2d", "incompressible", ((0.0, 4.0), (0.0, 1.0)), ("dirichlet", "slip"),
                           (320, 80), (32, 8), {"nu": 1.0 / 1280.0, "u_in": 1.0}, 1, 15.0, 1501, 0.0,
                           (1301 / 1501, 100 / 1501, 100 / 1501), _ic_none, cell_centred=True,
                           boundary_physical=(("inflow", "outflow"), ("slip", "slip")), split_by="time"),
}


def split_sizes(split, n: int, what: str = "n_traj") -> dict[str, int]:
    """Train/val/test counts of ``n`` items (trajectories, or frames for a time split): three
    integer counts summing to ``n`` are used as given (e.g. ``(8, 1, 1)``); fractions are
    rounded per part, val and test getting at least one item each once ``n >= 3``
    (10 -> 8/1/1 with 0.8/0.1/0.1, 20 -> 18/1/1 with 0.9/0.05/0.05, 1501 -> 1301/100/100
    with 1301/1501, 100/1501, 100/1501). ConfigError for anything else (``what`` names ``n``)."""
    split = tuple(split)
    if len(split) != 3:
        raise ConfigError(f"simulate: split = {split!r}; expected three sizes (train, val, test)")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in split):
        if min(split) < 0 or sum(split) != n:
            raise ConfigError(f"simulate: split counts {split} sum to {sum(split)}; expected non-negative "
                              f"counts summing to {what} = {n}")
        return {k: int(v) for k, v in zip(("train", "val", "test"), split)}
    fractions = tuple(float(v) for v in split)
    if n < 3:
        return {"train": n}
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


#: dtypes a data file may store ``u`` in
STORAGE_DTYPES = ("float32", "float64")


def storage_dtype(case: str | None, dtype: str | None = None) -> str:
    """The dtype to store ``u`` of ``case`` in: ``dtype`` when given (checked), else the case's
    :attr:`CaseSpec.storage_dtype` (``"float64"`` for a case not in :data:`CASES`)."""
    if dtype is None:
        spec = CASES.get(case) if isinstance(case, str) else None
        return spec.storage_dtype if spec is not None else "float64"
    if dtype not in STORAGE_DTYPES:
        raise ConfigError(f"simulate: dtype = {dtype!r}; expected one of {', '.join(STORAGE_DTYPES)}")
    return dtype


def as_stored(traj, dtype: str):
    """``traj`` with ``u`` in ``dtype`` (``"float32"`` or ``"float64"``; the same object when it
    already is): what a data file of the case holds. The cast rounds each value once (float32:
    relative 6e-8, far below the observation noise of every case)."""
    want = np.dtype(storage_dtype(None, dtype))
    if traj.u.dtype == want:
        return traj
    return dataclasses.replace(traj, u=traj.u.astype(want))


__all__ = ["CaseSpec", "CASES", "split_sizes", "STORAGE_DTYPES", "storage_dtype", "as_stored"]
