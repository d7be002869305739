"""Scores of predictions, the metrics JSON, and the report (markdown + PNGs) they make.

:func:`pymsde.workflows.evaluation.evaluate_run` produces the predictions (the model and each
baseline of :mod:`pymsde.evaluate.baselines`); here they are scored (:func:`score_prediction`)
and written up (:func:`write_report`).

Scores (per method; trajectories of the split averaged with equal weight):

- ``nrmse``: METHOD.md section 7, in percent, of the prediction (ensemble mean) over all output
  times of a trajectory (the initial time included, as in the paper's code).
- ``crps``: the ensemble CRPS (:func:`pymsde.evaluate.metrics.crps_ensemble`), averaged over
  grid points and the scoring times (``n_score`` evenly spaced output times after t0), in the
  data's units. For the deterministic DNS it is the mean absolute error at the same times
  (the CRPS of a point forecast).
- ``spread_skill``: ensemble spread over the RMSE of the ensemble mean at the scoring times
  (:func:`pymsde.evaluate.metrics.spread_skill`); ~1 for a calibrated ensemble. Undefined for
  the DNS: ``NaN`` in Python, ``null`` in the JSON, ``n/a`` in the report.

The metrics JSON (``pymsde evaluate --json``, :meth:`EvaluationResult.metrics`) is
``{"nrmse": {method: %}, "crps": {...}, "spread_skill": {...}, "nrmse_per_traj": {...},
"forecast_time_s": {...}, "training_time_s": {...}, "backend", "data", "split", "n_traj",
"n_samples", "run", "closure_run", "report", "notes", "coverage"}``; a method that could not be
run (e.g. no closure run found) is absent from the per-method tables and explained in ``notes``.
``coverage`` (:mod:`pymsde.evaluate.coverage`; null when the data file records no train split)
compares each evaluated trajectory's initial field with the training trajectories' range, and
``notes`` names the trajectories outside it (their forecasts are extrapolations).
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pymsde.evaluate.baselines import Prediction
from pymsde.util.atomic import atomic_write_text
from pymsde.util.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Baselines ``evaluate_run`` knows, in report order.
BASELINES = ("closure", "dns")
#: Order of the methods in tables and plots.
METHOD_ORDER = ("multiscale", "closure", "dns")


# ----------------------------------------------------------------------------- scores

@dataclass
class MethodScores:
    """The scores of one method on the evaluation split.

    Attributes:
        nrmse: percent, mean over trajectories of the per-trajectory nRMSE.
        nrmse_per_traj: percent, one per trajectory.
        nrmse_per_time: ``(n_t,)`` percent, ``||e(t_k)|| / ||u(t_k)||`` averaged over trajectories.
        crps: data units, at the scoring times (MAE for a deterministic method).
        spread_skill: dimensionless; NaN for a deterministic method.
    """

    nrmse: float
    nrmse_per_traj: list[float]
    nrmse_per_time: np.ndarray
    crps: float
    spread_skill: float


def score_prediction(pred: Prediction, truth: np.ndarray) -> MethodScores:
    """Score ``pred`` against ``truth`` ``(n_traj, n_t, C, *grid)`` (the data, same shape as ``pred.mean``)."""
    from pymsde.evaluate.metrics import crps_ensemble, nrmse, nrmse_per_time, spread_skill

    truth = np.asarray(truth, dtype=np.float64)
    if pred.mean.shape != truth.shape:
        raise DataError(f"prediction {pred.name!r} has shape {pred.mean.shape}; expected the data's {truth.shape}")
    n_traj = truth.shape[0]
    idx = pred.score_index
    per_traj = [float(nrmse(pred.mean[i], truth[i])) for i in range(n_traj)]
    per_time = np.mean([np.asarray(nrmse_per_time(pred.mean[i], truth[i]), dtype=np.float64)
                        for i in range(n_traj)], axis=0)
    if pred.deterministic:
        # A point forecast's CRPS is its absolute error; the spread-skill ratio is 0/RMSE for
        # a spread that does not exist, so it is reported as undefined rather than 0.
        crps = float(np.mean(np.abs(pred.mean[:, idx] - truth[:, idx])))
        ss = float("nan")
    else:
        crps = float(np.mean([float(crps_ensemble(pred.samples[i], truth[i, idx])) for i in range(n_traj)]))
        ss = float(np.mean([float(spread_skill(pred.samples[i], truth[i, idx])) for i in range(n_traj)]))
    return MethodScores(nrmse=float(np.mean(per_traj)), nrmse_per_traj=per_traj, nrmse_per_time=per_time,
                        crps=crps, spread_skill=ss)


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

def parse_baselines(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"closure,dns"`` -> ``("closure", "dns")``; ``""``/``"none"`` -> ``()``. ConfigError on an unknown name."""
    if spec is None:
        return BASELINES
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip() and s.strip().lower() != "none"))
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise ConfigError(f"unknown baseline {bad[0]!r}; expected a comma-separated subset of {','.join(BASELINES)}")
    return names


# ----------------------------------------------------------------------------- report

def _fmt(x: float, spec: str) -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def metrics_table(result: EvaluationResult) -> str:
    """The markdown metrics table: one row per method."""
    train = result.meta.get("training_time_s", {}) or {}
    fc = result.meta.get("forecast_time_s", {}) or {}
    lines = ["| method | nRMSE (%) | CRPS | spread-skill | forecast time (s) | training time (s) |",
             "|---|---|---|---|---|---|"]
    names = [m for m in METHOD_ORDER if m in result.scores] + [m for m in result.scores if m not in METHOD_ORDER]
    for m in names:
        s = result.scores[m]
        lines.append(f"| {m} | {_fmt(s.nrmse, '.2f')} | {_fmt(s.crps, '.3g')} | {_fmt(s.spread_skill, '.2f')} | "
                     f"{_fmt(fc.get(m), '.1f')} | {_fmt(train.get(m), '.1f')} |")
    return "\n".join(lines)


def parse_metrics_table(text: str) -> dict[str, dict[str, float | None]]:
    """Read the metrics table back from a report's markdown: method -> column -> value (None for n/a).

    Columns: ``nrmse``, ``crps``, ``spread_skill``, ``forecast_time_s``, ``training_time_s``.
    Raises DataError when the report holds no metrics table.
    """
    keys = ("nrmse", "crps", "spread_skill", "forecast_time_s", "training_time_s")
    rows: dict[str, dict[str, float | None]] = {}
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("| method | nRMSE"))
    except StopIteration:
        raise DataError("report: no metrics table (a line starting '| method | nRMSE') found") from None
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(keys) + 1:
            raise DataError(f"report: metrics row {line!r} has {len(cells)} cells; expected {len(keys) + 1}")
        rows[cells[0]] = {k: (None if c == "n/a" else float(c)) for k, c in zip(keys, cells[1:])}
    return rows


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # different drives on Windows
        return str(path)


def write_report(result: EvaluationResult, predictions: dict[str, Prediction], traj, out_dir: str | os.PathLike,
                 *, plots: bool = True, traj_index: int = 0) -> Path:
    """Write ``report.md``, ``metrics.json`` (:meth:`EvaluationResult.to_json`) and the PNG
    plots (unless ``plots=False``) into ``out_dir``.

    Args:
        result: the scores and metadata.
        predictions: method name -> :class:`Prediction` (for the plots).
        traj: the evaluation ``Trajectories`` (truth).
        traj_index: which trajectory of the split the field plots show.

    Returns:
        the path of ``report.md``; also stored in ``result.report_path``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, Path]] = []
    if plots:
        figures = write_plots(result, predictions, traj, out, traj_index=traj_index)
    meta = result.meta
    lines = ["# pymsde evaluation report", "",
             f"Forecasts of the `{meta.get('split', '?')}` split of `{meta.get('data', '?')}` "
             f"({meta.get('n_traj', '?')} trajectories, {meta.get('n_t', '?')} output times each) from each "
             f"trajectory's initial observation.", "",
             metrics_table(result), "",
             "nRMSE: METHOD.md section 7, ensemble mean vs data over all output times, in percent, averaged over "
             "trajectories. CRPS (data units) and spread-skill (ensemble spread / RMSE of the ensemble mean; ~1 "
             f"when calibrated) at {meta.get('n_score', '?')} evenly spaced output times. The DNS is deterministic: "
             "its CRPS is the mean absolute error and its spread-skill is undefined (n/a).", "",
             "## Setup", ""]
    setup = [("run", meta.get("run")), ("closure run", meta.get("closure_run")), ("data", meta.get("data")),
             ("split", meta.get("split")), ("backend", meta.get("backend")),
             ("ensemble size", meta.get("n_samples")), ("forecast solver", meta.get("solver")),
             ("seed", meta.get("seed")), ("checkpoint", meta.get("checkpoint")), ("coarse grid", meta.get("coarse_shape")),
             ("micro dim", meta.get("micro_dim")), ("pymsde", meta.get("pymsde_version")),
             ("torch", meta.get("torch_version")), ("evaluated at", meta.get("date"))]
    lines += [f"- {k}: `{v}`" for k, v in setup if v is not None]
    if meta.get("nrmse_per_traj_note"):
        lines.append(f"- {meta['nrmse_per_traj_note']}")
    notes = meta.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if figures:
        lines += ["", "## Figures", ""]
        for caption, path in figures:
            lines += [f"### {caption}", "", f"![{caption}]({_rel(path, out)})", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    result.report_path = path                              # before to_json: it names the report
    atomic_write_text(out / "metrics.json", result.to_json() + "\n")
    return path


def write_plots(result: EvaluationResult, predictions: dict[str, Prediction], traj, out: Path,
                *, traj_index: int = 0) -> list[tuple[str, Path]]:
    """The report's PNGs; returns ``(caption, path)`` pairs.

    1-D: forecast vs truth snapshots with the ensemble's +-2 std band (each ensemble method),
    space-time diagrams of truth, predictions and errors; 2-D: field snapshots of truth and
    every method side by side; both: nRMSE vs time for every method. Channel 0 is drawn
    (plus one set per further channel for multi-channel data).
    """
    from pymsde.evaluate import plots as P

    i = traj_index
    t = np.asarray(traj.t[i], dtype=np.float64)
    truth = np.asarray(traj.u[i], dtype=np.float64)          # (n_t, C, *grid)
    names = [m for m in METHOD_ORDER if m in predictions] + [m for m in predictions if m not in METHOD_ORDER]
    figs: list[tuple[str, Path]] = []
    curves = {m: result.scores[m].nrmse_per_time for m in names if m in result.scores}
    p = out / "error_vs_time.png"
    P.plot_error_curves(t, curves, p, ylabel="relative L2 error (%)")
    figs.append(("Error vs time (relative L2 error, percent, averaged over trajectories)", p))
    snap_idx = np.unique(np.round(np.linspace(0, len(t) - 1, 4)).astype(int))
    for c in range(truth.shape[1]):
        sfx = "" if truth.shape[1] == 1 else f"_c{c}"
        ctitle = "" if truth.shape[1] == 1 else f" (channel {c})"
        if traj.grid.ndim == 1:
            x = traj.grid.coordinates(0)
            for m in names:
                pred = predictions[m]
                std = None if pred.std is None else pred.std[i, snap_idx, c]
                p = out / f"profiles_{m}{sfx}.png"
                P.plot_profiles(x, truth[snap_idx, c], pred.mean[i, snap_idx, c], std, t[snap_idx], p)
                band = "deterministic, no band" if std is None else "ensemble mean +- 2 std band"
                figs.append((f"{m}: prediction vs truth at {len(snap_idx)} times ({band}){ctitle}", p))
            panels = {"truth": truth[:, c]}
            panels.update({m: predictions[m].mean[i, :, c] for m in names})
            p = out / f"spacetime{sfx}.png"
            P.plot_spacetime(panels, x, t, p)
            figs.append((f"Space-time: truth and predictions{ctitle}", p))
            err = {f"error {m}": predictions[m].mean[i, :, c] - truth[:, c] for m in names}
            p = out / f"spacetime_error{sfx}.png"
            P.plot_spacetime(err, x, t, p)
            figs.append((f"Space-time: prediction minus truth{ctitle}", p))
        else:
            panels = {"truth": truth[snap_idx, c]}
            panels.update({m: predictions[m].mean[i, snap_idx, c] for m in names})
            p = out / f"snapshots{sfx}.png"
            P.plot_snapshots(panels, t[snap_idx], p)
            figs.append((f"Snapshots: truth and predictions side by side{ctitle}", p))
    return figs
