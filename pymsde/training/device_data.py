"""The training data as the step sees them: the one window gather of training and validation.

Two sources with the same ``windows(traj_idx, start, offsets)``:

- :class:`DeviceData`: trajectories in memory, moved to the device once (the default);
- :class:`DiskWindows`: a file opened with :func:`pymsde.data.lazy.open_lazy` whose ``u`` stays on
  disk; each step reads the windows it trains on, so a rank of a data-parallel run reads only
  its slice of every batch (``t``, ``mu`` and ``f``, small, are on the device).

:func:`open_training_data` picks one for a data file: in memory when the ranks of this machine
can all hold it, else on disk.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pymsde.data.trajectories import Trajectories
from pymsde.util.errors import available_memory, format_bytes

log = logging.getLogger(__name__)

#: the share of the available memory the copies of the data (one per rank on this machine) may take
IN_MEMORY_SHARE = 0.5


def _tensor(a, device, dtype):
    return None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def _gather_rest(t, mu, f, traj_idx, start, offsets):
    steps = start[:, None] + offsets[None, :]
    rows = traj_idx[:, None]
    return t[rows, steps], None if mu is None else mu[traj_idx], None if f is None else f[rows, steps]


@dataclass
class DeviceData:
    """Trajectories as device tensors (moved once)."""

    u: torch.Tensor            # (n_traj, n_t, C, *grid)
    t: torch.Tensor            # (n_traj, n_t) float64
    mu: torch.Tensor | None    # (n_traj, n_mu)
    f: torch.Tensor | None     # (n_traj, n_t, n_f)
    dt: float

    @classmethod
    def from_traj(cls, tr: Trajectories, device, dtype) -> "DeviceData":
        # times stay float64: relative times are formed before rounding to the model's dtype
        t = torch.as_tensor(tr.t, dtype=torch.float64, device=device)
        return cls(_tensor(tr.u, device, dtype), t, _tensor(tr.mu, device, dtype), _tensor(tr.f, device, dtype), tr.dt)

    def windows(self, traj_idx: torch.Tensor, start: torch.Tensor, offsets: torch.Tensor):
        """Gather windows: ``u`` (B, M, C, *grid), ``t`` (B, M), ``mu`` (B, n_mu), ``f`` (B, M, n_f)."""
        steps = start[:, None] + offsets[None, :]
        return (self.u[traj_idx[:, None], steps], *_gather_rest(self.t, self.mu, self.f, traj_idx, start, offsets))


class DiskWindows:
    """Trajectories whose ``u`` stays in its file (a :class:`~pymsde.data.lazy.LazyTrajectories`):
    :meth:`windows` reads the frames of the windows asked for (one read of ``max(offsets) + 1``
    consecutive frames per window), converts them and moves them to the device."""

    def __init__(self, lazy, device, dtype):
        self.source, self.device, self.dtype = lazy, device, dtype
        self.t = torch.as_tensor(lazy.t, dtype=torch.float64, device=device)
        self.mu, self.f, self.dt = _tensor(lazy.mu, device, dtype), _tensor(lazy.f, device, dtype), lazy.dt

    def windows(self, traj_idx: torch.Tensor, start: torch.Tensor, offsets: torch.Tensor):
        """As :meth:`DeviceData.windows`, reading ``u`` from the file now."""
        span = int(offsets.max()) + 1
        frames = [self.source.read_window(i, s, s + span) for i, s in zip(traj_idx.tolist(), start.tolist())]
        u = torch.as_tensor(np.stack(frames), dtype=self.dtype).to(self.device)[:, offsets.to(self.device)]
        return (u, *_gather_rest(self.t, self.mu, self.f, traj_idx, start, offsets))


def window_source(data, device, dtype):
    """:class:`DeviceData` for trajectories in memory, :class:`DiskWindows` for a lazily opened file."""
    return DeviceData.from_traj(data, device, dtype) if isinstance(data, Trajectories) else DiskWindows(data, device, dtype)


def field_std(data, n_frames: int = 32) -> float:
    """The standard deviation of the training field, for the divergence diagnosis: from every 50th
    frame in memory; from ``n_frames`` frames spread over the trajectories of a file on disk."""
    if isinstance(data, Trajectories):
        return float(np.std(data.u[:, :: max(1, data.n_t // 50)]))
    picks = [(j % data.n_traj, (j * 7919) % data.n_t) for j in range(min(n_frames, data.n_traj * data.n_t))]
    return float(np.std(np.stack([data.read_window(i, k, k + 1) for i, k in picks])))


def resident_values(data, windows_per_step: int, window: int) -> int:
    """Values of ``u`` on the device during training: all of them in memory, one step's windows from disk."""
    if isinstance(data, Trajectories):
        return int(data.u.size)
    return int(windows_per_step) * int(window) * int(math.prod(data.u.shape[2:]))


def open_training_data(path, local_ranks: int | None = None):
    """The data file to train on: loaded (:func:`pymsde.data.io.load`) when ``local_ranks`` copies of
    it (one per rank on this machine; default ``LOCAL_WORLD_SIZE`` or 1) take at most
    :data:`IN_MEMORY_SHARE` of the available memory; else an HDF5 file stays on disk
    (:func:`~pymsde.data.lazy.open_lazy`) and every rank reads the windows it trains on (logged)."""
    from pymsde.data.io import HDF5_SUFFIXES, load
    from pymsde.data.lazy import open_lazy

    if Path(path).suffix.lower() not in HDF5_SUFFIXES:       # an .npz is read whole anyway
        return load(path)
    lazy = open_lazy(path)                                  # no value of u read
    ranks = local_ranks if local_ranks is not None else max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    need, (room, what) = float(lazy.u.nbytes) * ranks, available_memory("cpu")
    if need <= IN_MEMORY_SHARE * room:
        lazy.close()
        return load(path)
    log.warning("%s: u (%s) x %d rank(s) on this machine exceeds %.0f %% of the memory (%s): the data stay on "
                "disk and every rank reads the windows it trains on", path, format_bytes(lazy.u.nbytes), ranks,
                100 * IN_MEMORY_SHARE, what)
    return lazy


__all__ = ["DeviceData", "DiskWindows", "window_source", "field_std", "resident_values", "open_training_data"]
