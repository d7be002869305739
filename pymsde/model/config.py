"""The architecture of a multiscale model as one frozen, serialisable dataclass.

``ModelConfig.to_dict()`` holds only JSON/TOML-safe values (ints, floats, strings, lists)
and ``ModelConfig.from_dict`` inverts it exactly, so a saved run rebuilds its model without
the user re-stating the architecture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from pymsde.model.mlp import ACTIVATIONS
from pymsde.model.drift import LatentSizes
from pymsde.util.errors import ConfigError, DataError


def softplus(x: float) -> float:
    """``log(1 + exp(x))`` for a Python float."""
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


#: The reference initial variances: softplus(-4) for encoder and decoder variances.
_VAR_INIT = softplus(-4.0)


@dataclass(frozen=True)
class ModelConfig(LatentSizes):
    """Architecture and initialisation of :class:`pymsde.model.MultiscaleModel`.

    Attributes:
        fine_shape: fine grid points per axis, e.g. ``(1000,)`` or ``(128, 128)``.
        channels: field channels ``C``.
        coarse_shape: coarse cells per axis; must divide ``fine_shape`` (factor ``s`` per axis).
        boundary: ``"periodic"`` or ``"dirichlet"`` per axis.
        domain: ``(lo, hi)`` per axis (metadata; the model works in grid units).
        micro_dim: microscale latent size ``d_m`` (0: the closure model).
        stencil_radius: radius ``r`` of the macroscale drift stencil, in coarse cells.
        drift_hidden: hidden widths of the shared per-cell macroscale MLP ``h``.
        micro_hidden: hidden widths of the microscale drift MLP ``q``.
        activation: activation of both drift MLPs.
        encoder_channels: channels of the micro encoder's strided convolutions (the micro
            decoder mirrors them); empty picks ``(8, 16, 32)`` in 1-D, ``(4, 16, 64)`` in 2-D
            (resolved at construction, so saved configs hold the explicit value).
        encoder_kernel: kernel size (per axis, odd) of those convolutions; 0 picks 9 in 1-D,
            5 in 2-D (resolved likewise).
        encoder_activation: activation inside the micro encoder/decoder CNNs.
        n_mu, n_f: number of parameters ``mu`` and forcing values ``f``.
        kernel_n_sigma: half-width of the coarse-graining kernel in standard deviations.
        kernel_std: initial kernel standard deviation in fine cells per axis (empty: ``s``).
        encoder_var_init: initial encoder variance ``v`` (per latent dimension).
        decoder_var_init: initial decoder expert variances ``vM`` and ``vm`` (per fine point).
        diffusion_init: initial ``sigma`` per latent dimension.
        diffusion_depends_on_mu: ``sigma = softplus(raw + A mu)`` with a learnable ``A``
            (initialised to zero) when ``n_mu > 0``.
        gp_hidden: hidden widths of the GP posterior's time-warp MLP (tanh).
        gp_amplitude_init: initial GP kernel amplitude ``a``.
        gp_length_init: initial GP length scale ``L`` above its floor, in rescaled time
            ``t~`` (the window spans ``[-1, 1]``); the floor is one window step.
        gp_noise_init: initial GP noise variance ``n``.
    """

    fine_shape: tuple[int, ...]
    channels: int
    coarse_shape: tuple[int, ...]
    boundary: tuple[str, ...]
    domain: tuple[tuple[float, float], ...]
    micro_dim: int = 5
    stencil_radius: int = 2
    drift_hidden: tuple[int, ...] = (128, 128)
    micro_hidden: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    encoder_channels: tuple[int, ...] = ()
    encoder_kernel: int = 0
    encoder_activation: str = "relu"
    n_mu: int = 0
    n_f: int = 0
    kernel_n_sigma: float = 3.0
    kernel_std: tuple[float, ...] = ()
    encoder_var_init: float = _VAR_INIT
    decoder_var_init: float = _VAR_INIT
    diffusion_init: float = softplus(1.0)
    diffusion_depends_on_mu: bool = False
    gp_hidden: tuple[int, ...] = (32, 32)
    gp_amplitude_init: float = 1.0
    gp_length_init: float = 0.1
    gp_noise_init: float = 1e-2

    def __post_init__(self) -> None:
        tup = lambda v, cast: tuple(cast(x) for x in v)  # noqa: E731
        try:
            object.__setattr__(self, "fine_shape", tup(self.fine_shape, int))
            object.__setattr__(self, "coarse_shape", tup(self.coarse_shape, int))
            object.__setattr__(self, "boundary", tup(self.boundary, str))
            object.__setattr__(self, "domain", tuple((float(lo), float(hi)) for lo, hi in self.domain))
            for name in ("drift_hidden", "micro_hidden", "encoder_channels", "gp_hidden"):
                object.__setattr__(self, name, tup(getattr(self, name), int))
            object.__setattr__(self, "kernel_std", tup(self.kernel_std, float))
            for name in ("channels", "micro_dim", "stencil_radius", "encoder_kernel", "n_mu", "n_f"):
                object.__setattr__(self, name, int(getattr(self, name)))
            for name in ("kernel_n_sigma", "encoder_var_init", "decoder_var_init", "diffusion_init",
                         "gp_amplitude_init", "gp_length_init", "gp_noise_init"):
                object.__setattr__(self, name, float(getattr(self, name)))
            object.__setattr__(self, "diffusion_depends_on_mu", bool(self.diffusion_depends_on_mu))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model config: a field has the wrong type ({exc})") from None
        # dimension-dependent defaults, made explicit so that to_dict() records them
        one_d = len(self.fine_shape) == 1
        if not self.encoder_channels:
            object.__setattr__(self, "encoder_channels", (8, 16, 32) if one_d else (4, 16, 64))
        if self.encoder_kernel == 0:
            object.__setattr__(self, "encoder_kernel", 9 if one_d else 5)
        self.validate()

    # -- checks -------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first impossible field."""
        from pymsde.data.grid import Grid       # data is above model in the layer order

        nd = len(self.fine_shape)
        if nd not in (1, 2):
            raise ConfigError(f"model config: fine_shape {self.fine_shape} has {nd} axes; expected 1 or 2")
        for name in ("boundary", "domain", "coarse_shape"):
            if len(getattr(self, name)) != nd:
                raise ConfigError(f"model config: {name} has {len(getattr(self, name))} entries; "
                                  f"expected one per axis ({nd})")
        try:
            Grid(self.fine_shape, self.domain, self.boundary).coarsening_factors(self.coarse_shape)
        except ConfigError:
            raise
        except ValueError as exc:                # DataError from Grid: a bad fine grid
            raise ConfigError(f"model config: {exc}") from None
        if self.channels <= 0:
            raise ConfigError(f"model config: channels = {self.channels}; expected a positive number")
        for name in ("micro_dim", "stencil_radius", "encoder_kernel", "n_mu", "n_f"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model config: {name} = {getattr(self, name)}; expected >= 0")
        for n, bc in zip(self.coarse_shape, self.boundary):
            if bc == "periodic" and self.stencil_radius > n:
                raise ConfigError(f"model config: stencil_radius = {self.stencil_radius} is wider than the periodic "
                                  f"coarse axis of {n} cells; expected stencil_radius <= {n}")
        if self.encoder_kernel % 2 == 0:
            raise ConfigError(f"model config: encoder_kernel = {self.encoder_kernel}; expected an odd size "
                              f"(or 0 for the default)")
        for name in ("drift_hidden", "micro_hidden", "encoder_channels", "gp_hidden"):
            vals = getattr(self, name)
            if any(v <= 0 for v in vals):
                raise ConfigError(f"model config: {name} = {list(vals)}; expected positive widths")
        for name in ("activation", "encoder_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ConfigError(f"model config: {name} = {getattr(self, name)!r}; expected one of {sorted(ACTIVATIONS)}")
        if self.kernel_std and len(self.kernel_std) != nd:
            raise ConfigError(f"model config: kernel_std has {len(self.kernel_std)} entries; expected {nd} or none")
        for name in ("kernel_n_sigma", "encoder_var_init", "decoder_var_init", "diffusion_init",
                     "gp_amplitude_init", "gp_length_init", "gp_noise_init"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"model config: {name} = {v}; expected a finite positive number")
        if any(not (math.isfinite(v) and v > 0) for v in self.kernel_std):
            raise ConfigError(f"model config: kernel_std = {list(self.kernel_std)}; expected positive numbers")

    # -- derived sizes --------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.fine_shape)

    @property
    def factors(self) -> tuple[int, ...]:
        """Coarsening factor ``s`` per axis."""
        return tuple(n // c for n, c in zip(self.fine_shape, self.coarse_shape))

    @property
    def conv_kernel(self) -> int:
        """The micro CNN kernel size (``encoder_kernel`` after default resolution)."""
        return self.encoder_kernel

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of ints, floats, strings, bools and (nested) lists."""
        out: dict[str, Any] = {}
        for fld in fields(self):
            v = getattr(self, fld.name)
            if isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[fld.name] = v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError naming them."""
        names = {fld.name for fld in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"model config: unknown field(s) {unknown}; expected a subset of {sorted(names)}")
        missing = sorted(n for n in ("fine_shape", "channels", "coarse_shape", "boundary", "domain") if n not in d)
        if missing:
            raise ConfigError(f"model config: missing field(s) {missing}")
        return cls(**dict(d))


def check_data_fits(config, traj, data_name: str = "evaluation data", run_name: str = "the run") -> None:
    """Raise DataError unless ``traj`` lives on the grid (and channels, mu, f) ``config`` was built for.

    The one data/model compatibility check (training, resuming, evaluation, baselines).

    Args:
        config: a ``ModelConfig`` (``fine_shape``, ``channels``, ``boundary``, ``domain``,
            ``n_mu``, ``n_f``).
        traj: the ``Trajectories`` to check.
        data_name, run_name: name the two sides in the message.
    """
    grid = traj.grid
    want_shape = tuple(int(n) for n in config.fine_shape)
    if tuple(grid.shape) != want_shape:
        raise DataError(f"{data_name}: grid {tuple(grid.shape)} differs from the training grid {want_shape} of "
                        f"{run_name}; use data on that grid (e.g. simulate with --n-grid "
                        f"{' '.join(map(str, want_shape))})")
    if tuple(grid.boundary) != tuple(config.boundary):
        raise DataError(f"{data_name}: boundary {tuple(grid.boundary)} differs from the training boundary "
                        f"{tuple(config.boundary)} of {run_name}")
    want_domain = np.asarray(config.domain, dtype=float).reshape(-1, 2)
    if not np.allclose(np.asarray(grid.domain, dtype=float), want_domain, rtol=1e-9, atol=1e-12):
        raise DataError(f"{data_name}: domain {[list(d) for d in grid.domain]} differs from the training domain "
                        f"{want_domain.tolist()} of {run_name}")
    if traj.channels != int(config.channels):
        raise DataError(f"{data_name}: {traj.channels} channels; {run_name} was built for {config.channels}")
    for what, have, want in (("mu", traj.n_mu, getattr(config, "n_mu", 0)), ("f", traj.n_f, getattr(config, "n_f", 0))):
        if int(have) != int(want):
            raise DataError(f"{data_name}: {have} {what} values per trajectory; {run_name} was built for {want}")
