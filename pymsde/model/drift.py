"""The prior drift as an ``nn.Module``: it holds the weights, the maths lives in
:func:`pymsde.kernels.multiscale.multiscale_drift` (one definition for the model, the
rollout kernels and the Julia port)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from pymsde.kernels.mlp import init_mlp
from pymsde.kernels.multiscale import DriftParams, multiscale_drift


class MultiscaleDrift(nn.Module):
    """Learnable weights of the macroscale MLP ``h`` and the microscale MLP ``q``.

    Args:
        coarse_shape: coarse cells per axis.
        channels: ``C``.
        micro_dim: ``d_m`` (0: no ``q`` at all).
        radius: stencil radius ``r``.
        boundary: per axis.
        macro_hidden, micro_hidden: hidden widths of ``h`` and ``q``.
        activation: activation name of both.
        n_mu, n_f: sizes of ``mu`` and ``f``.

    Initialisation: Xavier-normal weights, zero biases (as the reference implementation).
    """

    def __init__(self, coarse_shape: Sequence[int], channels: int, micro_dim: int, radius: int,
                 boundary: Sequence[str], macro_hidden: Sequence[int], micro_hidden: Sequence[int],
                 activation: str, n_mu: int = 0, n_f: int = 0):
        super().__init__()
        self.meta = dict(activation=activation, radius=int(radius), boundary=tuple(boundary),
                         coarse_shape=tuple(int(c) for c in coarse_shape), channels=int(channels),
                         micro_dim=int(micro_dim), n_mu=int(n_mu), n_f=int(n_f))
        # layer widths as DriftParams expects them (its __post_init__ checks them on every call)
        nd = len(coarse_shape)
        n_cells = 1
        for c in coarse_shape:
            n_cells *= int(c)
        macro_in = channels * (2 * radius + 1) ** nd + micro_dim + n_mu + n_f
        w, b = init_mlp([macro_in, *macro_hidden, channels])
        self.macro_weights = nn.ParameterList(nn.Parameter(x) for x in w)
        self.macro_biases = nn.ParameterList(nn.Parameter(x) for x in b)
        if micro_dim > 0:
            micro_in = micro_dim + channels * n_cells + 2 + n_mu + n_f
            w, b = init_mlp([micro_in, *micro_hidden, micro_dim])
        else:
            w, b = [], []
        self.micro_weights = nn.ParameterList(nn.Parameter(x) for x in w)
        self.micro_biases = nn.ParameterList(nn.Parameter(x) for x in b)

    def params(self) -> DriftParams:
        """The live parameters (autograd-connected) as :class:`DriftParams`."""
        return DriftParams(list(self.macro_weights), list(self.macro_biases),
                           list(self.micro_weights), list(self.micro_biases), **self.meta)

    def forward(self, t: torch.Tensor | float, z: torch.Tensor, mu: torch.Tensor | None = None,
                f: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, D)`` drift; see :func:`multiscale_drift`."""
        return multiscale_drift(self.params(), t, z, mu, f)
