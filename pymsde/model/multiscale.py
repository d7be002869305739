"""``MultiscaleModel``: the stochastic multiscale model of docs/method.md sections 2-5 in one module.

Latent vectors are flat, ``z = concat(zM.flatten(1), zm)``: ``zM`` of shape
``(B, C, *coarse_shape)`` (one value per channel and coarse cell) and ``zm`` of shape
``(B, micro_dim)``. The closure model is the same class with ``micro_dim = 0``: it has no
micro encoder, micro decoder, micro variance or micro drift at all.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from pymsde.model.drift import DriftParams
from pymsde.model.config import ModelConfig
from pymsde.model.decoder import Decoder, MicroDecoder
from pymsde.model.diffusion import Diffusion
from pymsde.model.drift import MultiscaleDrift
from pymsde.model.encoder import Encoder, MicroEncoder
from pymsde.model.coarse_graining import CoarseGrainingKernel
from pymsde.model.posterior import GPPosterior


class MultiscaleModel(nn.Module):
    """Encoder, PoE decoder, prior drift and diffusion, and the GP posterior's parameters.

    Submodules: ``kernel`` (shared by ``encoder`` and ``decoder``), ``encoder``, ``decoder``,
    ``drift_net``, ``diffusion_net``, ``posterior`` (:class:`GPPosterior`).
    Parameters are created in the default dtype; use ``.double()`` / ``.to(...)`` as usual.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.config = c
        self.macro_dim = c.macro_dim
        self.micro_dim = c.micro_dim
        self.latent_dim = c.latent_dim
        self.coarse_shape = c.coarse_shape
        self.fine_shape = c.fine_shape
        self.channels = c.channels
        self.kernel = CoarseGrainingKernel(c.fine_shape, c.channels, c.factors, c.boundary,
                                           c.kernel_n_sigma, c.kernel_std or None)
        if c.micro_dim > 0:
            cl = c.conv_memory_format == "channels_last"
            micro_enc = MicroEncoder(c.fine_shape, c.channels, c.micro_dim, c.encoder_channels,
                                     c.encoder_kernel, c.boundary, c.encoder_activation, cl)
            micro_dec = MicroDecoder(c.fine_shape, c.channels, c.micro_dim, c.encoder_channels,
                                     c.encoder_kernel, c.encoder_activation, cl)
        else:
            micro_enc = micro_dec = None
        self.encoder = Encoder(self.kernel, micro_enc, c.latent_dim, c.encoder_var_init)
        self.decoder = Decoder(self.kernel, micro_dec, c.macro_dim, c.decoder_var_init)
        self.drift_net = MultiscaleDrift(c.coarse_shape, c.channels, c.micro_dim, c.stencil_radius,
                                         c.boundary, c.drift_hidden, c.micro_hidden, c.activation,
                                         c.n_mu, c.n_f, c.positional_inputs, c.drift_linear)
        self.diffusion_net = Diffusion(c.latent_dim, c.diffusion_init, c.n_mu, c.diffusion_depends_on_mu)
        self.posterior = GPPosterior(c.gp_hidden, c.gp_amplitude_init, c.gp_length_init, c.gp_noise_init)

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def build(cls, grid, coarse_shape: int | Sequence[int], micro_dim: int = 5, stencil_radius: int = 2,
              channels: int = 1, n_mu: int = 0, n_f: int = 0, **overrides: Any) -> "MultiscaleModel":
        """A model for a data set's grid.

        Args:
            grid: :class:`pymsde.data.grid.Grid` of the fine field.
            coarse_shape: coarse cells per axis (an int is used for every axis).
            micro_dim, stencil_radius, channels, n_mu, n_f: see :class:`ModelConfig`.
            **overrides: any other :class:`ModelConfig` field (hidden sizes, initial values...).

        Raises:
            ConfigError: the coarse grid does not divide the fine grid, a size is negative,
                or an override names no config field.
        """
        return cls(ModelConfig.for_grid(grid, channels=channels, n_mu=n_mu, n_f=n_f, coarse_shape=coarse_shape,
                                        micro_dim=micro_dim, stencil_radius=stencil_radius, source="MultiscaleModel.build",
                                        **overrides))

    @classmethod
    def from_config(cls, config: ModelConfig | dict) -> "MultiscaleModel":
        """Rebuild from a :class:`ModelConfig` or its ``to_dict()`` form."""
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_dict(config)
        return cls(config)

    # -- latent layout -----------------------------------------------------------------------------
    def split_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D) -> (zM (B, C, *coarse), zm (B, micro_dim))`` (views)."""
        zM = z[:, :self.macro_dim].reshape(z.shape[0], self.channels, *self.coarse_shape)
        return zM, z[:, self.macro_dim:]

    def join_latent(self, zM: torch.Tensor, zm: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split_latent`: ``(B, D)``."""
        return torch.cat([zM.flatten(1), zm], dim=1)

    # -- the model ---------------------------------------------------------------------------------
    def encode(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``u (B, C, *fine) -> (mean (B, D), logvar (B, D))``."""
        return self.encoder(u)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z (B, D) -> (mean (B, C, *fine), var (C, *fine))``; ``var`` broadcasts to ``mean``."""
        return self.decoder(z)

    def drift(self, t: torch.Tensor | float, z: torch.Tensor, mu: torch.Tensor | None = None,
              f: torch.Tensor | None = None) -> torch.Tensor:
        """Prior drift ``g``: ``t`` scalar or ``(B,)``, ``z (B, D)``, ``mu (B, n_mu)``,
        ``f (B, n_f)`` -> ``(B, D)``."""
        return self.drift_net(t, z, mu, f)

    def diffusion(self, mu: torch.Tensor | None = None) -> torch.Tensor:
        """``sigma``: ``(D,)``, or ``(B, D)`` if it depends on ``mu`` and ``mu (B, n_mu)`` is given."""
        return self.diffusion_net(mu)

    def drift_params(self) -> DriftParams:
        """The drift's live parameters as plain tensors (``.detach()`` them for rollouts)."""
        return self.drift_net.params()
