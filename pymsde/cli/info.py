"""``pymsde info FILE [--json] [--values | --metadata-only]``: validate a trajectories file and summarise it.

Prints shapes, time step, value range per channel, grid (domain, boundary types), parameters,
forcing, recorded splits (by trajectory or by time) and metadata. A file that fails validation
exits with status 2 and a one-line error naming the file and the key (printed by the dispatcher).

``u`` is never loaded whole: an HDF5 file is opened lazily (``pymsde.data.lazy.open_lazy``; the
shape, dtype, splits and attrs come from its metadata) and the values are scanned block by block
(at most :data:`BLOCK_BYTES` of ``u`` at a time) for the per-channel range and the finite check.
A ``u`` larger than :data:`SCAN_LIMIT` is not scanned unless ``--values`` is given
(``--metadata-only`` skips the scan for any size). A ``.npz`` file cannot be read lazily and is
loaded whole, as before.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pymsde.cli._options import doc_summary


#: Bytes of ``u`` scanned by default (larger files: ``--values``).
SCAN_LIMIT = 2 * 2 ** 30
#: Most bytes of ``u`` read at a time by the scan.
BLOCK_BYTES = 16 * 2 ** 20


def channel_stats(data) -> list[dict]:
    """Per-channel min, max, mean and (population) std of ``data.u``, read block by block
    (``LazyTrajectories.iter_blocks``; Chan's pairwise update of mean and sum of squares)."""
    c = data.channels
    n, mean, m2 = 0.0, np.zeros(c), np.zeros(c)
    lo, hi = np.full(c, np.inf), np.full(c, -np.inf)
    for _, _, block in data.iter_blocks(BLOCK_BYTES):
        x = np.moveaxis(block, 1, 0).reshape(c, -1).astype(np.float64, copy=False)
        nb, mb = x.shape[1], x.mean(axis=1)
        m2b = ((x - mb[:, None]) ** 2).sum(axis=1)
        delta, tot = mb - mean, n + nb
        mean, m2, n = mean + delta * (nb / tot), m2 + m2b + delta ** 2 * (n * nb / tot), tot
        lo, hi = np.minimum(lo, x.min(axis=1)), np.maximum(hi, x.max(axis=1))
    return [{"channel": k, "min": float(lo[k]), "max": float(hi[k]), "mean": float(mean[k]),
             "std": float(np.sqrt(m2[k] / n))} for k in range(c)]


def summarise(path: str | Path, values: bool | None = None) -> dict:
    """Validate ``path`` and return a JSON-serialisable summary of its contents.

    ``values``: scan ``u`` for the per-channel range (True), skip it (False), or scan it when
    ``u`` is at most :data:`SCAN_LIMIT` bytes (None). Memory: the metadata and one block.
    """
    from pymsde.data.lazy import open_lazy
    from pymsde.data.trajectories import DT_RTOL

    path = Path(path)
    with open_lazy(path) as traj:
        scan = traj.u.nbytes <= SCAN_LIMIT if values is None else bool(values)
        channels = channel_stats(traj) if scan else None
        dts = traj.dts
        info = {
            "file": str(path),
            "format": "hdf5" if path.suffix.lower() in (".h5", ".hdf5") else "npz",
            "bytes": path.stat().st_size,
            "u": {"shape": list(traj.u.shape), "dtype": str(traj.u.dtype)},
            "n_traj": traj.n_traj, "n_t": traj.n_t, "channels": traj.channels,
            "dt": float(dts.mean()) if np.ptp(dts) <= DT_RTOL * dts[0] else [float(d) for d in dts],
            "t_range": [float(traj.t[:, 0].min()), float(traj.t[:, -1].max())],
            "grid": {"shape": list(traj.grid_shape), "domain": traj.domain.tolist(),
                     "boundary": list(traj.boundary), "spacing": list(traj.grid.spacing)},
            "values_scanned": scan,
            "values": channels,
            "mu": None if traj.mu is None else {"shape": list(traj.mu.shape), "min": traj.mu.min(0).tolist(),
                                                "max": traj.mu.max(0).tolist()},
            "f": None if traj.f is None else {"shape": list(traj.f.shape), "min": traj.f.min((0, 1)).tolist(),
                                              "max": traj.f.max((0, 1)).tolist()},
            "splits": {} if traj.time_splits else {k: v.tolist() for k, v in traj.splits.items()},
            "time_splits": {k: list(v) for k, v in traj.time_splits.items()},
            "attrs": {k: v for k, v in traj.attrs.items() if k not in ("split", "time_split")},
        }
    return info


def _text(info: dict) -> str:
    g = info["grid"]
    dt = info["dt"]
    dt_text = f"{dt:.6g}" if isinstance(dt, float) else f"per trajectory {[float(f'{d:.6g}') for d in dt]}"
    axes = ", ".join(f"{b} on [{lo:g}, {hi:g}{')' if b == 'periodic' else ']'}"
                     for b, (lo, hi) in zip(g["boundary"], g["domain"]))
    from pymsde.util.errors import format_bytes

    nbytes = int(np.prod(info["u"]["shape"])) * np.dtype(info["u"]["dtype"]).itemsize
    head = ("valid trajectories file" if info["values_scanned"] else
            f"valid metadata, values not scanned (u holds {format_bytes(nbytes)}; pass --values to scan them "
            f"block by block)")
    lines = [
        f"{info['file']}: {head} ({info['format']}, {info['bytes'] / 1e6:.3g} MB)",
        f"  u         {tuple(info['u']['shape'])} {info['u']['dtype']}  "
        f"(n_traj, n_t, C, *grid) = {info['n_traj']}, {info['n_t']}, {info['channels']}, {tuple(g['shape'])}",
        f"  t         dt = {dt_text}, t from {info['t_range'][0]:.6g} to {info['t_range'][1]:.6g}",
        f"  grid      {tuple(g['shape'])}: {axes}; spacing {tuple(float(f'{h:.6g}') for h in g['spacing'])}",
    ]
    for ch in info["values"] or []:
        lines.append(f"  u[:, :, {ch['channel']}]  min {ch['min']:.6g}  max {ch['max']:.6g}  "
                     f"mean {ch['mean']:.6g}  std {ch['std']:.6g}")
    for key in ("mu", "f"):
        v = info[key]
        lines.append(f"  {key:<9} " + ("none" if v is None else
                                       f"{tuple(v['shape'])}, min {v['min']}, max {v['max']}"))
    splits, windows = info["splits"], info["time_splits"]
    if windows:
        lines.append("  splits    by time: " + ", ".join(f"{k}: frames [{a}, {b})" for k, (a, b) in windows.items()))
    else:
        lines.append("  splits    " + (", ".join(f"{k}: {len(v)} {v}" for k, v in splits.items()) if splits else "none"))
    lines.append("  attrs     " + (json.dumps(info["attrs"]) if info["attrs"] else "none"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = summarise(args.file, values=False if args.metadata_only else (True if args.values else None))
    print(json.dumps(info, indent=2) if args.json else _text(info))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="validate a trajectories file and summarise it",
                              description=doc_summary(__doc__))
    p.add_argument("file", help="a .npz, .h5 or .hdf5 trajectories file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    scan = p.add_mutually_exclusive_group()
    scan.add_argument("--values", action="store_true",
                      help=f"scan u's values (range, finite check) whatever its size (default: when u is at most "
                           f"{SCAN_LIMIT // 2 ** 30} GiB); memory stays at one {BLOCK_BYTES // 2 ** 20} MiB block")
    scan.add_argument("--metadata-only", action="store_true", help="report shapes, splits and attrs without "
                                                                   "reading u's values")
    p.set_defaults(func=run)
