"""Training-step cost (and accuracy per wall time) for the Burgers 1-D and 2-D reference setups.

Cases (``--case``): ``burgers1d`` (issue 3, docs/method.md section 6: fine 1000, coarse 20, 10
trajectories of 1001 steps, trained on the 8 of the train split) and ``burgers2d`` (fine
128 x 128, coarse 8 x 8; a small *simulated* set, ``pymsde.simulate("burgers2d")`` with 4
trajectories of 257 steps at the case's step 1e-3, trained on 3). Both: micro 5 (and the
closure model, micro 0), window 128, 10 quadrature times, one sample, one window per step.

``--ratio`` times the 1-D reference and the 2-D case in one process, their steps interleaved
round-robin (so both see the same machine load), and reports 2-D / 1-D per 2-D variant.

``--variant "NAME key=value ..."`` (repeatable) adds a configuration of the timed case (the
2-D case under ``--ratio``): keys are ``ModelConfig`` fields (``conv_memory_format``,
``encoder_channels``...), :func:`pymsde.training.elbo.elbo_terms` options (``loglik_frames``,
``encode_stride``, ``n_quad``, ``n_samples``) or ``compile=true`` (``torch.compile`` of the micro
encoder and decoder; the first step, compilation included, is reported as ``first_step_s``).
Every configuration's steps are interleaved with the others'.

Output: JSON on stdout (and ``--out FILE``): per configuration the median / mean / p90 of
the wall time and of the process CPU time of an optimiser step (ms; forward + backward +
Adam, windows gathered by index as in :func:`pymsde.training.fit`) after ``--warmup`` steps,
and the split of a step (``breakdown_ms``: encode, gp, decode, drift, rest of the forward --
likelihood, sampling, residual algebra -- and backward + Adam) from ``--breakdown-steps``
further steps timed part by part. ``--profile N`` adds the top operators of N profiled steps.

``--budget SECONDS``: also train every configuration of the timed case for as many steps as
fit in that time at its measured median step time (interleaved; Adam at 1e-3, beta = 1) and
score it on the val split with the full
estimator (every frame, midpoint quadrature; each model with its own ``encode_stride``): the
ELBO terms, and the reconstruction error (%) of decoding the encoder mean and the GP
posterior mean at every frame. ``--tta SECONDS``: time-to-accuracy with ``pymsde.fit``.

Examples::

    python benchmarks/bench_train.py                                   # 1-D, both models
    python benchmarks/bench_train.py --ratio --threads 1 --micro 5     # 2-D / 1-D
    python benchmarks/bench_train.py --case burgers2d --micro 5 --threads 1 \\
        --variant "fast loglik_frames=32 encode_stride=4 conv_memory_format=channels_last" --budget 300

Timings depend on the machine's load: compare configurations of one invocation only.
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

CASES = {"burgers1d": dict(n_grid=(1000,), coarse=(20,), n_traj=10, n_steps=1001, split=None, dt=None),
         "burgers2d": dict(n_grid=(128, 128), coarse=(8, 8), n_traj=4, n_steps=257, split="one_val", dt=1e-3)}
ELBO_KEYS = ("loglik_frames", "encode_stride", "n_quad", "n_samples")
PARTS = ("encode", "gp", "decode", "drift", "rest_forward", "backward_adam")


def _value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _parse_overrides(items):
    return {k: _value(v) for k, _, v in (it.partition("=") for it in items or [])}


def parse_variant(text: str) -> tuple[str, dict, dict, bool]:
    """``"NAME k=v ..."`` -> ``(name, model overrides, elbo overrides, compile)``."""
    from dataclasses import fields
    from pymsde.model import ModelConfig

    name, *items = text.split()
    over = _parse_overrides(items)
    model_names = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(over) - model_names - set(ELBO_KEYS) - {"compile"})
    if unknown:
        raise SystemExit(f"--variant {name}: unknown key(s) {unknown}; expected ModelConfig fields, "
                         f"{', '.join(ELBO_KEYS)} or compile")
    model = {k: (tuple(v) if isinstance(v, list) else v) for k, v in over.items() if k in model_names}
    return name, model, {k: v for k, v in over.items() if k in ELBO_KEYS}, bool(over.get("compile", False))


def make_data(case: str, n_grid, n_traj: int, n_steps: int, seed: int, cache: Path | None):
    """The case's data set, simulated (2-D: at the case's step 1e-3, so ``t_end`` follows
    ``n_steps``; 1-D: ``t_end = 1``) and cached in ``cache`` if given."""
    from pymsde.data.io import load, save
    from pymsde.systems import simulate

    if cache is not None and cache.is_file():
        return load(cache)
    spec, extra = CASES[case], {}
    if spec["split"] is not None:
        extra["split"] = (n_traj - 1, 1, 0)
    if spec["dt"] is not None:
        extra["t_end"] = spec["dt"] * (n_steps - 1)
    tr = simulate(case, n_traj=n_traj, seed=seed, n_grid=tuple(n_grid), n_steps=n_steps, progress=False, **extra)
    if cache is not None:
        save(tr, cache)
    return tr


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class StepRunner:
    """One configuration (case, micro, variant): model, optimiser, data and its timings."""

    def __init__(self, case: str, train, coarse, micro: int, variant: tuple, args, model_extra: dict):
        from pymsde.data.windows import WindowSampler
        from pymsde.model import ModelConfig, MultiscaleModel
        from pymsde.training.device_data import DeviceData
        from pymsde.training.elbo import residual_factor

        self.name, mextra, self.elbo_kw, self.compiled = variant
        self.case, self.micro, self.device = case, micro, args.device
        self.key = f"{case}/{'multiscale' if micro > 0 else 'closure'}_dm{micro}/{self.name}"
        self.elbo_kw = {"n_quad": args.n_quad, "n_samples": args.samples, "loglik_frames": args.loglik_frames,
                        **self.elbo_kw}
        torch.manual_seed(args.seed)
        opts = dict(coarse_shape=tuple(coarse), micro_dim=micro, **model_extra, **mextra)
        self.model = MultiscaleModel(ModelConfig.for_grid(train.grid, channels=train.channels, **opts)).to(args.device)
        self.model_config = {k: v for k, v in opts.items()}
        if self.compiled and micro > 0:
            self.model.encoder.micro = torch.compile(self.model.encoder.micro)
            self.model.decoder.micro = torch.compile(self.model.decoder.micro)
        self.data = DeviceData.from_traj(train, args.device, torch.float32)
        sampler = WindowSampler(train, args.window, seed=args.seed)
        self.order = np.concatenate([sampler.epoch_order(e) for e in range(2)])
        self.n_windows, self.bw, self.i = len(sampler), args.batch_windows, 0
        self.offsets = torch.arange(args.window, device=args.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)
        self.gen = torch.Generator(args.device).manual_seed(args.seed)
        self.c = residual_factor("per_dataset", train.n_traj * train.n_t, args.window, int(np.prod(train.grid_shape)))
        self.wall, self.cpu, self.first_step_s, self.parts, self.trained_s = [], [], None, [], 0.0

    def _batch(self):
        rows = [self.order[(self.i + j) % len(self.order)] for j in range(self.bw)]
        self.i += self.bw
        if self.i >= len(self.order):
            self.order = np.random.default_rng(self.i).permutation(self.order)
        idx = torch.as_tensor(np.stack(rows), device=self.device)
        return self.data.windows(idx[:, 0], idx[:, 1], self.offsets)

    def step(self, beta: float = 0.5, parts: dict | None = None) -> tuple[float, float]:
        """One optimiser step; returns (wall, cpu) seconds; fills ``parts`` when given."""
        from pymsde.training.elbo import elbo_terms

        _sync(self.device)
        c0, t0 = time.process_time(), time.perf_counter()
        u, t, mu, f = self._batch()
        terms = elbo_terms(self.model, u, t, mu, f, beta=beta, res_factor=self.c, generator=self.gen, **self.elbo_kw)
        if parts is not None:
            _sync(self.device)
            parts["forward"] = time.perf_counter() - t0
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None], foreach=True)
        self.opt.step()
        _sync(self.device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if parts is not None:
            parts["backward_adam"] = wall - parts["forward"]
        return wall, cpu

    def timed_part_step(self) -> None:
        """A step with the forward parts timed by wrapping the model's methods."""
        acc: dict = {k: 0.0 for k in ("encode", "gp", "decode", "drift")}
        m, dev = self.model, self.device

        def wrap(name, fn):
            def timed(*a, **k):
                _sync(dev)
                t0 = time.perf_counter()
                out = fn(*a, **k)
                _sync(dev)
                acc[name] += time.perf_counter() - t0
                return out
            return timed

        cond = m.posterior.condition

        def condition(*a, **k):
            win = wrap("gp", cond)(*a, **k)
            win.evaluate = wrap("gp", win.evaluate)
            return win

        m.encode, m.decode, m.drift = wrap("encode", m.encode), wrap("decode", m.decode), wrap("drift", m.drift)
        m.posterior.condition = condition
        try:
            self.step(parts=acc)
        finally:
            for k in ("encode", "decode", "drift"):
                delattr(m, k)
            delattr(m.posterior, "condition")
        acc["rest_forward"] = acc.pop("forward") - sum(acc[k] for k in ("encode", "gp", "decode", "drift"))
        self.parts.append(acc)

    def summary(self) -> dict:
        w, c = sorted(self.wall), sorted(self.cpu)
        ms = lambda x: round(1e3 * x, 2)  # noqa: E731
        out = {"median_ms": ms(statistics.median(w)), "mean_ms": ms(statistics.fmean(w)),
               "p90_ms": ms(w[int(0.9 * (len(w) - 1))]), "cpu_median_ms": ms(statistics.median(c)),
               "steps_timed": len(w), "first_step_s": round(self.first_step_s, 3), "micro": self.micro,
               "variant": self.name, "elbo": self.elbo_kw, "compile": self.compiled,
               "model_overrides": {k: v for k, v in self.model_config.items() if k not in ("coarse_shape", "micro_dim")},
               "n_parameters": sum(p.numel() for p in self.params)}
        if self.parts:
            out["breakdown_ms"] = {k: ms(statistics.median(p[k] for p in self.parts)) for k in PARTS}
        return out


def run_interleaved(runners, steps: int, warmup: int, breakdown_steps: int) -> None:
    """Round-robin: every runner does one step in turn (timings after ``warmup`` steps)."""
    for i in range(warmup + steps):
        for r in runners:
            wall, cpu = r.step()
            if i == 0:
                r.first_step_s = wall
            if i >= warmup:
                r.wall.append(wall)
                r.cpu.append(cpu)
    for _ in range(breakdown_steps):
        for r in runners:
            r.timed_part_step()


def profile_ops(runner, n_steps: int, top: int = 15) -> list[dict]:
    """The ``top`` operators by self time over ``n_steps`` profiled steps (ms per step)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if runner.device.startswith("cuda") else [])
    with profile(activities=acts) as prof:
        for _ in range(n_steps):
            runner.step()
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return [{"op": e.key, "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1e3 / n_steps, 2),
             "calls_per_step": e.count / n_steps} for e in rows]


@torch.no_grad()
def score(runner, val, window: int, seed: int = 1234) -> dict:
    """Full-estimator val ELBO terms and reconstruction errors (%) of every val window."""
    from pymsde.data.windows import window_starts
    from pymsde.training.device_data import DeviceData
    from pymsde.training.elbo import condition_posterior, elbo_terms, encoded_frames

    m = runner.model
    data = DeviceData.from_traj(val, runner.device, torch.float32)
    gen = torch.Generator(runner.device).manual_seed(seed)
    offsets = torch.arange(window, device=runner.device)
    kw = dict(runner.elbo_kw, loglik_frames=None, n_samples=4)
    acc = {"loss": [], "loglik": [], "residual": [], "recon_encoder": [], "recon_posterior": []}
    rel = lambda x, y: ((x - y).flatten(1).square().sum(1) / y.flatten(1).square().sum(1)).mean().item()  # noqa: E731
    for j in range(val.n_traj):
        for s in window_starts(val.n_t, window, 1, "shift"):
            idx = torch.tensor([j], device=runner.device)
            u, t, mu, f = data.windows(idx, torch.tensor([int(s)], device=runner.device), offsets)
            terms = elbo_terms(m, u, t, mu, f, beta=1.0, res_factor=runner.c, stratified=False, generator=gen, **kw)
            for k in ("loss", "loglik", "residual"):
                acc[k].append(terms[k].item())
            frames = u.flatten(0, 1)
            acc["recon_encoder"].append(rel(m.decode(m.encode(frames)[0])[0], frames))
            t_rel = (t[0] - t[0, 0]).to(u.dtype)
            post, _ = condition_posterior(m, u, frames, t_rel, encoded_frames(window, kw.get("encode_stride", 1),
                                                                               runner.device))
            acc["recon_posterior"].append(rel(m.decode(post.evaluate(t_rel)[0])[0], frames))
    out = {k: round(statistics.fmean(v), 5) for k, v in acc.items() if not k.startswith("recon")}
    out.update({f"{k}_nrmse_pct": round(100 * statistics.fmean(v) ** 0.5, 3) for k, v in acc.items()
                if k.startswith("recon")})
    return out


def train_for_budget(runners, val, window: int, budget_s: float, n_checks: int = 4) -> dict:
    """Train every runner (interleaved) for ``budget_s`` seconds' worth of steps at its measured
    median step time (so that the load while training does not decide the comparison); score
    it after each quarter of its steps."""
    out = {}
    for r in runners:
        n = max(n_checks, int(round(budget_s / (statistics.median(r.wall)))))
        r.plan, r.steps_done, r.train_wall, r.train_cpu = [n * (k + 1) // n_checks for k in range(n_checks)], 0, 0.0, 0.0
        out[r.key] = {"budget_s": budget_s, "steps": n, "median_step_ms": round(1e3 * statistics.median(r.wall), 2),
                      "curve": []}
    while any(r.plan for r in runners):
        for r in (r for r in runners if r.plan):
            wall, cpu = r.step(beta=1.0)
            r.steps_done, r.train_wall, r.train_cpu = r.steps_done + 1, r.train_wall + wall, r.train_cpu + cpu
            if r.steps_done == r.plan[0]:
                r.plan.pop(0)
                point = {"steps": r.steps_done, "budget_time_s": round(r.steps_done * out[r.key]["median_step_ms"] / 1e3, 1),
                         "wall_s": round(r.train_wall, 1), "cpu_s": round(r.train_cpu, 1), **score(r, val, window)}
                out[r.key]["curve"].append(point)
                print(f"  {r.key}: {point}", file=sys.stderr)
    for r in runners:
        out[r.key]["final"] = out[r.key]["curve"][-1]
    return out


def time_to_accuracy(data, micro: int, coarse, budget_s: float, overrides: dict, model_extra: dict,
                     seed: int) -> dict:
    """Train with ``pymsde.fit`` for ``budget_s`` seconds (validating every epoch); the val nRMSE curve."""
    from pymsde.training import fit
    from pymsde.training.config import TrainConfig

    splits = data.splits
    train, val = data.subset(splits["train"]), data.subset(splits["val"])
    cfg = TrainConfig(seed=seed, device="cpu", progress=False, validate_every=1, **overrides)
    model = dict(coarse_shape=tuple(coarse), micro_dim=micro, **model_extra)
    probe = fit(train, model, cfg.replace(max_steps=20, validate_every=0), val=None)
    per_step = probe.train_time_s / 20
    max_steps = max(1, int(budget_s / per_step))
    with tempfile.TemporaryDirectory() as tmp:
        res = fit(train, model, cfg.replace(max_steps=max_steps, epochs=10 ** 6), val=val, run_dir=Path(tmp) / "run")
    curve = [{k: h[k] for k in ("step", "epoch", "time_s", "val_loss", "val_nrmse", "val_recon_nrmse") if k in h}
             for h in res.history]
    return {"budget_s": budget_s, "steps": res.steps, "train_time_s": res.train_time_s,
            "final_val_nrmse": res.final.get("val_nrmse"), "final_val_recon_nrmse": res.final.get("val_recon_nrmse"),
            "best_val_nrmse": min((h.get("val_nrmse", float("inf")) for h in res.history), default=None),
            "config": cfg.replace(max_steps=max_steps).to_dict(), "curve": curve,
            "probe_ms_per_step": 1e3 * per_step}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), default="burgers1d")
    ap.add_argument("--ratio", action="store_true", help="time burgers1d and burgers2d interleaved; 2-D / 1-D")
    ap.add_argument("--n-grid", type=int, nargs="+", default=None, help="fine points per axis (default: the case's)")
    ap.add_argument("--n-traj", type=int, default=None)
    ap.add_argument("--n-steps", type=int, default=None)
    ap.add_argument("--coarse", type=int, nargs="+", default=None, help="coarse cells per axis (default: the case's)")
    ap.add_argument("--micro", type=int, nargs="+", default=None,
                    help="micro dims to time (0 = closure; default 5 0, with --ratio 5)")
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--n-quad", type=int, default=10)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--batch-windows", type=int, default=1)
    ap.add_argument("--loglik-frames", type=int, default=None, help="decode only N frames per window (default all)")
    ap.add_argument("--variant", action="append", default=[], help='"NAME key=value ..." (repeatable)')
    ap.add_argument("--steps", type=int, default=30, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--breakdown-steps", type=int, default=5)
    ap.add_argument("--profile", type=int, default=0, help="profile N steps per configuration (top operators)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=None, help="cache file of the timed case's data (.npz)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="cache directory for the simulated data sets")
    ap.add_argument("--model-extra", nargs="*", default=[], help="ModelConfig overrides key=value (JSON values)")
    ap.add_argument("--budget", type=float, default=0.0, help="train each configuration this many s and score it")
    ap.add_argument("--tta", type=float, default=0.0, help="time-to-accuracy budget per model with fit (s); 0: skip")
    ap.add_argument("--tta-config", nargs="*", default=[], help="TrainConfig overrides key=value (JSON values)")
    ap.add_argument("--out", type=Path, default=None)
    return ap


def _case_data(case: str, args, single: bool):
    spec = CASES[case]
    n_grid = tuple(args.n_grid) if (single and args.n_grid) else spec["n_grid"]
    coarse = tuple(args.coarse) if (single and args.coarse) else spec["coarse"]
    n_traj = args.n_traj if (single and args.n_traj) else spec["n_traj"]
    n_steps = args.n_steps if (single and args.n_steps) else spec["n_steps"]
    cache = args.data if (single and args.data) else None
    if cache is None and args.cache_dir is not None:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        cache = args.cache_dir / f"{case}_{n_traj}x{n_steps}_{'x'.join(map(str, n_grid))}_s{args.seed}.npz"
    data = make_data(case, n_grid, n_traj, n_steps, args.seed, cache)
    return data, coarse, {"n_grid": list(n_grid), "coarse": list(coarse), "n_traj_train": len(data.splits["train"]),
                          "n_t": data.n_t}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_extra = _parse_overrides(args.model_extra)
    micros = args.micro or ([5] if args.ratio else [5, 0])
    timed_case = "burgers2d" if args.ratio else args.case
    variants = [parse_variant(v) for v in args.variant] or [("default", {}, {}, False)]
    import pymsde

    result = {"benchmark": "train_step", "pymsde_version": pymsde.__version__, "torch_version": torch.__version__,
              "threads": torch.get_num_threads(), "device": args.device, "platform": platform.platform(),
              "python": sys.version.split()[0], "config": {"window": args.window, "n_quad": args.n_quad,
              "n_samples": args.samples, "batch_windows": args.batch_windows, "dtype": "float32",
              "loglik_frames": args.loglik_frames, "model_extra": model_extra, "cases": {}}, "models": {}}
    runners, datasets = [], {}
    for case in (["burgers1d", "burgers2d"] if args.ratio else [args.case]):
        data, coarse, info = _case_data(case, args, single=not args.ratio or case == timed_case)
        datasets[case] = data
        result["config"]["cases"][case] = info
        train = data.subset(data.splits["train"])
        for micro in micros:
            for v in (variants if case == timed_case else [("default", {}, {}, False)]):
                runners.append(StepRunner(case, train, coarse, micro, v, args, model_extra))
    run_interleaved(runners, args.steps, args.warmup, args.breakdown_steps)
    for r in runners:
        result["models"][r.key] = r.summary()
        if args.profile:
            result["models"][r.key]["profile"] = profile_ops(r, args.profile)
        print(f"{r.key}: {result['models'][r.key]['median_ms']:.1f} ms/step median", file=sys.stderr)
    if args.ratio:
        result["ratio_2d_over_1d"] = _ratios(result["models"])
    timed = [r for r in runners if r.case == timed_case]
    if args.budget > 0:
        val = datasets[timed_case].get_split("val")
        result["budget"] = train_for_budget(timed, val, args.window, args.budget)
    if args.tta > 0:
        overrides = _parse_overrides(args.tta_config)
        result["time_to_accuracy"] = {}
        coarse = result["config"]["cases"][timed_case]["coarse"]
        for micro in micros:
            r = time_to_accuracy(datasets[timed_case], micro, coarse, args.tta, overrides, model_extra, args.seed)
            result["time_to_accuracy"][f"dm{micro}"] = r
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from pymsde.util.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


def _ratios(models: dict) -> dict:
    """2-D / 1-D of the medians (wall and CPU), per 2-D configuration, against the 1-D one of the same micro."""
    out = {}
    for key, r2 in models.items():
        if not key.startswith("burgers2d/"):
            continue
        ref = models[f"burgers1d/{key.split('/')[1]}/default"]
        out[key] = {"wall": round(r2["median_ms"] / ref["median_ms"], 3),
                    "cpu": round(r2["cpu_median_ms"] / ref["cpu_median_ms"], 3)}
    return out


if __name__ == "__main__":
    sys.exit(main())
