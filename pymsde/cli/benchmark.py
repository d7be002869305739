"""``pymsde benchmark CASE --out DIR``: one row of the final paper's table, measured next to the published one.

Simulate the case (or ``--data FILE``), train the implicit-scale model (``micro_dim = 0``)
with the final paper's recipe, warm-start the multiscale model (``n_eta = 5``, directly or
with ``--chain`` through 1..4) and train it at lr 1e-4, evaluate the five methods and write
``DIR/benchmark.json`` and ``DIR/benchmark.md``. See :mod:`pymsde.workflows.benchmark`.
"""
from __future__ import annotations

import argparse
import sys

_DESCRIPTION = """One row of the final paper's table (the table and its sources: README, docs/benchmarks.md).

    pymsde benchmark kdv1d --out bench/kdv1d                 # the paper's budget (epochs)
    pymsde benchmark wave1d --out bench/wave1d --minutes 60  # a wall-clock budget for all trainings
    pymsde benchmark kdv1d --out bench/k --chain             # warm start 0 -> 1 -> ... -> 5
    pymsde benchmark cylinder2d --out bench/cylinder2d       # 2-D: burgers2d, cylinder2d, swe2d
    pymsde benchmark burgers2d --out bench/b2 --resume       # keep the done trainings, continue the rest
    python benchmarks/paper_table.py bench                   # collect DIR/*/benchmark.json

Writes DIR/closure, DIR/multiscale (and DIR/micro1..4 with --chain): the training runs;
DIR/report: the evaluation report; DIR/benchmark.json and DIR/benchmark.md: the row. With
--minutes 38 a 1-D row took 22 min (kdv1d --from-scratch) and 24 min (wave1d) on one CPU
core (2026-12-02, README "The paper's table").
"""


def register(subparsers) -> None:
    from pymsde.workflows.benchmark import BENCHMARK_CASES, PUBLISHED

    from pymsde.workflows.benchmark import benchmark_case

    cases = ", ".join(BENCHMARK_CASES)
    only = ", ".join(c for c in PUBLISHED if benchmark_case(c) not in BENCHMARK_CASES)
    p = subparsers.add_parser("benchmark", help="one row of the final paper's table (train, warm start, evaluate)",
                              description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", metavar="CASE", help=f"the case: {cases}" + (f" (published rows only: {only})" if only
                                                                         else " (shallow_water2d: swe2d)"))
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="wall-clock budget of all trainings together: each gets the minutes left divided by the "
                        "trainings left (default: the paper's epochs)")
    p.add_argument("--data", default=None, metavar="FILE", help="use this data file (train/val/test splits) "
                                                                 "instead of simulating")
    p.add_argument("--chain", action="store_true", help="warm-start through micro_dim 1, 2, 3, 4 as the paper "
                                                         "(default: 0 -> 5 directly)")
    p.add_argument("--from-scratch", action="store_true",
                   help="train the multiscale model from scratch at lr 1e-3 instead of warm-starting it (not the "
                        "paper's rule; default: the warm start)")
    p.add_argument("--multiscale-epochs", type=int, default=None, metavar="N",
                   help="epochs of the multiscale trainings (micro_dim > 0) instead of the recipe's; the "
                        "implicit-scale model keeps the recipe's (default: the recipe's, e.g. 50 = 16000 steps "
                        "on wave1d; 100 reached the paper there from scratch)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, trainings, warm starts, forecasts (default: 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device (default: auto)")
    p.add_argument("--backend", choices=("torch", "julia", "auto"), default="torch",
                   help="backend of simulation, DNS and forecasts (default: torch)")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in --out (default: refuse)")
    p.add_argument("--resume", action="store_true",
                   help="keep the trainings in --out that are done (their time counts against --minutes) and "
                        "continue an interrupted one (default: refuse runs already there)")
    p.add_argument("--no-plots", action="store_true", help="no PNGs in the report")
    p.add_argument("--json", action="store_true", help="print the row's JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from pymsde.workflows.benchmark import markdown_rows, run_benchmark

    res = run_benchmark(args.case, args.out, minutes=args.minutes, data=args.data, chain=args.chain,
                        from_scratch=args.from_scratch, seed=args.seed, device=args.device, backend=args.backend,
                        overwrite=args.overwrite, resume=args.resume, plots=not args.no_plots,
                        multiscale_epochs=args.multiscale_epochs)
    if args.json:
        print(json.dumps(res.row, indent=2, default=str))
    else:
        print(markdown_rows(res.row), end="")
        print(f"row: {res.json_path} and {res.markdown_path}")
    for note in res.row.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    return 0
