"""Wall time and throughput of the fine-grid simulators and the coarse-grid solver.

Runs each case of docs/method.md section 8 at its published size (burgers1d: 10 trajectories x
1000 points, kdv1d: 10 x 1000, burgers2d: 20 x 128 x 128; T = 1, 1001 saved times) and prints
one JSON document: per run the wall time, the internal step, and grid-point updates per
second counted two ways -- per saved output step (``n_traj * points * (n_t - 1) / wall``,
comparable across schemes) and per internal time step (``... * substeps``). The coarse-grid
baseline (``solve_coarse``) is timed on the same initial conditions.

For scale (issue 2): the paper's generator takes about 0.3 s for the 10 Burgers 1-D
trajectories (Heun, dt = 1e-3, second-order differences) and about 4 s per KdV trajectory
(an adaptive stiff solver) on 2 cores.

Usage::

    python benchmarks/bench_simulators.py                 # all cases, docs/method.md sizes
    python benchmarks/bench_simulators.py --quick         # 101 saved times to t = 0.1 (smoke test)
    python benchmarks/bench_simulators.py --cases burgers1d kdv1d --repeat 3
    python benchmarks/bench_simulators.py --accuracy      # the numbers of docs/simulators.md

Timings on a shared machine are contaminated by other load: take the minimum of repeats on
a quiet machine for reporting. The time loops run on ``PYMSDE_SIM_THREADS`` torch threads
(default 1; see ``pymsde.systems.solvers.loop_threads``): on an idle machine compare with
``PYMSDE_SIM_THREADS=2``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("PYMSDE_NO_PROGRESS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pymsde.systems import CASES, simulate, solve_coarse  # noqa: E402

PAPER_SECONDS = {"burgers1d": 0.3, "kdv1d": 4.0 * 10}


def _time(fn, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_case(case: str, repeat: int, quick: bool, scheme: str | None = None) -> dict:
    spec = CASES[case]
    kw = dict(noise=0.0, progress=False)
    if quick:
        kw.update(n_steps=101, t_end=0.1)
    if scheme:
        kw["scheme"] = scheme
    wall, traj = _time(lambda: simulate(case, **kw), repeat)
    n_traj, n_t = traj.n_traj, traj.n_t
    points = int(np.prod(traj.grid_shape))
    subs = int(traj.attrs["substeps"])
    row = {
        "case": case, "scheme": traj.attrs["scheme"], "n_traj": n_traj, "grid": list(traj.grid_shape),
        "n_t": n_t, "t_end": float(traj.t[0, -1]), "dt_internal": traj.attrs["dt_internal"], "substeps": subs,
        "wall_s": round(wall, 4),
        "point_updates_per_s_output": round(n_traj * points * (n_t - 1) / wall, 1),
        "point_updates_per_s_internal": round(n_traj * points * (n_t - 1) * subs / wall, 1),
    }
    if case in PAPER_SECONDS and not quick:
        row["paper_generator_s"] = PAPER_SECONDS[case]
    s = traj.grid.coarsening_factors(spec.coarse)
    cwall, _ = _time(lambda: solve_coarse(case, traj.u[:, 0], traj.t[0], factors=s), repeat)
    row["coarse"] = {"grid": list(spec.coarse), "factors": list(s), "wall_s": round(cwall, 4),
                     "cell_updates_per_s_output": round(n_traj * int(np.prod(spec.coarse)) * (n_t - 1) / cwall, 1)}
    return row


def _nrmse(pred, truth):
    ax = tuple(range(2, truth.ndim))
    return 100 * np.sqrt(np.mean(np.sum((pred - truth) ** 2, axis=ax) / np.sum(truth ** 2, axis=ax), axis=1))


def accuracy() -> dict:
    """The data-accuracy and baseline numbers quoted in docs/simulators.md (clean data, seed 0)."""
    from pymsde.systems import coarse_grain, refine

    out: dict = {}
    for case in ("burgers1d", "kdv1d"):
        a = simulate(case, n_traj=3, noise=0.0, progress=False)
        b = simulate(case, n_traj=3, n_grid=2000, noise=0.0, progress=False)
        c = simulate(case, n_traj=3, noise=0.0, progress=False, dt=5e-4)
        u = a.u[:, :, 0]
        mass, l2 = u.sum(-1), (u ** 2).sum(-1)
        row = {"max_abs_u": float(np.abs(a.u).max()),
               "N1000_vs_N2000_max_diff": float(np.abs(a.u - b.u[..., ::2]).max()),
               "dt_1e-3_vs_5e-4_max_diff": float(np.abs(a.u - c.u).max()),
               "mass_rel_drift": float((np.abs(mass - mass[:, :1]) / np.abs(u[:, 0]).sum(-1)[:, None]).max()),
               "l2_rel_drift": float((np.abs(l2 - l2[:, :1]) / l2[:, :1]).max())}
        other = simulate(case, n_traj=3, noise=0.0, progress=False,
                         **({"scheme": "fd"} if case == "burgers1d" else {"dealias": "3/2"}))
        row["fd_vs_spectral_max_diff" if case == "burgers1d" else "dealias_2/3_vs_3/2_max_diff"] = \
            float(np.abs(a.u - other.u).max())
        out[case] = row
    nested = [simulate("burgers2d", n_traj=1, n_grid=n, n_steps=11, noise=0.0, progress=False).u
              for n in (65, 129, 257)]
    d1 = float(np.abs(nested[0] - nested[1][..., ::2, ::2]).max())
    d2 = float(np.abs(nested[1] - nested[2][..., ::2, ::2]).max())
    tr = simulate("burgers2d", n_traj=1, n_steps=2, noise=0.0, progress=False)
    out["burgers2d"] = {"u65_vs_u129": d1, "u129_vs_u257": d2, "observed_order": float(np.log2(d1 / d2)),
                        "dt_limit_128": tr.attrs["dt_limit"]}
    coarse: dict = {}
    for case, kw, levels in (("burgers1d", {}, [(50,), (25,), (10,), (5,)]),
                             ("kdv1d", {}, [(50,), (25,), (10,)]),
                             ("burgers2d", {"n_traj": 3, "n_steps": 101}, [(16, 16), (8, 8), (4, 4)])):
        tr = simulate(case, noise=0.0, progress=False, **kw)
        s0 = tr.grid.coarsening_factors(CASES[case].coarse)
        rows = {}
        for s in levels:
            cells = "x".join(str(n // f) for n, f in zip(tr.grid_shape, s))
            rows[cells] = [round(float(e), 2) for e in _nrmse(solve_coarse(case, tr.u[:, 0], tr.t[0], factors=s), tr.u)]
        coarse[case] = {"dns_nrmse_percent": rows,
                        "persistence_nrmse_percent": [round(float(e), 1) for e in
                                                      _nrmse(np.repeat(tr.u[:, :1], tr.n_t, axis=1), tr.u)],
                        "projection_nrmse_percent": [round(float(e), 1) for e in
                                                     _nrmse(refine(coarse_grain(tr.u, s0), s0, tr.boundary), tr.u)]}
    out["coarse_baseline"] = coarse
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the minimum is reported")
    ap.add_argument("--quick", action="store_true", help="101 saved times to t = 0.1 instead of 1001 to t = 1")
    ap.add_argument("--with-fd", action="store_true", help="also time the finite-difference scheme on burgers1d")
    ap.add_argument("--accuracy", action="store_true",
                    help="print the accuracy / baseline numbers of docs/simulators.md instead of timings")
    args = ap.parse_args(argv)
    if args.accuracy:
        json.dump(accuracy(), sys.stdout, indent=1)
        print()
        return 0
    rows = []
    for case in args.cases:
        rows.append(bench_case(case, args.repeat, args.quick))
        if case == "burgers1d" and args.with_fd:
            rows.append(bench_case(case, args.repeat, args.quick, scheme="fd"))
    from pymsde.systems.solvers import loop_threads

    doc = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "loop_threads": loop_threads(), "cpu_count": os.cpu_count(),
                       "platform": platform.platform()},
           "quick": args.quick, "repeat": args.repeat, "results": rows}
    json.dump(doc, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
