"""Validation error against wall time of training runs: the time-to-accuracy curves.

Reads each run's ``val.csv`` (written by ``pymsde train`` / ``pymsde.fit`` / ``pymsde benchmark``
at every validation: the step, the training time so far in seconds -- validation included --
and ``val_nrmse``, the forecast nRMSE (%) of the validation trajectories) and prints, as JSON,
one list of ``{"step", "time_s", "val_nrmse"}`` per run; ``--out PNG`` draws them against
wall-clock minutes (logarithmic error axis). Runs trained one after the other (a benchmark's
``closure`` then ``multiscale``) can be drawn on one time axis with ``--after``: each run's
times are offset by the training time of the runs before it.

Examples::

    python benchmarks/training_curves.py bench/burgers2d/closure bench/burgers2d/multiscale \\
        --after --out docs/figures/burgers2d_training_curves.png
    python benchmarks/training_curves.py runs/a runs/b --label fast=runs/a --label default=runs/b
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pymsde.training.run import VAL_FILE, read_csv, read_json
from pymsde.util.atomic import atomic_path
from pymsde.util.errors import DataError


def read_curve(run: Path) -> list[dict]:
    """``[{"step", "time_s", "val_nrmse"}, ...]`` of ``run/val.csv``; DataError naming the file
    when it or one of the columns is missing."""
    path = run / VAL_FILE
    if not path.is_file():
        raise DataError(f"{path}: no validation records (is {run} a training run with validation?)")
    header, rows = read_csv(path)
    missing = [c for c in ("step", "time_s", "val_nrmse") if c not in header]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; found {', '.join(header)}")
    i, t, e = (header.index(c) for c in ("step", "time_s", "val_nrmse"))
    return [{"step": int(r[i]), "time_s": float(r[t]), "val_nrmse": float(r[e])} for r in rows]


def train_time_s(run: Path, curve: list[dict]) -> float:
    """The run's whole training time (``metadata.json``'s ``train_time_s``, else its last record)."""
    meta = run / "metadata.json"
    if meta.is_file():
        value = read_json(meta).get("train_time_s")
        if isinstance(value, (int, float)):
            return float(value)
    return curve[-1]["time_s"] if curve else 0.0


def draw(curves: dict[str, list[dict]], offsets: dict[str, float], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, curve in curves.items():
        t = (offsets[name] + np.array([c["time_s"] for c in curve])) / 60.0
        ax.plot(t, [c["val_nrmse"] for c in curve], "o-", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel("validation forecast nRMSE (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", type=Path, help="training run folders")
    ap.add_argument("--label", action="append", default=[], metavar="NAME=RUN",
                    help="a run under a name of its own (repeatable; default name: the folder's)")
    ap.add_argument("--after", action="store_true",
                    help="offset each run by the training time of the runs before it (sequential stages)")
    ap.add_argument("--out", type=Path, help="also draw the curves to this PNG")
    args = ap.parse_args(argv)
    named = [(p.name, p) for p in args.runs]
    for item in args.label:
        name, sep, run = item.rpartition("=")          # a name may hold "=", a path rarely
        if not sep or not name or not run:
            ap.error(f"--label {item!r}; expected NAME=RUN")
        named.append((name, Path(run)))
    if not named:
        ap.error("no runs given")
    try:
        curves, offsets, elapsed = {}, {}, 0.0
        for name, run in named:
            curves[name] = read_curve(run)
            offsets[name] = elapsed if args.after else 0.0
            elapsed += train_time_s(run, curves[name])
        if args.out is not None:
            draw(curves, offsets, args.out)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"runs": {n: str(r) for n, r in named}, "offset_s": offsets, "curves": curves}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
