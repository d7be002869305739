"""``pymsde merge-shards OUT``: merge the shard files of a data set generated in shards into OUT.

``pymsde simulate CASE --out OUT.h5 --shard K/N`` (K = 1 .. N, e.g. one per job of a cluster
array) writes ``OUT.shard-K-of-N.h5`` beside OUT; this command checks that the shards found
there are one complete set of one run (every shard 1 .. N once, the same case, seed, sizes
and options), streams them in order into OUT (atomic: an error leaves no OUT and the shards
as they were) and removes them (``--keep-shards`` keeps them). OUT then equals the file one
process writes with the same seed and options, bit for bit, plus ``attrs["shards"] = N``.
"""
from __future__ import annotations

import argparse

from pymsde.cli._options import doc_summary


def merged_line(s: dict) -> str:
    """The one-line summary of a merge (also printed by ``pymsde simulate`` under torchrun)."""
    return (f"wrote {s['path']}: merged {s['shards']} shards, {s['n_traj']} trajectories, u in "
            f"[{s['min']:.4g}, {s['max']:.4g}] {s['dtype']}; {s['path'].stat().st_size / 1e6:.3g} MB in "
            f"{s['seconds']:.2f} s; shards {'kept' if s.get('kept') else 'removed'}")


def run(args: argparse.Namespace) -> int:
    from pymsde.data.io import file_format
    from pymsde.data.stream import merge_shards
    from pymsde.util.errors import DataError

    if file_format(args.out, for_writing=True) != "hdf5":
        raise DataError(f"{args.out}: shards merge into an HDF5 file; expected a name ending in .h5 or .hdf5")
    s = merge_shards(args.out, keep=args.keep_shards)
    print(merged_line({**s, "kept": args.keep_shards}))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("merge-shards", help="merge the shards of pymsde simulate --shard K/N into one file",
                              description=doc_summary(__doc__))
    p.add_argument("out", metavar="OUT", help="the data set's file (.h5 / .hdf5); its shards are OUT's "
                                              "STEM.shard-K-of-N.SUFFIX in the same folder")
    p.add_argument("--keep-shards", action="store_true", help="keep the shard files after the merge")
    p.set_defaults(func=run)
