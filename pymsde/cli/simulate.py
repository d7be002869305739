"""``pymsde simulate CASE --out FILE [...]``: generate a benchmark data set and save it.

CASE is one of burgers1d, kdv1d, burgers2d, wave1d, swe2d, cylinder2d; options left out take
the case's defaults (the paper's sizes: docs/method.md section 8 for burgers1d, the final paper for
kdv1d -- 20 trajectories split 10/5/5 --, wave1d -- 30 split 20/5/5 --, burgers2d -- 30 split
20/5/5, stored as float32 --, swe2d -- 1000 dam breaks split 900/50/50 -- and cylinder2d -- one
trajectory of 1501 frames split in time 1301/100/100). docs/method.md's older KdV draw is
``--n-traj 10 --split 8,1,1``, the older Burgers 2-D one ``--n-traj 20 --split 18,1,1 --dtype
float64``. ``--dtype`` sets the dtype of ``u`` in the file (default: the case's, float32 for
burgers2d, float64 otherwise; the simulation runs in float64). The file is written atomically; a one-line summary is printed;
``--plot PNG`` also draws trajectory 0 (as ``pymsde plot``). ``swe2d`` into an HDF5 file is
streamed: each chunk of trajectories is written as it is produced (float32, chunked per
trajectory), so the 6.6 GB data set never sits in memory.

In shards (HDF5 output; every case but cylinder2d; docs/distributed.md): under ``torchrun
--nproc-per-node N -m pymsde simulate CASE --out OUT.h5`` (or any launcher that sets RANK and
WORLD_SIZE) rank r simulates the r-th contiguous slice of the trajectories into
``OUT.shard-(r+1)-of-N.h5`` beside OUT, and after all ranks are done rank 0 merges the shards in
order into OUT and removes them. Without a process group, ``--shard K/N`` writes shard K of N
(counted from 1) only, e.g. one per job of a cluster array, and ``pymsde merge-shards OUT.h5``
merges the complete set. Either way OUT equals the file one process writes with the same
seed and options, bit for bit (u, t, mu, attrs), plus ``attrs["shards"] = N``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from pymsde.cli._options import doc_summary, plain_text

CASES = ("burgers1d", "kdv1d", "burgers2d", "wave1d", "swe2d", "cylinder2d")


def _parse_split(text: str):
    """``"8,1,1"`` -> ``(8, 1, 1)`` (counts) or ``"0.8,0.1,0.1"`` -> fractions."""
    from pymsde.util.errors import DataError

    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            return tuple(int(p) for p in parts)
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise DataError(f"--split {text}: expected three counts TRAIN,VAL,TEST (e.g. 8,1,1) summing to the "
                        f"number of trajectories, or three fractions in [0, 1] (e.g. 0.8,0.1,0.1)")
    return values


def _parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``: shard K of N, counted from 1."""
    from pymsde.util.errors import DataError

    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or not 1 <= int(parts[0]) <= int(parts[1]):
        raise DataError(f"--shard {text}: expected K/N with 1 <= K <= N (shard K of N, counted from 1; e.g. 2/8)")
    return int(parts[0]), int(parts[1])


def _check_flags(args: argparse.Namespace) -> None:
    """Every number on the command line, named by its flag, before anything is simulated (the
    sizes' memory is checked by :func:`pymsde.systems.simulate` before it allocates)."""
    import math

    from pymsde.util.errors import SEED_MAX, DataError

    if not 0 <= args.seed <= SEED_MAX:
        raise DataError(f"--seed {args.seed}: expected an integer seed in [0, 2^63 - 1 = {SEED_MAX}]")
    sizes = [("--n-traj", args.n_traj, 1), ("--n-steps", args.n_steps, 2)]
    sizes += [("--n-grid", n, 2) for n in (args.n_grid or [])]
    for flag, value, lo in sizes:
        if value is not None and value < lo:
            raise DataError(f"{flag} {value}: expected an integer >= {lo}")
    if args.t_end is not None and not (math.isfinite(args.t_end) and args.t_end > 0):
        raise DataError(f"--t-end {args.t_end}: expected a finite positive final time")
    if args.noise is not None and not (math.isfinite(args.noise) and args.noise >= 0):
        raise DataError(f"--noise {args.noise}: expected a non-negative (finite) standard deviation")
    if args.shard is not None:
        _parse_shard(args.shard)


def run(args: argparse.Namespace) -> int:
    from pymsde.data.io import file_format, save
    from pymsde.systems import simulate
    from pymsde.systems.cases import as_stored, storage_dtype
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
    _check_flags(args)
    extra = {}
    if args.noise is not None:
        extra["noise"] = args.noise
    if args.split is not None:
        extra["split"] = _parse_split(args.split)
    n_grid = None if args.n_grid is None else (args.n_grid[0] if len(args.n_grid) == 1 else tuple(args.n_grid))
    from pymsde.training.distributed import from_environment

    world = from_environment().world_size
    if args.shard is not None or world > 1:
        return _sharded(args, n_grid, extra, world)
    if args.case == "swe2d" and file_format(args.out) == "hdf5":
        return _streamed(args, n_grid, extra)
    dtype = storage_dtype(args.case, args.dtype)
    start = time.perf_counter()
    traj = simulate(args.case, n_traj=args.n_traj, seed=args.seed, n_grid=n_grid,
                    n_steps=args.n_steps, t_end=args.t_end, backend=args.backend, progress=True, **extra)
    elapsed = time.perf_counter() - start
    traj = as_stored(traj, dtype)             # rebinding frees the float64 field before the file is written
    path = save(traj, args.out)
    splits = (", ".join(f"{k} frames [{a}, {b})" for k, (a, b) in traj.time_splits.items())
              or ", ".join(f"{k} {len(v)}" for k, v in traj.splits.items()))
    print(f"wrote {path}: {args.case}, {traj.n_traj} trajectories x {traj.n_t} times, grid {traj.grid_shape} "
          f"({', '.join(traj.boundary)}), dt {traj.dt:.6g}, u in [{traj.u.min():.4g}, {traj.u.max():.4g}] {traj.u.dtype}"
          f"{', split ' + splits if splits else ''}; {path.stat().st_size / 1e6:.3g} MB, simulated in {elapsed:.2f} s")
    if args.plot:
        from pymsde.cli.plot import plot_trajectory

        print(f"wrote {plot_trajectory(traj, args.plot)}")
    return 0


def _streamed(args: argparse.Namespace, n_grid, extra: dict) -> int:
    from pymsde.systems import simulate_to_file

    if args.dtype not in (None, "float32"):
        from pymsde.util.errors import DataError

        raise DataError(f"--dtype {args.dtype}: swe2d is streamed to HDF5 as float32; expected float32, or "
                        f"an .npz output for float64")
    s = simulate_to_file(args.case, args.out, n_traj=args.n_traj, seed=args.seed, n_grid=n_grid, n_steps=args.n_steps,
                         t_end=args.t_end, backend=args.backend, progress=True, **extra)
    splits = ", ".join(f"{k} {n}" for k, n in s["splits"].items())
    print(f"wrote {s['path']}: {s['case']}, {s['n_traj']} trajectories x {s['n_t']} times, grid {s['grid']} "
          f"({', '.join(s['boundary'])}), dt {s['dt']:.6g}, u in [{s['min']:.4g}, {s['max']:.4g}] {s['dtype']}"
          f"{', split ' + splits if splits else ''}; {s['path'].stat().st_size / 1e6:.3g} MB, streamed, simulated in "
          f"{s['seconds']:.2f} s")
    if args.plot:
        from pymsde.cli.plot import plot_trajectory
        from pymsde.data.lazy import open_lazy

        with open_lazy(s["path"]) as data:
            print(f"wrote {plot_trajectory(data.subset([0]).to_trajectories(), args.plot)}")
    return 0


#: how long a rank waits for the others at the end of its shard and for rank 0's merge (seconds)
SHARD_TIMEOUT_S = 6 * 3600.0


def _shard_line(s: dict) -> str:
    k, n = s["shard"]
    lo, hi = s["trajectories"]
    return (f"wrote {s['path']}: shard {k} of {n} of {s['case']}, trajectories [{lo}, {hi}) of {s['n_traj_total']} x "
            f"{s['n_t']} times, grid {s['grid']}, u in [{s['min']:.4g}, {s['max']:.4g}] {s['dtype']}; "
            f"{s['path'].stat().st_size / 1e6:.3g} MB, simulated in {s['seconds']:.2f} s")


def _sharded(args: argparse.Namespace, n_grid, extra: dict, world: int) -> int:
    """``--shard K/N`` (one shard, no process group) or a launcher's ranks (a shard each, then
    rank 0 merges): every rank checks and fails alike, so errors are agreed on as one line."""
    from pymsde.cli.merge_shards import merged_line
    from pymsde.data.io import file_format
    from pymsde.data.stream import merge_shards, shard_path
    from pymsde.systems import simulate_to_file
    from pymsde.util.errors import DataError

    if file_format(args.out) != "hdf5":
        raise DataError(f"--out {args.out}: shards are HDF5 files; expected a name ending in .h5 or .hdf5")
    kw = dict(n_traj=args.n_traj, seed=args.seed, n_grid=n_grid, n_steps=args.n_steps, t_end=args.t_end,
              backend=args.backend, dtype=args.dtype, **extra)
    if world == 1:
        if args.plot:
            raise DataError(f"--plot with --shard {args.shard}: a shard is a part of the data set; plot the merged "
                            f"file (pymsde plot {args.out} --out PNG)")
        print(_shard_line(simulate_to_file(args.case, args.out, progress=True, shard=_parse_shard(args.shard), **kw)))
        return 0
    if args.shard is not None:
        raise DataError(f"--shard {args.shard} under a launcher (WORLD_SIZE = {world}): the ranks are the shards; "
                        f"expected no --shard")
    from pymsde.training.distributed import session

    with session(timeout_s=SHARD_TIMEOUT_S) as dist:
        s = dist.run_agreed(simulate_to_file, args.case, args.out, progress=dist.main,
                            shard=(dist.rank + 1, dist.world_size), **kw)
        print(_shard_line(s), flush=True)
        paths = [shard_path(args.out, k, dist.world_size) for k in range(1, dist.world_size + 1)]
        merged = dist.run_agreed(merge_shards, args.out, paths, main_only=True)
        if dist.main:
            print(merged_line(merged))
            if args.plot:
                from pymsde.cli.plot import plot_trajectory
                from pymsde.data.lazy import open_lazy

                with open_lazy(merged["path"]) as data:
                    print(f"wrote {plot_trajectory(data.subset([0]).to_trajectories(), args.plot)}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="generate a benchmark data set (burgers1d, kdv1d, burgers2d, wave1d, "
                                               "swe2d, cylinder2d)",
                              description=doc_summary(__doc__),
                              epilog=plain_text(__doc__.split("\n\n")[2]))
    p.add_argument("case", choices=CASES, help="the benchmark case")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.npz, .h5 or .hdf5)")
    p.add_argument("--n-traj", type=int, default=None, metavar="N", help="number of trajectories (case default)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed of the initial conditions (default 0)")
    p.add_argument("--n-grid", type=int, nargs="+", default=None, metavar="N",
                   help="fine grid points per axis, one size or one per axis (case default; cylinder2d: "
                        "NX NY with NX = 4 NY, e.g. 320 80)")
    p.add_argument("--n-steps", type=int, default=None, metavar="K", help="saved times including t = 0, output step T / (K - 1) (case default 1001)")
    p.add_argument("--t-end", type=float, default=None, metavar="T", help="final time (case default)")
    p.add_argument("--noise", type=float, default=None, metavar="SIGMA",
                   help="std of the Gaussian observation noise, 0 for clean data (case default)")
    p.add_argument("--split", default=None, metavar="A,B,C",
                   help="train,val,test counts summing to the trajectories (e.g. 8,1,1) or fractions "
                        "(case default: burgers1d 8/1/1, kdv1d 10/5/5, burgers2d 20/5/5, wave1d 20/5/5, "
                        "swe2d 900/50/50 consecutive); cylinder2d: frame counts of its one trajectory "
                        "(default 1301,100,100)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="dtype of u in the file (case default: float32 for burgers2d, float64 otherwise; "
                        "swe2d into HDF5: float32)")
    p.add_argument("--backend", choices=("torch", "julia", "auto"), default="torch",
                   help="compute backend of the simulator (default torch)")
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw trajectory 0 to this PNG")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="write only shard K of N (counted from 1: the K-th contiguous slice of the trajectories) "
                        "to OUT.shard-K-of-N.h5 beside OUT (HDF5); merge the N shards with pymsde merge-shards OUT. "
                        "Under torchrun (WORLD_SIZE > 1) the ranks write one shard each and rank 0 merges them "
                        "into OUT; no --shard then")
    p.set_defaults(func=run)
