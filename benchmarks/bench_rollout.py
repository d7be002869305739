"""Ensemble rollout benchmark: the learned Burgers 1-D SDE, pymsde's integrator vs torchsde.

    python benchmarks/bench_rollout.py                 # 256 samples x 1000 steps, prints JSON
    python benchmarks/bench_rollout.py --samples 32 --steps 200 --no-torchsde

Model: Burgers 1-D sizes (fine 1000, coarse 20, micro 5, stencil radius 2, default hidden
sizes), untrained weights (the cost does not depend on their values), float32 unless
``--dtype float64``. Both integrators step Euler-Maruyama at dt = 1e-3 from the same initial
ensemble (encoder samples of a Burgers initial condition) with the same drift:

- ``pymsde``: :func:`pymsde.sde.integrator.integrate` over
  :func:`pymsde.model.drift.multiscale_drift` (what ``forecast`` runs), constant sigma;
- ``torchsde``: ``torchsde.sdeint(LatentSDE(model), z0, ts, method="euler", dt=dt)`` with its
  default Brownian interval (what a torchsde user would write).

Reported (JSON on stdout): wall time of each; the drift's FLOPs per sample-step counted from
the layer sizes (2 in out per dense layer and row: the macro MLP on every cell, the micro MLP
once; elementwise work not counted); the achieved FLOP rate of the pymsde rollout; the
machine's dense float32/64 matmul rate measured here (a large square GEMM, and the GEMM shape
the drift's hidden layer runs: (B n_cells, H) x (H, H)); the rollout's fraction of each; the
drift alone per call, so the loop's own overhead is visible. Timings on a shared machine are
noisy: compare numbers from one run only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch


def drift_flops(params) -> dict:
    """FLOPs per sample and drift evaluation from the layer sizes (multiply-add = 2)."""
    macro = sum(2 * w.shape[0] * w.shape[1] for w in params.macro_weights) * params.n_cells
    micro = sum(2 * w.shape[0] * w.shape[1] for w in params.micro_weights)
    return {"macro": int(macro), "micro": int(micro), "total": int(macro + micro)}


def _time(fn, min_time: float = 0.5, min_reps: int = 3) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of one call of ``fn`` over runs lasting >= ``min_time``."""
    fn()
    walls, cpus = [], []
    t_start = time.perf_counter()
    while len(walls) < min_reps or time.perf_counter() - t_start < min_time:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def matmul_rate(m: int, k: int, n: int, dtype: torch.dtype) -> dict:
    """GFLOP/s of ``(m, k) @ (k, n)`` with the current torch thread setting: by wall time, and
    by process CPU time divided by the thread count (robust to other load on a shared machine)."""
    a = torch.randn(m, k, dtype=dtype)
    b = torch.randn(k, n, dtype=dtype)
    out = torch.empty(m, n, dtype=dtype)
    wall, cpu = _time(lambda: torch.mm(a, b, out=out))
    flop = 2.0 * m * k * n
    return {"wall": flop / wall / 1e9, "cpu": flop / (cpu / torch.get_num_threads()) / 1e9}


def build(samples: int, dtype: torch.dtype, seed: int):
    from pymsde.data.grid import Grid
    from pymsde.model.multiscale import MultiscaleModel

    torch.manual_seed(seed)
    grid = Grid((1000,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 20, micro_dim=5, stencil_radius=2).to(dtype)
    x = torch.as_tensor(grid.coordinates(0), dtype=dtype)
    u0 = (0.25 * torch.exp(-(x - 0.5) ** 2 / 0.01))[None, None]          # Burgers recipe, mean draw
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m, logvar = model.encode(u0)
        eps = torch.randn(samples, m.shape[1], generator=gen, dtype=dtype)
        z0 = m + torch.exp(0.5 * logvar) * eps
    return model, z0


def run_pymsde(model, z0, dt, n_steps, save_every, seed, compile_drift=False):
    """The rollout as ``forecast`` runs it: kernel-level EM loop + the drift with a workspace.

    Returns wall seconds, process CPU seconds, the saved states, and the per-call time of
    both drift evaluators (the functional kernel and the buffer-reusing rollout drift)."""
    from pymsde.model.drift import DriftWorkspace, multiscale_drift
    from pymsde.sde.integrator import integrate

    params = model.drift_params().detach()
    with torch.no_grad():
        sigma = model.diffusion(None).detach()
    ws = DriftWorkspace(params, z0.shape[0])

    def fast(t, z):
        return multiscale_drift(params, t, z, workspace=ws)

    f = torch.compile(fast, dynamic=False) if compile_drift else fast
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        integrate(f, sigma, z0, 0.0, dt, 20, generator=gen)        # warm-up (and compile)
        c0, t0 = time.process_time(), time.perf_counter()
        _, zs = integrate(f, sigma, z0, 0.0, dt, n_steps, save_every=save_every, generator=gen)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tt = torch.zeros((), dtype=z0.dtype)
        per_call = {"rollout_drift_ms": 1e3 * _time(lambda: f(tt, z0), min_time=0.3)[0],
                    "kernel_multiscale_drift_ms": 1e3 * _time(lambda: multiscale_drift(params, tt, z0),
                                                              min_time=0.3)[0]}
    return wall, cpu, per_call, zs


def run_torchsde(model, z0, dt, n_steps, save_every):
    import torchsde

    from pymsde.sde.torchsde_view import LatentSDE

    sde = LatentSDE(model)
    ts = torch.arange(0, n_steps + 1, save_every, dtype=torch.float64) * dt
    ts = ts.to(z0.dtype)
    with torch.no_grad():
        torchsde.sdeint(sde, z0, ts[:2] if len(ts) > 1 else ts, method="euler", dt=dt)  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        zs = torchsde.sdeint(sde, z0, ts, method="euler", dt=dt)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, zs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--dt", type=float, default=1e-3)
    ap.add_argument("--save-every", type=int, default=10)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-torchsde", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also time a torch.compile'd drift")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    model, z0 = build(args.samples, dtype, args.seed)
    params = model.drift_params()
    flops = drift_flops(params)
    total_flop = flops["total"] * args.samples * args.steps
    hidden = params.macro_weights[1].shape[1] if len(params.macro_weights) > 1 else params.macro_weights[0].shape[0]
    peak_square = matmul_rate(2048, 2048, 2048, dtype)
    peak_shape = matmul_rate(args.samples * params.n_cells, hidden, hidden, dtype)

    wall, cpu, per_call, zs = run_pymsde(model, z0, args.dt, args.steps, args.save_every, args.seed)
    rate = total_flop / wall / 1e9
    threads = torch.get_num_threads()
    rate_cpu = total_flop / (cpu / threads) / 1e9
    out = {
        "case": "burgers1d model: fine 1000, coarse 20, micro 5, radius 2, default hidden sizes",
        "samples": args.samples, "steps": args.steps, "dt": args.dt, "save_every": args.save_every,
        "dtype": args.dtype, "threads": threads,
        "drift_flop_per_sample_step": flops,
        "rollout_gflop": total_flop / 1e9,
        "matmul_gflops_2048": peak_square,
        "matmul_gflops_drift_shape": peak_shape,
        "pymsde": {"wall_s": wall, "cpu_s": cpu, "ms_per_step": 1e3 * wall / args.steps,
                   "gflops": rate, "gflops_cpu": rate_cpu,
                   "fraction_of_matmul_2048": rate / peak_square["wall"],
                   "fraction_of_matmul_2048_cpu": rate_cpu / peak_square["cpu"],
                   "fraction_of_matmul_drift_shape_cpu": rate_cpu / peak_shape["cpu"],
                   **per_call,
                   "finite": bool(torch.isfinite(zs).all())},
    }
    if args.compile:
        try:
            wall_c, cpu_c, per_call_c, _ = run_pymsde(model, z0, args.dt, args.steps, args.save_every,
                                                      args.seed, compile_drift=True)
            out["pymsde_compiled"] = {"wall_s": wall_c, "cpu_s": cpu_c, "gflops": total_flop / wall_c / 1e9,
                                      "drift_call_ms": per_call_c["rollout_drift_ms"]}
        except Exception as exc:  # compile needs a working C++ toolchain; report, don't die
            out["pymsde_compiled"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    if not args.no_torchsde:
        try:
            wall_ts, cpu_ts, _ = run_torchsde(model, z0, args.dt, args.steps, args.save_every)
            out["torchsde"] = {"wall_s": wall_ts, "cpu_s": cpu_ts, "ms_per_step": 1e3 * wall_ts / args.steps,
                               "gflops": total_flop / wall_ts / 1e9}
            out["speedup_vs_torchsde"] = wall_ts / wall
            out["speedup_vs_torchsde_cpu"] = cpu_ts / cpu
        except ImportError:
            out["torchsde"] = {"error": "torchsde is not installed"}
    out["machine"] = {"platform": platform.platform(), "processor": platform.processor(),
                      "cpu_count": os.cpu_count(), "torch": torch.__version__,
                      "python": sys.version.split()[0],
                      "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
