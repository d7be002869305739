"""Data-parallel training throughput: steps/s and samples/s for 1 and N ranks (docs/distributed.md).

Every configuration is a real ``torchrun --standalone --nproc-per-node R`` run of
:func:`pymsde.training.fit` (the launcher the user runs, gloo on CPU, NCCL on CUDA), on a synthetic
Burgers-1-D-sized set (travelling fronts on 1000 points, 6 trajectories of 513 times; coarse 20,
micro 5, window 128, 10 quadrature times, one sample: the reference configuration's step), with
``batch_windows = B`` windows per *global* step (B / R per rank).

Measured: the steady-state rate between the first read of the logged terms (step ``log_every``,
after DDP's set-up and the first steps) and the last step, from ``log.csv``'s wall clock, so every
per-step cost of a data-parallel step is in it: the gradient all-reduce, the stop agreement, the
reduction of the logged terms. ``samples/s`` counts windows. Over the same steps, the CPU time of
every rank (``cpu_ms_per_step_all_ranks``, summed; through a ``weight_kl`` hook that returns zero):
on a shared core the wall clock measures the share the scheduler gives, the CPU time the cost. Besides: the bytes all-reduced per
step (the gradients: parameters x 4 bytes in float32; a ring all-reduce sends ``2 (R-1)/R`` of
that per rank) and the time of one bare all-reduce of that size.

    python benchmarks/bench_distributed.py                        # ranks 1 2, batches 2 8
    python benchmarks/bench_distributed.py --ranks 1 2 4 --batch 8 --steps 60 --out bench.json
    python benchmarks/bench_distributed.py --taskset 1            # pin every rank to CPU 1

Pinning (``--taskset``) runs every rank on the given CPUs (e.g. all on one core when the
others are busy): then the ranks share that core and the numbers measure the overhead of the
data-parallel step, not a speed-up.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_data(path: Path, n_traj: int = 6, n_t: int = 513, n: int = 1000, seed: int = 0) -> None:
    """Travelling smoothed fronts on a periodic grid, with a little noise (a Burgers-like field)."""
    from pymsde.data.io import save
    from pymsde.data.trajectories import Trajectories

    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    t = np.linspace(0.0, 1.0, n_t)
    c = rng.uniform(0.1, 0.9, n_traj)
    w = rng.uniform(0.02, 0.05, n_traj)
    phase = (x[None, None] - c[:, None, None] - 0.3 * t[None, :, None]) % 1.0
    u = 0.5 * (1 + np.tanh((0.5 - np.abs(phase - 0.5) - 0.25) / w[:, None, None]))
    u = u + 0.01 * rng.standard_normal(u.shape)
    save(Trajectories(u=u[:, :, None], t=t, domain=[[0.0, 1.0]], boundary=("periodic",), attrs={"case": "bench"}),
         path)


class CpuClock:
    """A ``weight_kl`` hook that adds nothing (a zero KL, as without a hook) and notes the process's
    CPU time at every step: the CPU seconds a step costs, whatever else shares the core."""

    def __init__(self):
        self.times: list[float] = []

    def __call__(self, model):
        import torch

        self.times.append(time.process_time())
        p = next(model.parameters())
        return torch.zeros((), dtype=p.dtype, device=p.device)


def worker(args) -> int:
    """One rank of a configuration (under torchrun): train, then rank 0 writes the rates."""
    import torch

    from pymsde.data.io import load
    from pymsde.training import TrainConfig, fit
    from pymsde.training.distributed import session

    torch.set_num_threads(args.threads)
    batch = args.batch[0]
    data = load(args.data)
    cfg = TrainConfig(epochs=10 ** 6, max_steps=args.steps, window=128, batch_windows=batch, n_quad=10,
                      validate_every=0, checkpoint_every=0, log_every=args.log_every, progress=False, device="cpu",
                      lr=1e-3)
    clock = CpuClock()
    with session() as dist:
        res = fit(data, {"coarse_shape": [20], "micro_dim": 5}, cfg, weight_kl=clock)
        first = args.log_every - 1                         # the row of the first read of the terms
        cpu = (clock.times[-1] - clock.times[first]) / (len(clock.times) - 1 - first)
        cpus = [cpu] * dist.world_size
        if dist.active:
            torch.distributed.all_gather_object(cpus, cpu)
        n_params = sum(p.numel() for p in res.model.parameters() if p.requires_grad)
        allreduce_ms = None
        if dist.active:                                    # one bare gradient-sized all-reduce, timed
            buf = torch.zeros(n_params)
            for _ in range(3):
                torch.distributed.all_reduce(buf)
            t0 = time.perf_counter()
            for _ in range(10):
                torch.distributed.all_reduce(buf)
            allreduce_ms = 1e3 * (time.perf_counter() - t0) / 10
        if dist.main:
            step, tim = res.log["step"], res.log["time_s"]
            rate = (step[-1] - step[first]) / (tim[-1] - tim[first])
            out = {"ranks": dist.world_size, "batch_windows": batch, "windows_per_rank": batch // dist.world_size,
                   "steps_timed": int(step[-1] - step[first]), "steps_per_s": rate, "samples_per_s": rate * batch,
                   "ms_per_step": 1e3 / rate, "cpu_ms_per_step_all_ranks": 1e3 * sum(cpus),
                   "cpu_ms_per_sample": 1e3 * sum(cpus) / batch, "n_params": n_params, "allreduce_bytes_per_step": 4 * n_params,
                   "ring_bytes_sent_per_rank": 2 * (dist.world_size - 1) / dist.world_size * 4 * n_params,
                   "bare_allreduce_ms": allreduce_ms, "threads_per_rank": args.threads}
            Path(args.result).write_text(json.dumps(out))
    return 0


def run_config(script: Path, data: Path, ranks: int, batch: int, args, tmp: Path) -> dict:
    result = tmp / f"r{ranks}_b{batch}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks), str(script),
           "--worker", "--data", str(data), "--batch", str(batch), "--steps", str(args.steps), "--threads",
           str(args.threads), "--log-every", str(args.log_every), "--result", str(result)]
    if args.taskset:
        cmd = ["taskset", "-c", args.taskset, *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "PYMSDE_NO_PROGRESS": "1"}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0 or not result.is_file():
        tail = (p.stdout + p.stderr).strip().splitlines()[-5:]
        raise SystemExit(f"bench_distributed: {ranks} ranks, batch {batch} failed: " + " | ".join(tail))
    return json.loads(result.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, nargs="+", default=[2, 8], help="global windows per step")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    ap.add_argument("--taskset", default=None, help="CPU list every rank is pinned to (taskset -c)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_data(tmp / "bench.npz")
        for batch in args.batch:
            for ranks in args.ranks:
                if batch % ranks:
                    continue
                rows.append(run_config(Path(__file__).resolve(), tmp / "bench.npz", ranks, batch, args, tmp))
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    result = {"command": " ".join(["python", "benchmarks/bench_distributed.py", *(argv or sys.argv[1:])]),
              "machine": {"cpus": os.cpu_count(), "affinity": args.taskset, "loadavg": load,
                          "platform": platform.platform()},
              "configs": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
