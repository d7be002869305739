"""What the three example scripts share: the reference training recipe and the command line.

The recipe (docs/method.md section 6) is the defaults of ModelConfig and TrainConfig: micro 5,
stencil radius 2, window 128, 10 quadrature points, one reparametrized sample, Adam lr 1e-3
multiplied by 0.9 every 1000 steps (per-step exponential decay), KL weight rising linearly
0 -> 1 over the first 5000 steps, the reference normalisation of the objective. The closure
model is the same with micro 0, trained with the same configuration (same budget).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from pymsde.data.io import load, save
from pymsde.workflows.demo import run_pipeline
from pymsde.training.config import TrainConfig
from pymsde.systems import simulate
from pymsde.util.errors import PymsdeError

#: Trajectory counts (train, val, test) of each case (docs/method.md section 8).
SPLITS = {"burgers1d": (8, 1, 1), "kdv1d": (8, 1, 1), "burgers2d": (18, 1, 1)}


def paper_configs(coarse, epochs: int, device: str, seed: int, minutes: float | None):
    """The reference (ModelConfig architecture, TrainConfig) for a case with coarse grid ``coarse``:
    the ModelConfig and TrainConfig defaults are the reference recipe, so only the sizes are set."""
    model = {"coarse_shape": tuple(coarse)}
    train = TrainConfig(epochs=epochs, device=device, seed=seed,
                        max_minutes=None if minutes is None else float(minutes))
    return model, train


def run_example(case: str, coarse, epochs: int, description: str) -> int:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=f"runs/{case}", help=f"output folder (default: runs/{case})")
    p.add_argument("--data", default=None, help="use this data file instead of simulating (needs a split)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, training and forecasts (default: 0)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="training device")
    p.add_argument("--epochs", type=int, default=epochs, help=f"training epochs per model (default: {epochs})")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock training budget per model")
    p.add_argument("--n-samples", type=int, default=32, help="forecast ensemble size (default: 32)")
    p.add_argument("--backend", default="torch", choices=("torch", "julia", "auto"))
    p.add_argument("--overwrite", action="store_true", help="replace earlier runs in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue interrupted runs in --out from their checkpoints (same --data, seed and "
                        "recipe; --epochs may grow) and train the missing ones")
    p.add_argument("--json", action="store_true", help="print the metrics JSON")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if args.resume and args.overwrite:
            raise PymsdeError("--resume and --overwrite exclude each other")
        if args.resume and not args.data and (out / "data.npz").exists():
            args.data = str(out / "data.npz")      # the runs were trained on this file
        if args.data:
            data_path = Path(args.data)
            traj = load(data_path)
        else:
            data_path = out / "data.npz"
            traj = simulate(case, seed=args.seed, backend=args.backend, progress=True)
            if "train" not in traj.splits:
                traj = traj.split(SPLITS[case], seed=args.seed)
            save(traj, data_path)
        t_sim = time.perf_counter() - t0
        model, train = paper_configs(coarse, args.epochs, args.device, args.seed, args.minutes)
        result = run_pipeline(out, traj, data_path, model, train, n_samples=args.n_samples,
                              backend=args.backend, seed=args.seed, overwrite=args.overwrite,
                              resume=args.resume, extra_meta={"case": case, "simulation_time_s": round(t_sim, 3)})
    except PymsdeError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(result.to_json())
    else:
        m = result.metrics()["nrmse"]
        print("test nRMSE: " + ", ".join(f"{k} {v:.2f}%" if v is not None else f"{k} n/a" for k, v in m.items()))
        print(f"report: {result.report_path}")
    return 0
