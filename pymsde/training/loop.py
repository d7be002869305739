"""The training loop: a :class:`Trainer` with an explicit :class:`TrainState` (built and checked
by :func:`pymsde.training.trainer.fit`; see that module for the whole story).

One step gathers its windows by index, runs the model and the optimiser, and appends its
ELBO terms (device tensors) to a buffer, read in one host synchronisation every ``log_every``
steps (and at the latest every 1024 steps). :meth:`Trainer.save` commits the run's state
through :class:`pymsde.training.run.RunFiles` (the checkpoint first, then ``best.pt`` and the
logs). SIGINT / SIGTERM (:func:`stop_on_signals`) stop the loop at the next step boundary:
the run is saved, marked ``interrupted``, and :class:`~pymsde.util.errors.TrainingInterrupted`
is raised.

Randomness: a step's numbers come from streams keyed by ``(seed, step, window position)``
(:class:`~pymsde.training.elbo.WindowNoise`), so the trainer keeps no generator state: a
resumed run draws what the uninterrupted one draws, on any number of ranks. With a process
group (:mod:`pymsde.training.distributed`) each rank evaluates its slice of every global batch,
DDP averages the gradients, and rank 0 alone writes and validates.
"""
from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pymsde.data.trajectories import Trajectories
from pymsde.data.windows import WindowSampler
from pymsde.training import run as runmod
from pymsde.training.checkpoint import LOG_COLUMNS, check_optimizer_fits
from pymsde.training.config import TrainConfig
from pymsde.training.device_data import DeviceData, field_std, window_source
from pymsde.training.distributed import Dist, check_batch
from pymsde.training.elbo import Objective, WeightKL, WindowNoise, residual_factor
from pymsde.training.schedule import beta_at, lr_at
from pymsde.training.state import TrainResult, TrainState
from pymsde.training.validation import validate
from pymsde.util import rng as rngmod
from pymsde.util.errors import DataError, TrainingDivergedError, TrainingInterrupted
from pymsde.util.progress import progress

log = logging.getLogger(__name__)

#: The ELBO terms logged per step, in ``log.csv`` order after ``step, epoch, beta, lr``.
TERMS = ("loss", "loglik", "residual", "kl", "grad_norm")
#: Buffered steps read at the latest (a huge log_every must not hold millions of tensors).
_MAX_BUFFER = 1024


def _diagnose(term: str, step: int, data_std: float, lr: float, bad_params: list[str]) -> str:
    """A sentence with the likely cause of a non-finite ``term``."""
    hints = []
    if data_std == 0.0 or not math.isfinite(data_std):
        hints.append(f"the training field is constant (std {data_std:g}): the decoder variance collapses "
                     f"to zero, so the likelihood diverges")
    elif data_std > 1e2 or data_std < 1e-3:
        hints.append(f"the data scale (std {data_std:g}) is far from 1: rescale the field")
    hints.append({"loglik": "the decoder's variance or reconstruction blew up; lower train.lr",
                  "residual": "the drift or the posterior drift blew up (sigma near zero, or a too fast GP); "
                              "lower train.lr, set train.grad_clip, or lengthen train.beta_steps",
                  "kl": "the weight prior's KL blew up; check the weight_kl hook"}.get(
        term, "lower train.lr or set train.grad_clip"))
    hints.append(f"learning rate at that step: {lr:.3g}")
    where = f" (non-finite gradients in {', '.join(bad_params[:5])})" if bad_params else ""
    return f"{term}{where} became non-finite at step {step}; likely cause: " + "; ".join(hints)


class Trainer:
    """One training session of a model that fits its data (built and checked by :func:`fit`).

    Args:
        net: the model, on its device and dtype, in train mode.
        data, val: training and validation trajectories (val may be None); either may be a file
            opened with :func:`pymsde.data.lazy.open_lazy`: then every step reads its windows
            from the file (validation: rank 0 reads the split whole).
        config: the validated training configuration.
        run: the run directory (None: nothing written); it exists when the trainer starts.
        state: where the run stands (a fresh :class:`TrainState`, or one restored from a
            checkpoint together with ``opt_state`` and ``rng``).
        weight_kl: optional ``weight_kl(model) -> 0-dim tensor``.
        meta: the run's metadata dict (written as ``metadata.json``).
        data_sha256: the data file's SHA-256, recorded in every checkpoint ("" when unknown).
        dist: this process's place in a data-parallel run (default: alone); only rank 0
            writes ``run`` and validates.
    """

    def __init__(self, net, data: Trajectories, val: Trajectories | None, config: TrainConfig,
                 run: Path | None, state: TrainState, weight_kl: WeightKL | None = None, meta: dict | None = None,
                 opt_state: dict | None = None, rng: dict | None = None, t_wall0: float | None = None,
                 data_sha256: str = "", dist: Dist | None = None):
        self.net, self.config, self.run, self.state, self.weight_kl = net, config, run, state, weight_kl
        self.dist = dist if dist is not None else Dist()
        check_batch(config.batch_windows, self.dist.world_size)
        self.files = runmod.RunFiles(run) if run is not None and self.dist.main else None
        if self.files is not None:
            self.files.meta = meta if meta is not None else {}
        self.data_sha256 = data_sha256
        self.stop_signal: int | None = None
        self.t_wall0 = time.perf_counter() if t_wall0 is None else t_wall0
        device = next(net.parameters()).device
        dtype = next(net.parameters()).dtype
        self.train_d = window_source(data, device, dtype)       # in memory, or windows read from the file
        self.has_val = val is not None                          # every rank: validation records arrive
        if val is not None and self.dist.main and not isinstance(val, Trajectories):
            val = val.to_trajectories()                         # a file on disk: rank 0 reads the val split
        self.val_d = DeviceData.from_traj(val, device, dtype) if val is not None and self.dist.main else None
        if self.val_d is not None and config.window > val.n_t:
            log.warning("validation trajectories (%d times) are shorter than the window; validating on "
                        "windows of %d", val.n_t, val.n_t)
        self.data_std = field_std(data)
        self.res_factor = residual_factor(config.residual_scale, data.n_traj * data.n_t, config.window,
                                          data.channels * int(np.prod(data.grid_shape)))
        self.sampler = WindowSampler(data, config.window, seed=config.seed)
        self.offsets = torch.arange(config.window, device=device)
        self.steps_per_epoch = math.ceil(len(self.sampler) / config.batch_windows)
        total = self.steps_per_epoch * config.epochs
        self.total_steps = total if config.max_steps is None else min(total, config.max_steps)
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.objective = Objective(net, res_factor=self.res_factor, n_quad=config.n_quad, n_samples=config.n_samples,
                                   stratified=config.quadrature == "stratified", weight_kl=weight_kl,
                                   loglik_frames=config.loglik_frames, encode_stride=config.encode_stride)
        self.step_fn: torch.nn.Module | None = None             # the objective, in DDP with ranks: run_loop
        self.stop_agreed: int | None = None                     # the signal all ranks stop on (0: the budget)
        source = f"{run / runmod.CHECKPOINT_FILE}" if run is not None else "checkpoint"
        if opt_state is not None:
            check_optimizer_fits(opt_state, self.params, source)
            try:
                self.opt.load_state_dict(opt_state)
            except (ValueError, KeyError, TypeError, RuntimeError) as err:
                raise DataError(f"{source}: the optimizer state does not fit the model ({err})") from None
        if rng is not None:
            self._check_noise_record(rng, source)
        self.buf: list[torch.Tensor] = []                      # per-step terms, read in one sync
        self.buf_meta: list[tuple[int, int, float, float]] = []

    @property
    def meta(self) -> dict:
        return self.files.meta if self.files is not None else {}

    # ---------------------------------------------------------------- state and files
    def _check_noise_record(self, rng: dict, source: str) -> None:
        """The noise is keyed by (seed, step, window): nothing to restore. A checkpoint of a version
        with one sequential generator (its state in ``rng["noise"]``) resumes on keyed noise, warned."""
        if bytes(rng["noise"].tolist()) != NOISE_RECORD and self.dist.main:
            log.warning("%s: written by a pymsde version with a sequential noise generator; the run continues "
                        "with keyed noise (%s), so its path differs from what that version would have taken",
                        source, rngmod.SCHEME)

    def elapsed(self) -> float:
        """Training wall time of the run so far (s, all sessions)."""
        return self.state.elapsed_before + time.perf_counter() - self.t_wall0

    def checkpoint_state(self, status: str = "running") -> dict:
        """The checkpoint dict (:mod:`pymsde.training.checkpoint`) of the run as it stands."""
        s, net = self.state, self.net
        return {"model_state": net.state_dict(), "model_config": net.config.to_dict(),
                "train_config": self.config.to_dict(),
                "frozen": [n for n, p in net.named_parameters() if not p.requires_grad],
                "optimizer": self.opt.state_dict(), "step": s.step, "epoch": s.epoch, "epoch_pos": s.pos,
                "rng": {"torch": torch.get_rng_state(), "noise": torch.tensor(list(NOISE_RECORD), dtype=torch.uint8)},
                "world_size": self.dist.world_size,
                "history": s.history, "train_time_s": self.elapsed(),
                "versions": {k: v for k, v in runmod.environment_info().items() if k.endswith("version")},
                "log": torch.tensor(s.log_rows, dtype=torch.float64).reshape(-1, len(LOG_COLUMNS)),
                "best_step": s.best_step, "status": status, "validation_time_s": s.validation_time_s,
                "data_sha256": self.data_sha256}

    def save(self, best_too: bool = False, status: str = "running") -> None:
        """Commit the run's state: the checkpoint first, then ``best.pt`` (``best_too``) and the logs
        (rank 0; every rank reads its buffered terms, a collective with ranks)."""
        self.flush()
        if self.files is None:
            return
        self.files.commit(self.checkpoint_state(status), best_too, self.state.log_rows, self.state.history)

    def write_meta(self, **updates: Any) -> None:
        if self.files is not None:
            self.files.write_meta(**updates)

    def open(self, resumed_state: dict | None, run_config: tuple) -> None:
        """Open the run directory (locked, every check passed): remove stray temporaries; a new run
        commits its step-0 checkpoint first, a resumed one rebuilds the derived files from its
        checkpoint; then ``config.toml`` and ``metadata.json`` (status running)."""
        if self.files is None:
            return
        if resumed_state is None:
            self.files.clean()
            self.save()
        else:
            self.files.open_resumed(resumed_state)
            try:
                self.files.write_logs(self.state.log_rows, self.state.history)
            except OSError as err:
                raise self.files.write_error(err, self.state.step) from None
        try:
            runmod.write_run_config(self.run, *run_config)
        except OSError as err:
            raise self.files.write_error(err, self.state.step) from None
        self.write_meta(status="running")

    # ---------------------------------------------------------------- the loop
    def flush(self) -> None:
        """Read the buffered terms in one host sync into the log; stop on a non-finite one."""
        if not self.buf:
            return
        vals = torch.stack(self.buf)
        if self.dist.active:           # each rank's share of the batch means -> the global batch's
            head = self.dist.sum(vals[:, :4].contiguous())
            vals = torch.cat([head, vals[:, 4:]], dim=1)
        vals = vals.tolist()
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
        keep = ""
        if self.files is not None:
            with contextlib.suppress(OSError):   # the log with the bad row, for the diagnosis
                self.files.write_logs(self.state.log_rows, self.state.history)
            ck = self.run / runmod.CHECKPOINT_FILE
            keep = f"; the last good checkpoint is kept: {ck}" if ck.is_file() else ""
            self.write_meta(status=f"diverged at step {step}")
        raise TrainingDivergedError(_diagnose(term, step, self.data_std, lr, bad_params) + keep)

    def _validation_record(self) -> tuple[dict, float]:
        s = self.state
        t_val = time.perf_counter()
        rec = {"step": s.step, "epoch": s.epoch}
        rec.update(validate(self.net, self.val_d, self.config, self.res_factor, self.weight_kl))
        rec["time_s"] = self.elapsed()
        return rec, time.perf_counter() - t_val

    def validate(self) -> None:
        """Validate (when there are validation data), record it, save; best.pt when it improved.
        With ranks: rank 0 validates and broadcasts the record, so all decide alike."""
        if not self.has_val:
            return
        s = self.state
        rec, took = self.dist.broadcast(self.dist.run_agreed(self._validation_record, main_only=True))
        s.validation_time_s += took
        s.history.append(rec)
        score = rec.get("val_nrmse", math.inf)
        improved = score < s.best
        if improved:
            s.best, s.best_step = score, s.step
        log.info("validation at step %d: %s", s.step, {k: round(v, 5) for k, v in rec.items()})
        self.save(best_too=improved)

    def train_step(self, batch: np.ndarray) -> None:
        """One optimiser step on the global batch of windows ``batch`` (``(n, 2)``: trajectory, start);
        this rank evaluates its slice (:func:`~pymsde.training.distributed.rank_slice`)."""
        s, cfg = self.state, self.config
        n = batch.shape[0]
        lo, hi = self.dist.slice(n)
        # a rank without a window (a short last batch) evaluates one with weight 0: it must join the all-reduce
        rows, windows = (batch[lo:hi], tuple(range(lo, hi))) if hi > lo else (batch[:1], (0,))
        idx = torch.from_numpy(rows).to(self.offsets.device, non_blocking=True)
        u, t, mu, f = self.train_d.windows(idx[:, 0], idx[:, 1], self.offsets)
        beta = beta_at(s.step, cfg.beta_steps, cfg.beta_warmup)
        lr = lr_at(s.step, cfg.lr, cfg.lr_decay, cfg.lr_decay_steps)
        for g in self.opt.param_groups:
            g["lr"] = lr
        terms = self.step_fn(u, t, mu, f, beta, WindowNoise(cfg.seed, s.step, windows))
        self.opt.zero_grad(set_to_none=True)
        scale = self.dist.loss_scale(hi - lo, n)              # 1.0 alone: DDP's mean -> the batch mean
        (terms["loss"] if scale == 1.0 else terms["loss"] * scale).backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        gnorm = torch.nn.utils.get_total_norm(grads, foreach=True)
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, cfg.grad_clip, gnorm, foreach=True)
        self.opt.step()
        share = (hi - lo) / n if self.dist.active else 1.0    # the terms are summed over the ranks
        row = [terms[k].detach() for k in ("loss", "loglik", "residual", "kl")]
        if share != 1.0:
            row = [x * share for x in row]
        self.buf.append(torch.stack([*row, gnorm.detach()]))
        self.buf_meta.append((s.step, s.epoch, beta, lr))
        s.step += 1
        s.pos += batch.shape[0]

    def _should_stop(self, budget_s: float | None) -> bool:
        """A signal or the time budget, agreed on by all ranks (``stop_agreed``: the signal, 0: budget)."""
        sig = self.stop_signal or 0
        over = budget_s is not None and self.elapsed() >= budget_s
        if self.dist.active:
            sig, over = self.dist.max([sig, int(over and self.dist.main)])  # rank 0's clock decides the budget
        if sig or over:
            self.stop_agreed = int(sig)
        return bool(sig or over)

    def _epoch(self, bar, budget_s: float | None) -> bool:
        """Steps through the rest of the current epoch; True when the epoch completed."""
        s, cfg = self.state, self.config
        for batch in self.sampler.batches(cfg.batch_windows, epoch=s.epoch, start_at=s.pos):
            if s.step >= self.total_steps or self._should_stop(budget_s):
                return False
            self.train_step(batch)
            if s.step % cfg.log_every == 0:
                self.flush()
                last = s.log_rows[-1]
                bar.set_postfix(loss=f"{last[4]:.4g}", beta=f"{last[2]:.3f}", lr=f"{last[3]:.2e}", refresh=False)
            elif len(self.buf) >= _MAX_BUFFER:
                self.flush()
            bar.update(1)
            if cfg.checkpoint_every and s.step % cfg.checkpoint_every == 0:
                self.save()
        return True

    def run_loop(self) -> None:
        """Train to the step budget (or the time budget), validating every ``validate_every`` epochs."""
        s, cfg = self.state, self.config
        budget_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
        if self.step_fn is None:                 # DDP's construction is a collective: all ranks are here
            self.step_fn = self.dist.wrap(self.objective, self.offsets.device)
        bar = progress(total=self.total_steps, initial=s.step, desc="train", unit="step",
                       enabled=cfg.progress and self.dist.main)
        last_val_step = s.history[-1]["step"] if s.history else -1
        try:
            while s.step < self.total_steps and self.stop_agreed is None:
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
        if self.stop_agreed:
            self._interrupted()
        if self.has_val and last_val_step != s.step:
            self.validate()
        self.save(status="done")

    def _interrupted(self) -> None:
        """Save the run as it stands, mark it interrupted, raise TrainingInterrupted."""
        s, sig = self.state, self.stop_agreed or self.stop_signal
        name = signal.Signals(sig).name
        self.save(status="interrupted")
        self.write_meta(status="interrupted", interrupted_by=name, steps=s.step, epochs=s.epoch,
                        train_time_s=self.elapsed())
        where = (f"; checkpoint saved: {self.run / runmod.CHECKPOINT_FILE} (continue with --resume)"
                 if self.run is not None else " (no run directory: nothing saved)")
        raise TrainingInterrupted(f"interrupted by {name} at step {s.step} of {self.total_steps}{where}", sig)

    def result(self) -> TrainResult:
        """Finish the run's metadata and return the :class:`TrainResult`."""
        s = self.state
        self.net.eval()
        total = self.elapsed()
        self.write_meta(status="done", steps=s.step, epochs=s.epoch, train_time_s=total,
                        validation_time_s=s.validation_time_s, final=s.history[-1] if s.history else {},
                        best_val_nrmse=None if not math.isfinite(s.best) else s.best)
        cols = np.asarray(s.log_rows, dtype=np.float64).reshape(-1, len(LOG_COLUMNS))
        return TrainResult(model=self.net, steps=s.step, epochs=s.epoch, train_time_s=total, history=s.history,
                           log={c: cols[:, i] for i, c in enumerate(LOG_COLUMNS)}, run_dir=self.run,
                           config=self.config)


#: ``rng["noise"]`` of a checkpoint: the name of the keyed noise scheme (formerly a generator's state)
NOISE_RECORD = rngmod.SCHEME.encode()


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer):
    """While training: SIGINT / SIGTERM ask ``trainer`` to stop at the next step boundary (a
    second signal stops at once, as KeyboardInterrupt). Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_signal is not None:
            raise KeyboardInterrupt
        trainer.stop_signal = signum
        log.info("%s: stopping at the next step boundary (again: stop at once)", signal.Signals(signum).name)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


__all__ = ["Trainer", "TrainState", "TrainResult", "TERMS", "stop_on_signals"]
