"""``pymsde demo``: the whole journey on Burgers 1-D with a reduced training budget, in minutes on a CPU.

Simulate the data, train the multiscale model and the closure model in the same budget,
forecast the test trajectory, compare with the under-resolved DNS, write the report, and
print where it is (``--json``: the metrics JSON of ``pymsde evaluate`` instead).
See :mod:`pymsde.workflows.demo` for the sizes and why they were chosen.
"""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="the whole journey on Burgers 1-D with a reduced training budget (a few minutes on 2 CPU cores)",
        description="Simulate the Burgers 1-D data set of docs/method.md, train the multiscale and the closure model (4000 steps each), "
                    "forecast the test trajectory, compare with the under-resolved DNS and write the report.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output folder (default: demo_out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the training and the forecasts (default: 0)")
    p.add_argument("--backend", choices=("torch", "julia", "auto"), default="torch",
                   help="compute backend of simulation and forecasts (default: torch)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="training device (default: cpu, the configuration the demo is tuned for)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the runs of an earlier demo in --out (default: refuse)")
    p.add_argument("--json", action="store_true", help="print the metrics JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from pymsde.workflows.demo import DemoConfig, demo_training, run_demo

    from pymsde.training.config import resolve_device
    from pymsde.util.errors import ConfigError, check_seed

    # refused before the data are simulated: a device that is not there, a seed out of range
    check_seed(args.seed, "--seed")
    try:
        resolve_device(args.device)
    except ConfigError as err:
        raise ConfigError(f"--device {args.device}: {err}") from None
    train = dataclasses.replace(demo_training(), device=args.device, seed=args.seed)
    train.validate()
    result = run_demo(args.out, DemoConfig(seed=args.seed, backend=args.backend, train=train),
                      overwrite=args.overwrite)
    if args.json:
        print(result.to_json())
    else:
        m = result.metrics()
        print("nRMSE on the test trajectory: " + ", ".join(
            f"{k} {v:.2f}%" if v is not None else f"{k} n/a" for k, v in m["nrmse"].items()))
        print(f"report: {result.report_path}")
    for note in result.meta.get("notes", []):               # e.g. a test case outside the training range
        print(f"note: {note}", file=sys.stderr)
    return 0
