"""The training loop: :func:`fit` a multiscale model to trajectories (METHOD.md section 6).

One optimiser step draws ``batch_windows`` windows of ``window`` consecutive observations
(shuffled epochs of :class:`pymsde.data.windows.WindowSampler`), evaluates the ELBO terms
(:mod:`pymsde.training.elbo`) and takes an Adam step with the learning rate and the KL weight
of :mod:`pymsde.training.schedule`. No SDE is solved inside training.

Hot path: the training data are moved to the device once; a step gathers its windows by
index, runs the model and the optimiser, and appends its ELBO terms (device tensors) to a
buffer. Every ``log_every`` steps the buffer is read in one host synchronisation, written to
``log.csv``, and checked for non-finite values (a :class:`TrainingDivergedError` naming the
term that went bad; the last checkpoint, always written after such a check, stays intact).

Reproducibility: ``seed`` seeds the model initialisation (the global torch RNG, just before
the model is built), the window order (a pure function of ``(seed, epoch)``) and a private
``torch.Generator`` for every random number of the objective. Validation uses its own
generator, re-seeded each time, so when and how often one validates does not change the
training path. On CPU a run is deterministic for a fixed thread count, and a run resumed
from a checkpoint follows the uninterrupted run exactly (parameters and ``log.csv``; the
validation history of the resumed run has one more record, at the step where the first
call stopped, since every call validates its final state). One exception was observed: on a
heavily loaded machine one gradient differed in its 6th digit at step 2090 of 4000 (the
demo), and the runs drifted apart from there (docs/evaluation.md, "Measured").
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from pymsde.data.trajectories import Trajectories
from pymsde.data.windows import WindowSampler, window_starts
from pymsde.evaluate.metrics import nrmse
from pymsde.forecast import forecast
from pymsde.model.config import check_data_fits
from pymsde.training import run as runmod
from pymsde.training.checkpoint import load_checkpoint, save_checkpoint
from pymsde.training.config import ModelOptions, TrainConfig
from pymsde.training.elbo import WeightKL, elbo_terms, residual_factor
from pymsde.training.schedule import beta_at, lr_at
from pymsde.util.errors import ConfigError, DataError, TrainingDivergedError
from pymsde.util.progress import progress

log = logging.getLogger(__name__)

#: The ELBO terms logged per step, in ``log.csv`` order after ``step, epoch, beta, lr``.
TERMS = ("loss", "loglik", "residual", "kl", "grad_norm")
#: Training-config fields that change the optimisation path: a resumed run must keep them.
_PATH_FIELDS = ("window", "batch_windows", "n_quad", "n_samples", "loglik_frames", "quadrature", "residual_scale", "lr",
                "lr_decay", "lr_decay_steps", "beta_warmup", "beta_steps", "grad_clip", "weight_decay",
                "seed", "dtype")
#: ModelConfig fields that come from the data, not from ModelOptions.
_DATA_FIELDS = ("fine_shape", "channels", "boundary", "domain", "n_mu", "n_f", "coarse_shape", "micro_dim",
                "stencil_radius", "drift_hidden", "micro_hidden", "encoder_channels", "activation")


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
        model_options, config: what the run used.
    """

    model: torch.nn.Module
    steps: int
    epochs: int
    train_time_s: float
    history: list[dict]
    log: dict[str, np.ndarray]
    run_dir: Path | None
    model_options: ModelOptions
    config: TrainConfig

    @property
    def final(self) -> dict:
        """The last validation record ({} without validation)."""
        return self.history[-1] if self.history else {}


# ----------------------------------------------------------------------------- helpers

def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA -> ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but torch.cuda.is_available() is False; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"train.device = {name!r}; expected 'auto', 'cpu' or 'cuda'")
    return torch.device(name)


def options_from_model_config(cfg) -> ModelOptions:
    """The :class:`ModelOptions` that rebuild ``cfg`` for a data set with its grid."""
    from pymsde.model import ModelConfig

    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)
                if f.default is not dataclasses.MISSING}
    d = cfg.to_dict()
    extra = {k: v for k, v in d.items() if k not in _DATA_FIELDS and k in defaults
             and _plain(v) != _plain(defaults[k])}
    return ModelOptions(coarse=tuple(cfg.coarse_shape), micro=cfg.micro_dim, radius=cfg.stencil_radius,
                        drift_hidden=tuple(cfg.drift_hidden), micro_hidden=tuple(cfg.micro_hidden),
                        encoder_channels=tuple(cfg.encoder_channels), activation=cfg.activation, extra=extra)


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def build_model(grid, options: ModelOptions, channels: int = 1, n_mu: int = 0, n_f: int = 0):
    """Build a ``MultiscaleModel`` for ``grid`` from :class:`ModelOptions` (ConfigError if impossible)."""
    from pymsde.model import MultiscaleModel

    options.validate()
    grid.coarsening_factors(options.coarse)  # ConfigError naming the axis, before any work
    return MultiscaleModel.build(grid, options.coarse, channels=channels, n_mu=n_mu, n_f=n_f,
                                 **options.build_kwargs())


@dataclass
class _DeviceData:
    """Trajectories as device tensors (moved once)."""

    u: torch.Tensor            # (n_traj, n_t, C, *grid)
    t: torch.Tensor            # (n_traj, n_t) float64
    mu: torch.Tensor | None    # (n_traj, n_mu)
    f: torch.Tensor | None     # (n_traj, n_t, n_f)
    dt: float

    @classmethod
    def from_traj(cls, tr: Trajectories, device, dtype) -> "_DeviceData":
        conv = lambda a: None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
        # times stay float64: relative times are formed before rounding to the model's dtype
        t = torch.as_tensor(tr.t, dtype=torch.float64, device=device)
        return cls(conv(tr.u), t, conv(tr.mu), conv(tr.f), tr.dt)

    def windows(self, traj_idx: torch.Tensor, start: torch.Tensor, offsets: torch.Tensor):
        """Gather windows: ``u`` (B, M, C, *grid), ``t`` (B, M), ``mu`` (B, n_mu), ``f`` (B, M, n_f)."""
        steps = start[:, None] + offsets[None, :]
        rows = traj_idx[:, None]
        return (self.u[rows, steps], self.t[rows, steps],
                None if self.mu is None else self.mu[traj_idx],
                None if self.f is None else self.f[rows, steps])


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


def _decode_mean(model, z: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    return torch.cat([model.decode(z[i:i + chunk])[0] for i in range(0, z.shape[0], chunk)])


def _mean_nrmse(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over trajectories of :func:`pymsde.evaluate.metrics.nrmse` (percent); inf when
    the prediction is not finite or undefined (a diverged model scores as infinitely wrong)."""
    if not bool(torch.isfinite(pred).all()):
        return math.inf
    try:
        return float(np.mean([nrmse(p, y) for p, y in zip(pred, truth)]))
    except DataError:          # a truth frame that is identically zero: nRMSE undefined
        return math.inf


@torch.no_grad()
def validate(model, val: _DeviceData, config: TrainConfig, res_factor: float,
             weight_kl: WeightKL | None = None) -> dict[str, float]:
    """Validation scores of ``model`` on device data ``val``.

    - ELBO terms (beta = 1, midpoint quadrature) averaged over every window of every
      validation trajectory;
    - ``val_nrmse``: a short :func:`~pymsde.forecast.forecast` from each trajectory's first
      frame (``val_forecast_samples`` members, Euler-Maruyama at the data step,
      ``val_forecast_steps`` steps), nRMSE (%) of the ensemble mean against the truth (mean
      over trajectories). All trajectories start at the first trajectory's time (the time
      features of the micro drift);
    - ``val_recon_nrmse``: the autoencoder floor, nRMSE (%) of decode(encode mean) over the
      same frames.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=val.u.device).manual_seed(config.seed + 7919)
    n_traj, n_t = val.u.shape[:2]
    out: dict[str, float] = {}
    window = min(config.window, n_t)
    starts = torch.as_tensor(window_starts(n_t, window), device=val.u.device)
    pairs = torch.cartesian_prod(torch.arange(n_traj, device=val.u.device), starts).reshape(-1, 2)
    offsets = torch.arange(window, device=val.u.device)
    acc = torch.zeros(4, dtype=val.u.dtype, device=val.u.device)
    bw = max(1, config.batch_windows)
    for i in range(0, pairs.shape[0], bw):
        p = pairs[i:i + bw]
        u, t, mu, f = val.windows(p[:, 0], p[:, 1], offsets)
        terms = elbo_terms(model, u, t, mu, f, beta=1.0, res_factor=res_factor, n_quad=config.n_quad,
                           n_samples=config.n_samples, stratified=False, generator=gen, weight_kl=weight_kl)
        acc += torch.stack([terms[k] for k in ("loss", "loglik", "residual", "kl")]) * p.shape[0]
    for k, v in zip(("val_loss", "val_loglik", "val_residual", "val_kl"), (acc / pairs.shape[0]).tolist()):
        out[k] = v

    n_steps = min(config.val_forecast_steps, n_t - 1)
    if n_steps >= 1:
        truth = val.u[:, :n_steps + 1]
        t0, dt = float(val.t[0, 0]), val.dt
        t_out = t0 + dt * np.arange(n_steps + 1)
        f = None if val.f is None else val.f[:, :n_steps + 1]
        fc = forecast(model, val.u[:, 0], t_out, val.mu, f, f_times=t_out, t0=t0, dt=dt,
                      n_samples=config.val_forecast_samples, quantiles=(), decode_batch=512, generator=gen,
                      check_finite=False)
        out["val_nrmse"] = _mean_nrmse(fc.mean, truth)
        frames = truth.flatten(0, 1)
        rec = _decode_mean(model, torch.cat([model.encode(frames[i:i + 512])[0]
                                             for i in range(0, frames.shape[0], 512)]))
        out["val_recon_nrmse"] = _mean_nrmse(rec.reshape(truth.shape), truth)
    model.train(was_training)
    return out


# ----------------------------------------------------------------------------- fit

def fit(data: Trajectories, model: Any = None, config: TrainConfig | Mapping | None = None, *,
        val: Trajectories | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
        data_path: str | os.PathLike | None = None, weight_kl: WeightKL | None = None) -> TrainResult:
    """Train a multiscale model on ``data`` (METHOD.md section 6) and return it with its logs.

    Args:
        data: training trajectories (one common time step).
        model: a built ``MultiscaleModel`` to train, or :class:`ModelOptions` (or their dict,
            e.g. ``{"coarse": [20], "micro": 5}``) to build one for ``data``'s grid. May be
            None when resuming (the architecture is read from the checkpoint). For the order
            of docs/DESIGN.md, ``fit(model, data, ...)`` is accepted too.
        config: :class:`TrainConfig` (or its dict); default ``TrainConfig()``. When resuming,
            None means the checkpoint's configuration; a given one may change only the
            bookkeeping fields (epochs, max_steps, validation, checkpoints, logging, device).
        val: validation trajectories (ELBO terms and a short forecast every
            ``validate_every`` epochs and at the end).
        run_dir: where to write config, metadata, logs and checkpoints (None: nothing written).
        resume: continue the run in ``run_dir`` from its ``checkpoint.pt``.
        data_path: the data file (its SHA-256 goes into the metadata).
        weight_kl: optional ``weight_kl(model) -> 0-dim tensor`` (priors on weights).

    Returns:
        :class:`TrainResult`.

    Raises:
        ConfigError: impossible configuration (refused before any work).
        DataError: data that do not fit the model or each other.
        TrainingDivergedError: a non-finite loss; names the term and the likely cause.
    """
    if isinstance(model, Trajectories) and not isinstance(data, Trajectories):
        data, model = model, data           # fit(model, data, ...) as in docs/DESIGN.md
    if not isinstance(data, Trajectories):
        raise DataError(f"fit: data is a {type(data).__name__}; expected pymsde.data.Trajectories")
    t_wall0 = time.perf_counter()

    # ---- configuration, checked before any work
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

    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)

    if state is not None:
        net = runmod.model_from_state(state, device=device, dtype=dtype)
        # parameters the user froze (requires_grad False) stay frozen in the resumed run
        frozen = set(state.get("frozen", []))
        for name, p in net.named_parameters():
            p.requires_grad_(name not in frozen)
        options = ModelOptions.from_dict(state.get("model_options") or options_from_model_config(net.config).to_dict())
    elif isinstance(model, torch.nn.Module):
        net = model
        options = options_from_model_config(net.config)
    else:
        options = model if isinstance(model, ModelOptions) else ModelOptions.from_dict(model or {})
        options.validate()
        data.grid.coarsening_factors(options.coarse)

    if state is None and not isinstance(model, torch.nn.Module):
        torch.manual_seed(config.seed)
        net = build_model(data.grid, options, channels=data.channels, n_mu=data.n_mu, n_f=data.n_f)
    net = net.to(device=device, dtype=dtype)
    check_data_fits(net.config, data, "training data", "the model")
    net.train()

    # ---- data on the device, once
    train_d = _DeviceData.from_traj(data, device, dtype)
    val_d = _DeviceData.from_traj(val, device, dtype) if val is not None else None
    if val is not None and config.window > val.n_t:
        log.warning("validation trajectories (%d times) are shorter than the window; validating on "
                    "windows of %d", val.n_t, val.n_t)
    data_std = float(np.std(data.u[:, :: max(1, data.n_t // 50)]))
    n_obs = data.n_traj * data.n_t
    n_fine = data.channels * int(np.prod(data.grid_shape))
    c_res = residual_factor(config.residual_scale, n_obs, config.window, n_fine)

    sampler = WindowSampler(data, config.window, seed=config.seed)
    offsets = torch.arange(config.window, device=device)
    steps_per_epoch = math.ceil(len(sampler) / config.batch_windows)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    step, epoch, pos = 0, 0, 0
    history: list[dict] = []
    log_rows: list[list[float]] = []
    elapsed_before = 0.0
    best = math.inf
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        step, epoch, pos = int(state["step"]), int(state["epoch"]), int(state["epoch_pos"])
        try:
            gen.set_state(state["rng"]["noise"].to("cpu") if device.type == "cpu" else state["rng"]["noise"])
        except RuntimeError as err:   # a CPU and a CUDA generator state differ in kind and size
            raise ConfigError(f"resume: the checkpoint's noise-generator state does not fit a {device.type} "
                              f"generator ({err}); a run resumes only on the device type it was trained on "
                              f"(cpu or cuda: --device)") from None
        torch.set_rng_state(state["rng"]["torch"])
        history = [dict(h) for h in state.get("history", [])]
        elapsed_before = float(state.get("train_time_s", 0.0))
        best = min([h.get("val_nrmse", math.inf) for h in history] + [math.inf])
        cols, rows = runmod.read_csv(run / runmod.LOG_FILE)
        if cols == list(runmod.LOG_COLUMNS):
            log_rows = [r for r in rows if r[0] < step]

    # ---- run directory: created only now, after every check above passed (a refused
    # configuration leaves nothing behind)
    meta: dict[str, Any] = {}
    if run is not None:
        runmod.prepare_run_dir(run, resume=state is not None)
        runmod.write_run_config(run, options, config)
        meta = runmod.read_json(run / runmod.METADATA_FILE) if state is not None else {}
        meta.update(runmod.environment_info())
        meta.update({"device": str(device), "dtype": config.dtype, "n_obs_train": n_obs,
                     "n_traj_train": data.n_traj, "n_traj_val": 0 if val is None else val.n_traj,
                     "n_t": data.n_t, "dt": dt, "grid": list(data.grid_shape), "channels": data.channels,
                     "windows_per_epoch": len(sampler), "steps_per_epoch": steps_per_epoch,
                     "residual_factor": c_res, "model_config": net.config.to_dict()})
        if data_path is not None:
            sha = runmod.sha256_file(data_path)
            old_sha = (meta.get("data") or {}).get("sha256")
            if state is not None and old_sha and old_sha != sha:
                raise DataError(f"{data_path}: SHA-256 {sha[:12]}... differs from the data the run in {run} "
                                f"was trained on ({old_sha[:12]}...); resume with the same data file")
            meta["data"] = {"path": str(Path(data_path).resolve()), "sha256": sha, "case": data.attrs.get("case")}
        meta["status"] = "running"
        runmod.write_json(run / runmod.METADATA_FILE, meta)

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t_wall0

    def make_state() -> dict:
        return {"model_state": net.state_dict(), "model_config": net.config.to_dict(),
                "model_options": options.to_dict(), "train_config": config.to_dict(),
                "frozen": [n for n, p in net.named_parameters() if not p.requires_grad],
                "optimizer": opt.state_dict(), "step": step, "epoch": epoch, "epoch_pos": pos,
                "rng": {"torch": torch.get_rng_state(), "noise": gen.get_state()},
                "history": history, "train_time_s": elapsed(),
                "versions": {k: v for k, v in runmod.environment_info().items() if k.endswith("version")}}

    def write_logs() -> None:
        if run is None:
            return
        runmod.write_csv(run / runmod.LOG_FILE, runmod.LOG_COLUMNS, log_rows)
        if history:
            cols = list(history[0].keys())
            runmod.write_csv(run / runmod.VAL_FILE, cols, [[h.get(c, math.nan) for c in cols] for h in history])

    def save(best_too: bool = False) -> None:
        if run is None:
            return
        st = make_state()
        save_checkpoint(run / runmod.CHECKPOINT_FILE, st)
        if best_too:
            save_checkpoint(run / runmod.BEST_FILE, st)
        write_logs()

    # buffered per-step terms: (n, 5) device tensors, read in one sync by flush()
    buf: list[torch.Tensor] = []
    buf_meta: list[tuple[int, int, float, float]] = []
    t_steps = [0.0]

    def flush() -> None:
        if not buf:
            return
        vals = torch.stack(buf).tolist()
        now = elapsed()
        for (s, e, b, lr), v in zip(buf_meta, vals):
            if not all(math.isfinite(x) for x in v):
                names = [n for n, x in zip(TERMS, v) if not math.isfinite(x)]
                term = next((n for n in ("loglik", "residual", "kl") if n in names), None)
                bad_params = []
                if term is None:
                    term = "a parameter gradient"
                    bad_params = [n for n, p in net.named_parameters()
                                  if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
                log_rows.append([s, e, b, lr, *v, now])
                buf.clear()
                buf_meta.clear()
                write_logs()
                ck = run / runmod.CHECKPOINT_FILE if run is not None else None
                keep = (f"; the last good checkpoint is kept: {ck}" if ck is not None and ck.is_file()
                        else "")
                if run is not None:
                    meta["status"] = f"diverged at step {s}"
                    runmod.write_json(run / runmod.METADATA_FILE, meta)
                raise TrainingDivergedError(_diagnose(term, s, data_std, lr, bad_params) + keep)
            log_rows.append([s, e, b, lr, *v, now])
        buf.clear()
        buf_meta.clear()

    val_time = [float(meta.get("validation_time_s", 0.0)) if state is not None else 0.0]

    def run_validation() -> None:
        nonlocal best
        if val_d is None:
            return
        t_val = time.perf_counter()
        rec = {"step": step, "epoch": epoch}
        rec.update(validate(net, val_d, config, c_res, weight_kl))
        rec["time_s"] = elapsed()
        val_time[0] += time.perf_counter() - t_val
        history.append(rec)
        improved = rec.get("val_nrmse", math.inf) < best
        best = min(best, rec.get("val_nrmse", math.inf))
        log.info("validation at step %d: %s", step, {k: round(v, 5) for k, v in rec.items()})
        if run is not None:
            save(best_too=improved)

    budget_s = None if config.max_minutes is None else 60.0 * config.max_minutes
    bar = progress(total=total_steps, initial=step, desc="train", unit="step", enabled=config.progress)
    last_val_step = history[-1]["step"] if history else -1
    try:
        while step < total_steps:
            batches = sampler.batches(config.batch_windows, epoch=epoch, start_at=pos)
            for batch in batches:
                if step >= total_steps or (budget_s is not None and elapsed() >= budget_s):
                    break
                idx = torch.from_numpy(batch).to(device, non_blocking=True)
                u, t, mu, f = train_d.windows(idx[:, 0], idx[:, 1], offsets)
                beta = beta_at(step, config.beta_steps, config.beta_warmup)
                lr = lr_at(step, config.lr, config.lr_decay, config.lr_decay_steps)
                for g in opt.param_groups:
                    g["lr"] = lr
                terms = elbo_terms(net, u, t, mu, f, beta=beta, res_factor=c_res, n_quad=config.n_quad,
                                   n_samples=config.n_samples, stratified=config.quadrature == "stratified",
                                   generator=gen, weight_kl=weight_kl, loglik_frames=config.loglik_frames)
                opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                grads = [p.grad for p in params if p.grad is not None]
                gnorm = torch.nn.utils.get_total_norm(grads, foreach=True)
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grads_with_norm_(params, config.grad_clip, gnorm, foreach=True)
                opt.step()
                buf.append(torch.stack([terms["loss"].detach(), terms["loglik"].detach(),
                                        terms["residual"].detach(), terms["kl"].detach(), gnorm.detach()]))
                buf_meta.append((step, epoch, beta, lr))
                step += 1
                pos += batch.shape[0]
                if step % config.log_every == 0:
                    flush()
                    bar.set_postfix(loss=f"{log_rows[-1][4]:.4g}", beta=f"{beta:.3f}", lr=f"{lr:.2e}",
                                    refresh=False)
                bar.update(1)
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    flush()
                    save()
            else:
                # the epoch is complete
                epoch += 1
                pos = 0
                if config.validate_every and epoch % config.validate_every == 0:
                    flush()
                    run_validation()
                    last_val_step = step
                continue
            break
        flush()
    finally:
        bar.close()
    if val_d is not None and last_val_step != step:
        run_validation()
    save()
    net.eval()
    total = elapsed()
    if run is not None:
        meta.update({"status": "done", "steps": step, "epochs": epoch, "train_time_s": total,
                     "validation_time_s": val_time[0],
                     "final": history[-1] if history else {},
                     "best_val_nrmse": None if not math.isfinite(best) else best})
        runmod.write_json(run / runmod.METADATA_FILE, meta)
    cols = np.asarray(log_rows, dtype=np.float64).reshape(-1, len(runmod.LOG_COLUMNS))
    return TrainResult(model=net, steps=step, epochs=epoch, train_time_s=total, history=history,
                       log={c: cols[:, i] for i, c in enumerate(runmod.LOG_COLUMNS)}, run_dir=run,
                       model_options=options, config=config)
