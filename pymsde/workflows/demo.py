"""The demo: the whole pymsde journey on Burgers 1-D with a reduced training budget, in minutes on 2 CPU cores.

``run_demo(out)`` (``pymsde demo``):

1. simulate METHOD.md's Burgers 1-D data set (:func:`pymsde.systems.simulate`) and save it as
   ``OUT/data.npz`` with its train/val/test split;
2. train the multiscale model (``OUT/multiscale``) and the closure model (``micro_dim = 0``,
   ``OUT/closure``) with the same training configuration and budget (:func:`pymsde.training.fit`);
3. forecast the test trajectory with both, run the under-resolved DNS, score all three and
   write ``OUT/report/report.md`` with its plots (:func:`pymsde.evaluate.report.evaluate_run`).

The run folders are laid out so that ``pymsde evaluate OUT/multiscale --data OUT/data.npz``
finds its closure run (the sibling ``closure``) on its own.

The sizes are in :class:`DemoConfig`; the reasoning behind them is in
``docs/evaluation.md`` ("The demo").
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pymsde.util.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Sizes of the demo: METHOD.md's Burgers 1-D case and training recipe, with the training
    cut to ``max_steps`` optimiser steps per model (the paper trains 500 epochs = 32000 steps).

    Attributes:
        n_grid: fine grid points (METHOD.md: 1000).
        coarse: coarse cells (METHOD.md: 20).
        n_traj: trajectories, split ``split`` (train, val, test) (METHOD.md: 10, 8/1/1).
        n_steps: saved time steps per trajectory over ``t_end`` (METHOD.md: 1001 over T = 1).
        t_end: final time.
        micro: microscale dimension of the multiscale model.
        window: observations per training window (METHOD.md: 128).
        epochs: training epochs of each model (the same budget for both).
        max_steps: optimiser steps cap of each model (``None``: epochs decide). This is the
            reduction: 4000 steps (1/8 of the paper's budget) fit the demo in 322 s on a quiet
            2-core CPU machine.
        lr, lr_decay, lr_decay_steps, beta_steps: optimiser and KL-annealing schedule
            (METHOD.md: 1e-3, x0.9 per 1000 steps, KL weight ramped over 5000 steps).
        batch_windows: windows per optimiser step.
        n_samples: forecast ensemble size.
        seed: seeds data, training and forecasts.
        backend: compute backend of the forecasts.
        device: training device.
        validate_every: validation (ELBO terms + a short forecast on the val trajectory) every
            this many epochs; ``best.pt`` is the best of these, evaluated by the report.
        encoder_var_init, diffusion_init: initial encoder variance and prior diffusion sigma
            (``None``: the ModelConfig defaults, softplus(-4) = 0.018 and softplus(1) = 1.31,
            as in the reference). Smaller values (1e-4, 0.05) make both models learn faster
            in the first few hundred steps but let the closure model catch up with the
            multiscale one (docs/evaluation.md, "The demo").
        train_extra: further TrainConfig fields.
        model_extra: further ModelOptions fields (``{"extra": {...}}`` for ModelConfig fields).
    """

    n_grid: int = 1000
    coarse: int = 20
    n_traj: int = 10
    split: tuple[int, int, int] = (8, 1, 1)
    n_steps: int = 1001
    t_end: float = 1.0
    micro: int = 5
    window: int = 128
    epochs: int = 100
    max_steps: int | None = 4000
    lr: float = 1e-3
    lr_decay: float = 0.9
    lr_decay_steps: int = 1000
    beta_steps: int = 5000
    batch_windows: int = 1
    n_samples: int = 32
    seed: int = 0
    backend: str = "torch"
    device: str = "cpu"
    validate_every: int = 10
    encoder_var_init: float | None = None
    diffusion_init: float | None = None
    train_extra: dict = field(default_factory=dict)
    model_extra: dict = field(default_factory=dict)


def make_data(config: DemoConfig, path: Path):
    """Simulate the demo's Burgers 1-D data set, record the split, save it to ``path``."""
    from pymsde.data.io import save
    from pymsde.systems import simulate

    traj = simulate("burgers1d", n_traj=config.n_traj, seed=config.seed, n_grid=config.n_grid,
                    n_steps=config.n_steps, t_end=config.t_end, backend=config.backend, progress=True)
    traj = traj.split(tuple(int(c) for c in config.split), seed=config.seed)
    save(traj, path)
    return traj


def train_configs(config: DemoConfig, micro: int):
    """The (ModelOptions, TrainConfig) pair of one demo model."""
    from pymsde.training.config import ModelOptions, TrainConfig

    opts = dict(config.model_extra)
    inits = {"encoder_var_init": config.encoder_var_init, "diffusion_init": config.diffusion_init}
    extra = {**{k: v for k, v in inits.items() if v is not None}, **opts.pop("extra", {})}
    model = ModelOptions(coarse=(config.coarse,), micro=micro, extra=extra, **opts)

    train = TrainConfig(epochs=config.epochs, max_steps=config.max_steps, window=config.window,
                        batch_windows=config.batch_windows, lr=config.lr, lr_decay=config.lr_decay,
                        lr_decay_steps=config.lr_decay_steps, beta_steps=config.beta_steps,
                        validate_every=config.validate_every, seed=config.seed, device=config.device,
                        **config.train_extra)
    return model, train


def train_one(traj, model_opts, train_cfg, run_dir: Path, data_path: Path | None = None,
              resume: bool = False) -> float:
    """Train one model on ``traj``'s train split (validated on its val split) into ``run_dir``.

    ``resume`` continues the run in ``run_dir`` from its checkpoint (same data file and
    training path; ``train_cfg`` may only extend the budget). Returns the training wall time
    of this call in seconds.
    """
    from pymsde.training.train import fit

    train = traj.get_split("train", "training data")
    val = traj.get_split("val") if "val" in traj.splits else None
    start = time.perf_counter()
    fit(train, None if resume else model_opts, train_cfg, run_dir=run_dir, val=val, data_path=data_path,
        resume=resume)
    return time.perf_counter() - start


def _prepare_runs(out: Path, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, remove) earlier runs in ``OUT/multiscale`` and ``OUT/closure``."""
    for name in ("multiscale", "closure"):
        if (out / name / "checkpoint.pt").exists():
            if not overwrite:
                raise ConfigError(f"{out / name} already holds a trained run; choose another output folder "
                                  f"or pass --overwrite (overwrite=True) to train again from scratch")
            shutil.rmtree(out / name)


def run_pipeline(out: str | Path, traj, data_path: Path, model_opts, train_cfg, *, n_samples: int = 32,
                 backend: str = "torch", seed: int = 0, plots: bool = True, overwrite: bool = False,
                 resume: bool = False, extra_meta: dict | None = None):
    """Train the multiscale model and the closure model on ``traj`` and evaluate both plus the DNS.

    Args:
        out: output folder: ``OUT/multiscale``, ``OUT/closure`` (the runs) and ``OUT/report``.
        traj: the data (with its train/val/test split), saved at ``data_path``.
        model_opts: ``ModelOptions`` of the multiscale model; the closure model is the same
            with ``micro = 0``.
        train_cfg: ``TrainConfig`` shared by both models (same budget).
        n_samples, backend, seed: forecast ensemble size, backend and seed.
        overwrite: replace runs already in ``OUT/multiscale`` / ``OUT/closure`` (else ConfigError).
        resume: continue the runs already in ``OUT/multiscale`` / ``OUT/closure`` from their
            checkpoints (an interrupted long run) and start the missing ones; a finished run
            is validated once more and kept. Needs the same data file and training path.

    Returns:
        the :class:`~pymsde.evaluate.report.EvaluationResult` (report at ``result.report_path``).
    """
    import dataclasses

    from pymsde.workflows.evaluation import evaluate_run

    out = Path(out)
    if resume and overwrite:
        raise ConfigError("run_pipeline: resume and overwrite exclude each other (continue the runs, or "
                          "replace them)")
    if not resume:
        _prepare_runs(out, overwrite)
    times, resumed = {}, []
    for name, opts in (("multiscale", model_opts), ("closure", dataclasses.replace(model_opts, micro=0))):
        again = resume and (out / name / "checkpoint.pt").exists()
        log.info("%s the %s model (micro_dim = %d)", "resuming" if again else "training", name, opts.micro)
        times[name] = train_one(traj, opts, train_cfg, out / name, data_path, resume=again)
        resumed += [name] if again else []
    # training_time_s (from each run's metadata.json) includes validation and adds up resumed
    # sessions; this is the whole fit() call of this session only
    meta = {"training_wall_time_s": {k: round(v, 3) for k, v in times.items()}}
    if resumed:
        meta["resumed"] = resumed
    meta.update(extra_meta or {})
    return evaluate_run(out / "multiscale", data_path, split="test", baselines=("closure", "dns"),
                        closure_run=out / "closure", n_samples=n_samples, out=out / "report",
                        backend=backend, seed=seed, plots=plots, extra_meta=meta)


def run_demo(out: str | Path = "demo_out", config: DemoConfig | None = None, *, plots: bool = True,
             overwrite: bool = False):
    """Run the whole demo into ``out``; returns the :class:`~pymsde.evaluate.report.EvaluationResult`.

    The report is ``OUT/report/report.md`` (``result.report_path``). ``overwrite`` replaces the
    runs of an earlier demo in ``out`` (else ConfigError before any work).
    """
    config = config or DemoConfig()
    out = Path(out)
    _prepare_runs(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log.info("demo: simulating burgers1d (%d trajectories, %d points)", config.n_traj, config.n_grid)
    traj = make_data(config, out / "data.npz")
    t_sim = time.perf_counter() - t0
    model_opts, train_cfg = train_configs(config, config.micro)
    return run_pipeline(out, traj, out / "data.npz", model_opts, train_cfg, n_samples=config.n_samples,
                        backend=config.backend, seed=config.seed, plots=plots, overwrite=overwrite,
                        extra_meta={"simulation_time_s": round(t_sim, 3), "demo_config": _plain(asdict(config))})


def _plain(d):
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    return d
