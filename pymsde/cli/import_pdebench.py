"""``pymsde import pdebench FILE --out OUT [...]``: convert a PDEBench HDF5 file to pymsde's format.

Reads PDEBench's 2-D layouts (the radial dam break ``2D_rdb_NA_NA.h5``: groups ``0000``,
``0001``, ... with ``data`` and ``grid/x``, ``grid/y``, ``grid/t``; a ``tensor`` dataset; the CFD
fields ``density``, ``pressure``, ``Vx``, ``Vy``) one sample at a time and writes an HDF5 file
with ``u (n, n_t, C, nx, ny)`` float32, atomically (``pymsde.data.pdebench``). The paper's
shallow-water data are ``pymsde import pdebench 2D_rdb_NA_NA.h5 --out swe.h5 --subtract 1
--noise 0.01 --case swe2d``.
"""
from __future__ import annotations

import argparse

from pymsde.cli._options import doc_summary


def _split(text: str):
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        from pymsde.util.errors import ConfigError

        raise ConfigError(f"--split {text}: expected three counts or fractions TRAIN,VAL,TEST (e.g. 0.9,0.05,0.05)")
    return values


def run(args: argparse.Namespace) -> int:
    from pymsde.data.io import file_format
    from pymsde.data.pdebench import convert_pdebench
    from pymsde.util.errors import DataError

    if file_format(args.out, for_writing=True) != "hdf5":
        raise DataError(f"--out {args.out}: the converted file is HDF5; expected a name ending in .h5 or .hdf5")
    s = convert_pdebench(args.file, args.out, fields=args.fields.split(",") if args.fields else None,
                         subtract=args.subtract, noise=args.noise, seed=args.seed, split=_split(args.split),
                         n_traj=args.n_traj, boundary=args.boundary, case=args.case)
    splits = ", ".join(f"{k} {n}" for k, n in s["splits"].items())
    print(f"wrote {s['out']}: PDEBench {s['layout']} layout, fields {s['fields']}, u {s['shape']} float32, "
          f"split {splits}; {s['out'].stat().st_size / 1e6:.3g} MB in {s['seconds']:.2f} s")
    return 0


def register(subparsers) -> None:
    from pymsde.data.grid import BOUNDARY_TYPES

    p = subparsers.add_parser("import", help="convert another project's data file (pdebench)",
                              description="Convert another project's data file to pymsde's format.")
    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    q = sub.add_parser("pdebench", help="a PDEBench 2-D HDF5 file (2D_rdb, tensor, CFD layouts)",
                       description=doc_summary(__doc__))
    q.add_argument("file", help="the PDEBench .h5 / .hdf5 file")
    q.add_argument("--out", required=True, metavar="OUT", help="output file (.h5 or .hdf5)")
    q.add_argument("--fields", default=None, metavar="A,B", help="CFD datasets to stack as channels "
                   "(default: those present of density,pressure,Vx,Vy)")
    q.add_argument("--subtract", type=float, default=0.0, metavar="X",
                   help="subtract X from every value (2D_rdb: 1, the outer depth; default 0)")
    q.add_argument("--noise", type=float, default=0.0, metavar="SIGMA", help="std of added Gaussian noise (default 0)")
    q.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the noise (default 0)")
    q.add_argument("--split", default="0.9,0.05,0.05", metavar="A,B,C",
                   help="train,val,test fractions or counts of consecutive samples (default 0.9,0.05,0.05)")
    q.add_argument("--n-traj", type=int, default=None, metavar="N", help="convert the first N samples only")
    q.add_argument("--boundary", choices=BOUNDARY_TYPES, default="dirichlet",
                   help="boundary type of both axes (2D_rdb: outflow; default dirichlet; every kind but periodic "
                        "spans the stored coordinates)")
    q.add_argument("--case", default=None, metavar="NAME", help="record attrs['case'] (e.g. swe2d for 2D_rdb with "
                   "--subtract 1: the coarse-DNS baseline then applies)")
    q.set_defaults(func=run)
