"""``pymsde evaluate RUN_DIR --data FILE``: forecast a split with a trained run and its
baselines, write ``report.md`` + PNG plots, optionally print the metrics JSON.

Baselines (``--baselines``): ``closure``, ``dns`` (the default pair) and the final paper's
``dmd`` and ``sindy`` (POD-SINDy), fitted on the data file's train / val splits.

The closure baseline is a second run trained with ``--micro 0``: give it with
``--closure-run DIR``; without it, a sibling folder named ``closure`` next to RUN_DIR is used
when present (the layout ``pymsde demo`` writes) and when it is the closure of this run (micro 0,
same mesh, same data file); the run used is named in a note. A closure run given with
``--closure-run`` (or named in ``--baselines``) that does not match is refused.
"""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    from pymsde.training.config import FORECAST_SOLVERS

    p = subparsers.add_parser(
        "evaluate", help="forecast with a trained run and its baselines; write the report",
        description="Forecast every trajectory of a split with a trained run (ensemble from the initial "
                    "observation), compare with the closure model and the under-resolved DNS (and, on "
                    "request, DMD and POD-SINDy), score all against the stored observations (nRMSE and the "
                    "paper's pooled relative error, CRPS, spread-skill), write report.md and PNG plots.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `pymsde train`")
    p.add_argument("--data", required=True, metavar="FILE", help="data file (.npz/.h5) on the training grid")
    p.add_argument("--split", default="test", help="split to evaluate (attrs['split']), or 'all' (default: test)")
    p.add_argument("--baselines", default=None,
                   help="comma-separated subset of closure,dns,dmd,sindy, 'auto' or 'none' (default: auto = "
                        "closure, dns and dmd where each is available; the report names each one left out and "
                        "why). closure: the --micro 0 run; dns: the under-resolved DNS (data simulated by "
                        "pymsde); dmd, sindy: the final paper's DMD and POD-SINDy, fitted on the data file's "
                        "train split (sindy chooses its threshold and degree on the val split); these two need "
                        "pip install pymsde[baselines]")
    p.add_argument("--closure-run", default=None, metavar="DIR",
                   help="run directory of the closure model (micro 0, same --coarse, same data); default: a sibling "
                        "folder 'closure' when it matches")
    p.add_argument("--n-samples", type=int, default=32, metavar="N", help="ensemble size (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="forecast seed (default: 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="report folder (default: RUN_DIR/evaluation)")
    p.add_argument("--backend", choices=("torch", "julia", "auto"), default="torch",
                   help="compute backend of the forecasts (default: torch)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of each run: best (validation forecast error) or last (default: best)")
    p.add_argument("--solver", choices=FORECAST_SOLVERS, default=None,
                   help="SDE scheme of the model forecasts (default: each run's forecast_solver, em unless the "
                        "run was trained on derived defaults)")
    p.add_argument("--no-plots", action="store_true", help="write report.md only (no matplotlib needed)")
    p.add_argument("--json", action="store_true", help="print the metrics JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pymsde.evaluate.report import parse_baselines
    from pymsde.workflows.evaluation import evaluate_run

    baselines = parse_baselines(args.baselines)  # refuse a typo before loading anything
    result = evaluate_run(args.run_dir, args.data, split=args.split, baselines=baselines,
                          closure_run=args.closure_run, n_samples=args.n_samples, out=args.out,
                          backend=args.backend, seed=args.seed, plots=not args.no_plots,
                          checkpoint=args.checkpoint, solver=args.solver)
    if args.json:
        print(result.to_json())
    else:
        metrics = result.metrics()
        summary = ", ".join(f"{m} {v:.2f}%" if v is not None else f"{m} n/a" for m, v in metrics["nrmse"].items())
        print(f"nRMSE: {summary}")
        rel = ", ".join(f"{m} {v['mean']:.2f} ± {v['std']:.2f}%" if v["mean"] is not None else f"{m} n/a"
                        for m, v in metrics["relative_error"].items())
        print(f"relative error (pooled mean ± std): {rel}")
        print(f"report: {result.report_path}")
    for note in result.meta.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    return 0
