"""Scores of predictions, the metrics JSON, and the report (markdown + PNGs) they make.

:func:`pymsde.workflows.evaluation.evaluate_run` produces the predictions (the model and each
baseline of :mod:`pymsde.evaluate.baselines`); here they are scored (:func:`score_prediction`)
and written up (:func:`write_report`).

Every score compares a method's prediction with the **stored observations** of the evaluated
split, i.e. the data file's ``u`` with whatever observation noise it holds (as the paper
scores), not with a noise-free field.

Scores (per method; trajectories of the split averaged with equal weight):

- ``relative_error``: the final paper's metric. Per (trajectory, time) pair, the relative
  error of the prediction (ensemble mean) ``eps(t_k) = ||u(t_k) - u_hat(t_k)||_2 /
  ||u(t_k)||_2`` over all channels and grid points, in percent; the values of every
  (trajectory, time) pair of the split, the initial time included, are **pooled** and their
  mean and (population) standard deviation reported
  (:func:`pymsde.evaluate.metrics.relative_error_summary`). Its curve over time (mean over
  trajectories of ``eps(t_k)``) is the error-vs-time figure.
- ``nrmse``: docs/method.md section 7, in percent, of the prediction (ensemble mean) over all output
  times of a trajectory (the initial time included, as in the paper's code): the root mean
  square over time of the same ``eps(t_k)``, then averaged over trajectories.
- ``crps``: the ensemble CRPS (:func:`pymsde.evaluate.metrics.crps_ensemble`), averaged over
  grid points and the scoring times (``n_score`` evenly spaced output times after t0), in the
  data's units. For a deterministic method (the DNS, DMD, POD-SINDy) it is the mean absolute
  error at the same times (the CRPS of a point forecast).
- ``spread_skill``: ensemble spread over the RMSE of the ensemble mean at the scoring times
  (:func:`pymsde.evaluate.metrics.spread_skill`); ~1 for a calibrated ensemble. Undefined for
  a deterministic method: ``NaN`` in Python, ``null`` in the JSON, ``n/a`` in the report.

A prediction that diverged (a DMD or POD-SINDy forecast with NaN / inf frames, or values whose
error overflows) scores ``inf`` in Python and in the report (``inf``), ``null`` in the JSON,
and a note names it.

The metrics JSON (``pymsde evaluate --json``, :meth:`EvaluationResult.metrics`) is
``{"nrmse": {method: %}, "relative_error": {method: {"mean": %, "std": %}}, "crps": {...},
"spread_skill": {...}, "nrmse_per_traj": {...}, "forecast_time_s": {...},
"training_time_s": {...}, "baseline_settings": {...}, "backend", "data", "split", "n_traj",
"n_samples", "run", "closure_run", "report", "notes", "coverage", "split_sizes", "training"}``; a
method that could not be run (e.g. no closure run found) is absent from the per-method tables and
explained in ``notes``. ``baseline_settings`` records how DMD and POD-SINDy were set up (rank,
selected threshold and degree, validation scores; only the ones run). ``coverage`` (:mod:`pymsde.evaluate.coverage`;
null when the data file records no train split) compares each evaluated trajectory's initial
field with the training trajectories' range, and ``notes`` names the trajectories outside it
(their forecasts are extrapolations). ``split_sizes`` gives the data file's splits (name ->
number of trajectories) and ``training`` each learned run's budget (``{method: {"steps", "epochs",
"n_traj_train"}}``, from its ``metadata.json``).

The text of ``report.md`` (verdict, data, method definitions, how the scores are computed, what
to conclude, notes, setup, figures) is :mod:`pymsde.evaluate.render`'s; writing the report, the
JSON and the plots to a folder is :mod:`pymsde.evaluate.writer`'s.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pymsde.evaluate.baselines import Prediction
from pymsde.util.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Baselines ``evaluate_run`` knows, in report order.
BASELINES = ("closure", "dns", "dmd", "sindy")
#: What ``--baselines`` means when it is not given: every baseline of :data:`AUTO_BASELINES`
#: that the run and the data allow (see :func:`pymsde.workflows.evaluation.auto_baselines`).
DEFAULT_BASELINES = "auto"
#: The candidates of ``"auto"``: none of them needs more than the run, the data file and pydmd.
AUTO_BASELINES = ("closure", "dns", "dmd")
#: Order of the methods in tables and plots.
METHOD_ORDER = ("multiscale", "closure", "dns", "dmd", "sindy")


# ----------------------------------------------------------------------------- scores

@dataclass
class MethodScores:
    """The scores of one method on the evaluation split (percent unless noted).

    Attributes:
        nrmse: mean over trajectories of the per-trajectory nRMSE.
        nrmse_per_traj: one per trajectory.
        nrmse_per_time: ``(n_t,)``, ``100 ||e(t_k)|| / ||u(t_k)||`` averaged over trajectories.
        crps: data units, at the scoring times (MAE for a deterministic method).
        spread_skill: dimensionless; NaN for a deterministic method.
        relative_error: the paper's pooled relative error, mean over every (trajectory, time) pair.
        relative_error_std: its population standard deviation over the same pairs.
        relative_error_per_time: ``(n_t,)``, mean over trajectories of ``eps(t_k)`` (the same
            values as ``nrmse_per_time`` for a finite prediction; ``inf`` where a frame diverged).
        relative_error_n_inf: number of (trajectory, time) pairs scored ``inf`` (diverged frames).
    """

    nrmse: float
    nrmse_per_traj: list[float]
    nrmse_per_time: np.ndarray
    crps: float
    spread_skill: float
    relative_error: float = float("nan")
    relative_error_std: float = float("nan")
    relative_error_per_time: np.ndarray | None = None
    relative_error_n_inf: int = 0


def score_prediction(pred: Prediction, truth: np.ndarray) -> MethodScores:
    """Score ``pred`` against ``truth`` ``(n_traj, n_t, C, *grid)``: the stored observations of the
    evaluated split (noise included), the same shape as ``pred.mean``.

    Raises:
        DataError: shapes differ, or fewer than 2 output times (a score needs a forecast time).
    """
    from pymsde.evaluate.metrics import (crps_ensemble, nrmse, nrmse_per_time, relative_error,
                                         relative_error_summary, spread_skill)

    truth = np.asarray(truth, dtype=np.float64)
    if pred.mean.shape != truth.shape:
        raise DataError(f"prediction {pred.name!r} has shape {pred.mean.shape}; expected the data's {truth.shape}")
    if truth.ndim < 3 or truth.shape[1] < 2:
        raise DataError(f"scores of {pred.name!r}: the data have shape {truth.shape}, i.e. "
                        f"{truth.shape[1] if truth.ndim > 1 else 0} output time(s) per trajectory; expected "
                        f"(n_traj, n_t, C, *grid) with n_t >= 2 (the initial time and at least one forecast time)")
    n_traj = truth.shape[0]
    idx = pred.score_index
    eps = relative_error(pred.mean, truth)                     # (n_traj, n_t), percent, inf if diverged
    summary = relative_error_summary(pred.mean, truth)
    if np.all(np.isfinite(eps)):
        per_traj = [float(nrmse(pred.mean[i], truth[i])) for i in range(n_traj)]
        per_time = np.mean([np.asarray(nrmse_per_time(pred.mean[i], truth[i]), dtype=np.float64)
                            for i in range(n_traj)], axis=0)
    else:                                                      # a diverged forecast: inf, not an error
        per_traj = [float(v) for v in np.sqrt(np.mean(eps ** 2, axis=1))]
        per_time = eps.mean(0)
    scored = pred.mean[:, idx]
    if pred.deterministic:
        # A point forecast's CRPS is its absolute error; the spread-skill ratio is 0/RMSE for
        # a spread that does not exist, so it is reported as undefined rather than 0.
        with np.errstate(over="ignore", invalid="ignore"):
            crps = float(np.mean(np.abs(scored - truth[:, idx]))) if np.all(np.isfinite(scored)) else float("inf")
        ss = float("nan")
    else:
        crps = float(np.mean([float(crps_ensemble(pred.samples[i], truth[i, idx])) for i in range(n_traj)]))
        ss = float(np.mean([float(spread_skill(pred.samples[i], truth[i, idx])) for i in range(n_traj)]))
    return MethodScores(nrmse=float(np.mean(per_traj)), nrmse_per_traj=per_traj, nrmse_per_time=per_time,
                        crps=crps, spread_skill=ss, relative_error=summary["mean"],
                        relative_error_std=summary["std"], relative_error_per_time=eps.mean(0),
                        relative_error_n_inf=int(summary["n_inf"]))


def divergence_notes(scores: dict[str, MethodScores]) -> list[str]:
    """One note per method whose prediction diverged (some frames scored ``inf``)."""
    return [f"{m}: the forecast diverged ({s.relative_error_n_inf} (trajectory, time) frames non-finite or "
            f"overflowing); its error scores are infinite (inf in the report, null in the JSON)"
            for m, s in scores.items() if s.relative_error_n_inf > 0]


def _json_float(x: float | None) -> float | None:
    """NaN / inf / None -> None (JSON has no NaN); otherwise a plain float."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class EvaluationResult:
    """Scores of every method plus what was evaluated (see the module docstring for ``metrics()``)."""

    scores: dict[str, MethodScores]
    meta: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None

    def metrics(self) -> dict[str, Any]:
        """The metrics JSON as a dict: NaN -> None, nRMSE in percent."""
        names = [m for m in METHOD_ORDER if m in self.scores] + [m for m in self.scores if m not in METHOD_ORDER]
        out: dict[str, Any] = {
            "nrmse": {m: _json_float(self.scores[m].nrmse) for m in names},
            "relative_error": {m: {"mean": _json_float(self.scores[m].relative_error),
                                   "std": _json_float(self.scores[m].relative_error_std)} for m in names},
            "crps": {m: _json_float(self.scores[m].crps) for m in names},
            "spread_skill": {m: _json_float(self.scores[m].spread_skill) for m in names},
            "nrmse_per_traj": {m: [_json_float(v) for v in self.scores[m].nrmse_per_traj] for m in names},
        }
        out.update({k: v for k, v in self.meta.items()})
        out["report"] = None if self.report_path is None else str(self.report_path)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """``json.dumps`` of :meth:`metrics` (strict JSON: no NaN)."""
        return json.dumps(self.metrics(), indent=indent, allow_nan=False)


# ----------------------------------------------------------------------------- input checks

def parse_baselines(spec: str | Sequence[str] | None) -> tuple[str, ...] | str:
    """``"closure,dns,dmd"`` -> ``("closure", "dns", "dmd")``; ``""``/``"none"`` -> ``()``;
    ``None``/``"auto"`` -> ``"auto"`` (resolved against the run and the data by the evaluation).
    ConfigError (one line, the valid names) on an unknown name."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "auto"):
        return "auto"
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip() and s.strip().lower() != "none"))
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise ConfigError(f"unknown baseline {bad[0]!r}; expected a comma-separated subset of {','.join(BASELINES)}, "
                          f"'auto' (the default: {','.join(AUTO_BASELINES)} where available) or 'none'")
    return names


# ----------------------------------------------------------------------------- report

def _fmt(x: float | None, spec: str) -> str:
    """``n/a`` for None / NaN, ``inf`` for +inf (a diverged forecast), else ``format(x, spec)``."""
    if x is None or math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else format(x, spec)


#: Columns of the metrics table after ``method``: header label -> the keys its cell parses into.
_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "nRMSE (%)": ("nrmse",),
    "rel. error (%), mean ± std": ("relative_error", "relative_error_std"),
    "CRPS": ("crps",),
    "spread-skill": ("spread_skill",),
    "forecast time (s)": ("forecast_time_s",),
    "training time (s)": ("training_time_s",),
}


def metrics_table(result: EvaluationResult) -> str:
    """The markdown metrics table: one row per method (columns: :data:`_TABLE_COLUMNS`)."""
    train = result.meta.get("training_time_s", {}) or {}
    fc = result.meta.get("forecast_time_s", {}) or {}
    lines = ["| method | " + " | ".join(_TABLE_COLUMNS) + " |", "|---" * (len(_TABLE_COLUMNS) + 1) + "|"]
    names = [m for m in METHOD_ORDER if m in result.scores] + [m for m in result.scores if m not in METHOD_ORDER]
    for m in names:
        s = result.scores[m]
        rel = f"{_fmt(s.relative_error, '.2f')} ± {_fmt(s.relative_error_std, '.2f')}"
        lines.append(f"| {m} | {_fmt(s.nrmse, '.2f')} | {rel} | {_fmt(s.crps, '.3g')} | "
                     f"{_fmt(s.spread_skill, '.2f')} | {_fmt(fc.get(m), '.1f')} | {_fmt(train.get(m), '.1f')} |")
    return "\n".join(lines)


def _cell_value(cell: str) -> float | None:
    return None if cell == "n/a" else float(cell)       # float("inf") reads "inf"


def parse_metrics_table(text: str) -> dict[str, dict[str, float | None]]:
    """Read the metrics table back from a report's markdown: method -> column -> value (None for
    n/a, ``inf`` for a diverged forecast).

    Columns: ``nrmse``, ``relative_error``, ``relative_error_std`` (the cell ``mean ± std``),
    ``crps``, ``spread_skill``, ``forecast_time_s``, ``training_time_s``; the columns are read
    from the header, so a report written before the relative-error column still parses (without
    those two keys). Raises DataError when the report holds no metrics table or a cell is malformed.
    """
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("| method | nRMSE"))
    except StopIteration:
        raise DataError("report: no metrics table (a line starting '| method | nRMSE') found") from None
    header = [c.strip() for c in lines[start].strip().strip("|").split("|")][1:]
    unknown = [h for h in header if h not in _TABLE_COLUMNS]
    if unknown:
        raise DataError(f"report: metrics table column {unknown[0]!r} unknown; expected some of {list(_TABLE_COLUMNS)}")
    rows: dict[str, dict[str, float | None]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(header) + 1:
            raise DataError(f"report: metrics row {line!r} has {len(cells)} cells; expected {len(header) + 1}")
        row: dict[str, float | None] = {}
        try:
            for label, cell in zip(header, cells[1:]):
                keys = _TABLE_COLUMNS[label]
                parts = [cell] if len(keys) == 1 else [p.strip() for p in cell.split("±")]
                if cell == "n/a":
                    parts = ["n/a"] * len(keys)
                if len(parts) != len(keys):
                    raise ValueError(cell)
                row.update({k: _cell_value(p) for k, p in zip(keys, parts)})
        except ValueError:
            raise DataError(f"report: metrics row {line!r} has a malformed cell; expected numbers, 'inf' or "
                            f"'n/a'") from None
        rows[cells[0]] = row
    return rows
