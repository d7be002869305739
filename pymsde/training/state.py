"""Where a training run stands (:class:`TrainState`, what a checkpoint restores besides weights and
optimiser) and what :func:`pymsde.training.fit` returns (:class:`TrainResult`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pymsde.training import run as runmod
from pymsde.training.config import TrainConfig


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (train mode off: ``eval()``), on the training device.
        steps: optimiser steps done in total (including those before a resume).
        epochs: completed epochs.
        train_time_s: wall time of training in total (s; steps, validation and checkpoints,
            summed over resumed sessions).
        history: validation records, one dict per validation (``step``, ``epoch``,
            ``val_loss``, ``val_loglik``, ``val_residual``, ``val_kl``, ``val_nrmse`` (%),
            ``val_recon_nrmse`` (%), ``time_s``).
        log: ``log.csv`` as a dict column name -> float64 array (every step).
        run_dir: the run directory, or None.
        config: the training configuration used (the architecture is ``model.config``).
    """

    model: torch.nn.Module
    steps: int
    epochs: int
    train_time_s: float
    history: list[dict]
    log: dict[str, np.ndarray]
    run_dir: Path | None
    config: TrainConfig

    @property
    def final(self) -> dict:
        """The last validation record ({} without validation)."""
        return self.history[-1] if self.history else {}


@dataclass
class TrainState:
    """Where a run stands: everything a checkpoint restores besides weights and optimiser.

    Attributes:
        step, epoch, pos: optimiser steps done, completed epochs, windows of the current
            epoch already consumed.
        history: validation records; log_rows: ``log.csv`` rows so far.
        best, best_step: the lowest validation forecast nRMSE so far and its step (inf, -1: none).
        elapsed_before: training wall time (s) of earlier sessions of a resumed run.
        validation_time_s: time spent validating, all sessions.
    """

    step: int = 0
    epoch: int = 0
    pos: int = 0
    history: list[dict] = field(default_factory=list)
    log_rows: list[list[float]] = field(default_factory=list)
    best: float = math.inf
    best_step: int = -1
    elapsed_before: float = 0.0
    validation_time_s: float = 0.0

    @classmethod
    def from_checkpoint(cls, state: dict, run: Path) -> "TrainState":
        history = [dict(h) for h in state.get("history", [])]
        best, best_step = runmod.best_of(history)
        return cls(step=int(state["step"]), epoch=int(state["epoch"]), pos=int(state["epoch_pos"]),
                   history=history, log_rows=runmod.log_rows_of(state, run), best=best,
                   best_step=int(state.get("best_step", best_step)),
                   elapsed_before=float(state.get("train_time_s", 0.0)),
                   validation_time_s=float(state.get("validation_time_s", 0.0)))


__all__ = ["TrainState", "TrainResult"]
