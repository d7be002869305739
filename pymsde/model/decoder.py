"""The Product-of-Experts decoder ``p(u | z) = N(mean, var)`` (docs/method.md section 4).

Two Gaussian experts on the fine grid:

- macro expert ``xM = prod(s) K^T * (zM - b)`` (:meth:`CoarseGrainingKernel.transpose`,
  the kernel shared with the encoder), variance ``vM`` per fine point;
- micro expert ``xm = F(zm)`` (:class:`MicroDecoder`), variance ``vm`` per fine point.

Combined: ``var = 1 / (1/vM + 1/vm)``, ``mean = xM + (var / vm) xm``. Without a micro
state (``d_m = 0``) there is no micro expert: ``mean = xM`` exactly and ``var = vM``.
Variances are ``softplus`` of free parameters of shape ``(C, *fine)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pymsde.model.mlp import activation_fn
from pymsde.model.encoder import conv_sizes, inverse_softplus
from pymsde.model.coarse_graining import CoarseGrainingKernel


class MicroDecoder(nn.Module):
    """``F``: ``(B, d_m) -> (B, C, *fine)``, the mirror of :class:`MicroEncoder`.

    A linear layer to the encoder's last feature map, then stride-2 transposed convolutions
    (``output_padding`` chosen per layer so that the sizes retrace the encoder's exactly),
    activation between layers, none after the last. Zero padding at the edges (the expert
    is a generic function of ``zm``; the macro expert carries the boundary behaviour).
    ``channels_last`` (2-D only): the feature maps are channels-last (same function, other round-off).
    """

    def __init__(self, fine_shape: Sequence[int], channels: int, micro_dim: int,
                 hidden_channels: Sequence[int], kernel_size: int, activation: str = "relu",
                 channels_last: bool = False):
        super().__init__()
        self.ndim = len(fine_shape)
        self.activation = activation
        self.channels_last = bool(channels_last) and self.ndim == 2
        convt_cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[self.ndim]
        sizes = conv_sizes(fine_shape, len(hidden_channels))
        widths = [channels, *hidden_channels]
        self.first_shape = (widths[-1], *sizes[-1])
        self.linear = nn.Linear(micro_dim, math.prod(self.first_shape))
        layers = []
        for k in range(len(hidden_channels), 0, -1):          # coarsest first
            out = sizes[k - 1]
            op = tuple(1 if n % 2 == 0 else 0 for n in out)   # ceil(n/2) -> n
            layers.append(convt_cls(widths[k], widths[k - 1], kernel_size, stride=2,
                                    padding=kernel_size // 2, output_padding=op))
        self.convs = nn.ModuleList(layers)
        for layer in [self.linear, *self.convs]:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, zm: torch.Tensor) -> torch.Tensor:
        act = activation_fn(self.activation)
        x = act(self.linear(zm)).view(zm.shape[0], *self.first_shape)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        n = len(self.convs)
        for k, conv in enumerate(self.convs):
            x = conv(x)
            if k < n - 1:
                x = act(x)
        return x


class Decoder(nn.Module):
    """``z (B, D) -> (mean (B, C, *fine), var (C, *fine))`` (var broadcasts against mean).

    Args:
        kernel: the shared coarse-graining kernel.
        micro: the micro decoder, or None for ``d_m = 0``.
        macro_dim: ``C n_cells`` (the length of ``zM`` in ``z``).
        var_init: initial ``vM`` and ``vm``.
    """

    def __init__(self, kernel: CoarseGrainingKernel, micro: MicroDecoder | None, macro_dim: int,
                 var_init: float):
        super().__init__()
        self.kernel = kernel
        self.micro = micro
        self.macro_dim = int(macro_dim)
        shape = (kernel.channels, *kernel.fine_shape)
        self.raw_var_macro = nn.Parameter(torch.full(shape, inverse_softplus(var_init)))
        if micro is not None:
            self.raw_var_micro = nn.Parameter(torch.full(shape, inverse_softplus(var_init)))
        else:
            self.register_parameter("raw_var_micro", None)

    def macro_expert(self, z: torch.Tensor) -> torch.Tensor:
        """``xM``: ``(B, C, *fine)``."""
        zM = z[:, :self.macro_dim].reshape(z.shape[0], self.kernel.channels, *self.kernel.coarse_shape)
        return self.kernel.transpose(zM)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xM = self.macro_expert(z)
        vM = F.softplus(self.raw_var_macro)
        if self.micro is None:
            return xM, vM
        vm = F.softplus(self.raw_var_micro)
        var = vM * vm / (vM + vm)                  # = 1 / (1/vM + 1/vm)
        xm = self.micro(z[:, self.macro_dim:])
        return xM + (var / vm) * xm, var
