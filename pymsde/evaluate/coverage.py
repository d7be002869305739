"""Is an evaluated trajectory inside the range of the training data, or an extrapolation?

A model trained on a handful of trajectories is tested on one it has not seen. When that
trajectory's initial condition is larger or smaller than every training one, its forecast is
an extrapolation and a large error says more about the data split than about the method
(the demo's seed 1 is such a case: its test amplitude is 0.19, every training amplitude is
0.27-0.30; docs/evaluation.md). :func:`initial_coverage` makes that visible in the report.

The statistics are of the initial field ``u(t_0)`` of each trajectory (all channels together):

- ``rms``: root mean square over the grid (data units);
- ``max_abs``: the largest absolute value (data units).

A trajectory is *outside* when a statistic lies below the training minimum or above the
training maximum by more than :data:`TOLERANCE` of the training maximum (a test trajectory
0.8 % below the smallest of ten training amplitudes is not an extrapolation worth a note;
one 10 % beyond them is).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pymsde.util.errors import ConfigError

#: How far beyond the training range a statistic may lie, as a fraction of the training maximum.
TOLERANCE = 0.02

#: statistic name -> function of the initial fields ``(n_traj, C, *grid)`` returning ``(n_traj,)``
STATISTICS = {
    "rms": lambda u0: np.sqrt(np.mean(u0.reshape(u0.shape[0], -1) ** 2, axis=1)),
    "max_abs": lambda u0: np.max(np.abs(u0.reshape(u0.shape[0], -1)), axis=1),
}


def initial_coverage(train_u0: np.ndarray, eval_u0: np.ndarray) -> dict[str, Any]:
    """Compare the initial fields of the evaluated trajectories with those of the training ones.

    Args:
        train_u0: ``(n_train, C, *grid)`` initial fields of the training trajectories.
        eval_u0: ``(n_eval, C, *grid)`` initial fields of the evaluated trajectories.

    Returns:
        ``{"statistics": {name: {"train_min", "train_max", "evaluated": [n_eval floats],
        "outside": [n_eval bools]}}, "outside": [n_eval bools], "tolerance": TOLERANCE}`` -- the
        last list is True for a trajectory outside the training range (beyond the tolerance)
        in any statistic. Plain Python types (JSON-ready).

    Raises:
        ValueError: no training trajectories, or the two arrays' field shapes differ.
    """
    train_u0 = np.asarray(train_u0, dtype=np.float64)
    eval_u0 = np.asarray(eval_u0, dtype=np.float64)
    if train_u0.shape[0] == 0:
        raise ConfigError("initial_coverage: no training trajectories")
    if train_u0.shape[1:] != eval_u0.shape[1:]:
        raise ConfigError(f"initial_coverage: training fields {train_u0.shape[1:]} but evaluated fields "
                         f"{eval_u0.shape[1:]}; expected the same (C, *grid)")
    stats: dict[str, Any] = {}
    outside_any = np.zeros(eval_u0.shape[0], dtype=bool)
    for name, fn in STATISTICS.items():
        ref, val = fn(train_u0), fn(eval_u0)
        lo, hi = float(ref.min()), float(ref.max())
        slack = TOLERANCE * max(abs(lo), abs(hi))
        outside = (val < lo - slack) | (val > hi + slack)
        outside_any |= outside
        stats[name] = {"train_min": lo, "train_max": hi, "evaluated": [float(v) for v in val],
                       "outside": [bool(o) for o in outside]}
    return {"statistics": stats, "outside": [bool(o) for o in outside_any], "tolerance": TOLERANCE}


def coverage_notes(coverage: dict[str, Any]) -> list[str]:
    """One report line per evaluated trajectory outside the training range (none when all are inside)."""
    notes = []
    for i, out in enumerate(coverage["outside"]):
        if not out:
            continue
        parts = [f"{name} {s['evaluated'][i]:.4g} (training {s['train_min']:.4g} to {s['train_max']:.4g})"
                 for name, s in coverage["statistics"].items() if s["outside"][i]]
        notes.append(f"evaluated trajectory {i} starts outside the training data's range: initial "
                     + "; ".join(parts) + ". Its forecasts are an extrapolation.")
    return notes
