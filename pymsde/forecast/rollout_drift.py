"""The multiscale drift evaluated for a rollout: same numbers as
:func:`pymsde.kernels.multiscale.multiscale_drift`, with its large temporaries allocated once.

Why: in a rollout the drift runs thousands of times on the same shapes. Its big
intermediates are the hidden activations of the shared cell MLP, ``(B n_cells, H)`` each
(256 members x 20 cells x 128 = 2.6 MB in float32). Allocating fresh ones at every call
costs page faults and extra memory passes comparable to the matmuls themselves (the
per-call times of both evaluators are printed by ``benchmarks/bench_rollout.py``;
numbers in ``docs/forecasting.md``).

What it does differently (the maths is unchanged; ``tests/test_forecast.py`` checks equality
with ``multiscale_drift`` to rounding in float64, 1-D and 2-D, every activation):

- weights pre-transposed and contiguous once, so every layer is one ``addmm`` into a
  preallocated buffer, followed by an in-place activation (relu, tanh, silu);
- the first layer's per-sample part (``[zm, mu, f]`` columns) once per member, broadcast
  over cells, as the kernel does.

Use only under ``torch.no_grad()`` (rollouts): buffers are overwritten at the next call. The
returned drift tensor is fresh at every call (schemes keep several drift values alive).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from pymsde.kernels.mlp import activation_fn
from pymsde.kernels.multiscale import DriftParams
from pymsde.kernels.padding import gather_stencil

_INPLACE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "silu": lambda x: F.silu(x, inplace=True),
}


def _time_features(t: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor:
    """``[sin t, cos t]`` as ``(B, 2)`` (as the kernel builds them)."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1, 1).expand(batch, 1)
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class RolloutDrift:
    """``drift(t, z, mu=None, f=None) -> (B, D)`` for a fixed batch size, dtype and device.

    Args:
        params: the drift's weights (detached; e.g. ``model.drift_params().detach()``).
        batch: ``B``, the number of rows of every ``z`` it will be called with.

    Raises:
        ValueError: ``z`` with another batch size, or mu/f missing (as the kernel).
    """

    def __init__(self, params: DriftParams, batch: int):
        p = params.detach()
        self.p = p
        self.batch = int(batch)
        ref = p.macro_weights[0]
        dtype, device = ref.dtype, ref.device
        s = p.stencil_size
        w0 = p.macro_weights[0]
        self.w0_stencil = w0[:, :s].t().contiguous()                 # (S, H0)
        self.w0_global = w0[:, s:].t().contiguous() if w0.shape[1] > s else None   # (G, H0)
        self.b0 = p.macro_biases[0]
        self.macro_rest = [(w.t().contiguous(), b) for w, b in zip(p.macro_weights[1:], p.macro_biases[1:])]
        self.micro = [(w.t().contiguous(), b) for w, b in zip(p.micro_weights, p.micro_biases)]
        rows = self.batch * p.n_cells
        # hidden buffers of the cell MLP: one per hidden layer (all layers but the last)
        widths = [w.shape[0] for w in p.macro_weights[:-1]]
        self.hidden = [torch.empty(rows, h, dtype=dtype, device=device) for h in widths]
        self.act_inplace = _INPLACE.get(p.activation)
        self.act = activation_fn(p.activation)

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_inplace is not None:
            return self.act_inplace(x)
        return x.copy_(self.act(x))

    def __call__(self, t: torch.Tensor | float, z: torch.Tensor, mu: torch.Tensor | None = None,
                 f: torch.Tensor | None = None) -> torch.Tensor:
        p = self.p
        B = z.shape[0]
        if B != self.batch:
            raise ValueError(f"RolloutDrift: built for batch {self.batch}, called with {B}")
        zM = z[:, :p.macro_dim]
        zm = z[:, p.macro_dim:]
        extras = []
        if p.n_mu:
            if mu is None:
                raise ValueError(f"RolloutDrift: the model takes n_mu = {p.n_mu} parameters but mu is None")
            extras.append(mu)
        if p.n_f:
            if f is None:
                raise ValueError(f"RolloutDrift: the model takes n_f = {p.n_f} forcing values but f is None")
            extras.append(f)
        stencil = gather_stencil(zM.reshape(B, p.channels, *p.coarse_shape), p.radius, p.boundary)
        rows = stencil.reshape(B * p.n_cells, p.stencil_size)
        h = self.hidden[0] if self.hidden else None
        glob = ([zm] if p.micro_dim else []) + extras
        if glob:
            g = torch.cat(glob, dim=1) if len(glob) > 1 else glob[0]
            per_sample = torch.addmm(self.b0, g, self.w0_global)            # (B, H0)
            if h is None:   # single-layer h: no hidden buffer, small output
                h = rows @ self.w0_stencil
            else:
                torch.mm(rows, self.w0_stencil, out=h)
            h.view(B, p.n_cells, -1).add_(per_sample.unsqueeze(1))
        else:
            if h is None:
                h = torch.addmm(self.b0, rows, self.w0_stencil)
            else:
                torch.addmm(self.b0, rows, self.w0_stencil, out=h)
        for k, (wt, b) in enumerate(self.macro_rest):
            self._activate(h)
            if k + 1 < len(self.macro_rest):
                nxt = self.hidden[k + 1]
                torch.addmm(b, h, wt, out=nxt)
                h = nxt
            else:
                h = torch.addmm(b, h, wt)                                    # (B n_cells, C), small
        gM = h.view(B, p.n_cells, p.channels).transpose(1, 2).reshape(B, p.macro_dim)
        if not p.micro_dim:
            return gM
        x = torch.cat([zm, zM, _time_features(t, B, z)] + extras, dim=1)
        n = len(self.micro)
        for k, (wt, b) in enumerate(self.micro):
            x = torch.addmm(b, x, wt)
            if k < n - 1:
                x = self._activate(x)
        return torch.cat([gM, x], dim=1)
