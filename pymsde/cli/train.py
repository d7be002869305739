"""``pymsde train``: fit a multiscale model to a data file.

    pymsde train DATA --coarse 20 --micro 5 --epochs 100 --out RUN_DIR
    pymsde train DATA --coarse 8 8 --micro 5 --out RUN_DIR            # 2-D
    pymsde train DATA --config run.toml --out RUN_DIR                  # options from TOML
    pymsde train DATA --out RUN_DIR --resume --epochs 200              # continue a run

Every option is also a key of the ``[model]`` / ``[train]`` tables of a TOML file
(``--config``); the command line overrides the file, the file overrides the defaults. The
run directory receives ``config.toml`` (the exact options used), ``metadata.json`` (the data
file's SHA-256, package and torch versions, timings), ``log.csv``, ``val.csv`` and the
checkpoints. Trains on the data file's ``train`` split (``attrs["split"]``; all trajectories
when the file has no splits) and validates on its ``val`` split when there is one.
"""
from __future__ import annotations

import argparse
import logging
import math

log = logging.getLogger(__name__)

# (flag, dest in its table, table, type, nargs, help)
_MODEL_FLAGS = [
    ("--coarse", "coarse", int, "+", "coarse cells per axis, e.g. 20 (1-D) or 8 8 (2-D)"),
    ("--micro", "micro", int, None, "microscale dimension d_m (0: the closure model; default 5)"),
    ("--radius", "radius", int, None, "stencil radius of the macroscale drift (default 2)"),
    ("--drift-hidden", "drift_hidden", int, "+", "hidden widths of the macroscale drift MLP"),
    ("--micro-hidden", "micro_hidden", int, "+", "hidden widths of the microscale drift MLP"),
    ("--encoder-channels", "encoder_channels", int, "+", "channels of the microscale encoder CNN"),
    ("--activation", "activation", str, None, "activation of the drift MLPs"),
]
_TRAIN_FLAGS = [
    ("--epochs", "epochs", int, None, "passes over the training windows (default 100)"),
    ("--max-steps", "max_steps", int, None, "stop after this many optimiser steps in total"),
    ("--max-minutes", "max_minutes", float, None, "stop after this many minutes of training (wall clock)"),
    ("--window", "window", int, None, "observations per window M (default 128)"),
    ("--batch-windows", "batch_windows", int, None, "windows per optimiser step (default 1)"),
    ("--n-quad", "n_quad", int, None, "quadrature times per window (default 10)"),
    ("--samples", "n_samples", int, None, "reparametrized samples per time (default 1)"),
    ("--loglik-frames", "loglik_frames", int, None,
     "decode only N random observations per window and step (default: all)"),
    ("--quadrature", "quadrature", str, None, "'stratified' (default) or 'midpoint'"),
    ("--residual-scale", "residual_scale", str, None,
     "balance of the residual against the likelihood: per_dataset (default), elbo, or a number"),
    ("--lr", "lr", float, None, "Adam learning rate at step 0 (default 1e-3)"),
    ("--lr-decay", "lr_decay", float, None, "learning-rate factor per --lr-decay-steps (default 0.9)"),
    ("--lr-decay-steps", "lr_decay_steps", int, None, "steps per --lr-decay factor (default 1000)"),
    ("--beta-warmup", "beta_warmup", int, None, "steps with KL weight 0 before the ramp (default 0)"),
    ("--beta-steps", "beta_steps", int, None, "steps of the linear KL ramp 0 -> 1 (default 5000)"),
    ("--grad-clip", "grad_clip", float, None, "clip the gradient norm to this value (default: off)"),
    ("--validate-every", "validate_every", int, None, "validate every N epochs (0: only at the end)"),
    ("--val-forecast-steps", "val_forecast_steps", int, None, "length of the validation forecast, in data steps"),
    ("--checkpoint-every", "checkpoint_every", int, None, "checkpoint every N steps (0: only at the end)"),
    ("--log-every", "log_every", int, None, "read the ELBO terms every N steps (log.csv, divergence check)"),
    ("--seed", "seed", int, None, "seed of initialisation, window order and noise (default 0)"),
    ("--device", "device", str, None, "auto (default), cpu or cuda"),
    ("--dtype", "dtype", str, None, "float32 (default) or float64"),
]


_METAVAR = {int: "N", float: "X", str: "NAME"}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a multiscale model on a data file",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA", help="trajectories file (.npz or .h5)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (created)")
    p.add_argument("--config", metavar="FILE.toml", help="[model] / [train] options (the command line wins)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--train-split", default="train", help="split trained on (default: train; all if absent)")
    p.add_argument("--val-split", default=None,
                   help="split validated on (default: val, if present; 'none' to skip; a name not in the file is an error)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("model (table [model])")
    for flag, dest, typ, nargs, help_ in _MODEL_FLAGS:
        g.add_argument(flag, dest=f"model_{dest}", type=typ, nargs=nargs, default=None, help=help_,
                       metavar=_METAVAR[typ])
    g = p.add_argument_group("training (table [train])")
    for flag, dest, typ, nargs, help_ in _TRAIN_FLAGS:
        g.add_argument(flag, dest=f"train_{dest}", type=typ, nargs=nargs, default=None, help=help_,
                       metavar=_METAVAR[typ])
    p.set_defaults(func=run)


def _residual_scale(v: str):
    try:
        x = float(v)
    except ValueError:
        return v
    return x if math.isfinite(x) else v


def merged_config(args, checkpoint_train: dict | None = None):
    """(ModelOptions, TrainConfig) from defaults < checkpoint < TOML file < command line."""
    from pymsde.training.config import ModelOptions, TrainConfig, read_config, read_toml

    model_d: dict = {}
    train_d: dict = dict(checkpoint_train or {})
    if args.config:
        m, t = read_config(args.config)
        model_d.update({k: v for k, v in m.to_dict().items() if v is not None and k != "extra"})
        if m.extra:
            model_d["extra"] = m.extra
        # only the keys the file sets (not every default) override the checkpoint
        set_in_file = read_toml(args.config).get("train", {})
        train_d.update({k: v for k, v in t.to_dict().items() if k in set_in_file})
    for _, dest, *_ in _MODEL_FLAGS:
        v = getattr(args, f"model_{dest}")
        if v is not None:
            model_d[dest] = v
    for _, dest, *_ in _TRAIN_FLAGS:
        v = getattr(args, f"train_{dest}")
        if v is not None:
            train_d[dest] = _residual_scale(v) if dest == "residual_scale" else v
    if args.no_progress:
        train_d["progress"] = False
    return (ModelOptions.from_dict(model_d, source="command line/config"),
            TrainConfig.from_dict(train_d, source="command line/config"))


def run(args) -> int:
    from pathlib import Path

    from pymsde.data.io import load
    from pymsde.training import fit
    from pymsde.training.checkpoint import load_checkpoint
    from pymsde.training.run import CHECKPOINT_FILE, check_run_target

    # every check comes before anything is written: fit() creates the run directory only
    # once the options, the data and the model fit together
    check_run_target(args.out, resume=args.resume)   # refuse to overwrite before loading data
    ckpt_train = None
    if args.resume:
        ckpt_train = load_checkpoint(Path(args.out) / CHECKPOINT_FILE)["train_config"]
    options, config = merged_config(args, ckpt_train)
    config.validate()
    if not args.resume:
        options.validate()

    data = load(args.data)
    splits = data.splits
    if splits:
        train = data.get_split(args.train_split, args.data, " (--train-split)")
    else:
        log.warning("%s has no recorded splits; training on all %d trajectories", args.data, data.n_traj)
        train = data
    val_split = args.val_split if args.val_split is not None else ("val" if "val" in splits else "none")
    val = None if val_split == "none" else data.get_split(
        val_split, args.data, " for --val-split; pass --val-split none to train without validation")
    result = fit(train, None if args.resume else options, config, val=val, run_dir=args.out,
                 resume=args.resume, data_path=args.data)
    final = result.final
    msg = (f"trained {result.steps} steps ({result.epochs} epochs) in {result.train_time_s:.1f} s; "
           f"run directory: {args.out}")
    if final:
        msg += (f"\nvalidation: loss {final['val_loss']:.5g}, forecast nRMSE "
                f"{final.get('val_nrmse', float('nan')):.3g} %, reconstruction nRMSE "
                f"{final.get('val_recon_nrmse', float('nan')):.3g} %")
    print(msg)
    return 0
