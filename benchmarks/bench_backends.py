"""Backend benchmark: the same work on the torch kernels and on the Julia kernels, in one run.

    python benchmarks/bench_backends.py                  # docs/method.md sizes, JSON on stdout
    python benchmarks/bench_backends.py --quick          # small sizes: a sanity run (seconds)
    python benchmarks/bench_backends.py --out bench.json --only rollout_256,rollout_4096

Work items (each a single call of a backend kernel, so the loops run inside the backend):

- ``burgers1d_sim``: Burgers 1-D fine-grid simulation, docs/method.md section 8 (10 trajectories,
  1000 periodic points, nu = 5e-4, T = 1, 1001 saved times): Fourier pseudo-spectral + ETDRK4
  (the simulator's default scheme), ``spectral_run``. The internal step and substeps are the
  ones ``systems.solvers.integrate_burgers`` chooses.
- ``burgers2d_sim``: Burgers 2-D (20 trajectories, 128 x 128, boundary values held, nu = 5e-3,
  T = 1, 1001 saved times): 4th-order central differences + RK4, ``burgers_fd_run``.
- ``rollout_256`` / ``rollout_4096``: ensemble rollouts of the learned Burgers 1-D SDE
  (``MultiscaleModel.build`` defaults: coarse 20, micro 5, radius 2, hidden (128, 128), relu;
  untrained weights, the cost does not depend on their values), 256 and 4096 samples x 1000
  Euler-Maruyama steps at dt = 1e-3, float32, increments drawn inside the backend (seeded):
  ``sde_rollout``.

The torch simulations run under the simulators' own thread policy
(``systems.solvers.compute_threads``: one torch thread for small fields). For each item and
backend: wall time (one timed call after an untimed warm-up call on a tiny
problem, which for Julia includes compilation: reported as ``warmup_s``), throughput
(grid-point updates or sample-steps per second) and the ratio to the torch wall time. Where
Julia cannot start, the torch path runs and the Julia entry says ``{"measured": false,
"reason": ...}``. Timings on a shared machine are noisy; compare numbers from one run only.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from pymsde.data.grid import Grid
from pymsde.numerics import pde
from pymsde.numerics import spectral
from pymsde.backends.protocol import resolve_backend
from pymsde.systems.solvers import compute_threads, integrate_burgers
from pymsde.util.errors import BackendUnavailableError

ITEMS = ("burgers1d_sim", "burgers2d_sim", "rollout_256", "rollout_4096")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    if isinstance(out, tuple):
        out = out[-1]
    if isinstance(out, torch.Tensor) and out.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- work items

def burgers1d(quick: bool):
    """Inputs of ``spectral_run`` for the Burgers 1-D case; returns (make_call, units, meta)."""
    n_traj, n, nu, n_out = (2, 1000, 5e-4, 21) if quick else (10, 1000, 5e-4, 1001)
    dt_out = 1.0 / 1000
    rng = np.random.default_rng(0)
    x = np.arange(n) / n
    amp = rng.normal(0.25, 0.05, n_traj)
    var = np.abs(rng.normal(0.01, 0.0025, n_traj))
    u0 = (amp[:, None] * np.exp(-(x[None] - 0.5) ** 2 / var[:, None]))[:, None, :]
    # the simulator's own choice of internal step (a two-output run of the public solver)
    _, info = integrate_burgers(u0, np.array([0.0, dt_out]), (1.0 / n,), nu, ("periodic",),
                                scheme="spectral", show_progress=False)
    h, n_sub = info["dt_internal"], info["substeps"]
    k = spectral.wavenumbers(n, 1.0)
    mask = spectral.dealias_mask(n, "2/3")
    coeffs = spectral.etd_coefficients(pde.burgers_linear_symbol(k, nu), h)
    v0 = torch.fft.rfft(torch.as_tensor(u0))      # every mode kept, as the simulator does

    def call(be, small=False):
        m = 3 if small else n_out
        return be.spectral_run(v0, coeffs, k, mask, n, "2/3", n_sub, m)

    updates = n_traj * n * n_sub * (n_out - 1)
    return call, updates, {"field_values": int(u0.size), "n_traj": n_traj, "n_grid": n, "n_out": n_out, "dt_internal": h, "substeps": n_sub,
                           "scheme": info["scheme"], "throughput_unit": "grid-point updates / s"}


def burgers2d(quick: bool):
    n_traj, n, nu, n_out = (2, 128, 5e-3, 6) if quick else (20, 128, 5e-3, 1001)
    dt_out = 1.0 / 1000
    grid = Grid((n, n), ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"))
    X, Y = grid.mesh()
    rng = np.random.default_rng(0)
    c1 = rng.normal(1.0, 0.1, n_traj)
    c2 = (0.2 + 0.01 * rng.standard_normal(n_traj)) ** 2
    u0 = (c1[:, None, None] * np.exp(-((X - 0.3) ** 2 + (Y - 0.3) ** 2)[None] / c2[:, None, None]))[:, None]
    dx = grid.spacing
    _, info = integrate_burgers(u0, np.array([0.0, dt_out]), dx, nu, grid.boundary, scheme="fd",
                                show_progress=False)
    h, n_sub = info["dt_internal"], info["substeps"]
    u = torch.as_tensor(u0)

    def call(be, small=False):
        return be.burgers_fd_run(u[:1] if small else u, h, n_sub, 2 if small else n_out, dx, nu, grid.boundary, 4)

    updates = n_traj * n * n * n_sub * (n_out - 1)
    return call, updates, {"field_values": int(u0.size), "n_traj": n_traj, "n_grid": [n, n], "n_out": n_out, "dt_internal": h,
                           "substeps": n_sub, "scheme": info["scheme"],
                           "throughput_unit": "grid-point updates / s"}


def rollout(samples: int, quick: bool, dtype: torch.dtype):
    from pymsde.model.multiscale import MultiscaleModel

    n_steps = 50 if quick else 1000
    grid = Grid((1000,), ((0.0, 1.0),), ("periodic",))
    torch.manual_seed(0)
    model = MultiscaleModel.build(grid, 20).to(dtype)
    with torch.no_grad():
        params = model.drift_params().detach()
        sigma = model.diffusion().detach().reshape(-1).to(dtype)
    z0 = 0.1 * torch.randn(samples, params.latent_dim, dtype=dtype)

    def call(be, small=False):
        return be.sde_rollout(params, sigma, z0[:8] if small else z0, 0.0, 1e-3, 2 if small else n_steps,
                              scheme="em", save_every=n_steps if not small else 2, seed=1)

    hidden = [w.shape[0] for w in params.macro_weights[:-1]]
    return call, samples * n_steps, {"samples": samples, "steps": n_steps, "dt": 1e-3, "dtype": str(dtype),
                                     "latent_dim": params.latent_dim, "macro_hidden": hidden,
                                     "throughput_unit": "sample-steps / s"}


# --------------------------------------------------------------------------- driver

def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}


def run(items, quick: bool, dtype: torch.dtype) -> dict:
    backends = {"torch": resolve_backend("torch")}
    julia_reason = None
    try:
        backends["julia"] = resolve_backend("julia")
    except BackendUnavailableError as exc:
        julia_reason = str(exc)
    builders = {"burgers1d_sim": lambda: burgers1d(quick), "burgers2d_sim": lambda: burgers2d(quick),
                "rollout_256": lambda: rollout(256, quick, dtype), "rollout_4096": lambda: rollout(4096, quick, dtype)}
    results = {}
    for item in items:
        call, work, meta = builders[item]()
        entry = {"work": meta, "work_units": work}
        torch_wall = None
        for name in ("torch", "julia"):
            if name not in backends:
                entry[name] = {"measured": False, "reason": julia_reason}
                continue
            be = backends[name]
            # the torch simulators step small fields on one thread (systems.solvers); do the same
            threads = compute_threads(meta["field_values"]) if name == "torch" and "field_values" in meta \
                else contextlib.nullcontext()
            with threads:
                warm, _ = _timed(lambda: call(be, small=True))
                wall, out = _timed(lambda: call(be))
            rec = {"measured": True, "wall_s": round(wall, 4), "warmup_s": round(warm, 4),
                   "throughput": work / wall, "device": str(out.device), "finite": bool(torch.isfinite(out).all())}
            if name == "torch":
                torch_wall = wall
            rec["ratio_to_torch"] = round(wall / torch_wall, 4) if torch_wall else None
            rec["backend"] = be.describe()
            entry[name] = rec
            print(f"[bench_backends] {item} {name}: {wall:.3f} s", file=sys.stderr)
        results[item] = entry
    return {"quick": quick, "machine": machine(), "items": results,
            "note": "Julia entries with measured=false were not run; see reason."}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a sanity run, not a measurement)")
    ap.add_argument("--only", default=",".join(ITEMS), help=f"comma-separated subset of {ITEMS}")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="rollout dtype")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    items = [s for s in args.only.split(",") if s]
    bad = sorted(set(items) - set(ITEMS))
    if bad:
        ap.error(f"unknown item(s) {bad}; expected a subset of {ITEMS}")
    res = run(items, args.quick, getattr(torch, args.dtype))
    text = json.dumps(res, indent=2, default=lambda o: o if isinstance(o, (int, float, str)) else str(o))
    print(text)
    if args.out:
        from pymsde.util import atomic_path

        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
