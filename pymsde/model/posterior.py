"""The amortized variational posterior over latent paths (docs/method.md section 5).

The encoded means ``m_k`` and log-variances ``l_k`` at a window's times ``T_1 .. T_M`` are
interpolated in time by a Gaussian process with the learnable kernel

    k(t, t') = a exp(-(w(t~) - w(t~'))^2 / (2 L^2)),    w(t~) = t~ + MLP(t~),

``t~ = 2 (t - T_1) / (T_M - T_1) - 1`` (the window spans ``[-1, 1]``), ``MLP`` a small tanh
network whose last layer starts at zero (so ``w`` starts as the identity). With
``Kw = k(T, T) + n I``:

    m(t) = mbar + k(t, T) Kw^-1 ([m_1 .. m_M] - mbar),   l(t) likewise,

where ``mbar`` is the window average (a constant GP mean function, so that the posterior
does not decay towards zero between or beyond the data). The time derivatives use the
closed form ``dk/dt = -k (w(t~) - w(T~)) / L^2 * w'(t~) * dt~/dt`` with ``w'`` by forward-mode
differentiation of the tanh MLP written out by hand (no autograd through ``t``).

The posterior process with marginals ``N(m(t), diag(exp l(t)))`` and the prior's diffusion
``sigma`` has the drift (:func:`posterior_drift`)

    f_q(z, t) = m'(t) - B(t) (z - m(t)),    B = 0.5 (sigma^2 / exp(l) - l').

Positive parameters are ``softplus`` of free ones: ``a``; ``L = L_floor + softplus(raw)``
with ``L_floor`` one window step (``2 / (M - 1)`` in ``t~`` units, fixed per window); and
``n = softplus(raw) + min_noise`` (the factorised matrix adds a round-off jitter
``M eps a``). Initial values (``ModelConfig``): ``a = 1``,
``L - L_floor = 0.1`` (about 6 steps of a 128-step window: a few steps, so the interpolant is
smooth but follows the data), ``n = 1e-2`` (the reference implementation's choices).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pymsde.model.mlp import init_mlp
from pymsde.model.encoder import inverse_softplus


def posterior_drift(z: torch.Tensor, m: torch.Tensor, l: torch.Tensor, dm_dt: torch.Tensor,
                    dl_dt: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``f_q = m' - B (z - m)``, ``B = 0.5 (sigma^2 exp(-l) - l')``; all broadcast to ``z``."""
    B = 0.5 * (sigma * sigma * torch.exp(-l) - dl_dt)
    return dm_dt - B * (z - m)


class GPPosterior(nn.Module):
    """Learnable GP kernel of the path posterior (a submodule of the model, so its
    parameters are trained and checkpointed with it).

    Args:
        hidden: hidden widths of the tanh warp MLP (empty: a linear warp).
        amplitude_init, length_init, noise_init: initial ``a``, ``L - L_floor``, ``n``.
        min_noise: floor added to ``n``.
    """

    def __init__(self, hidden: Sequence[int] = (32, 32), amplitude_init: float = 1.0,
                 length_init: float = 0.1, noise_init: float = 1e-2, min_noise: float = 1e-6):
        super().__init__()
        self.raw_amplitude = nn.Parameter(torch.tensor(inverse_softplus(amplitude_init)))
        self.raw_length = nn.Parameter(torch.tensor(inverse_softplus(length_init)))
        self.raw_noise = nn.Parameter(torch.tensor(inverse_softplus(noise_init)))
        self.min_noise = float(min_noise)
        w, b = init_mlp([1, *hidden, 1], zero_last=True)
        self.warp_weights = nn.ParameterList(nn.Parameter(x) for x in w)
        self.warp_biases = nn.ParameterList(nn.Parameter(x) for x in b)

    def amplitude(self) -> torch.Tensor:
        return F.softplus(self.raw_amplitude)

    def length(self, n_times: int) -> torch.Tensor:
        """``L`` in ``t~`` units for a window of ``n_times`` points (floor: one step)."""
        return F.softplus(self.raw_length) + 2.0 / max(n_times - 1, 1)

    def noise(self) -> torch.Tensor:
        return F.softplus(self.raw_noise) + self.min_noise

    def warp(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``w(s)`` and ``dw/ds`` for rescaled times ``s`` of any shape (same shape out)."""
        x = s.reshape(-1, 1)
        dx = torch.ones_like(x)
        n = len(self.warp_weights)
        for k, (W, b) in enumerate(zip(self.warp_weights, self.warp_biases)):
            x = torch.addmm(b, x, W.t())
            dx = dx @ W.t()
            if k < n - 1:
                x = torch.tanh(x)
                dx = (1.0 - x * x) * dx
        return s + x.view(s.shape), 1.0 + dx.view(s.shape)

    def kernel(self, s1: torch.Tensor, s2: torch.Tensor, n_times: int) -> torch.Tensor:
        """``k`` between rescaled times ``s1 (..., P)`` and ``s2 (..., Q)`` -> ``(..., P, Q)``."""
        w1, _ = self.warp(s1)
        w2, _ = self.warp(s2)
        d = w1.unsqueeze(-1) - w2.unsqueeze(-2)
        L = self.length(n_times)
        return self.amplitude() * torch.exp(-0.5 * (d / L) ** 2)

    def condition(self, T: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> "GPWindow":
        """Condition on one window (or a batch of windows).

        Args:
            T: ``(M,)`` or ``(W, M)`` increasing times.
            mean, logvar: ``(M, D)`` or ``(W, M, D)`` encoded values at ``T``.

        Returns:
            a :class:`GPWindow` to evaluate at query times. One Cholesky factorisation of
            ``Kw`` per window (``torch.linalg.cholesky_ex``: no host sync; a failed
            factorisation shows up as non-finite outputs).
        """
        M = T.shape[-1]
        t0 = T[..., :1]
        scale = 2.0 / (T[..., -1:] - t0)                       # dt~/dt
        s = (T - t0) * scale - 1.0
        wT, _ = self.warp(s)
        L = self.length(M)
        a = self.amplitude()
        d = wT.unsqueeze(-1) - wT.unsqueeze(-2)
        Kw = a * torch.exp(-0.5 * (d / L) ** 2)
        # noise plus a round-off jitter (M eps a: ~1.5e-5 a in float32 for M = 128, negligible
        # in float64) so that the factorisation of a smooth kernel cannot fail by round-off
        jitter = M * torch.finfo(Kw.dtype).eps * a
        Kw = Kw + (self.noise() + jitter) * torch.eye(M, dtype=Kw.dtype, device=Kw.device)
        chol, _ = torch.linalg.cholesky_ex(Kw)
        Y = torch.cat([mean, logvar], dim=-1)                  # (..., M, 2D)
        offset = Y.mean(dim=-2, keepdim=True)
        alpha = torch.cholesky_solve(Y - offset, chol)
        return GPWindow(self, t0, scale, wT, alpha, offset, a, L, mean.shape[-1])


@dataclass
class GPWindow:
    """A GP conditioned on one window (or a batch of windows); see :meth:`GPPosterior.condition`.

    Tensors keep a leading window axis when conditioned on ``(W, M)`` times.
    """

    gp: GPPosterior
    t0: torch.Tensor          # (..., 1) first time of the window
    scale: torch.Tensor       # (..., 1) dt~/dt
    wT: torch.Tensor          # (..., M) warped rescaled window times
    alpha: torch.Tensor       # (..., M, 2D) Kw^-1 (Y - offset)
    offset: torch.Tensor      # (..., 1, 2D) window averages of [means, logvars]
    amplitude: torch.Tensor
    length: torch.Tensor
    dim: int

    def evaluate(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior marginals and their time derivatives at query times.

        Args:
            t: ``(Q,)`` (or ``(W, Q)`` for a batch of windows), in the units of ``T``.

        Returns:
            ``m, l, dm_dt, dl_dt``, each ``(Q, D)`` (or ``(W, Q, D)``).
        """
        s = (t - self.t0) * self.scale - 1.0
        w, dw = self.gp.warp(s)
        d = w.unsqueeze(-1) - self.wT.unsqueeze(-2)            # (..., Q, M)
        k = self.amplitude * torch.exp(-0.5 * (d / self.length) ** 2)
        dk = k * (-d / self.length ** 2) * (dw * self.scale).unsqueeze(-1)
        y = k @ self.alpha + self.offset
        dy = dk @ self.alpha
        D = self.dim
        return y[..., :D], y[..., D:], dy[..., :D], dy[..., D:]

    def drift(self, z: torch.Tensor, t: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``f_q(z, t)``: ``z`` of shape ``(..., Q, D)`` at the times ``t (Q,)``; ``sigma``
        broadcastable to ``(Q, D)`` (e.g. ``(D,)``)."""
        m, l, dm, dl = self.evaluate(t)
        return posterior_drift(z, m, l, dm, dl, sigma)
