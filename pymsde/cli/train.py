"""``pymsde train``: fit a multiscale model to a data file (flags generated from the config fields)."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

_DESCRIPTION = """Fit a multiscale model to a data file.

    pymsde train DATA --coarse 20 --micro 5 --epochs 100 --out RUN_DIR
    pymsde train DATA --coarse 8 8 --micro 5 --out RUN_DIR            # 2-D
    pymsde train DATA --config run.toml --out RUN_DIR                  # options from TOML
    pymsde train DATA --out RUN_DIR --resume --epochs 200              # continue a run
    torchrun --standalone --nproc-per-node 4 -m pymsde train DATA --batch-windows 8 --out RUN_DIR
                                                                       # data parallel (docs/distributed.md)

Every option is also a key of the [model] / [train] tables of a TOML file (--config;
the key is the option's field name, e.g. coarse_shape for --coarse); the command line
overrides the file, the file overrides the defaults. The run directory receives
config.toml (the exact options used), metadata.json (the data file's SHA-256, package
and torch versions, timings), log.csv, val.csv and the checkpoints. Trains on the data
file's train split (attrs["split"]; all trajectories when the file has no splits) and
validates on its val split when there is one.

Without --recipe, the options that depend on the data and that you did not set are derived
from the training split, and each derived value is printed: the window fits the
trajectories, the run has 2000 to 20000 steps, the KL ramp ends after a quarter of them, the
learning rate decays by --lr-decay four times; the drift gets a linear stencil term fitted
by least squares before the first step, the initial variances follow the data's scale, and
the run forecasts with Heun's scheme (docs/own_data.md). --recipe reference keeps the plain
defaults.
"""


def register(subparsers) -> None:
    from pymsde.cli._options import add_options
    from pymsde.model.config import ModelConfig
    from pymsde.training.config import TrainConfig

    p = subparsers.add_parser("train", help="train a multiscale model on a data file",
                              description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA", help="trajectories file (.npz or .h5)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (created)")
    p.add_argument("--config", metavar="FILE.toml", help="[model] / [train] options (the command line wins)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--train-split", default="train", help="split trained on (default: train; all if absent)")
    p.add_argument("--val-split", default=None,
                   help="split validated on (default: val, if present; 'none' to skip; a name not in the file "
                        "is an error)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="a named training recipe as the base of the [train] options: reference, final-paper "
                        "(the config file and the command line override it; with --init-from its warm stage)")
    p.add_argument("--init-from", default=None, metavar="RUN_DIR",
                   help="warm-start from this run's final checkpoint: its weights in the leading slices, the new "
                        "microscale dimensions initialised afresh (--micro: larger than the run's; default +1)")
    g = p.add_argument_group("model (table [model]; --coarse is required unless --config or --resume gives it)")
    p.set_defaults(model_fields=add_options(g, ModelConfig, "model_", required=("coarse_shape",)))
    g = p.add_argument_group("training (table [train])")
    p.set_defaults(train_fields=add_options(g, TrainConfig, "train_"), func=run)


def merged_config(args, checkpoint_train: dict | None = None):
    """(ModelConfig architecture fields, TrainConfig) from defaults < recipe < checkpoint < TOML file < command line."""
    from pymsde.cli._options import given
    from pymsde.training.config import TrainConfig, read_config, read_toml
    from pymsde.training.recipes import recipe_fields

    model_d: dict = {}
    train_d: dict = dict(checkpoint_train or {})
    if args.config:
        model_d, t = read_config(args.config)
        # only the keys the file sets (not every default) override the checkpoint
        set_in_file = read_toml(args.config).get("train", {})
        train_d.update({k: v for k, v in t.to_dict().items() if k in set_in_file})
    model_d.update(given(args, "model_", args.model_fields))
    train_d.update(given(args, "train_", args.train_fields))
    if args.no_progress:
        train_d["progress"] = False
    if args.recipe is not None:
        # the recipe is the base; what the checkpoint, the file and the command line set wins (an
        # overridden window carries the final paper's residual balance 1 / window along)
        train_d = recipe_fields(args.recipe, warm=args.init_from is not None, **train_d)
    args.train_given = train_d                     # for_data derives the rest once the data are read
    return model_d, TrainConfig.from_dict(train_d, source="command line/config")


def derive_from_data(args, architecture, config, train):
    """A new run without --recipe: the fields nobody set follow the training data
    (:func:`pymsde.training.recipes.model_for_data` and :func:`~pymsde.training.recipes.for_data`).
    Returns ``(architecture, config, notes)``: one line per derived value, printed by
    :func:`announce` once fit's checks have passed."""
    from pymsde.training.config import TrainConfig
    from pymsde.training.recipes import for_data, model_for_data

    if args.recipe is not None or args.resume or args.init_from is not None:
        return architecture, config, []
    architecture, model_notes = model_for_data(architecture, _rms(train))
    fields, notes = for_data(train.n_traj, train.n_t, args.train_given,
                             drift_linear=bool(architecture.get("drift_linear", False)))
    config = TrainConfig.from_dict(fields, source="command line/config (derived from the data)")
    config.validate()
    return architecture, config, model_notes + notes


def _rms(train, max_traj: int = 8) -> float:
    """Root mean square of the training field over its first ``max_traj`` trajectories (a lazy
    file is read that far only)."""
    import numpy as np

    total, count = 0.0, 0
    for i in range(min(train.n_traj, max_traj)):
        u = np.asarray(train.u[i], dtype=np.float64)
        total += float(np.square(u).sum())
        count += u.size
    return float(np.sqrt(total / count)) if count else 1.0


def announce(notes) -> None:
    """Print the values derived from the data, one line each (fit's ``on_ready``: every check has passed)."""
    import sys

    for note in notes:
        print(f"pymsde train: {note}", file=sys.stderr)


def run(args) -> int:
    from pymsde.training.distributed import session

    with session() as dist:          # alone, or one rank of the process group torchrun describes
        return _run(args, dist)


def _run(args, dist) -> int:
    from pathlib import Path

    from pymsde.training.device_data import open_training_data
    from pymsde.training import fit
    from pymsde.training.checkpoint import load_checkpoint
    from pymsde.training.config import resolve_device
    from pymsde.training.run import CHECKPOINT_FILE, check_not_in_use, check_run_target
    from pymsde.util.errors import ConfigError

    # every check comes before anything is written: fit() creates the run directory only
    # once the options, the data and the model fit together
    if args.init_from is not None and args.resume:
        raise ConfigError("--init-from and --resume exclude each other: continue a run (--resume), or start a "
                          "new one from a trained run (--init-from)")
    dist.run_agreed(check_not_in_use, args.out, main_only=True)   # another trainer in RUN_DIR: refused now
    check_run_target(args.out, resume=args.resume)   # refuse to overwrite before loading data
    ckpt = load_checkpoint(Path(args.out) / CHECKPOINT_FILE, for_resume=True) if args.resume else None
    architecture, config = merged_config(args, None if ckpt is None else ckpt["train_config"])
    config.validate()
    resolve_device(config.device)                    # --device cuda without CUDA: refused before the data
    init = None
    if ckpt is not None:
        _check_resume_architecture(architecture, ckpt["model_config"], args.out)
    elif args.init_from is not None:
        from pymsde.training.run import load_run

        loaded = load_run(args.init_from, which="last")           # the final checkpoint, as the paper
        init = loaded.model
        architecture = _init_architecture(architecture, init.config, args.init_from)
        if "forecast_solver" not in args.train_given:          # the run forecasts as the one it grows from
            config = config.replace(forecast_solver=loaded.configs["train"].forecast_solver)
    elif not architecture.get("coarse_shape"):
        raise ConfigError("model.coarse_shape: no coarse grid given; expected e.g. --coarse 20 (or "
                          "coarse_shape = [20] in [model] of --config)")

    data = open_training_data(args.data)          # in memory; an HDF5 too large for it stays on disk
    splits = data.splits
    if splits:
        train = data.get_split(args.train_split, args.data, " (--train-split)")
    else:
        if dist.main:
            log.warning("%s has no recorded splits; training on all %d trajectories", args.data, data.n_traj)
        train = data
    val_split = args.val_split if args.val_split is not None else ("val" if "val" in splits else "none")
    val = None if val_split == "none" else data.get_split(
        val_split, args.data, " for --val-split; pass --val-split none to train without validation")
    architecture, config, derived = derive_from_data(args, architecture, config, train)
    model = None if args.resume else architecture
    if init is not None:
        from pymsde.model.warm_start import check_warm_start_compatible, warm_start

        check_warm_start_compatible(init.config, train, coarse_shape=architecture["coarse_shape"],
                                    source=f"--init-from {args.init_from}")
        model = warm_start(init, architecture["micro_dim"], seed=config.seed)
    meta = None
    if init is not None:                              # where the initial weights came from
        from pymsde.model.warm_start import init_from_record

        meta = {"init_from": init_from_record(args.init_from, init.config.micro_dim)}
    result = fit(train, model, config, val=val, run_dir=args.out, resume=args.resume, data_path=args.data,
                 on_ready=(lambda: announce(derived)) if derived else None, metadata=meta)
    final = result.final
    msg = (f"trained {result.steps} steps ({result.epochs} epochs) in {result.train_time_s:.1f} s; "
           f"run directory: {args.out}")
    if final:
        msg += (f"\nvalidation: loss {final['val_loss']:.5g}, forecast nRMSE "
                f"{final.get('val_nrmse', float('nan')):.3g} %, reconstruction nRMSE "
                f"{final.get('val_recon_nrmse', float('nan')):.3g} %")
    if dist.main:
        print(msg)
    return 0


def _check_resume_architecture(given: dict, model_config: dict, run_dir) -> None:
    """A resumed run keeps its architecture: model options that differ from it are an error."""
    from pymsde.util.errors import ConfigError

    from pymsde.model.config import ModelConfig

    def norm(v):
        return list(v) if isinstance(v, (list, tuple)) else v

    model_config = ModelConfig.from_dict(model_config).to_dict()      # an older checkpoint's: every field
    unknown = sorted(set(given) - set(model_config))
    if unknown:
        raise ConfigError(f"--resume: unknown model option(s) {unknown}; expected ModelConfig fields")
    diff = [f"{k}: {norm(model_config.get(k))} -> {norm(v)}" for k, v in given.items()
            if k in model_config and norm(v) != norm(model_config[k])
            and not (k == "coarse_shape" and isinstance(v, int) and list(model_config[k]) == [v] * len(model_config[k]))]
    if diff:
        raise ConfigError(f"--resume: the run in {run_dir} was built with other model options "
                          f"({'; '.join(diff)}); a resumed run keeps its architecture (drop these options, "
                          f"or start a new run with another --out)")


def _init_architecture(given: dict, old, run_dir) -> dict:
    """--init-from: the trained run's architecture with more microscale dimensions (--micro, default
    the run's + 1); --coarse may be given (it must match); other model options are refused."""
    from pymsde.util.errors import ConfigError

    other = sorted(set(given) - {"micro_dim", "coarse_shape"})
    if other:
        raise ConfigError(f"--init-from {run_dir}: the warm-started model keeps the run's architecture; drop the "
                          f"model option(s) {other} (only --micro and --coarse may be given)")
    micro = int(given.get("micro_dim", old.micro_dim + 1))
    if micro <= old.micro_dim:
        raise ConfigError(f"--init-from {run_dir}: --micro {micro} is not larger than the run's micro_dim = "
                          f"{old.micro_dim}; expected more microscale dimensions")
    return {"coarse_shape": given.get("coarse_shape", list(old.coarse_shape)), "micro_dim": micro}
