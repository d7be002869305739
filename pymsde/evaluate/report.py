"""Evaluation of a trained run against its baselines, and the report it writes.

:func:`evaluate_run` is what ``pymsde evaluate`` and ``pymsde demo`` call: load a run
directory, check that the evaluation data live on the run's training grid, forecast every
trajectory of the chosen split with the model and with each baseline
(:mod:`pymsde.evaluate.baselines`), score them (:func:`score_prediction`) and write
``report.md`` plus PNG plots (:func:`write_report`).

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pymsde.evaluate.baselines import (DEFAULT_SCORE_TIMES, Prediction, dns_prediction,
                                       model_prediction)
from pymsde.evaluate.coverage import coverage_notes, initial_coverage
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

def check_grid_matches(config, traj, data_name: str = "evaluation data", run_name: str = "the run") -> None:
    """Raise DataError unless ``traj`` lives on the grid (and channels, mu, f) ``config`` was trained on.

    Args:
        config: the run's ``ModelConfig`` (``fine_shape``, ``channels``, ``boundary``, ``domain``,
            ``n_mu``, ``n_f``).
        traj: the evaluation ``Trajectories``.
    """
    grid = traj.grid
    want_shape = tuple(int(n) for n in config.fine_shape)
    if tuple(grid.shape) != want_shape:
        raise DataError(f"{data_name}: grid {tuple(grid.shape)} differs from the training grid {want_shape} of "
                        f"{run_name}; evaluate on data with the training grid (e.g. simulate with --n-grid "
                        f"{' '.join(map(str, want_shape))})")
    if tuple(grid.boundary) != tuple(config.boundary):
        raise DataError(f"{data_name}: boundary {tuple(grid.boundary)} differs from the training boundary "
                        f"{tuple(config.boundary)} of {run_name}")
    want_domain = np.asarray(config.domain, dtype=float).reshape(-1, 2)
    if not np.allclose(np.asarray(grid.domain, dtype=float), want_domain, rtol=1e-9, atol=1e-12):
        raise DataError(f"{data_name}: domain {[list(d) for d in grid.domain]} differs from the training domain "
                        f"{want_domain.tolist()} of {run_name}")
    if traj.channels != int(config.channels):
        raise DataError(f"{data_name}: {traj.channels} channels; {run_name} was trained on {config.channels}")
    for what, have, want in (("mu", traj.n_mu, getattr(config, "n_mu", 0)), ("f", traj.n_f, getattr(config, "n_f", 0))):
        if int(have) != int(want):
            raise DataError(f"{data_name}: {have} {what} values per trajectory; {run_name} was trained with {want}")


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    """Raise ConfigError unless ``run_dir`` is a complete run directory: its ``config.toml``
    and its ``checkpoint.pt`` (the files :mod:`pymsde.training.run` writes) are both there.

    Returns the run directory as a Path.
    """
    from pymsde.training.run import CHECKPOINT_FILE, CONFIG_FILE

    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run directory {run}: not found (expected the --out folder of `pymsde train`)")
    missing = [name for name in (CONFIG_FILE, CHECKPOINT_FILE) if not (run / name).is_file()]
    if missing:
        raise ConfigError(f"run directory {run} is incomplete: missing {', '.join(missing)} "
                          f"(was training interrupted before its first checkpoint?)")
    return run


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


# ----------------------------------------------------------------------------- orchestration

def _training_time(metadata: Any) -> float | None:
    """Training wall time (s) from a run's ``metadata.json`` (None when not recorded)."""
    if not isinstance(metadata, dict):
        return None
    v = metadata.get("train_time_s")  # recorded by pymsde.training.run
    return float(v) if isinstance(v, (int, float)) else None


def find_closure_run(run_dir: Path, closure_run: str | os.PathLike | None) -> Path | None:
    """The closure run to compare with: ``closure_run`` if given, else a sibling folder ``closure``.

    ``pymsde demo`` lays its runs out as ``OUT/multiscale`` and ``OUT/closure``, so evaluating
    ``OUT/multiscale`` finds its closure run without ``--closure-run``.
    """
    if closure_run is not None:
        return Path(closure_run)
    sibling = run_dir.resolve().parent / "closure"
    if sibling.is_dir() and sibling != run_dir.resolve():
        return sibling
    return None


def _load(run_dir: Path, which: str):
    from pymsde.training.run import load_run

    check_run_dir(run_dir)
    model, _, metadata = load_run(run_dir, which=which)
    model.eval()
    return model, metadata


def _select_split(traj, split: str, data_name: str):
    if split in ("all", "*"):
        return traj
    splits = traj.attrs.get("split") or {}
    if split not in splits:
        raise DataError(f"{data_name}: no split {split!r} recorded (attrs['split'] has "
                        f"{sorted(splits) or 'none'}); pass --split all to evaluate every trajectory")
    if len(splits[split]) == 0:
        raise DataError(f"{data_name}: split {split!r} is empty (attrs['split'][{split!r}] = []); expected at "
                        f"least one trajectory, or pass another --split")
    return traj.subset(np.asarray(splits[split], dtype=np.int64))


def _initial_coverage(traj_all, traj, split: str) -> dict | None:
    """:func:`~pymsde.evaluate.coverage.initial_coverage` of the evaluated split against the data
    file's ``train`` split; None when the file records no train split or the train split itself
    (or everything) is evaluated."""
    train_idx = traj_all.splits.get("train")
    if train_idx is None or len(train_idx) == 0 or split in ("train", "all", "*"):
        return None
    return initial_coverage(np.asarray(traj_all.u)[train_idx, 0], np.asarray(traj.u)[:, 0])


def evaluate_run(run_dir: str | os.PathLike, data, *, split: str = "test",
                 baselines: str | Sequence[str] | None = BASELINES, closure_run: str | os.PathLike | None = None,
                 n_samples: int = 32, out: str | os.PathLike | None = None, backend: str = "torch",
                 seed: int = 0, n_score: int = DEFAULT_SCORE_TIMES, plots: bool = True,
                 show_progress: bool = True, checkpoint: str = "best",
                 extra_meta: dict | None = None) -> EvaluationResult:
    """Evaluate the run in ``run_dir`` and its baselines on a split of ``data``; write the report.

    Args:
        run_dir: a run directory of ``pymsde train`` (config + checkpoint).
        data: a data file path (any format :func:`pymsde.data.io.load` reads) or ``Trajectories``.
        split: the split to evaluate (``attrs["split"]``), or ``"all"``.
        baselines: subset of ``("closure", "dns")`` (a comma-separated string is accepted).
        closure_run: the closure model's run directory; default: see :func:`find_closure_run`.
            When none is found the closure baseline is skipped and a note says so.
        n_samples: ensemble size of the model forecasts.
        out: where ``report.md`` and the PNGs go (default ``RUN_DIR/evaluation``).
        backend: ``"torch"``, ``"julia"`` or ``"auto"`` (resolved once; the name used is recorded).
        seed: forecast seed (the same for every method).
        n_score: number of scoring times for CRPS / spread-skill.
        plots: write the PNGs (needs matplotlib).
        checkpoint: ``"best"`` (lowest validation forecast error, ``best.pt``; falls back to the
            last checkpoint when the run was not validated) or ``"last"`` -- the same rule for
            the model and the closure run.
        extra_meta: merged into the result's metadata (e.g. the demo's training times).

    Raises:
        ConfigError: incomplete run directory, unknown baseline, a "closure" run with micro_dim > 0.
        DataError: the data's grid differs from the training grid; missing split.
    """
    from pymsde import __version__

    import torch

    run = check_run_dir(run_dir)
    names = parse_baselines(baselines)
    if isinstance(data, (str, os.PathLike)):
        from pymsde.data.io import load

        data_name = str(data)
        traj_all = load(data)
    else:
        data_name = str(data.attrs.get("source", "<in-memory data>"))
        traj_all = data
    backend_name = _resolve_backend_name(backend)
    model, metadata = _load(run, checkpoint)
    check_grid_matches(model.config, traj_all, data_name, f"run {run}")
    traj = _select_split(traj_all, split, data_name)
    notes: list[str] = []
    coverage = _initial_coverage(traj_all, traj, split)
    if coverage is not None:
        notes += coverage_notes(coverage)
    closure_dir = None
    closure_model = closure_meta = None
    if "closure" in names:
        closure_dir = find_closure_run(run, closure_run)
        if closure_dir is None:
            notes.append("closure baseline skipped: no closure run found (pass --closure-run DIR; train one "
                         "with `pymsde train DATA --micro 0` and the same settings as the model)")
        else:
            closure_model, closure_meta = _load(closure_dir, checkpoint)
            if int(closure_model.config.micro_dim) != 0:
                raise ConfigError(f"closure run {closure_dir}: micro_dim = {closure_model.config.micro_dim}; "
                                  f"the closure baseline is the model with micro_dim = 0")
            # METHOD.md section 7: baselines at equal resolution (the DNS runs on the model's mesh)
            for key in ("coarse_shape", "stencil_radius"):
                mine, theirs = getattr(model.config, key), getattr(closure_model.config, key)
                if mine != theirs:                     # ModelConfig normalises shapes to tuples
                    raise ConfigError(f"closure run {closure_dir}: {key} = {theirs}, but the run evaluated has "
                                      f"{key} = {mine}; the closure baseline is the same model with "
                                      f"micro_dim = 0 (train it with the same --coarse and --radius)")
            check_grid_matches(closure_model.config, traj_all, data_name, f"closure run {closure_dir}")
    preds: dict[str, Prediction] = {}
    with torch.no_grad():
        preds["multiscale"] = model_prediction(model, traj, name="multiscale", n_samples=n_samples, seed=seed,
                                               backend=backend_name, n_score=n_score, show_progress=show_progress)
        if closure_model is not None:
            preds["closure"] = model_prediction(closure_model, traj, name="closure", n_samples=n_samples, seed=seed,
                                                backend=backend_name, n_score=n_score, show_progress=show_progress)
    if "dns" in names:
        preds["dns"] = dns_prediction(traj, model.config.coarse_shape, n_score=n_score, backend=backend_name)
    truth = np.asarray(traj.u, dtype=np.float64)
    scores = {m: score_prediction(p, truth) for m, p in preds.items()}
    train_times = {"multiscale": _training_time(metadata)}
    if closure_model is not None:
        train_times["closure"] = _training_time(closure_meta)
    meta: dict[str, Any] = {
        "forecast_time_s": {m: round(p.wall_time_s, 3) for m, p in preds.items()},
        "training_time_s": {m: (None if v is None else round(v, 3)) for m, v in train_times.items()},
        "backend": backend_name, "data": data_name, "split": split, "n_traj": int(traj.n_traj),
        "n_t": int(traj.n_t), "n_samples": int(n_samples), "n_score": int(len(preds["multiscale"].score_index)),
        "solver": preds["multiscale"].info.get("solver"), "seed": int(seed), "checkpoint": checkpoint, "run": str(run),
        "closure_run": None if closure_dir is None else str(closure_dir),
        "coarse_shape": list(map(int, model.config.coarse_shape)), "micro_dim": int(model.config.micro_dim),
        "pymsde_version": __version__, "torch_version": str(torch.__version__),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "notes": notes,
        "coverage": coverage,
    }
    if extra_meta:
        for k, v in extra_meta.items():
            if isinstance(v, dict) and isinstance(meta.get(k), dict):
                meta[k] = {**meta[k], **v}
            else:
                meta[k] = v
    result = EvaluationResult(scores=scores, meta=meta)
    write_report(result, preds, traj, Path(out) if out is not None else run / "evaluation", plots=plots)
    return result


def _resolve_backend_name(backend: str) -> str:
    """The backend that will run: ``"torch"`` as asked, else what the backend switch resolves."""
    if backend not in ("torch", "julia", "auto"):
        raise ConfigError(f"backend {backend!r}; expected torch, julia or auto")
    if backend == "torch":
        return "torch"
    try:
        from pymsde.backends.protocol import resolve_backend
    except ImportError:
        if backend == "julia":
            from pymsde.util.errors import BackendUnavailableError

            raise BackendUnavailableError("backend 'julia': the backend switch (pymsde.backends.protocol) is not "
                                          "installed in this build; use --backend torch") from None
        return "torch"
    return str(resolve_backend(backend).name)
