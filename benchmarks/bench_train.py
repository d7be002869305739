"""Training throughput (and optionally time-to-accuracy) for the Burgers 1-D reference setup.

Reference configuration (issue 3, METHOD.md section 6): fine grid 1000, coarse 20, micro 5
(and the closure model, micro 0), window 128, 10 quadrature times, one sample, one window per
step. Data: ``pymsde.systems.simulate("burgers1d")`` with METHOD.md's defaults (10
trajectories, 1001 steps; trained on the 8 of the train split).

Output: JSON on stdout (and ``--out FILE``) with, per model, the median / mean / p90 of the
wall time of an optimiser step (ms; forward + backward + Adam, windows gathered by index as in
:func:`pymsde.training.fit`), measured after ``--warmup`` steps, and the split of one step into
encode / GP / decode / drift-residual / backward+Adam (ms, from a separate timed step).

``--tta SECONDS``: also train each model with the default :class:`TrainConfig` (plus
``--tta-config`` overrides) for that wall-clock budget, validating on the val split and
recording the validation forecast nRMSE (%) over time -- time-to-accuracy, the quantity that
matters (the paper's code: 4.1 % test nRMSE after 20 min on 2 cores, 2.4 % after 90 min).

Examples::

    python benchmarks/bench_train.py                         # ms/step, both models
    python benchmarks/bench_train.py --steps 50 --threads 2 --out bench_train.json
    python benchmarks/bench_train.py --tta 400 --tta-config lr=3e-3 lr_decay_steps=300

Timings depend on the machine's load: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _parse_overrides(items):
    out = {}
    for it in items or []:
        k, _, v = it.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def make_data(n_grid: int, n_traj: int, n_steps: int, seed: int, cache: Path | None):
    from pymsde.data.io import load, save
    from pymsde.systems import simulate

    if cache is not None and cache.is_file():
        return load(cache)
    tr = simulate("burgers1d", n_traj=n_traj, seed=seed, n_grid=n_grid, n_steps=n_steps, progress=False)
    if cache is not None:
        save(tr, cache)
    return tr


def time_steps(train, micro: int, coarse: int, window: int, n_quad: int, n_samples: int, batch_windows: int,
               steps: int, warmup: int, seed: int, model_extra: dict, loglik_frames: int | None = None) -> dict:
    """Median / mean / p90 ms per optimiser step of the real training step (see module docstring)."""
    from pymsde.data.windows import WindowSampler
    from pymsde.training.elbo import elbo_terms, residual_factor
    from pymsde.model import ModelConfig, MultiscaleModel
    from pymsde.training.device_data import DeviceData

    torch.manual_seed(seed)
    opts = dict(coarse_shape=(coarse,), micro_dim=micro, **model_extra)
    model = MultiscaleModel(ModelConfig.for_grid(train.grid, channels=train.channels, **opts))
    data = DeviceData.from_traj(train, "cpu", torch.float32)
    sampler = WindowSampler(train, window, seed=seed)
    order = np.concatenate([sampler.epoch_order(e) for e in range(1 + (steps + warmup) * batch_windows // len(sampler))])
    offsets = torch.arange(window)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    c = residual_factor("per_dataset", train.n_traj * train.n_t, window, int(np.prod(train.grid_shape)))
    times = []
    for i in range(warmup + steps):
        idx = torch.from_numpy(order[i * batch_windows:(i + 1) * batch_windows])
        t0 = time.perf_counter()
        u, t, mu, f = data.windows(idx[:, 0], idx[:, 1], offsets)
        terms = elbo_terms(model, u, t, mu, f, beta=0.5, res_factor=c, n_quad=n_quad, n_samples=n_samples,
                           generator=gen, loglik_frames=loglik_frames)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(1e3 * dt)
    times.sort()
    out = {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
           "p90_ms": times[int(0.9 * (len(times) - 1))], "steps_timed": len(times),
           "n_parameters": sum(p.numel() for p in params)}
    out["breakdown_ms"] = _breakdown(model, data, order[:batch_windows], offsets, n_quad, n_samples, gen, c, opt)
    return out


def _breakdown(model, data, pairs, offsets, n_quad, n_samples, gen, c, opt, repeats: int = 5) -> dict:
    """Wall time of the parts of one step (median over ``repeats``), forward parts without grad bookkeeping differences."""
    from pymsde.training.elbo import elbo_terms

    idx = torch.from_numpy(pairs)
    u, t, mu, f = data.windows(idx[:, 0], idx[:, 1], offsets)
    frames = u.flatten(0, 1)
    parts = {"encode": [], "decode": [], "gp_condition_eval": [], "drift_eval": [], "full_forward": [],
             "backward_adam": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        mean, logvar = model.encode(frames)
        parts["encode"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.decode(mean)
        parts["decode"].append(time.perf_counter() - t0)
        M, D = frames.shape[0], mean.shape[1]
        tr = (t[0] - t[0, 0]).to(frames.dtype)
        t0 = time.perf_counter()
        post = model.posterior.condition(tr, mean, torch.broadcast_to(logvar, mean.shape))
        post.evaluate(tr)
        post.evaluate(tr[:n_quad])
        parts["gp_condition_eval"].append(time.perf_counter() - t0)
        z = mean[:n_quad * n_samples]
        t0 = time.perf_counter()
        model.drift(tr[:z.shape[0]], z, None, None)
        parts["drift_eval"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        terms = elbo_terms(model, u, t, mu, f, beta=0.5, res_factor=c, n_quad=n_quad, n_samples=n_samples,
                           generator=gen)
        parts["full_forward"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        parts["backward_adam"].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in parts.items()}


def time_to_accuracy(data, micro: int, coarse: int, budget_s: float, overrides: dict, model_extra: dict,
                     seed: int) -> dict:
    """Train for ``budget_s`` seconds (validating every epoch); the val nRMSE curve over time."""
    from pymsde.training.config import TrainConfig
    from pymsde.training import fit

    splits = data.splits
    train, val = data.subset(splits["train"]), data.subset(splits["val"])
    cfg = TrainConfig(seed=seed, device="cpu", progress=False, validate_every=1, **overrides)
    # estimate the number of epochs that fit in the budget from one short timing run
    probe = fit(train, dict(coarse_shape=(coarse,), micro_dim=micro, **model_extra),
                cfg.replace(max_steps=20, validate_every=0), val=None)
    per_step = probe.train_time_s / 20
    max_steps = max(1, int(budget_s / per_step))
    with tempfile.TemporaryDirectory() as tmp:
        res = fit(train, dict(coarse_shape=(coarse,), micro_dim=micro, **model_extra),
                  cfg.replace(max_steps=max_steps, epochs=10 ** 6), val=val, run_dir=Path(tmp) / "run")
    curve = [{k: h[k] for k in ("step", "epoch", "time_s", "val_loss", "val_nrmse", "val_recon_nrmse") if k in h}
             for h in res.history]
    return {"budget_s": budget_s, "steps": res.steps, "train_time_s": res.train_time_s,
            "final_val_nrmse": res.final.get("val_nrmse"), "final_val_recon_nrmse": res.final.get("val_recon_nrmse"),
            "best_val_nrmse": min((h.get("val_nrmse", float("inf")) for h in res.history), default=None),
            "config": cfg.replace(max_steps=max_steps).to_dict(), "curve": curve,
            "probe_ms_per_step": 1e3 * per_step}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-grid", type=int, default=1000)
    ap.add_argument("--n-traj", type=int, default=10)
    ap.add_argument("--n-steps", type=int, default=1001)
    ap.add_argument("--coarse", type=int, default=20)
    ap.add_argument("--micro", type=int, nargs="+", default=[5, 0], help="micro dims to time (0 = closure)")
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--n-quad", type=int, default=10)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--batch-windows", type=int, default=1)
    ap.add_argument("--loglik-frames", type=int, default=None, help="decode only N frames per window (default all)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=None, help="cache file for the simulated data (.npz)")
    ap.add_argument("--model-extra", nargs="*", default=[], help="ModelConfig overrides key=value (JSON values)")
    ap.add_argument("--tta", type=float, default=0.0, help="time-to-accuracy budget per model (s); 0: skip")
    ap.add_argument("--tta-config", nargs="*", default=[], help="TrainConfig overrides key=value (JSON values)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_extra = _parse_overrides(args.model_extra)
    data = make_data(args.n_grid, args.n_traj, args.n_steps, args.seed, args.data)
    train = data.subset(data.splits["train"]) if "train" in data.splits else data
    import pymsde

    result = {"benchmark": "train_step", "pymsde_version": pymsde.__version__, "torch_version": torch.__version__,
              "threads": torch.get_num_threads(), "platform": platform.platform(), "python": sys.version.split()[0],
              "config": {"n_grid": args.n_grid, "coarse": args.coarse, "window": args.window, "n_quad": args.n_quad,
                         "n_samples": args.samples, "batch_windows": args.batch_windows, "dtype": "float32",
                         "loglik_frames": args.loglik_frames,
                         "n_traj_train": train.n_traj, "n_t": train.n_t, "model_extra": model_extra},
              "models": {}}
    for micro in args.micro:
        name = "multiscale" if micro > 0 else "closure"
        r = time_steps(train, micro, args.coarse, args.window, args.n_quad, args.samples, args.batch_windows,
                       args.steps, args.warmup, args.seed, model_extra, args.loglik_frames)
        r["micro"] = micro
        result["models"][f"{name}_dm{micro}"] = r
        print(f"{name} (d_m={micro}): {r['median_ms']:.1f} ms/step median", file=sys.stderr)
    if args.tta > 0:
        overrides = _parse_overrides(args.tta_config)
        result["time_to_accuracy"] = {}
        for micro in args.micro:
            r = time_to_accuracy(data, micro, args.coarse, args.tta, overrides, model_extra, args.seed)
            result["time_to_accuracy"][f"dm{micro}"] = r
            print(f"d_m={micro}: val nRMSE {r['final_val_nrmse']} % after {r['train_time_s']:.0f} s", file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from pymsde.util.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
