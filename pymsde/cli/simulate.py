"""``pymsde simulate CASE --out FILE [...]``: generate a benchmark data set and save it.

CASE is one of burgers1d, kdv1d, burgers2d (METHOD.md section 8); options left out take the
case's defaults (the paper's sizes). The file is written atomically; a one-line summary is
printed; ``--plot PNG`` also draws trajectory 0 (as ``pymsde plot``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

CASES = ("burgers1d", "kdv1d", "burgers2d")


def run(args: argparse.Namespace) -> int:
    from pymsde.data.io import file_format, save
    from pymsde.systems import simulate
    from pymsde.util.errors import DataError

    # refuse bad output names before a simulation that may take minutes
    file_format(args.out, for_writing=True)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise DataError(f"--plot {args.plot}: plots are written as PNG; expected a file name ending in .png")
    for flag, name in (("--out", args.out), ("--plot", args.plot)):
        if name and Path(name).is_dir():
            raise DataError(f"{flag} {name}: a directory; expected a file name")
        if name and any(p.exists() and not p.is_dir() for p in Path(name).parents):
            raise DataError(f"{flag} {name}: a parent of this path is a file, not a directory")
    if args.seed < 0:
        raise DataError(f"--seed {args.seed}: expected a non-negative integer")
    start = time.perf_counter()
    traj = simulate(args.case, n_traj=args.n_traj, seed=args.seed, n_grid=args.n_grid,
                    n_steps=args.n_steps, t_end=args.t_end, backend=args.backend, progress=True)
    elapsed = time.perf_counter() - start
    path = save(traj, args.out)
    splits = ", ".join(f"{k} {len(v)}" for k, v in traj.splits.items())
    print(f"wrote {path}: {args.case}, {traj.n_traj} trajectories x {traj.n_t} times, grid {traj.grid_shape} "
          f"({', '.join(traj.boundary)}), dt {traj.dt:.6g}, u in [{traj.u.min():.4g}, {traj.u.max():.4g}]"
          f"{', split ' + splits if splits else ''}; {path.stat().st_size / 1e6:.3g} MB, simulated in {elapsed:.2f} s")
    if args.plot:
        from pymsde.cli.plot import plot_trajectory

        print(f"wrote {plot_trajectory(traj, args.plot)}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="generate a benchmark data set (burgers1d, kdv1d, burgers2d)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("case", choices=CASES, help="the benchmark case")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.npz, .h5 or .hdf5)")
    p.add_argument("--n-traj", type=int, default=None, metavar="N", help="number of trajectories (case default)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed of the initial conditions (default 0)")
    p.add_argument("--n-grid", type=int, default=None, metavar="N", help="fine grid points per axis (case default)")
    p.add_argument("--n-steps", type=int, default=None, metavar="K", help="saved times including t = 0, output step T / (K - 1) (case default 1001)")
    p.add_argument("--t-end", type=float, default=None, metavar="T", help="final time (case default)")
    p.add_argument("--backend", choices=("torch", "julia", "auto"), default="torch",
                   help="compute backend of the simulator (default torch)")
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw trajectory 0 to this PNG")
    p.set_defaults(func=run)
