"""``pymsde info FILE [--json]``: validate a trajectories file and summarise it.

Prints shapes, time step, value range per channel, grid (domain, boundary types), parameters,
forcing, recorded splits and metadata. A file that fails validation exits with status 2 and
a one-line error naming the file and the key (printed by the dispatcher).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def summarise(path: str | Path) -> dict:
    """Load and validate ``path``; return a JSON-serialisable summary of its contents."""
    from pymsde.data.io import load
    from pymsde.data.trajectories import DT_RTOL

    path = Path(path)
    traj = load(path)
    u = traj.u
    dts = traj.dts
    channels = []
    for c in range(traj.channels):
        uc = u[:, :, c]
        channels.append({"channel": c, "min": float(uc.min()), "max": float(uc.max()),
                         "mean": float(uc.mean()), "std": float(uc.std())})
    info = {
        "file": str(path),
        "format": "hdf5" if path.suffix.lower() in (".h5", ".hdf5") else "npz",
        "bytes": path.stat().st_size,
        "u": {"shape": list(u.shape), "dtype": str(u.dtype)},
        "n_traj": traj.n_traj, "n_t": traj.n_t, "channels": traj.channels,
        "dt": float(dts.mean()) if np.ptp(dts) <= DT_RTOL * dts[0] else [float(d) for d in dts],
        "t_range": [float(traj.t[:, 0].min()), float(traj.t[:, -1].max())],
        "grid": {"shape": list(traj.grid_shape), "domain": traj.domain.tolist(),
                 "boundary": list(traj.boundary), "spacing": list(traj.grid.spacing)},
        "values": channels,
        "mu": None if traj.mu is None else {"shape": list(traj.mu.shape), "min": traj.mu.min(0).tolist(),
                                            "max": traj.mu.max(0).tolist()},
        "f": None if traj.f is None else {"shape": list(traj.f.shape), "min": traj.f.min((0, 1)).tolist(),
                                          "max": traj.f.max((0, 1)).tolist()},
        "splits": {k: v.tolist() for k, v in traj.splits.items()},
        "attrs": {k: v for k, v in traj.attrs.items() if k != "split"},
    }
    return info


def _text(info: dict) -> str:
    g = info["grid"]
    dt = info["dt"]
    dt_text = f"{dt:.6g}" if isinstance(dt, float) else f"per trajectory {[float(f'{d:.6g}') for d in dt]}"
    axes = ", ".join(f"{b} on [{lo:g}, {hi:g}{')' if b == 'periodic' else ']'}"
                     for b, (lo, hi) in zip(g["boundary"], g["domain"]))
    lines = [
        f"{info['file']}: valid trajectories file ({info['format']}, {info['bytes'] / 1e6:.3g} MB)",
        f"  u         {tuple(info['u']['shape'])} {info['u']['dtype']}  "
        f"(n_traj, n_t, C, *grid) = {info['n_traj']}, {info['n_t']}, {info['channels']}, {tuple(g['shape'])}",
        f"  t         dt = {dt_text}, t from {info['t_range'][0]:.6g} to {info['t_range'][1]:.6g}",
        f"  grid      {tuple(g['shape'])}: {axes}; spacing {tuple(float(f'{h:.6g}') for h in g['spacing'])}",
    ]
    for ch in info["values"]:
        lines.append(f"  u[:, :, {ch['channel']}]  min {ch['min']:.6g}  max {ch['max']:.6g}  "
                     f"mean {ch['mean']:.6g}  std {ch['std']:.6g}")
    for key in ("mu", "f"):
        v = info[key]
        lines.append(f"  {key:<9} " + ("none" if v is None else
                                       f"{tuple(v['shape'])}, min {v['min']}, max {v['max']}"))
    splits = info["splits"]
    lines.append("  splits    " + (", ".join(f"{k}: {len(v)} {v}" for k, v in splits.items()) if splits else "none"))
    lines.append("  attrs     " + (json.dumps(info["attrs"]) if info["attrs"] else "none"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = summarise(args.file)
    print(json.dumps(info, indent=2) if args.json else _text(info))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="validate a trajectories file and summarise it",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="a .npz, .h5 or .hdf5 trajectories file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
