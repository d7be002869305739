"""Checkpoints: everything needed to resume training bit for bit, or to rebuild the model.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python containers
(so it loads with ``torch.load(..., weights_only=True)``: no arbitrary pickles):

======================  ===========================================================
``format``              ``"pymsde-checkpoint"``; ``format_version`` an int
``model_state``         ``model.state_dict()``
``model_config``        ``model.config.to_dict()`` (rebuilds the architecture)
``train_config``        the :class:`~pymsde.training.config.TrainConfig` dict used
``optimizer``           ``torch.optim.Adam.state_dict()``
``step``                optimiser steps done (the schedules are pure functions of it)
``epoch``, ``epoch_pos``  sampler position: epoch, and windows of it already consumed
``rng``                 ``{"torch": CPU RNG state, "noise": training noise generator state}``
``history``             validation records so far (list of dicts of floats)
``frozen``              names of parameters excluded from training (requires_grad False)
``versions``            pymsde / torch versions that wrote it
======================  ===========================================================

Files are written atomically (:func:`pymsde.util.atomic_path`): a crash while saving leaves
the previous checkpoint intact.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pymsde.util.atomic import atomic_path
from pymsde.util.errors import DataError

FORMAT = "pymsde-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model_state", "model_config", "train_config", "step")
#: what resuming a run reads on top of REQUIRED_KEYS (optimiser, position in the epoch, RNG states)
RESUME_KEYS = ("optimizer", "epoch", "epoch_pos", "rng")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors and plain containers only) atomically to ``path``."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    for_resume: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; DataError naming the file when it is not one
    (or, with ``for_resume``, when it lacks what resuming needs: :data:`RESUME_KEYS`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many classes
        raise DataError(f"{path}: not a readable pymsde checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataError(f"{path}: format {found!r}; expected a {FORMAT!r} file")
    if int(state.get("format_version", -1)) > FORMAT_VERSION:
        raise DataError(f"{path}: checkpoint format version {state.get('format_version')}; this pymsde reads "
                        f"versions <= {FORMAT_VERSION} (upgrade pymsde)")
    required = REQUIRED_KEYS + (RESUME_KEYS if for_resume else ())
    missing = [k for k in required if k not in state]
    if missing:
        raise DataError(f"{path}: checkpoint lacks {missing}; expected keys {list(required)}"
                        + (" to resume training" if for_resume else ""))
    return state
