"""``pymsde plot FILE --out PNG [--traj I] [--channel C] [--snapshots N] [--vorticity]``: draw one trajectory.

1-D data: a space-time diagram (x across, t up). 2-D data: snapshots at ``N`` evenly spaced
times (first and last included) of one channel, or with ``--vorticity`` (2 channels, a velocity
(u, v)) the vorticity with the velocity as arrows. The file is validated first, like ``pymsde info``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pymsde.cli._options import doc_summary
from pymsde.util.errors import ConfigError


def plot_trajectory(traj, out: str | Path, traj_index: int = 0, channel: int = 0, n_snapshots: int = 5,
                    vorticity: bool = False) -> Path:
    """Draw trajectory ``traj_index``, channel ``channel`` (or, with ``vorticity``, the vorticity
    of the 2-channel velocity) of a Trajectories to the PNG ``out``."""
    from pymsde.evaluate.plots import plot_snapshots, plot_spacetime, plot_vorticity, vorticity_label

    if not 0 <= traj_index < traj.n_traj:
        raise ConfigError(f"--traj: {traj_index}; expected 0 <= I < {traj.n_traj} (trajectories in the file)")
    if not 0 <= channel < traj.channels:
        raise ConfigError(f"--channel: {channel}; expected 0 <= C < {traj.channels} (channels in the file)")
    if vorticity and (traj.n_dims != 2 or traj.channels != 2):
        raise ConfigError(f"--vorticity: the file has {traj.channels} channel(s) on a {traj.n_dims}-D grid; "
                          f"expected a 2-D velocity (2 channels)")
    case = traj.attrs.get("case")
    title = f"{case + ': ' if case else ''}trajectory {traj_index}, " + ("vorticity" if vorticity else f"channel {channel}")
    u = traj.u[traj_index, :, channel]
    t = traj.t[traj_index]
    grid = traj.grid
    if traj.n_dims == 1:
        return plot_spacetime({"u": u}, grid.coordinates(0), t, out, title=title)
    if traj.n_dims == 2:
        if n_snapshots < 1:
            raise ConfigError(f"--snapshots: {n_snapshots}; expected at least 1")
        k = np.unique(np.linspace(0, traj.n_t - 1, min(n_snapshots, traj.n_t)).round().astype(int))
        if vorticity:
            return plot_vorticity({"u": traj.u[traj_index, k]}, t[k], out, x=grid.coordinates(0),
                                  y=grid.coordinates(1), periodic=[b == "periodic" for b in grid.boundary],
                                  label=vorticity_label(traj.attrs), title=title)
        return plot_snapshots({"u": u[k]}, t[k], out, x=grid.coordinates(0), y=grid.coordinates(1), title=title)
    raise ConfigError(f"plot: {traj.n_dims}-D grids {traj.grid_shape} are not supported; expected 1-D or 2-D data")


def run(args: argparse.Namespace) -> int:
    from pymsde.data.io import load

    traj = load(args.file)
    out = plot_trajectory(traj, args.out, args.traj, args.channel, args.snapshots, args.vorticity)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="draw a space-time diagram (1-D) or snapshots (2-D) to PNG",
                              description=doc_summary(__doc__))
    p.add_argument("file", help="a .npz, .h5 or .hdf5 trajectories file")
    p.add_argument("--out", required=True, help="the PNG file to write")
    p.add_argument("--traj", type=int, default=0, metavar="I", help="trajectory index (default 0)")
    p.add_argument("--channel", type=int, default=0, metavar="C", help="channel index (default 0)")
    p.add_argument("--snapshots", type=int, default=5, metavar="N", help="2-D: number of snapshot times (default 5)")
    p.add_argument("--vorticity", action="store_true",
                   help="2-D velocity (2 channels): draw the vorticity with the velocity as arrows")
    p.set_defaults(func=run)
