"""The training loop: :func:`fit` a multiscale model to trajectories (docs/method.md section 6).

One optimiser step draws ``batch_windows`` windows of ``window`` consecutive observations
(shuffled epochs of :class:`pymsde.data.windows.WindowSampler`), evaluates the ELBO terms
(:mod:`pymsde.training.elbo`) and takes an Adam step with the learning rate and the KL weight
of :mod:`pymsde.training.schedule`. No SDE is solved inside training.

:func:`fit` checks everything before any work (configuration, data, model, the run
directory), then hands over to a :class:`~pymsde.training.loop.Trainer`, whose state
(:class:`~pymsde.training.loop.TrainState`) is explicit: position, history, log rows, best
score and timings.

Hot path: the training data are moved to the device once; a step gathers its windows by
index, runs the model and the optimiser, and appends its ELBO terms (device tensors) to a
buffer. Every ``log_every`` steps the buffer is read in one host synchronisation, written to
``log.csv``, and checked for non-finite values (a :class:`TrainingDivergedError` naming the
term that went bad; the last checkpoint, always written after such a check, stays intact).

Faults (:mod:`pymsde.training.run`, ``docs/robustness.md``): the run directory is locked for
the whole session (a second trainer is refused, naming this one); each save commits the
checkpoint first (with the log rows, the history and the best step inside it) and derives
``best.pt`` and the logs from it, so a kill at any instant resumes to the uninterrupted
result; a step-0 checkpoint is committed as soon as the directory is opened. SIGINT and
SIGTERM stop the loop at the next step boundary, save a checkpoint, mark the run
``interrupted`` and raise :class:`~pymsde.util.errors.TrainingInterrupted` (a second signal
stops at once). A full disk is a one-line :class:`~pymsde.util.errors.RunWriteError` naming
the last good checkpoint. Every size is checked against the available memory before anything
is allocated (:func:`pymsde.training.config.memory_needs`).

Reproducibility: ``seed`` seeds the model initialisation (inside ``torch.random.fork_rng``,
so the caller's global RNG is left as it was), the window order (a pure function of ``(seed, epoch)``) and
every random number of the objective, drawn from streams keyed by ``(seed, step, window position in the
global batch)`` (:mod:`pymsde.util.rng`). On CPU a run is deterministic for a fixed thread count, and a
run resumed from a checkpoint follows the uninterrupted run exactly (parameters and ``log.csv``; the
validation history of the resumed run has one more record, at the step where the first call stopped,
since every call validates its final state).

Data parallel (:mod:`pymsde.training.distributed`, docs/distributed.md): inside an initialised
process group (``torchrun ... -m pymsde train``), every rank calls :func:`fit` with the same
arguments; rank 0 locks and writes the run directory, each rank trains on its slice of every
global batch, and the result equals one process's with the same ``batch_windows`` up to the
rounding of the gradient sums. Checks that only rank 0 makes are agreed on, so a refusal is
raised on every rank. A run resumes on another world size (warned: same batches, same noise).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from pymsde.data.trajectories import Trajectories
from pymsde.data.windows import window_starts
from pymsde.model import ModelConfig, MultiscaleModel
from pymsde.model.config import check_data_fits
from pymsde.training import run as runmod
from pymsde.training.checkpoint import load_checkpoint
from pymsde.training.config import TrainConfig, memory_needs, parameters_lower_bound, resolve_device
from pymsde.training.device_data import resident_values
from pymsde.training.distributed import Dist, check_batch, current
from pymsde.training.elbo import WeightKL
from pymsde.training.loop import TERMS, Trainer, TrainResult, TrainState, _diagnose, stop_on_signals
from pymsde.util.errors import ConfigError, DataError, check_memory

log = logging.getLogger(__name__)

#: Training-config fields that change the optimisation path: a resumed run must keep them.
_PATH_FIELDS = ("window", "batch_windows", "n_quad", "n_samples", "loglik_frames", "encode_stride", "quadrature",
                "residual_scale", "lr",
                "lr_decay", "lr_decay_steps", "beta_warmup", "beta_steps", "grad_clip", "weight_decay",
                "seed", "dtype")


# ----------------------------------------------------------------------------- fit

def _check_config(config: TrainConfig, state: dict | None, data: Trajectories, val: Trajectories | None,
                  dist: Dist) -> None:
    """Everything about the configuration and the data that must hold before any work."""
    from pymsde.data.trajectories import DT_RTOL

    config.validate()
    check_batch(config.batch_windows, dist.world_size)
    if state is not None:
        old = TrainConfig.from_dict(state["train_config"], source="the checkpoint's train_config")
        diff = [f"{k}: {getattr(old, k)!r} -> {getattr(config, k)!r}" for k in _PATH_FIELDS
                if getattr(old, k) != getattr(config, k)]
        if diff:
            raise ConfigError(f"resume: the configuration differs from the checkpoint's in fields that change "
                              f"the training path ({'; '.join(diff)}); only epochs, max_steps, validation, "
                              f"checkpoint, logging and device settings may change")
        old_world = int(state.get("world_size", 1))
        if old_world != dist.world_size and dist.main:
            log.warning("resume: the run was trained on %d process(es) and continues on %d: the same global batches "
                        "and random numbers (keyed by step and window), so the same path up to the rounding of the "
                        "gradient sums", old_world, dist.world_size)
    if config.window > data.n_t:
        raise ConfigError(f"train.window = {config.window} observations is longer than the training "
                          f"trajectories ({data.n_t} times); expected window <= {data.n_t}")
    dt = data.dt                                            # DataError unless one common step
    if val is not None:
        if val.grid_shape != data.grid_shape or val.channels != data.channels or val.n_mu != data.n_mu \
                or val.n_f != data.n_f:
            raise DataError(f"validation data {val!r} do not match the training data {data!r}")
        if abs(val.dt - dt) > DT_RTOL * dt:
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


def _check_memory(model: Any, state: dict | None, config: TrainConfig, data: Trajectories,
                  val: Trajectories | None, device: torch.device, source: str):
    """Refuse a run whose model, data, step or validation would not fit in memory (before any
    allocation); returns the ModelConfig to build (None for a given module)."""
    cfg = None
    if state is not None:
        try:
            cfg = ModelConfig.from_dict(state["model_config"])
        except (TypeError, ValueError, KeyError) as err:
            raise DataError(f"{source}: model_config cannot be read ({err})") from None
        n_params = max(sum(t.numel() for t in state["model_state"].values()), parameters_lower_bound(cfg))
        mcfg = cfg
    elif isinstance(model, torch.nn.Module):
        mcfg, n_params = model.config, sum(p.numel() for p in model.parameters())
    else:
        cfg = mcfg = _model_config(model, data)             # ConfigError before any work
        n_params = parameters_lower_bound(cfg)
    itemsize = torch.finfo(getattr(torch, config.dtype)).bits // 8
    val_steps = 0 if val is None else min(config.val_forecast_steps, val.n_t - 1)
    where = "cuda" if device.type == "cuda" else "cpu"
    n_windows = data.n_traj * len(window_starts(data.n_t, config.window))
    resident = resident_values(data, config.batch_windows, config.window)
    for need, what, hint in memory_needs(config, mcfg, n_params, itemsize, resident,
                                         0 if val is None else val.n_traj, val_steps, n_windows):
        if state is not None and what.startswith("the model"):
            what = f"{source}: {what}"
        check_memory(need, what, hint, device=where)
    return cfg


def _make_net(model: Any, cfg: ModelConfig | None, state: dict | None, data: Trajectories, config: TrainConfig,
              device, dtype, source: str):
    """The model to train: restored from the checkpoint, given, or built (seeded) for the data."""
    if state is not None:
        net = runmod.model_from_state(state, device=device, dtype=dtype, source=source)
        frozen = set(state.get("frozen", []))            # parameters the user froze stay frozen
        for name, p in net.named_parameters():
            p.requires_grad_(name not in frozen)
    elif isinstance(model, torch.nn.Module):
        net = model
    else:
        # the initialisation draws from the global RNG (nn.init): seed it inside a fork, so the
        # process-wide RNG is left as the caller had it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            net = MultiscaleModel(cfg)
    net = net.to(device=device, dtype=dtype)
    check_data_fits(net.config, data, "training data", "the model")
    return net.train()


def _check_same_data(state: dict, run: Path, sha: str, data_path) -> None:
    """A resumed run trains on the data it started with (the checkpoint's SHA-256, else metadata's)."""
    old = state.get("data_sha256") or (runmod.RunFiles(run).read_meta().get("data") or {}).get("sha256")
    if sha and old and old != sha:
        raise DataError(f"{data_path}: SHA-256 {sha[:12]}... differs from the data the run in {run} "
                        f"was trained on ({old[:12]}...); resume with the same data file")


def _run_meta(trainer: Trainer, resumed: bool, data: Trajectories, val: Trajectories | None, device,
              data_path, sha: str, extra: Mapping | None) -> dict:
    """The run's metadata.json (a resumed run keeps what its file holds, e.g. timings), with the
    caller's ``extra`` entries."""
    meta = trainer.files.read_meta() if resumed else {}
    meta.update(extra or {})
    meta.pop("interrupted_by", None)
    meta.update(runmod.environment_info())
    meta.update({"device": str(device), "dtype": trainer.config.dtype, "n_obs_train": data.n_traj * data.n_t,
                 "n_traj_train": data.n_traj, "n_traj_val": 0 if val is None else val.n_traj,
                 "n_t": data.n_t, "dt": data.dt, "grid": list(data.grid_shape), "channels": data.channels,
                 "windows_per_epoch": len(trainer.sampler), "steps_per_epoch": trainer.steps_per_epoch,
                 "residual_factor": trainer.res_factor, "model_config": trainer.net.config.to_dict(),
                 "world_size": trainer.dist.world_size})
    if data_path is not None:
        meta["data"] = {"path": str(Path(data_path).resolve()), "sha256": sha, "case": data.attrs.get("case")}
    return meta


def _prepare(data, model, config, val, run: Path | None, resume: bool, data_path, weight_kl, t_wall0, dist: Dist,
             metadata: Mapping | None = None):
    """Every check, then the Trainer; nothing is written. Returns ``(trainer, checkpoint or None)``."""
    source = str(run / runmod.CHECKPOINT_FILE) if run is not None else "checkpoint"
    state = load_checkpoint(run / runmod.CHECKPOINT_FILE, for_resume=True) if resume else None
    if isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    if config is None:
        config = TrainConfig.from_dict(state["train_config"], source=source) if state is not None else TrainConfig()
    _check_config(config, state, data, val, dist)
    device = resolve_device(config.device)
    if device.type == "cuda" and dist.active:
        device = torch.device("cuda", torch.cuda.current_device())      # the rank's GPU (distributed.session)
    sha = runmod.sha256_file(data_path) if data_path is not None and dist.main else ""   # rank 0 records it
    if state is not None:
        _check_same_data(state, run, sha, data_path)
    cfg = _check_memory(model, state, config, data, val, device, source)
    net = _make_net(model, cfg, state, data, config, device, getattr(torch, config.dtype), source)
    if config.drift_prefit and state is None and isinstance(model, torch.nn.Module):
        log.warning("train.drift_prefit: the model was given built (e.g. warm-started); its drift is kept, not "
                    "pre-fitted")
    elif config.drift_prefit and state is None:
        # a model built here starts from the least-squares linear drift (a resumed or given one is trained)
        from pymsde.training.prefit import prefit_linear_drift

        metadata = {**(metadata or {}), "drift_prefit": prefit_linear_drift(net, data).as_dict()}
    tstate = TrainState.from_checkpoint(state, run) if state is not None else TrainState()
    trainer = Trainer(net, data, val, config, run, tstate, weight_kl, meta=None,
                      opt_state=None if state is None else state["optimizer"],
                      rng=None if state is None else state["rng"], t_wall0=t_wall0, data_sha256=sha, dist=dist)
    if trainer.files is not None:
        trainer.files.meta = _run_meta(trainer, state is not None, data, val, device, data_path, sha, metadata)
        if state is not None and "validation_time_s" not in state:
            tstate.validation_time_s = float(trainer.meta.get("validation_time_s", 0.0))
    return trainer, state


def fit(data: Trajectories, model: Any = None, config: TrainConfig | Mapping | None = None, *,
        val: Trajectories | None = None, run_dir: str | os.PathLike | None = None, resume: bool = False,
        data_path: str | os.PathLike | None = None, weight_kl: WeightKL | None = None,
        on_ready: Callable[[], None] | None = None, metadata: Mapping | None = None) -> TrainResult:
    """Train a multiscale model on ``data`` (docs/method.md section 6) and return it with its logs.

    Args:
        data: training trajectories (one common time step), in memory, or an HDF5 file opened
            with :func:`pymsde.data.lazy.open_lazy` (``u`` stays on disk: each step, each rank,
            reads the windows it trains on).
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
            It is locked for the session (a second trainer is refused).
        resume: continue the run in ``run_dir`` from its ``checkpoint.pt``.
        data_path: the data file (its SHA-256 goes into the metadata and the checkpoints).
        weight_kl: optional ``weight_kl(model) -> 0-dim tensor`` (priors on weights).
        on_ready: called once (on rank 0) when every check has passed, before the first step
            (``pymsde train`` prints the values it derived from the data there, so that a
            refused option is still a one-line error).
        metadata: further entries of the run's ``metadata.json`` (JSON values), written with
            it from the start (e.g. ``"init_from"`` of a warm start).

    Raises:
        ConfigError: impossible configuration, a size that does not fit in memory
            (:class:`~pymsde.util.errors.ResourceError`), a run directory in use
            (:class:`~pymsde.util.errors.RunInUseError`); refused before any work, nothing written.
        DataError: data that do not fit the model or each other; a damaged checkpoint.
        TrainingDivergedError: a non-finite loss; names the term and the likely cause.
        TrainingInterrupted: SIGINT / SIGTERM (in the main thread), after saving a checkpoint.
        RunWriteError: a run file could not be written (disk full); names the last good checkpoint.
    """
    from pymsde.data.lazy import LazyTrajectories

    kinds = (Trajectories, LazyTrajectories)
    if isinstance(model, kinds) and not isinstance(data, kinds):
        data, model = model, data           # fit(model, data, ...) reads as well
    if not isinstance(data, kinds):
        raise DataError(f"fit: data is a {type(data).__name__}; expected pymsde.data.Trajectories (or a file "
                        f"opened with pymsde.data.lazy.open_lazy)")
    t_wall0 = time.perf_counter()
    run = Path(run_dir) if run_dir is not None else None
    if resume and run is None:
        raise ConfigError("fit: resume=True needs run_dir (the run to continue)")
    dist = current()                                  # alone, or this rank of a process group
    lock = runmod.RunLock(run) if run is not None and dist.main else None
    opened = False
    try:
        # rank 0 claims the run directory (a second trainer and an existing run are refused
        # before any work); every rank checks and builds; rank 0 creates the directory only
        # after every check passed (a refused configuration leaves nothing behind). Each stage is
        # agreed on: a refusal on one rank is raised on all.
        dist.run_agreed(_claim, run, lock, resume, main_only=True)
        trainer, state = dist.run_agreed(_prepare, data, model, config, val, run, resume, data_path, weight_kl,
                                         t_wall0, dist, metadata)
        dist.run_agreed(_create, run, lock, resume, main_only=True)
        opened = True
        if on_ready is not None and dist.main:
            on_ready()
        with stop_on_signals(trainer):
            dist.run_agreed(trainer.open, state, (trainer.net.config, trainer.config))
            trainer.run_loop()
        return trainer.result()
    finally:
        if lock is not None:
            lock.release(refused=not opened)


def _claim(run: Path | None, lock, resume: bool) -> None:
    """Lock an existing run directory and refuse to overwrite a run (before any work)."""
    if run is None:
        return
    if run.is_dir():
        lock.acquire()
    runmod.check_run_target(run, resume=resume)


def _create(run: Path | None, lock, resume: bool) -> None:
    """Create and lock the run directory once every check passed (nothing when it was locked)."""
    if lock is not None and not lock.held:
        run.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        runmod.check_run_target(run, resume=resume)


__all__ = ["fit", "Trainer", "TrainState", "TrainResult", "resolve_device", "TERMS", "_diagnose"]
