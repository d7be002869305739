"""The training loop: :func:`fit` a multiscale model to trajectories (docs/method.md section 6).

One optimiser step draws ``batch_windows`` windows of ``window`` consecutive observations
(shuffled epochs of :class:`pymsde.data.windows.WindowSampler`), evaluates the ELBO terms
(:mod:`pymsde.training.elbo`) and takes an Adam step with the learning rate and the KL weight
of :mod:`pymsde.training.schedule`. No SDE is solved inside training.

:func:`fit` checks everything before any work (configuration, data, model, the run
directory), then hands over to a :class:`Trainer`, whose state (:class:`TrainState`) is
explicit: position, history, log rows, best score and timings.

Hot path: the training data are moved to the device once; a step gathers its windows by
index, runs the model and the optimiser, and appends its ELBO terms (device tensors) to a
buffer. Every ``log_every`` steps the buffer is read in one host synchronisation, written to
``log.csv``, and checked for non-finite values (a :class:`TrainingDivergedError` naming the
term that went bad; the last checkpoint, always written after such a check, stays intact).

Reproducibility: ``seed`` seeds the model initialisation (the global torch RNG, just before
the model is built), the window order (a pure function of ``(seed, epoch)``) and a private
``torch.Generator`` for every random number of the objective. On CPU a run is deterministic
for a fixed thread count, and a run resumed from a checkpoint follows the uninterrupted run
exactly (parameters and ``log.csv``; the validation history of the resumed run has one more
record, at the step where the first call stopped, since every call validates its final
state).
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from pymsde.data.trajectories import Trajectories
from pymsde.data.windows import WindowSampler
from pymsde.model import ModelConfig, MultiscaleModel
from pymsde.model.config import check_data_fits
from pymsde.training import run as runmod
from pymsde.training.checkpoint import load_checkpoint, save_checkpoint
from pymsde.training.config import TrainConfig
from pymsde.training.device_data import DeviceData
from pymsde.training.elbo import WeightKL, elbo_terms, residual_factor
from pymsde.training.schedule import beta_at, lr_at
from pymsde.training.validation import validate
from pymsde.util.errors import ConfigError, DataError, TrainingDivergedError
from pymsde.util.progress import progress

log = logging.getLogger(__name__)

#: The ELBO terms logged per step, in ``log.csv`` order after ``step, epoch, beta, lr``.
TERMS = ("loss", "loglik", "residual", "kl", "grad_norm")
#: Training-config fields that change the optimisation path: a resumed run must keep them.
_PATH_FIELDS = ("window", "batch_windows", "n_quad", "n_samples", "loglik_frames", "quadrature", "residual_scale", "lr",
                "lr_decay", "lr_decay_steps", "beta_warmup", "beta_steps", "grad_clip", "weight_decay",
                "seed", "dtype")


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
        best: the lowest validation forecast nRMSE so far (inf: none).
        elapsed_before: training wall time (s) of earlier sessions of a resumed run.
        validation_time_s: time spent validating, all sessions.
    """

    step: int = 0
    epoch: int = 0
    pos: int = 0
    history: list[dict] = field(default_factory=list)
    log_rows: list[list[float]] = field(default_factory=list)
    best: float = math.inf
    elapsed_before: float = 0.0
    validation_time_s: float = 0.0


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA -> ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but torch.cuda.is_available() is False; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"train.device = {name!r}; expected 'auto', 'cpu' or 'cuda'")
    return torch.device(name)


def _diagnose(term: str, step: int, data_std: float, lr: float, bad_params: list[str]) -> str:
    """A sentence with the likely cause of a non-finite ``term``."""
    hints = []
    if data_std == 0.0 or not math.isfinite(data_std):
        hints.append(f"the training field is constant (std {data_std:g}): the decoder variance collapses "
                     f"to zero, so the likelihood diverges")
    elif data_std > 1e2 or data_std < 1e-3:
        hints.append(f"the data scale (std {data_std:g}) is far from 1: rescale the field")
    if term == "loglik":
        hints.append("the decoder's variance or reconstruction blew up; lower train.lr")
    elif term == "residual":
        hints.append("the drift or the posterior drift blew up (sigma near zero, or a too fast GP); "
                     "lower train.lr, set train.grad_clip, or lengthen train.beta_steps")
    elif term == "kl":
        hints.append("the weight prior's KL blew up; check the weight_kl hook")
    else:
        hints.append("lower train.lr or set train.grad_clip")
    hints.append(f"learning rate at that step: {lr:.3g}")
    where = f" (non-finite gradients in {', '.join(bad_params[:5])})" if bad_params else ""
    return f"{term}{where} became non-finite at step {step}; likely cause: " + "; ".join(hints)


class Trainer:
    """One training session of a model that fits its data (built and checked by :func:`fit`).

    Args:
        net: the model, on its device and dtype, in train mode.
        data, val: training and validation trajectories (val may be None).
        config: the validated training configuration.
        run: the run directory (None: nothing written); it exists when the trainer starts.
        state: where the run stands (a fresh :class:`TrainState`, or one restored from a
            checkpoint together with ``opt_state`` and ``rng``).
        weight_kl: optional ``weight_kl(model) -> 0-dim tensor``.
        meta: the run's metadata dict (written as ``metadata.json``).
    """

    def __init__(self, net, data: Trajectories, val: Trajectories | None, config: TrainConfig,
                 run: Path | None, state: TrainState, weight_kl: WeightKL | None = None, meta: dict | None = None,
                 opt_state: dict | None = None, rng: dict | None = None, t_wall0: float | None = None):
        self.net, self.config, self.run, self.state, self.weight_kl = net, config, run, state, weight_kl
        self.meta = meta if meta is not None else {}
        self.t_wall0 = time.perf_counter() if t_wall0 is None else t_wall0
        device = next(net.parameters()).device
        dtype = next(net.parameters()).dtype
        self.train_d = DeviceData.from_traj(data, device, dtype)
        self.val_d = DeviceData.from_traj(val, device, dtype) if val is not None else None
        if val is not None and config.window > val.n_t:
            log.warning("validation trajectories (%d times) are shorter than the window; validating on "
                        "windows of %d", val.n_t, val.n_t)
        self.data_std = float(np.std(data.u[:, :: max(1, data.n_t // 50)]))
        self.res_factor = residual_factor(config.residual_scale, data.n_traj * data.n_t, config.window,
                                          data.channels * int(np.prod(data.grid_shape)))
        self.sampler = WindowSampler(data, config.window, seed=config.seed)
        self.offsets = torch.arange(config.window, device=device)
        self.steps_per_epoch = math.ceil(len(self.sampler) / config.batch_windows)
        total = self.steps_per_epoch * config.epochs
        self.total_steps = total if config.max_steps is None else min(total, config.max_steps)
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.gen = torch.Generator(device=device).manual_seed(config.seed)
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)
        if rng is not None:
            self._restore_rng(rng, device)
        self.buf: list[torch.Tensor] = []                      # per-step terms, read in one sync
        self.buf_meta: list[tuple[int, int, float, float]] = []

    # ---------------------------------------------------------------- state and files
    def _restore_rng(self, rng: dict, device: torch.device) -> None:
        try:
            self.gen.set_state(rng["noise"].to("cpu") if device.type == "cpu" else rng["noise"])
        except RuntimeError as err:   # a CPU and a CUDA generator state differ in kind and size
            raise ConfigError(f"resume: the checkpoint's noise-generator state does not fit a {device.type} "
                              f"generator ({err}); a run resumes only on the device type it was trained on "
                              f"(cpu or cuda: --device)") from None
        torch.set_rng_state(rng["torch"])

    def elapsed(self) -> float:
        """Training wall time of the run so far (s, all sessions)."""
        return self.state.elapsed_before + time.perf_counter() - self.t_wall0

    def checkpoint_state(self) -> dict:
        """The checkpoint dict (:mod:`pymsde.training.checkpoint`) of the run as it stands."""
        s, net = self.state, self.net
        return {"model_state": net.state_dict(), "model_config": net.config.to_dict(),
                "train_config": self.config.to_dict(),
                "frozen": [n for n, p in net.named_parameters() if not p.requires_grad],
                "optimizer": self.opt.state_dict(), "step": s.step, "epoch": s.epoch, "epoch_pos": s.pos,
                "rng": {"torch": torch.get_rng_state(), "noise": self.gen.get_state()},
                "history": s.history, "train_time_s": self.elapsed(),
                "versions": {k: v for k, v in runmod.environment_info().items() if k.endswith("version")}}

    def write_logs(self) -> None:
        if self.run is None:
            return
        runmod.write_csv(self.run / runmod.LOG_FILE, runmod.LOG_COLUMNS, self.state.log_rows)
        history = self.state.history
        if history:
            cols = list(history[0].keys())
            runmod.write_csv(self.run / runmod.VAL_FILE, cols, [[h.get(c, math.nan) for c in cols] for h in history])

    def save(self, best_too: bool = False) -> None:
        if self.run is None:
            return
        st = self.checkpoint_state()
        save_checkpoint(self.run / runmod.CHECKPOINT_FILE, st)
        if best_too:
            save_checkpoint(self.run / runmod.BEST_FILE, st)
        self.write_logs()

    def write_meta(self, **updates: Any) -> None:
        self.meta.update(updates)
        if self.run is not None:
            runmod.write_json(self.run / runmod.METADATA_FILE, self.meta)

    # ---------------------------------------------------------------- the loop
    def flush(self) -> None:
        """Read the buffered terms in one host sync into the log; stop on a non-finite one."""
        if not self.buf:
            return
        vals = torch.stack(self.buf).tolist()
        now = self.elapsed()
        rows = self.state.log_rows
        for (s, e, b, lr), v in zip(self.buf_meta, vals):
            rows.append([s, e, b, lr, *v, now])
            if not all(math.isfinite(x) for x in v):
                self.buf.clear()
                self.buf_meta.clear()
                self._diverged(s, lr, [n for n, x in zip(TERMS, v) if not math.isfinite(x)])
        self.buf.clear()
        self.buf_meta.clear()

    def _diverged(self, step: int, lr: float, names: list[str]) -> None:
        term = next((n for n in ("loglik", "residual", "kl") if n in names), None)
        bad_params = []
        if term is None:
            term = "a parameter gradient"
            bad_params = [n for n, p in self.net.named_parameters()
                          if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        self.write_logs()
        ck = self.run / runmod.CHECKPOINT_FILE if self.run is not None else None
        keep = f"; the last good checkpoint is kept: {ck}" if ck is not None and ck.is_file() else ""
        self.write_meta(status=f"diverged at step {step}")
        raise TrainingDivergedError(_diagnose(term, step, self.data_std, lr, bad_params) + keep)

    def validate(self) -> None:
        """Validate (when there are validation data), record it, save; best.pt when it improved."""
        if self.val_d is None:
            return
        s = self.state
        t_val = time.perf_counter()
        rec = {"step": s.step, "epoch": s.epoch}
        rec.update(validate(self.net, self.val_d, self.config, self.res_factor, self.weight_kl))
        rec["time_s"] = self.elapsed()
        s.validation_time_s += time.perf_counter() - t_val
        s.history.append(rec)
        score = rec.get("val_nrmse", math.inf)
        improved = score < s.best
        s.best = min(s.best, score)
        log.info("validation at step %d: %s", s.step, {k: round(v, 5) for k, v in rec.items()})
        if self.run is not None:
            self.save(best_too=improved)

    def train_step(self, batch: np.ndarray) -> None:
        """One optimiser step on the windows ``batch`` (``(n, 2)``: trajectory, start)."""
        s, cfg, net = self.state, self.config, self.net
        idx = torch.from_numpy(batch).to(self.offsets.device, non_blocking=True)
        u, t, mu, f = self.train_d.windows(idx[:, 0], idx[:, 1], self.offsets)
        beta = beta_at(s.step, cfg.beta_steps, cfg.beta_warmup)
        lr = lr_at(s.step, cfg.lr, cfg.lr_decay, cfg.lr_decay_steps)
        for g in self.opt.param_groups:
            g["lr"] = lr
        terms = elbo_terms(net, u, t, mu, f, beta=beta, res_factor=self.res_factor, n_quad=cfg.n_quad,
                           n_samples=cfg.n_samples, stratified=cfg.quadrature == "stratified",
                           generator=self.gen, weight_kl=self.weight_kl, loglik_frames=cfg.loglik_frames)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        gnorm = torch.nn.utils.get_total_norm(grads, foreach=True)
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, cfg.grad_clip, gnorm, foreach=True)
        self.opt.step()
        self.buf.append(torch.stack([terms["loss"].detach(), terms["loglik"].detach(),
                                     terms["residual"].detach(), terms["kl"].detach(), gnorm.detach()]))
        self.buf_meta.append((s.step, s.epoch, beta, lr))
        s.step += 1
        s.pos += batch.shape[0]

    def _epoch(self, bar, budget_s: float | None) -> bool:
        """Steps through the rest of the current epoch; True when the epoch completed."""
        s, cfg = self.state, self.config
        for batch in self.sampler.batches(cfg.batch_windows, epoch=s.epoch, start_at=s.pos):
            if s.step >= self.total_steps or (budget_s is not None and self.elapsed() >= budget_s):
                return False
            self.train_step(batch)
            if s.step % cfg.log_every == 0:
                self.flush()
                last = s.log_rows[-1]
                bar.set_postfix(loss=f"{last[4]:.4g}", beta=f"{last[2]:.3f}", lr=f"{last[3]:.2e}", refresh=False)
            bar.update(1)
            if cfg.checkpoint_every and s.step % cfg.checkpoint_every == 0:
                self.flush()
                self.save()
        return True

    def run_loop(self) -> None:
        """Train to the step budget (or the time budget), validating every ``validate_every`` epochs."""
        s, cfg = self.state, self.config
        budget_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
        bar = progress(total=self.total_steps, initial=s.step, desc="train", unit="step", enabled=cfg.progress)
        last_val_step = s.history[-1]["step"] if s.history else -1
        try:
            while s.step < self.total_steps:
                if not self._epoch(bar, budget_s):
                    break
                s.epoch += 1
                s.pos = 0
                if cfg.validate_every and s.epoch % cfg.validate_every == 0:
                    self.flush()
                    self.validate()
                    last_val_step = s.step
            self.flush()
        finally:
            bar.close()
        if self.val_d is not None and last_val_step != s.step:
            self.validate()
        self.save()

    def result(self) -> TrainResult:
        """Finish the run's metadata and return the :class:`TrainResult`."""
        s = self.state
        self.net.eval()
        total = self.elapsed()
        if self.run is not None:
            self.write_meta(status="done", steps=s.step, epochs=s.epoch, train_time_s=total,
                            validation_time_s=s.validation_time_s, final=s.history[-1] if s.history else {},
                            best_val_nrmse=None if not math.isfinite(s.best) else s.best)
        cols = np.asarray(s.log_rows, dtype=np.float64).reshape(-1, len(runmod.LOG_COLUMNS))
        return TrainResult(model=self.net, steps=s.step, epochs=s.epoch, train_time_s=total, history=s.history,
                           log={c: cols[:, i] for i, c in enumerate(runmod.LOG_COLUMNS)}, run_dir=self.run,
                           config=self.config)


# ----------------------------------------------------------------------------- fit

def _check_config(config: TrainConfig, state: dict | None, data: Trajectories, val: Trajectories | None) -> None:
    """Everything about the configuration and the data that must hold before any work."""
    config.validate()
    if state is not None:
        old = TrainConfig.from_dict(state["train_config"])
        diff = [f"{k}: {getattr(old, k)!r} -> {getattr(config, k)!r}" for k in _PATH_FIELDS
                if getattr(old, k) != getattr(config, k)]
        if diff:
            raise ConfigError(f"resume: the configuration differs from the checkpoint's in fields that change "
                              f"the training path ({'; '.join(diff)}); only epochs, max_steps, validation, "
                              f"checkpoint, logging and device (same device type) settings may change")
    if config.window > data.n_t:
        raise ConfigError(f"train.window = {config.window} observations is longer than the training "
                          f"trajectories ({data.n_t} times); expected window <= {data.n_t}")
    dt = data.dt                                            # DataError unless one common step
    if val is not None:
        if val.grid_shape != data.grid_shape or val.channels != data.channels or val.n_mu != data.n_mu \
                or val.n_f != data.n_f:
            raise DataError(f"validation data {val!r} do not match the training data {data!r}")
        if abs(val.dt - dt) > 1e-4 * dt:
            raise DataError(f"validation data: time step {val.dt!r}; the training data have {dt!r}")


def _model_config(model: Any, data: Trajectories) -> ModelConfig:
    """The ModelConfig of ``model`` (a ModelConfig or a dict of architecture fields) for ``data``."""
    if isinstance(model, ModelConfig):
        return model
    if model is not None and not isinstance(model, Mapping):
        raise ConfigError(f"fit: model is a {type(model).__name__}; expected a MultiscaleModel, a ModelConfig "
                          f"or a dict of ModelConfig fields (e.g. {{'coarse_shape': [20], 'micro_dim': 5}})")
    return ModelConfig.for_grid(data.grid, channels=data.channels, n_mu=data.n_mu, n_f=data.n_f,
                                **dict(model or {}))


def _make_net(model: Any, state: dict | None, data: Trajectories, config: TrainConfig, device, dtype):
    """The model to train: restored from the checkpoint, given, or built (seeded) for the data."""
    if state is not None:
        net = runmod.model_from_state(state, device=device, dtype=dtype)
        frozen = set(state.get("frozen", []))            # parameters the user froze stay frozen
        for name, p in net.named_parameters():
            p.requires_grad_(name not in frozen)
    elif isinstance(model, torch.nn.Module):
        net = model
    else:
        cfg = _model_config(model, data)                  # ConfigError before any work
        torch.manual_seed(config.seed)
        net = MultiscaleModel(cfg)
    net = net.to(device=device, dtype=dtype)
    check_data_fits(net.config, data, "training data", "the model")
    return net.train()


def _open_run(run: Path | None, resumed: bool, net, config: TrainConfig, data: Trajectories,
              val: Trajectories | None, device, trainer_meta: dict, data_path) -> dict:
    """Create (or reopen) the run directory and write config.toml and metadata.json."""
    if run is None:
        return {}
    runmod.prepare_run_dir(run, resume=resumed)
    runmod.write_run_config(run, net.config, config)
    meta = runmod.read_json(run / runmod.METADATA_FILE) if resumed else {}
    meta.update(runmod.environment_info())
    meta.update({"device": str(device), "dtype": config.dtype, "n_obs_train": data.n_traj * data.n_t,
                 "n_traj_train": data.n_traj, "n_traj_val": 0 if val is None else val.n_traj,
                 "n_t": data.n_t, "dt": data.dt, "grid": list(data.grid_shape), "channels": data.channels,
                 **trainer_meta, "model_config": net.config.to_dict()})
    if data_path is not None:
        sha = runmod.sha256_file(data_path)
        old_sha = (meta.get("data") or {}).get("sha256")
        if resumed and old_sha and old_sha != sha:
            raise DataError(f"{data_path}: SHA-256 {sha[:12]}... differs from the data the run in {run} "
                            f"was trained on ({old_sha[:12]}...); resume with the same data file")
        meta["data"] = {"path": str(Path(data_path).resolve()), "sha256": sha, "case": data.attrs.get("case")}
    meta["status"] = "running"
    runmod.write_json(run / runmod.METADATA_FILE, meta)
    return meta


def _resumed_state(state: dict, run: Path) -> TrainState:
    history = [dict(h) for h in state.get("history", [])]
    s = TrainState(step=int(state["step"]), epoch=int(state["epoch"]), pos=int(state["epoch_pos"]),
                   history=history, elapsed_before=float(state.get("train_time_s", 0.0)),
                   best=min([h.get("val_nrmse", math.inf) for h in history] + [math.inf]))
    cols, rows = runmod.read_csv(run / runmod.LOG_FILE)
    if cols == list(runmod.LOG_COLUMNS):
        s.log_rows = [r for r in rows if r[0] < s.step]
    return s


def fit(data: Trajectories, model: Any = None, config: TrainConfig | Mapping | None = None, *,
        val: Trajectories | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
        data_path: str | os.PathLike | None = None, weight_kl: WeightKL | None = None) -> TrainResult:
    """Train a multiscale model on ``data`` (docs/method.md section 6) and return it with its logs.

    Args:
        data: training trajectories (one common time step).
        model: a built ``MultiscaleModel`` to train, a :class:`~pymsde.model.ModelConfig`, or a
            dict of ModelConfig architecture fields (e.g. ``{"coarse_shape": [20], "micro_dim": 5}``)
            to build one for ``data``'s grid. May be None when resuming (the architecture is
            read from the checkpoint).
        config: :class:`TrainConfig` (or its dict); default ``TrainConfig()``. When resuming,
            None means the checkpoint's configuration; a given one may change only the
            bookkeeping fields (epochs, max_steps, validation, checkpoints, logging, device).
        val: validation trajectories (ELBO terms and a short forecast every
            ``validate_every`` epochs and at the end).
        run_dir: where to write config, metadata, logs and checkpoints (None: nothing written).
        resume: continue the run in ``run_dir`` from its ``checkpoint.pt``.
        data_path: the data file (its SHA-256 goes into the metadata).
        weight_kl: optional ``weight_kl(model) -> 0-dim tensor`` (priors on weights).

    Raises:
        ConfigError: impossible configuration (refused before any work).
        DataError: data that do not fit the model or each other.
        TrainingDivergedError: a non-finite loss; names the term and the likely cause.
    """
    if isinstance(model, Trajectories) and not isinstance(data, Trajectories):
        data, model = model, data           # fit(model, data, ...) reads as well
    if not isinstance(data, Trajectories):
        raise DataError(f"fit: data is a {type(data).__name__}; expected pymsde.data.Trajectories")
    t_wall0 = time.perf_counter()
    state = None
    run = Path(run_dir) if run_dir is not None else None
    if resume:
        if run is None:
            raise ConfigError("fit: resume=True needs run_dir (the run to continue)")
        runmod.check_run_target(run, resume=True)
        state = load_checkpoint(run / runmod.CHECKPOINT_FILE, for_resume=True)
    elif run is not None:
        runmod.check_run_target(run, resume=False)   # refuse to overwrite a run, before any work
    if isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    if config is None:
        config = TrainConfig.from_dict(state["train_config"]) if state is not None else TrainConfig()
    _check_config(config, state, data, val)
    device = resolve_device(config.device)
    net = _make_net(model, state, data, config, device, getattr(torch, config.dtype))
    tstate = _resumed_state(state, run) if state is not None else TrainState()
    trainer = Trainer(net, data, val, config, run, tstate, weight_kl, meta=None,
                      opt_state=None if state is None else state["optimizer"],
                      rng=None if state is None else state["rng"], t_wall0=t_wall0)
    # the run directory is created only now, after every check above passed (a refused
    # configuration leaves nothing behind)
    trainer.meta = _open_run(run, state is not None, net, config, data, val, device,
                             {"windows_per_epoch": len(trainer.sampler), "steps_per_epoch": trainer.steps_per_epoch,
                              "residual_factor": trainer.res_factor}, data_path)
    if state is not None:
        tstate.validation_time_s = float(trainer.meta.get("validation_time_s", 0.0))
    trainer.run_loop()
    return trainer.result()


__all__ = ["fit", "Trainer", "TrainState", "TrainResult", "resolve_device", "TERMS"]
