"""Run directories: what a training run leaves behind, how it is written, and :func:`load_run`.

A run directory (``pymsde train ... --out RUN_DIR`` or ``fit(..., run_dir=RUN_DIR)``) holds:

================  ===================================================================
``config.toml``   the exact ``[model]`` options and ``[train]`` configuration used
``metadata.json`` package / torch / Python versions, the data file and its SHA-256,
                  device and dtype, sizes, wall time (``train_time_s``), final scores,
                  ``status`` (running, interrupted, done, diverged, failed)
``log.csv``       every ELBO term of every optimiser step (see ``LOG_COLUMNS``)
``val.csv``       validation records (ELBO terms on validation windows, forecast nRMSE)
``checkpoint.pt`` the latest checkpoint (model, configs, optimiser, RNG, sampler position)
``best.pt``       the checkpoint with the lowest validation forecast error (if validated)
``.pymsde.lock``  while a trainer runs: its pid, host and start time (:class:`RunLock`)
================  ===================================================================

The commit protocol (:class:`RunFiles`): ``checkpoint.pt`` is the run's one commit record.
It holds, besides the weights and the optimiser, the log rows, the validation history, the
step of the best model and the status, and it is written first (atomically); ``best.pt``,
``log.csv``, ``val.csv`` and ``metadata.json`` are derived from it and written after it. A
process killed at any instant therefore leaves either the old or the new checkpoint, and
resuming rebuilds the derived files from it (:meth:`RunFiles.open_resumed`: ``best.pt`` is
copied from the checkpoint when the checkpoint is the recorded best and ``best.pt`` lags;
stray temporary files are removed), so a resumed run ends exactly as an uninterrupted one.
:func:`load_run` rebuilds the trained model from a checkpoint alone.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import logging
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch

from pymsde.training.checkpoint import LOG_COLUMNS, check_weights_fit, load_checkpoint, save_checkpoint
from pymsde.training.config import TrainConfig, config_to_toml, kernel_bytes_lower_bound, parameters_lower_bound
from pymsde.util.atomic import DirectoryLock, atomic_copy, atomic_write_text, clean_stale_temps
from pymsde.util.errors import ConfigError, DataError, RunWriteError, check_memory, check_readable_file

log = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
LOG_FILE = "log.csv"
VAL_FILE = "val.csv"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
LOCK_FILE = ".pymsde.lock"
#: the files whose stray temporary copies (:func:`pymsde.util.atomic.clean_stale_temps`) a run removes
RUN_FILES = (CONFIG_FILE, METADATA_FILE, LOG_FILE, VAL_FILE, CHECKPOINT_FILE, BEST_FILE)
__all__ = ["LOG_COLUMNS", "RunLock", "RunFiles", "load_run", "LoadedRun", "check_run_dir", "check_run_target"]


class LoadedRun(NamedTuple):
    """What :func:`load_run` returns (unpacks as ``model, configs, metadata``).

    Attributes:
        model: the trained ``MultiscaleModel`` in eval mode, on the requested device.
        configs: ``{"model_config": ModelConfig, "train": TrainConfig}``.
        metadata: the run's ``metadata.json`` (dict; empty if the file is missing), plus
            ``"step"`` and ``"checkpoint"`` (the file loaded).
    """

    model: Any
    configs: dict
    metadata: dict


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    """Raise ConfigError unless ``run_dir`` is a complete run directory: its ``config.toml``
    and its ``checkpoint.pt`` (the files :mod:`pymsde.training.run` writes) are both there.

    Returns the run directory as a Path.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run directory {run}: not found (expected the --out folder of `pymsde train`)")
    missing = [name for name in (CONFIG_FILE, CHECKPOINT_FILE) if not (run / name).is_file()]
    if missing:
        raise ConfigError(f"run directory {run} is incomplete: missing {', '.join(missing)} "
                          f"(was training interrupted before its first checkpoint?)")
    return run


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def environment_info() -> dict:
    """Versions of the software that trains: pymsde, torch, Python, platform."""
    from pymsde import __version__

    return {"pymsde_version": __version__, "torch_version": str(torch.__version__),
            "python_version": sys.version.split()[0], "platform": platform.platform(),
            "torch_threads": torch.get_num_threads()}


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object file ({} when missing); DataError naming the file when it is not one."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return {}
    check_readable_file(path, "a JSON file", max_bytes=64 << 20)
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a JSON {type(obj).__name__}; expected a JSON object")
    return obj


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV table atomically (floats in full precision)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([repr(x) if isinstance(x, float) else x for x in r])
    atomic_write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike, skipped: list[int] | None = None) -> tuple[list[str], list[list[float]]]:
    """Read a numeric CSV written by :func:`write_csv` -> (columns, rows of floats).

    A row that is not numbers of the header's width (a damaged file) is skipped; its line
    number is appended to ``skipped`` when given, else it is a DataError naming the line.
    """
    path = Path(path)
    if not path.is_file():
        return [], []
    check_readable_file(path, "a CSV table")
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        r = csv.reader(fh)
        cols = next(r, [])
        rows = []
        for line, row in enumerate(r, start=2):
            try:
                if len(row) != len(cols):
                    raise ValueError(f"{len(row)} fields for {len(cols)} columns")
                rows.append([float(x) for x in row])
            except ValueError as err:
                if skipped is None:
                    raise DataError(f"{path}: line {line} is not a row of numbers ({err})") from None
                skipped.append(line)
    return cols, rows


def write_run_config(run_dir: str | os.PathLike, model_config, config: TrainConfig) -> None:
    """Write ``config.toml``: the model's architecture (``[model]``) and the training configuration."""
    header = ("pymsde training run configuration (written by pymsde.training; "
              "reuse with `pymsde train DATA --config config.toml`)")
    atomic_write_text(Path(run_dir) / CONFIG_FILE,
                      config_to_toml(model_config.architecture(), config, header=header))


def check_run_target(run_dir: str | os.PathLike, resume: bool) -> Path:
    """Refuse to overwrite an existing run unless resuming; creates nothing.

    Callers check with this before any work and create the directory only once everything
    else is validated, so a refused configuration leaves no half-written run directory behind.

    Raises ConfigError when ``run_dir`` is a file, when a checkpoint exists and ``resume`` is
    False, or when ``resume`` is True and there is no checkpoint to resume from.
    """
    run = Path(run_dir)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"run directory {run}: a file, not a directory; choose another --out")
    ckpt = run / CHECKPOINT_FILE
    has_ckpt = ckpt.exists() or ckpt.is_symlink()
    if resume and not has_ckpt:
        raise ConfigError(f"--resume: no {CHECKPOINT_FILE} in {run}; nothing to resume "
                          f"(start a new run without --resume)")
    if not resume and has_ckpt:
        raise ConfigError(f"run directory {run} already holds a run ({CHECKPOINT_FILE}); "
                          f"pass --resume to continue it or choose another --out")
    return run


def prepare_run_dir(run_dir: str | os.PathLike, resume: bool) -> Path:
    """:func:`check_run_target`, then create ``run_dir`` (parents too)."""
    run = check_run_target(run_dir, resume)
    run.mkdir(parents=True, exist_ok=True)
    return run


# ----------------------------------------------------------------------------- the lock

class RunLock(DirectoryLock):
    """The exclusive lock of a run directory (``RUN/.pymsde.lock``): one trainer at a time
    (:class:`pymsde.util.atomic.DirectoryLock`; a second trainer is refused with a message
    naming the holder's pid, host and start time; a dead trainer's lock is taken over)."""

    def __init__(self, run_dir: str | os.PathLike):
        super().__init__(Path(run_dir) / LOCK_FILE, "trainer", "wait for it to finish, or choose another --out")


def check_not_in_use(run_dir: str | os.PathLike) -> None:
    """Refuse early (before loading data) when another trainer holds ``run_dir``'s lock; changes
    nothing. The authoritative check is :meth:`RunLock.acquire` inside :func:`~pymsde.training.fit`."""
    RunLock(run_dir).probe()


# ----------------------------------------------------------------------------- the commit

def best_of(history: Sequence[dict]) -> tuple[float, int]:
    """``(lowest val_nrmse, its step)`` as training records it (the first strict minimum; (inf, -1): none)."""
    best, step = math.inf, -1
    for h in history:
        v = h.get("val_nrmse", math.inf)
        if v < best:
            best, step = v, int(h["step"])
    return best, step


def log_rows_of(state: dict, run: Path) -> list[list]:
    """The ``log.csv`` rows of steps before the checkpoint's: its own ``log`` (older checkpoints:
    ``log.csv``, whose damaged rows are skipped with a warning)."""
    step = int(state["step"])
    if state.get("log") is not None:
        rows = state["log"].tolist()
    else:
        skipped: list[int] = []
        cols, rows = read_csv(run / LOG_FILE, skipped)
        if skipped:
            log.warning("%s: skipped damaged line(s) %s", run / LOG_FILE, skipped[:10])
        rows = [r for r in rows if r[0] < step] if cols == list(LOG_COLUMNS) else []
    return [[int(r[0]), int(r[1]), *r[2:]] for r in rows]


class RunFiles:
    """The files of one run directory, written in the order of the commit protocol (module docstring).

    Every ``OSError`` while writing (a full disk, no permission) becomes a one-line
    :class:`~pymsde.util.errors.RunWriteError` naming the file and the last good checkpoint.
    """

    def __init__(self, run: Path, committed_step: int | None = None):
        self.run = Path(run)
        self.committed_step = committed_step
        self.meta: dict = {}

    def write_error(self, err: OSError, step: int) -> RunWriteError:
        reason = err.strerror or str(err)
        code = errno.errorcode.get(err.errno or 0, "")
        last = (f"the last good checkpoint is {self.run / CHECKPOINT_FILE} (step {self.committed_step}); free "
                f"space and continue with --resume" if self.committed_step is not None
                else "no checkpoint was written yet; free space and start again")
        try:
            write_json(self.run / METADATA_FILE, {**self.meta, "status": f"failed at step {step}: {reason}"})
        except OSError:
            pass
        return RunWriteError(f"cannot write {err.filename or 'a run file'}: {reason}{f' ({code})' if code else ''};"
                             f" training stopped at step {step}; {last}")

    def commit(self, state: dict, best: bool, rows: list[list], history: list[dict]) -> None:
        """Write the checkpoint (the commit), then the derived files: ``best.pt`` when ``best``, the logs
        (``rows``, ``history``: the checkpoint's log and history, as lists)."""
        try:
            save_checkpoint(self.run / CHECKPOINT_FILE, state)
            self.committed_step = int(state["step"])
            if best:
                save_checkpoint(self.run / BEST_FILE, state)
            self.write_logs(rows, history)
        except OSError as err:
            raise self.write_error(err, int(state["step"])) from None

    def write_logs(self, rows: list[list], history: list[dict]) -> None:
        write_csv(self.run / LOG_FILE, LOG_COLUMNS, rows)
        if history:
            cols = list(history[0].keys())
            write_csv(self.run / VAL_FILE, cols, [[h.get(c, math.nan) for c in cols] for h in history])

    def write_meta(self, **updates: Any) -> None:
        self.meta.update(updates)
        try:
            write_json(self.run / METADATA_FILE, self.meta)
        except OSError as err:
            raise self.write_error(err, int(self.meta.get("steps", self.committed_step or 0))) from None

    def clean(self) -> None:
        removed = clean_stale_temps(self.run, RUN_FILES)
        if removed:
            log.warning("%s: removed %d stray temporary file(s) of an interrupted write: %s", self.run, len(removed),
                        ", ".join(p.name for p in removed))

    def open_resumed(self, state: dict) -> None:
        """Before a resumed run writes anything: remove stray temporaries, rebuild ``best.pt``
        when the checkpoint is the recorded best and ``best.pt`` lags, rewrite the logs."""
        self.committed_step = int(state["step"])
        try:
            self.clean()
            best_step = state.get("best_step")
            if best_step is None:
                best_step = best_of(state.get("history", []))[1]
            if best_step >= 0:
                best = self.run / BEST_FILE
                try:
                    have = int(load_checkpoint(best)["step"])
                except DataError:
                    have = None
                if have != best_step and best_step == int(state["step"]):
                    atomic_copy(self.run / CHECKPOINT_FILE, best)
                    log.warning("%s: rebuilt from %s (the recorded best model, step %d)", best, CHECKPOINT_FILE,
                                best_step)
                elif have != best_step:
                    log.warning("%s holds step %s, not the recorded best model (step %d), and cannot be rebuilt",
                                best, have, best_step)
        except OSError as err:
            raise self.write_error(err, int(state["step"])) from None

    def read_meta(self) -> dict:
        """The run's ``metadata.json``; {} with a warning when it is damaged (it is derived)."""
        try:
            return read_json(self.run / METADATA_FILE)
        except DataError as err:
            log.warning("%s; rewriting it", err)
            return {}


# ----------------------------------------------------------------------------- loading

def model_from_state(state: dict, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                     source: str = "checkpoint"):
    """Rebuild a ``MultiscaleModel`` from a checkpoint dict (architecture from ``model_config``).

    Raises DataError naming ``source`` when the recorded architecture cannot be built, would
    not fit in memory, or does not fit the stored weights.
    """
    from pymsde.model import ModelConfig, MultiscaleModel

    try:
        cfg = ModelConfig.from_dict(state["model_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise DataError(f"{source}: model_config cannot be read ({err})") from None
    n = parameters_lower_bound(cfg)
    check_memory(4.0 * n + kernel_bytes_lower_bound(cfg), f"{source}: the model of its model_config ({n:,} "
                 f"parameters or more)", error=DataError)
    model = MultiscaleModel(cfg)
    check_weights_fit(model, state["model_state"], source)
    model.load_state_dict(state["model_state"])
    if dtype is None:
        dtype = next((p.dtype for p in state["model_state"].values() if torch.is_floating_point(p)), torch.float32)
    return model.to(device=device, dtype=dtype)


def load_run(run_dir: str | os.PathLike, which: str = "last", device: str | torch.device = "cpu") -> LoadedRun:
    """Reload a trained model from a run directory in one call.

    Args:
        run_dir: the run directory (``--out`` of ``pymsde train``).
        which: ``"last"`` (``checkpoint.pt``, the end of training) or ``"best"`` (``best.pt``,
            the lowest validation forecast error; falls back to ``"last"`` when absent).
        device: where to put the model.

    Returns:
        :class:`LoadedRun` ``(model, configs, metadata)``; the model is in eval mode with the
        dtype it was trained in.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run directory {run}: not found")
    if which not in ("last", "best"):
        raise ConfigError(f"load_run: which={which!r}; expected 'last' or 'best'")
    path = run / (BEST_FILE if which == "best" and (run / BEST_FILE).is_file() else CHECKPOINT_FILE)
    state = load_checkpoint(path, map_location="cpu")
    model = model_from_state(state, device=device, source=str(path))
    model.eval()
    configs = {"model_config": model.config, "train": TrainConfig.from_dict(state["train_config"], source=str(path))}
    metadata = read_json(run / METADATA_FILE)
    metadata["step"] = int(state["step"])
    metadata["checkpoint"] = str(path)
    return LoadedRun(model, configs, metadata)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
