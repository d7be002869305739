"""Trajectories as device tensors, moved once, and the one window gather of training and validation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pymsde.data.trajectories import Trajectories


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
        conv = lambda a: None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
        # times stay float64: relative times are formed before rounding to the model's dtype
        t = torch.as_tensor(tr.t, dtype=torch.float64, device=device)
        return cls(conv(tr.u), t, conv(tr.mu), conv(tr.f), tr.dt)

    def windows(self, traj_idx: torch.Tensor, start: torch.Tensor, offsets: torch.Tensor):
        """Gather windows: ``u`` (B, M, C, *grid), ``t`` (B, M), ``mu`` (B, n_mu), ``f`` (B, M, n_f)."""
        steps = start[:, None] + offsets[None, :]
        rows = traj_idx[:, None]
        return (self.u[rows, steps], self.t[rows, steps],
                None if self.mu is None else self.mu[traj_idx],
                None if self.f is None else self.f[rows, steps])
