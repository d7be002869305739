"""Run directories: what a training run leaves behind, and :func:`load_run` to reload it.

A run directory (``pymsde train ... --out RUN_DIR`` or ``fit(..., run_dir=RUN_DIR)``) holds:

================  ===================================================================
``config.toml``   the exact ``[model]`` options and ``[train]`` configuration used
``metadata.json`` package / torch / Python versions, the data file and its SHA-256,
                  device and dtype, sizes, wall time (``train_time_s``), final scores
``log.csv``       every ELBO term of every optimiser step (see ``LOG_COLUMNS``)
``val.csv``       validation records (ELBO terms on validation windows, forecast nRMSE)
``checkpoint.pt`` the latest checkpoint (model, configs, optimiser, RNG, sampler position)
``best.pt``       the checkpoint with the lowest validation forecast error (if validated)
================  ===================================================================

All files are written atomically. :func:`load_run` rebuilds the trained model from the
checkpoint alone: the architecture is read from the stored model configuration.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch

from pymsde.training.checkpoint import load_checkpoint
from pymsde.training.config import TrainConfig, config_to_toml
from pymsde.util.atomic import atomic_write_text
from pymsde.util.errors import ConfigError, DataError

CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
LOG_FILE = "log.csv"
VAL_FILE = "val.csv"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"

#: Columns of ``log.csv``: the step, the schedules, the loss and its terms (METHOD.md section 6:
#: ``loss = -(loglik - beta * (residual + kl))``), the global gradient norm before clipping,
#: and the wall time since the start of the run (s, excluding validation).
LOG_COLUMNS = ("step", "epoch", "beta", "lr", "loss", "loglik", "residual", "kl", "grad_norm", "time_s")


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
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV table atomically (floats in full precision)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([repr(x) if isinstance(x, float) else x for x in r])
    atomic_write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> tuple[list[str], list[list[float]]]:
    """Read a numeric CSV written by :func:`write_csv` -> (columns, rows of floats)."""
    path = Path(path)
    if not path.is_file():
        return [], []
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        try:
            cols = next(r)
        except StopIteration:
            return [], []
        rows = [[float(x) for x in row] for row in r if row]
    return cols, rows


def write_run_config(run_dir: str | os.PathLike, model_config, config: TrainConfig) -> None:
    """Write ``config.toml``: the model's architecture (``[model]``) and the training configuration."""
    header = ("pymsde training run configuration (written by pymsde.training; "
              "reuse with `pymsde train DATA --config config.toml`)")
    atomic_write_text(Path(run_dir) / CONFIG_FILE,
                      config_to_toml(model_config.architecture(), config, header=header))


def check_run_target(run_dir: str | os.PathLike, resume: bool) -> Path:
    """Refuse to overwrite an existing run unless resuming; creates nothing.

    Callers check with this before any work and create the directory
    (:func:`prepare_run_dir`) only once everything else is validated, so a refused
    configuration leaves no half-written run directory behind.

    Raises ConfigError when a checkpoint exists and ``resume`` is False, or when ``resume``
    is True and there is no checkpoint to resume from.
    """
    run = Path(run_dir)
    has_ckpt = (run / CHECKPOINT_FILE).is_file()
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


def model_from_state(state: dict, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """Rebuild a ``MultiscaleModel`` from a checkpoint dict (architecture from ``model_config``)."""
    from pymsde.model import ModelConfig, MultiscaleModel

    try:
        cfg = ModelConfig.from_dict(state["model_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise DataError(f"checkpoint: model_config cannot be read ({err})") from None
    model = MultiscaleModel(cfg)
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
    model = model_from_state(state, device=device)
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
