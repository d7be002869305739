"""The diagonal diffusion ``sigma`` of the prior SDE: positive, constant in time.

``sigma = softplus(raw)`` per latent dimension; optionally ``softplus(raw + A mu)`` with a
learnable ``(D, n_mu)`` matrix ``A`` (initialised to zero, so it starts mu-independent).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pymsde.model.encoder import inverse_softplus


class Diffusion(nn.Module):
    """``sigma(mu)``: ``(D,)``, or ``(B, D)`` when it depends on ``mu`` and ``mu`` is given.

    Args:
        latent_dim: ``D``.
        init: initial ``sigma`` (all dimensions).
        n_mu: number of parameters; with ``depends_on_mu`` a linear map of ``mu`` is added.
    """

    def __init__(self, latent_dim: int, init: float, n_mu: int = 0, depends_on_mu: bool = False):
        super().__init__()
        self.raw = nn.Parameter(torch.full((latent_dim,), inverse_softplus(init)))
        if depends_on_mu and n_mu > 0:
            self.mu_map = nn.Parameter(torch.zeros(latent_dim, n_mu))
        else:
            self.register_parameter("mu_map", None)

    def forward(self, mu: torch.Tensor | None = None) -> torch.Tensor:
        if self.mu_map is None or mu is None:
            return F.softplus(self.raw)
        return F.softplus(self.raw + mu @ self.mu_map.t())
