"""Checkpoints: everything needed to resume training bit for bit, or to rebuild the model.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python containers
(so it loads with ``torch.load(..., weights_only=True)``: no arbitrary pickles):

=======================  ===========================================================
``format``               ``"pymsde-checkpoint"``; ``format_version`` an int
``model_state``          ``model.state_dict()``
``model_config``         ``model.config.to_dict()`` (rebuilds the architecture)
``train_config``         the :class:`~pymsde.training.config.TrainConfig` dict used
``optimizer``            ``torch.optim.Adam.state_dict()``
``step``                 optimiser steps done (the schedules are pure functions of it)
``epoch``, ``epoch_pos``  sampler position: epoch, and windows of it already consumed
``rng``                  ``{"noise": the keyed noise scheme's name as bytes (older: a generator's state), "torch": the CPU RNG state}`` (recorded only: the noise is keyed, nothing is restored)
``history``              validation records so far (list of dicts of floats)
``frozen``               names of parameters excluded from training (requires_grad False)
``versions``             pymsde / torch versions that wrote it
``log``                  every ``log.csv`` row so far, ``(step, len(LOG_COLUMNS))`` float64
``best_step``            the step of the lowest validation nRMSE (``best.pt``), -1: none yet
``status``               ``"running"``, ``"interrupted"`` or ``"done"`` when it was written
``validation_time_s``    time spent validating so far (s)
``data_sha256``          SHA-256 of the data file trained on ("" when unknown)
``world_size``           processes that trained it (data parallel; 1 alone)
=======================  ===========================================================

The keys from ``log`` on are optional (older checkpoints lack them). The checkpoint is the
run's one commit record: ``log.csv``, ``val.csv`` and ``best.pt`` are derived from it and
rebuilt on resume (:mod:`pymsde.training.run`). Files are written atomically
(:func:`pymsde.util.atomic_path`): a crash while saving leaves the previous checkpoint intact.

:func:`load_checkpoint` checks every field before anyone uses it: a file that is not a
checkpoint, a field of the wrong type, or weights that do not fit the recorded architecture
(:func:`check_weights_fit`) or an optimiser state that does not fit the model
(:func:`check_optimizer_fits`) are a DataError naming the file and the field.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from pymsde.util.atomic import atomic_write_bytes
from pymsde.util.errors import DataError, check_readable_file

FORMAT = "pymsde-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model_state", "model_config", "train_config", "step")
#: what resuming a run reads on top of REQUIRED_KEYS (optimiser, position in the epoch, RNG states)
RESUME_KEYS = ("optimizer", "epoch", "epoch_pos", "rng")
#: Columns of ``log.csv`` (and of the checkpoint's ``log``): the step, the schedules, the loss and
#: its terms (``loss = -(loglik - beta * (residual + kl))``), the global gradient norm before
#: clipping, and the wall time since the start of the run (s, excluding validation).
LOG_COLUMNS = ("step", "epoch", "beta", "lr", "loss", "loglik", "residual", "kl", "grad_norm", "time_s")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors and plain containers only) atomically to ``path``.

    The bytes are serialised in memory first and written with plain file writes, so a full
    disk is an ``OSError`` (``errno.ENOSPC``) naming the file, not a serialiser's RuntimeError.
    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, buf)
    atomic_write_bytes(path, buf.getbuffer())
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    for_resume: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its fields (:func:`check_checkpoint`).

    Raises:
        DataError: one line naming the file: missing or not a regular file, not a pymsde
            checkpoint (random bytes, a pickle, another program's file), a field of the wrong
            type, or (``for_resume``) lacking what resuming needs (:data:`RESUME_KEYS`).
    """
    if not os.path.lexists(path):
        raise DataError(f"{path}: checkpoint not found (no such file)")
    path = check_readable_file(path, "a pymsde checkpoint (checkpoint.pt or best.pt)")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a pymsde checkpoint (not a torch zip archive)")
    try:
        with warnings.catch_warnings(), open(path, "rb") as fh:
            warnings.simplefilter("ignore")
            state = torch.load(fh, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(f"{path}: not a pymsde checkpoint (it holds Python objects other than tensors and plain "
                        f"containers; pickled objects are never loaded)") from None
    except Exception as err:  # noqa: BLE001 - a damaged archive fails in many classes
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise DataError(f"{path}: not a readable pymsde checkpoint ({type(err).__name__}: {first})") from None
    check_checkpoint(state, path, for_resume)
    return state


def _is_int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _field_problem(state: dict, for_resume: bool) -> str | None:
    """The first field of ``state`` with the wrong type, described; None when all fit."""
    ms = state["model_state"]
    if not isinstance(ms, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ms.items()):
        return "model_state is not a dict of named tensors"
    for key in ("model_config", "train_config"):
        if not isinstance(state[key], dict):
            return f"{key} is a {type(state[key]).__name__}; expected a dict"
    if not _is_int(state["step"]):
        return f"step = {state['step']!r}; expected an integer >= 0"
    frozen = state.get("frozen", [])
    if not isinstance(frozen, list) or not all(isinstance(n, str) for n in frozen):
        return "frozen is not a list of parameter names"
    history = state.get("history", [])
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and _is_number(h.get("step")) and all(_is_number(v) for v in h.values())
            for h in history):
        return "history is not a list of validation records (dicts of numbers with a step)"
    for key in ("train_time_s", "validation_time_s"):
        v = state.get(key, 0.0)
        if not (_is_number(v) and math.isfinite(v) and v >= 0):
            return f"{key} = {v!r}; expected a finite number >= 0"
    log = state.get("log")
    if log is not None and not (isinstance(log, torch.Tensor) and log.dim() == 2 and log.is_floating_point()
                                and log.shape[1] == len(LOG_COLUMNS)):
        return f"log is not a (rows, {len(LOG_COLUMNS)}) float tensor"
    if log is not None and log.shape[0] > state["step"]:
        return f"log has {log.shape[0]} rows for {state['step']} steps"
    if not _is_int(state.get("best_step", -1), lo=-1):
        return f"best_step = {state.get('best_step')!r}; expected an integer >= -1"
    if not isinstance(state.get("data_sha256", ""), str) or not isinstance(state.get("status", ""), str):
        return "data_sha256 or status is not a string"
    if not _is_int(state.get("world_size", 1), lo=1):
        return f"world_size = {state.get('world_size')!r}; expected an integer >= 1"
    if for_resume:
        return _resume_problem(state)
    return None


def _resume_problem(state: dict) -> str | None:
    opt = state["optimizer"]
    if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in opt["param_groups"])):
        return "optimizer is not an optimiser state dict (state, param_groups)"
    for key in ("epoch", "epoch_pos"):
        if not _is_int(state[key]):
            return f"{key} = {state[key]!r}; expected an integer >= 0"
    rng = state["rng"]
    if not (isinstance(rng, dict) and all(isinstance(rng.get(k), torch.Tensor) and rng[k].dtype == torch.uint8
                                          for k in ("torch", "noise"))):
        return "rng is not {'torch': uint8 tensor, 'noise': uint8 tensor}"
    if rng["torch"].numel() != torch.get_rng_state().numel():      # recorded only, but must be one
        return f"rng['torch'] is not a CPU generator state ({rng['torch'].numel()} bytes)"
    return None


def check_checkpoint(state: Any, path: str | os.PathLike, for_resume: bool = False) -> None:
    """DataError naming ``path`` unless ``state`` is a pymsde checkpoint whose every field has its
    documented type (see the module docstring); ``for_resume`` requires :data:`RESUME_KEYS` too."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataError(f"{path}: not a pymsde checkpoint (format {found!r}; expected {FORMAT!r})")
    version = state.get("format_version")
    if not _is_int(version, lo=1):
        raise DataError(f"{path}: checkpoint format_version {version!r}; expected an integer >= 1")
    if version > FORMAT_VERSION:
        raise DataError(f"{path}: checkpoint format version {version}; this pymsde reads versions <= "
                        f"{FORMAT_VERSION} (upgrade pymsde)")
    required = REQUIRED_KEYS + (RESUME_KEYS if for_resume else ())
    missing = [k for k in required if k not in state]
    if missing:
        raise DataError(f"{path}: checkpoint lacks {missing}; expected keys {list(required)}"
                        + (" to resume training" if for_resume else ""))
    problem = _field_problem(state, for_resume)
    if problem:
        raise DataError(f"{path}: damaged checkpoint: {problem}")
    from pymsde.model.config import ModelConfig
    from pymsde.training.config import TrainConfig

    for key, read in (("train_config", lambda d: TrainConfig.from_dict(d, source="train_config")),
                      ("model_config", ModelConfig.from_dict)):
        try:
            read(state[key])
        except (TypeError, ValueError, KeyError) as err:
            raise DataError(f"{path}: the checkpoint's {key} cannot be read ({err}; a damaged file, or one "
                            f"written by another pymsde version)") from None


def check_weights_fit(model: torch.nn.Module, model_state: dict, source: str) -> None:
    """DataError naming ``source`` unless ``model_state`` has exactly the tensors of ``model``'s
    state dict, with the same shapes (a crafted or damaged checkpoint whose weights do not fit
    its recorded architecture), and floating-point weights for floating-point parameters."""
    own = model.state_dict()
    missing = sorted(set(own) - set(model_state))
    unexpected = sorted(set(model_state) - set(own))
    if missing or unexpected:
        raise DataError(f"{source}: the weights do not fit the recorded architecture (model_config): missing "
                        f"{missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected "
                        f"{unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
    for name, ref in own.items():
        got = model_state[name]
        if tuple(got.shape) != tuple(ref.shape) or got.is_floating_point() != ref.is_floating_point():
            raise DataError(f"{source}: the weights do not fit the recorded architecture (model_config): "
                            f"{name!r} is {tuple(got.shape)} {got.dtype} in the checkpoint, "
                            f"{tuple(ref.shape)} {ref.dtype} in the model built from its model_config")


def check_optimizer_fits(opt_state: dict, params: list[torch.Tensor], source: str) -> None:
    """DataError naming ``source`` unless the Adam state ``opt_state`` belongs to ``params``
    (one group with as many parameters, moments of the parameters' shapes)."""
    groups = opt_state["param_groups"]
    ids = [i for g in groups for i in g["params"]]
    if len(groups) != 1 or len(ids) != len(params):
        raise DataError(f"{source}: the optimizer state has {len(groups)} group(s) of {len(ids)} parameters; "
                        f"the model trains {len(params)} in one group")
    for pos, (i, p) in enumerate(zip(ids, params)):
        st = opt_state["state"].get(i, {})
        if not isinstance(st, dict):
            raise DataError(f"{source}: the optimizer state of parameter {pos} is not a dict")
        for key in ("exp_avg", "exp_avg_sq"):
            m = st.get(key)
            if m is not None and (not isinstance(m, torch.Tensor) or tuple(m.shape) != tuple(p.shape)):
                shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                raise DataError(f"{source}: the optimizer's {key} of parameter {pos} is {shape}; the parameter "
                                f"is {tuple(p.shape)}")
