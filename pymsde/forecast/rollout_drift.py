"""Compatibility adapter, no maths: ``RolloutDrift(params, B)(t, z, mu, f)`` is
``multiscale_drift(params, t, z, mu, f, workspace=DriftWorkspace(params, B))``.

The buffer-reusing drift now lives in :mod:`pymsde.kernels.multiscale` (one implementation,
:class:`~pymsde.kernels.multiscale.DriftWorkspace`). This name is kept only because
``benchmarks/bench_rollout.py`` imports it; new code calls ``multiscale_drift`` with a
workspace directly. Delete this module once the benchmark does.
"""
from __future__ import annotations

import torch

from pymsde.kernels.multiscale import DriftParams, DriftWorkspace, multiscale_drift


class RolloutDrift:
    """``drift(t, z, mu=None, f=None) -> (B, D)`` for a fixed batch size (no autograd).

    Args:
        params: the drift's weights (detached here).
        batch: ``B``, the number of rows of every ``z`` it will be called with.
    """

    def __init__(self, params: DriftParams, batch: int):
        self.p = params.detach()
        self.workspace = DriftWorkspace(self.p, batch)

    def __call__(self, t: torch.Tensor | float, z: torch.Tensor, mu: torch.Tensor | None = None,
                 f: torch.Tensor | None = None) -> torch.Tensor:
        return multiscale_drift(self.p, t, z, mu, f, workspace=self.workspace)
