"""Evaluation of a trained run against its baselines: what ``pymsde evaluate`` and ``pymsde demo`` run.

:func:`evaluate_run` loads a run directory (and the closure run beside it), checks that the
evaluation data live on the run's training grid (:func:`pymsde.model.config.check_data_fits`),
forecasts every trajectory of the chosen split with the model and each baseline
(:mod:`pymsde.evaluate.baselines`: closure, under-resolved DNS, and on request the final
paper's DMD and POD-SINDy, fitted on the same data file's ``train`` / ``val`` splits), scores
them against the stored observations (:func:`pymsde.evaluate.report.score_prediction`)
and writes ``report.md`` plus PNG plots (:func:`pymsde.evaluate.writer.write_report`). The
scores and the metrics JSON are described in :mod:`pymsde.evaluate.report`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from pymsde import __version__
from pymsde.backends.protocol import resolve_backend
from pymsde.data.io import HDF5_SUFFIXES, load
from pymsde.data.lazy import LazyTrajectories, open_lazy
from pymsde.evaluate.baselines import (DEFAULT_SCORE_TIMES, Prediction, check_dmd_time_step, dmd_prediction,
                                      dns_prediction, dns_unavailable, model_prediction, sindy_prediction)
from pymsde.evaluate.coverage import coverage_notes, initial_coverage
from pymsde.evaluate.linear_baselines import BASELINE_MODULES, require_baseline_packages
from pymsde.evaluate.report import (AUTO_BASELINES, DEFAULT_BASELINES, EvaluationResult, divergence_notes,
                                    parse_baselines, score_prediction)
from pymsde.evaluate.writer import write_report
from pymsde.model.config import check_data_fits
from pymsde.training.config import FORECAST_SOLVERS
from pymsde.training.run import check_run_dir, load_run
from pymsde.util.errors import ConfigError


def _training_time(metadata: Any) -> float | None:
    """Training wall time (s) from a run's ``metadata.json`` (None when not recorded)."""
    if not isinstance(metadata, dict):
        return None
    v = metadata.get("train_time_s")  # recorded by pymsde.training.run
    return float(v) if isinstance(v, (int, float)) else None


def _training_budget(metadata: Any) -> dict[str, int | None]:
    """A run's training budget from its ``metadata.json``: optimiser steps, epochs, training
    trajectories (None where not recorded)."""
    meta = metadata if isinstance(metadata, dict) else {}
    return {k: (int(meta[k]) if isinstance(meta.get(k), (int, float)) else None)
            for k in ("steps", "epochs", "n_traj_train")}


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
    check_run_dir(run_dir)
    model, configs, metadata = load_run(run_dir, which=which)
    model.eval()
    metadata["forecast_solver"] = configs["train"].forecast_solver      # the scheme the run forecasts with
    return model, metadata


def _initial_coverage(traj_all, traj, split: str) -> dict | None:
    """:func:`~pymsde.evaluate.coverage.initial_coverage` of the evaluated split against the data
    file's ``train`` split; None when the file records no train split or the train split itself
    (or everything) is evaluated."""
    train_idx = traj_all.splits.get("train")
    if train_idx is None or len(train_idx) == 0 or split in ("train", "all", "*"):
        return None
    interval = traj_all.time_splits.get("train")
    if interval is not None:
        # split in time: a forecast starts at the test interval's first frame, and training
        # windows start at every frame of the train interval, so those frames are the range
        frames = np.asarray(traj_all.get_split("train").u[:])
        return initial_coverage(frames.reshape(-1, *frames.shape[2:]), np.asarray(traj.u)[:, 0])
    train = traj_all.get_split("train")          # a lazy file reads the initial frames only
    return initial_coverage(np.asarray(train.u[:, 0]), np.asarray(traj.u)[:, 0])


def _data_sha(metadata: Any) -> str | None:
    data = metadata.get("data") if isinstance(metadata, dict) else None
    sha = data.get("sha256") if isinstance(data, dict) else None
    return sha or None


def closure_mismatch(model, metadata, closure_model, closure_meta) -> str | None:
    """Why a closure run is not the baseline of this run (one line), or None when it is: the closure
    baseline is the same model with ``micro_dim = 0`` (docs/method.md section 9), on the same mesh,
    trained on the same data file (the SHA-256 both runs recorded)."""
    if int(closure_model.config.micro_dim) != 0:
        return f"micro_dim = {closure_model.config.micro_dim}; the closure baseline is the model with micro_dim = 0"
    for key in ("coarse_shape", "stencil_radius"):
        mine, theirs = getattr(model.config, key), getattr(closure_model.config, key)
        if mine != theirs:                     # ModelConfig normalises shapes to tuples
            return (f"{key} = {theirs}, but the run evaluated has {key} = {mine} (train the closure with the "
                    f"same --coarse and --radius)")
    mine, theirs = _data_sha(metadata), _data_sha(closure_meta)
    if mine and theirs and mine != theirs:
        return (f"it was trained on another data file (SHA-256 {theirs[:12]}... vs the run's {mine[:12]}...; "
                f"{(closure_meta.get('data') or {}).get('path')})")
    return None


def _load_closure(run: Path, closure_run, checkpoint: str, model, metadata, traj_all, data_name: str,
                  notes: list[str], required: bool):
    """The closure model, its metadata and its folder, or ``(None, None, None)`` with a note.

    ``required`` (closure named in ``--baselines``, or ``--closure-run`` given): a missing or
    mismatched closure run is a ConfigError; otherwise (``auto``) it is left out with a note.
    """
    closure_dir = find_closure_run(run, closure_run)
    if closure_dir is None:
        notes.append("closure baseline skipped: no closure run found (pass --closure-run DIR; train one "
                     "with `pymsde train DATA --micro 0` and the same settings as the model)")
        return None, None, None
    closure_model, closure_meta = _load(closure_dir, checkpoint)
    why = closure_mismatch(model, metadata, closure_model, closure_meta)
    if why is None:
        check_data_fits(closure_model.config, traj_all, data_name, f"closure run {closure_dir}")
        notes.append(f"closure baseline: the run {closure_dir}"
                     f"{'' if closure_run is not None else ' (found next to the evaluated run)'}")
        return closure_model, closure_meta, closure_dir
    if required or closure_run is not None:
        raise ConfigError(f"closure run {closure_dir}: {why}")
    notes.append(f"closure baseline skipped: the run {closure_dir} next to the evaluated one does not match: {why}")
    return None, None, None


def _first_times(traj, n: int, data_name: str):
    """``traj`` cut to its first ``n`` times (the evaluated split only)."""
    import dataclasses

    if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n:
        raise ConfigError(f"score_steps = {n!r}; expected an integer >= 2 (the scored leading times)")
    if n >= traj.n_t:
        return traj
    attrs = {**traj.attrs, "source": f"{data_name} (first {n} of {traj.n_t} times)"}
    return dataclasses.replace(traj, u=traj.u[:, :n], t=traj.t[:, :n], f=None if traj.f is None else traj.f[:, :n],
                               attrs=attrs)


def auto_baselines(traj_all, notes: list[str]) -> tuple[str, ...]:
    """The baselines of ``--baselines auto`` (the default): every one of :data:`AUTO_BASELINES` that
    needs nothing missing -- closure (decided when its run is looked for), dns when the data name a
    case with a coarse solver, dmd when pydmd is installed and the data have a train split. Each
    one left out gets a note saying why."""
    import importlib.util

    names = ["closure"]
    why = dns_unavailable(traj_all)
    if why is None:
        names.append("dns")
    else:
        notes.append(f"dns baseline skipped: {why}")
    missing = [m for m in BASELINE_MODULES.get("dmd", ()) if importlib.util.find_spec(m) is None]
    if missing:
        notes.append(f"dmd baseline skipped: {missing[0]} is not installed (pip install pymsde[baselines])")
    elif len(traj_all.splits.get("train", ())) == 0:
        notes.append("dmd baseline skipped: the data file has no train split to fit it on")
    else:
        names.append("dmd")
    return tuple(n for n in AUTO_BASELINES if n in names)


def _library_baseline_splits(traj_all, traj, names: Sequence[str], data_name: str) -> dict[str, Any]:
    """The data file's ``train`` (dmd, sindy) and ``val`` (sindy) splits the library baselines fit on.

    Raises:
        DataError: one line naming the file and the missing (or empty) split; for dmd, an
            evaluated trajectory whose time step differs from the training trajectory's.
    """
    need = {"train": [n for n in ("dmd", "sindy") if n in names], "val": [n for n in ("sindy",) if n in names]}
    out = {}
    for split, users in need.items():
        if users:
            what = " and ".join(users)
            out[split] = traj_all.get_split(split, data_name, f" (the {what} baseline{'s' if len(users) > 1 else ''} "
                                                               f"fit{'' if len(users) > 1 else 's'} on the {split} split)")
    if "dmd" in names:
        check_dmd_time_step(traj, out["train"])
    return out


def _library_predictions(names: Sequence[str], traj, splits: dict[str, Any], config, n_score: int) -> dict[str, Prediction]:
    """The DMD and POD-SINDy predictions among ``names``; ``n_coarse = C * prod(coarse_shape)`` of the model."""
    n_coarse = int(config.channels) * int(np.prod(config.coarse_shape))
    preds: dict[str, Prediction] = {}
    if "dmd" in names:
        preds["dmd"] = dmd_prediction(traj, splits["train"], n_coarse, n_score=n_score)
    if "sindy" in names:
        preds["sindy"] = sindy_prediction(traj, splits["train"], splits["val"], n_coarse, n_score=n_score)
    return preds


def evaluate_run(run_dir: str | os.PathLike, data, *, split: str = "test",
                 baselines: str | Sequence[str] | None = DEFAULT_BASELINES,
                 closure_run: str | os.PathLike | None = None,
                 n_samples: int = 32, out: str | os.PathLike | None = None, backend: str = "torch",
                 seed: int = 0, n_score: int = DEFAULT_SCORE_TIMES, plots: bool = True,
                 show_progress: bool = True, checkpoint: str = "best",
                 extra_meta: dict | None = None, score_steps: int | None = None,
                 solver: str | None = None) -> EvaluationResult:
    """Evaluate the run in ``run_dir`` and its baselines on a split of ``data``; write the report.

    Args:
        run_dir: a run directory of ``pymsde train`` (config + checkpoint).
        data: a data file path (any format :func:`pymsde.data.io.load` reads) or ``Trajectories``.
        split: the split to evaluate (``attrs["split"]``), or ``"all"``.
        baselines: subset of ``("closure", "dns", "dmd", "sindy")`` (a comma-separated string is
            accepted), or ``"auto"``/None (the default): closure, dns and dmd where each is
            available (:func:`auto_baselines`; each one left out is named in a note). A baseline
            named explicitly that cannot run is an error. ``dmd`` fits on the first trajectory of the
            data file's ``train`` split, ``sindy`` on the ``train`` split with its settings
            chosen on the ``val`` split; both need ``pip install pymsde[baselines]``.
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
        score_steps: forecast and score only the first ``score_steps`` times of each evaluated
            trajectory (the final paper's wave 1-D: 201 of 1001); DMD and POD-SINDy are still
            fitted on the whole train / val trajectories, as the paper does. None: every time.
        solver: the SDE scheme of the model forecasts (``"em"``, ``"heun"``, ``"sra1"``); None:
            each run's own ``forecast_solver`` (``[train]`` of its config; ``"em"``, the paper's,
            unless the run was trained on derived defaults or set it).

    Raises:
        ConfigError: incomplete run directory, unknown baseline, a "closure" run with micro_dim > 0,
            a library baseline whose package is missing.
        DataError: the data's grid differs from the training grid; missing split (the evaluated
            one, or the train / val split a library baseline fits on).

    All of these are raised before any forecast is made.
    """
    names = parse_baselines(baselines)
    auto = names == "auto"
    if not auto:
        require_baseline_packages(names)         # a missing pydmd / pysindy before any work
    run = check_run_dir(run_dir)
    if isinstance(data, (str, os.PathLike)):
        data_name = str(data)
        # an HDF5 file stays on disk: only the evaluated split is read (and the trajectories a
        # library baseline fits on), so the dam break's 50 test trajectories cost 330 MB, not 6.6 GB
        traj_all = open_lazy(data) if Path(data).suffix.lower() in HDF5_SUFFIXES else load(data)
    else:
        data_name = str(data.attrs.get("source", "<in-memory data>"))
        traj_all = data
    if solver is not None and solver not in FORECAST_SOLVERS:
        raise ConfigError(f"evaluate: solver = {solver!r}; expected one of {', '.join(FORECAST_SOLVERS)}")
    backend_name = resolve_backend(backend).name      # checks the name; resolves Julia once
    model, metadata = _load(run, checkpoint)
    check_data_fits(model.config, traj_all, data_name, f"run {run}")
    traj = traj_all.get_split(split, data_name, "; pass --split all to evaluate every trajectory")
    if isinstance(traj, LazyTrajectories):
        traj = traj.to_trajectories()
    if score_steps is not None:
        traj = _first_times(traj, score_steps, data_name)
    notes: list[str] = []
    if auto:
        names = auto_baselines(traj_all, notes)
    library_splits = _library_baseline_splits(traj_all, traj, names, data_name)
    coverage = _initial_coverage(traj_all, traj, split)
    if coverage is not None:
        notes += coverage_notes(coverage)
    closure_model = closure_meta = closure_dir = None
    if "closure" in names:
        closure_model, closure_meta, closure_dir = _load_closure(run, closure_run, checkpoint, model, metadata,
                                                                 traj_all, data_name, notes, required=not auto)
    # the library baselines first: their float64 copies of the train / val splits (2.6 GB for
    # Burgers 2-D's 20 training trajectories) are freed before the ensembles' fields exist
    library = _library_predictions(names, traj, library_splits, model.config, n_score)
    split_sizes = {k: int(len(v)) for k, v in traj_all.splits.items()}
    del library_splits, traj_all      # a loaded file's other splits (2 GB for Burgers 2-D) go too
    preds: dict[str, Prediction] = {}
    with torch.no_grad():
        preds["multiscale"] = model_prediction(model, traj, name="multiscale", n_samples=n_samples, seed=seed,
                                               backend=backend_name, n_score=n_score, show_progress=show_progress,
                                               solver=solver or metadata["forecast_solver"])
        if closure_model is not None:
            preds["closure"] = model_prediction(closure_model, traj, name="closure", n_samples=n_samples, seed=seed,
                                                backend=backend_name, n_score=n_score, show_progress=show_progress,
                                                solver=solver or closure_meta["forecast_solver"])
    if "dns" in names:
        preds["dns"] = dns_prediction(traj, model.config.coarse_shape, n_score=n_score, backend=backend_name)
    preds.update(library)
    truth = np.asarray(traj.u, dtype=np.float64)       # the stored (noisy) observations
    scores = {m: score_prediction(p, truth) for m, p in preds.items()}
    notes += divergence_notes(scores)
    train_times = {"multiscale": _training_time(metadata)}
    if closure_model is not None:
        train_times["closure"] = _training_time(closure_meta)
    train_times.update({m: preds[m].info.get("fit_time_s") for m in ("dmd", "sindy") if m in preds})
    meta: dict[str, Any] = {
        "forecast_time_s": {m: round(p.wall_time_s, 3) for m, p in preds.items()},
        "training_time_s": {m: (None if v is None else round(v, 3)) for m, v in train_times.items()},
        "backend": backend_name, "data": data_name, "split": split, "n_traj": int(traj.n_traj),
        "n_t": int(traj.n_t), "score_steps": score_steps, "n_samples": int(n_samples), "n_score": int(len(preds["multiscale"].score_index)),
        "solver": preds["multiscale"].info.get("solver"), "seed": int(seed), "checkpoint": checkpoint, "run": str(run),
        "closure_run": None if closure_dir is None else str(closure_dir),
        "coarse_shape": list(map(int, model.config.coarse_shape)), "micro_dim": int(model.config.micro_dim),
        "pymsde_version": __version__, "torch_version": str(torch.__version__),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "notes": notes,
        "coverage": coverage, "split_sizes": split_sizes,
        "training": {"multiscale": _training_budget(metadata),
                     **({"closure": _training_budget(closure_meta)} if closure_model is not None else {})},
    }
    settings = {m: preds[m].info for m in ("dmd", "sindy") if m in preds}
    if settings:
        meta["baseline_settings"] = settings
    _merge_meta(meta, extra_meta or {})
    result = EvaluationResult(scores=scores, meta=meta)
    write_report(result, preds, traj, Path(out) if out is not None else run / "evaluation", plots=plots)
    return result


def _merge_meta(meta: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge ``extra`` into ``meta`` in place; dict values are merged one level deep."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(meta.get(k), dict):
            meta[k] = {**meta[k], **v}
        else:
            meta[k] = v
