"""A torchsde view of the learned latent SDE, so torchsde users can call ``torchsde.sdeint``::

    import torchsde
    sde = LatentSDE(model, mu=mu, forcing=(t_data, f_data))
    zs = torchsde.sdeint(sde, z0, ts, method="euler", dt=1e-3)     # (len(ts), B, D)

``f(t, y)`` is the model's prior drift ``model.drift(t, y, mu, f(t))`` and ``g(t, y)`` its
diagonal diffusion ``sigma(mu)`` broadcast to ``y``'s shape (``noise_type = "diagonal"``,
``sde_type = "ito"``). torchsde itself is an optional dependency: this module never imports
it (the object only has to look like a torchsde SDE).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from pymsde.sde.forcing import LinearForcing
from pymsde.util.errors import ConfigError


def _batch_rows(x: torch.Tensor | None, batch: int, name: str) -> torch.Tensor | None:
    """``(n,)`` or ``(1, n)`` -> ``(batch, n)`` (a broadcast view); ``(batch, n)`` as is."""
    if x is None:
        return None
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.shape[0] == batch:
        return x
    if x.shape[0] == 1:
        return x.expand(batch, x.shape[1])
    raise ConfigError(f"LatentSDE: {name} has {x.shape[0]} rows but the state batch is {batch}")


class LatentSDE(nn.Module):
    """The prior SDE of a :class:`~pymsde.model.MultiscaleModel` as a torchsde SDE.

    Args:
        model: anything with ``drift(t, z, mu, f) -> (B, D)`` and ``diffusion(mu) -> (D,)``
            or ``(B, D)`` (the MultiscaleModel contract).
        mu: ``(n_mu,)`` shared or ``(B, n_mu)`` per member; None when the model has none.
        forcing: None; a :class:`~pymsde.sde.forcing.LinearForcing`; a pair
            ``(times (n_t,), values (n_t, n_f) or (B, n_t, n_f))`` linearly interpolated
            in time (vectorised); or a callable ``t -> (n_f,) or (B, n_f)``.

    The model's parameters stay live (autograd flows through ``f`` and ``g``), so the view
    also serves adjoint or pathwise-gradient use; wrap calls in ``torch.no_grad()`` for
    plain forecasting.
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, model: nn.Module, mu: Any = None,
                 forcing: LinearForcing | tuple | Callable | None = None):
        super().__init__()
        self.model = model
        ref = next(model.parameters(), None)
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        device = ref.device if ref is not None else None
        self.mu = None if mu is None else torch.as_tensor(mu, dtype=dtype, device=device)
        if isinstance(forcing, tuple):
            forcing = LinearForcing.from_samples(forcing[0], forcing[1], dtype=dtype, device=device)
        self.forcing = forcing

    def _mu(self, batch: int) -> torch.Tensor | None:
        return _batch_rows(self.mu, batch, "mu")

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Drift ``(B, D)`` at time ``t`` (0-dim tensor) and state ``y`` ``(B, D)``."""
        batch = y.shape[0]
        forcing = None if self.forcing is None else _batch_rows(self.forcing(t), batch, "forcing")
        return self.model.drift(t, y, self._mu(batch), forcing)

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Diagonal diffusion ``(B, D)`` (constant in time and state)."""
        sigma = self.model.diffusion(self._mu(y.shape[0]))
        return sigma.expand_as(y)
