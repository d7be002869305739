"""The amortized encoder ``q(z | u) = N(m(u), diag(v))`` (docs/method.md section 3).

- macroscale mean ``mM = K * u + b`` (the shared :class:`CoarseGrainingKernel`, stride ``s``);
- microscale mean ``mm = E(u - K_smooth * u)``: :class:`MicroEncoder`, a small CNN of
  stride-2 convolutions (boundary-aware padding) followed by a linear map to ``d_m``;
- variance ``v = softplus(raw)``, one learnable number per latent dimension.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pymsde.model.mlp import activation_fn
from pymsde.numerics.padding import pad_axis
from pymsde.model.coarse_graining import CoarseGrainingKernel
from pymsde.util.errors import ConfigError



def inverse_softplus(y: float) -> float:
    """``x`` with ``softplus(x) = y`` (``y > 0``)."""
    return y + math.log(-math.expm1(-y))


def conv_sizes(fine_shape: Sequence[int], n_layers: int) -> list[tuple[int, ...]]:
    """Spatial sizes after each stride-2 layer (odd kernel, half-kernel padding): ``ceil(n/2)``."""
    sizes = [tuple(fine_shape)]
    for _ in range(n_layers):
        sizes.append(tuple(-(-n // 2) for n in sizes[-1]))
    return sizes


class MicroEncoder(nn.Module):
    """``E``: ``(B, C, *fine)`` fluctuation -> ``(B, d_m)``.

    Each layer pads every axis by ``k // 2`` (periodic wrap or edge repeat), convolves with
    stride 2 and applies the activation; a final linear layer maps the flattened features
    to ``d_m``. Weights: Xavier-normal, zero biases. ``channels_last`` (2-D only) runs the
    convolutions on channels-last copies of the padded maps: the same function, other round-off.
    """

    def __init__(self, fine_shape: Sequence[int], channels: int, micro_dim: int,
                 hidden_channels: Sequence[int], kernel_size: int, boundary: Sequence[str],
                 activation: str = "relu", channels_last: bool = False):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(f"micro encoder: kernel size {kernel_size}; expected an odd number")
        self.ndim = len(fine_shape)
        self.periodic = tuple(b == "periodic" for b in boundary)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.channels_last = bool(channels_last) and self.ndim == 2
        conv_cls = {1: nn.Conv1d, 2: nn.Conv2d}[self.ndim]
        widths = [channels, *hidden_channels]
        self.convs = nn.ModuleList(conv_cls(i, o, kernel_size, stride=2) for i, o in zip(widths[:-1], widths[1:]))
        self.out_sizes = conv_sizes(fine_shape, len(hidden_channels))[-1]
        self.linear = nn.Linear(widths[-1] * math.prod(self.out_sizes), micro_dim)
        for layer in [*self.convs, self.linear]:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        act = activation_fn(self.activation)
        h = self.kernel_size // 2
        x = r
        for conv in self.convs:
            for a in range(self.ndim):
                x = pad_axis(x, 2 + a, h, h, self.periodic[a])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = act(conv(x))
        return self.linear(x.flatten(1))


class Encoder(nn.Module):
    """``u (B, C, *fine) -> (mean (B, D), logvar (B, D))`` with ``D = C n_cells + d_m``.

    Args:
        kernel: the coarse-graining kernel (shared with the decoder).
        micro: the micro encoder, or None for ``d_m = 0``.
        latent_dim: ``D``.
        var_init: initial variance ``v`` (all dimensions).
    """

    def __init__(self, kernel: CoarseGrainingKernel, micro: MicroEncoder | None, latent_dim: int,
                 var_init: float):
        super().__init__()
        self.kernel = kernel
        self.micro = micro
        self.raw_var = nn.Parameter(torch.full((latent_dim,), inverse_softplus(var_init)))

    def variance(self) -> torch.Tensor:
        """``v``: ``(D,)`` positive."""
        return F.softplus(self.raw_var)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = u.shape[0]
        mM = self.kernel.coarse(u).flatten(1)
        if self.micro is not None:
            mm = self.micro(u - self.kernel.smooth(u))
            mean = torch.cat([mM, mm], dim=1)
        else:
            mean = mM
        logvar = torch.log(self.variance()).expand(batch, -1)
        return mean, logvar
