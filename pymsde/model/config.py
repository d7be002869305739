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

from pymsde.model.drift import LatentSizes
from pymsde.model.mlp import ACTIVATIONS
from pymsde.numerics.padding import check_padding
from pymsde.util.errors import ConfigError, DataError
from pymsde.util.options import from_mapping, option

#: ModelConfig fields that come from the data (the grid, channels, mu and f), not from the user
DATA_FIELDS = ("fine_shape", "channels", "boundary", "domain", "n_mu", "n_f")


def softplus(x: float) -> float:
    """``log(1 + exp(x))`` for a Python float."""
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


#: Memory layouts of the micro CNNs' convolutions (:attr:`ModelConfig.conv_memory_format`)
CONV_MEMORY_FORMATS = ("contiguous", "channels_last")

#: The reference initial variances: softplus(-4) for encoder and decoder variances.
_VAR_INIT = softplus(-4.0)


@dataclass(frozen=True)
class ModelConfig(LatentSizes):
    """Architecture and initialisation of :class:`pymsde.model.MultiscaleModel`.

    Attributes:
        fine_shape: fine grid points per axis, e.g. ``(1000,)`` or ``(128, 128)``.
        channels: field channels ``C``.
        coarse_shape: coarse cells per axis; must divide ``fine_shape`` (factor ``s`` per axis).
        boundary: ``"periodic"``, ``"dirichlet"``, ``"outflow"`` or ``"slip"`` per axis: how the
            drift's stencil pads the coarse field (:mod:`pymsde.numerics.padding`); the encoder
            and decoder wrap a periodic axis and repeat the edge of any other.
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
        conv_memory_format: ``"contiguous"`` (default) or ``"channels_last"``: the layout in
            which the 2-D micro encoder and decoder run their convolutions. The same function
            and parameters; ``channels_last`` is faster on CPU (docs/cost_2d.md) but rounds
            differently. 2-D grids only.
        positional_inputs: append ``cos, sin (2 pi i_a / n_a)`` of the coarse cell's index per
            axis to the macroscale drift's input (the final paper's cylinder drift; off by
            default, and a saved config without the field reads as off).
        drift_linear: add the linear stencil term ``(W_0 + sum_k mu_k W_k) s`` to the
            macroscale drift (:mod:`pymsde.model.drift`; off by default, and a saved config
            without the field reads as off; on for your own data, docs/own_data.md).
    """

    fine_shape: tuple[int, ...]
    channels: int
    coarse_shape: tuple[int, ...] = option(help="coarse cells per axis, e.g. 20 (1-D) or 8 8 (2-D); each must "
                                           "divide the fine grid", flag="--coarse", type=int, nargs="+")
    boundary: tuple[str, ...] = ()
    domain: tuple[tuple[float, float], ...] = ()
    micro_dim: int = option(5, "microscale dimension d_m (0: the closure model)", flag="--micro")
    stencil_radius: int = option(2, "stencil radius of the macroscale drift, in coarse cells", flag="--radius")
    drift_hidden: tuple[int, ...] = option((128, 128), "hidden widths of the macroscale drift MLP", type=int,
                                           nargs="+")
    micro_hidden: tuple[int, ...] = option((128, 128), "hidden widths of the microscale drift MLP", type=int,
                                           nargs="+")
    activation: str = option("relu", "activation of the drift MLPs", choices=tuple(sorted(ACTIVATIONS)))
    encoder_channels: tuple[int, ...] = option((), "channels of the microscale encoder CNN (empty: 8 16 32 in "
                                               "1-D, 4 16 64 in 2-D)", type=int, nargs="+")
    encoder_kernel: int = option(0, "kernel size of the encoder CNN, odd (0: 9 in 1-D, 5 in 2-D)", cli=False)
    encoder_activation: str = option("relu", "activation inside the encoder/decoder CNNs", cli=False,
                                     choices=tuple(sorted(ACTIVATIONS)))
    n_mu: int = 0
    n_f: int = 0
    kernel_n_sigma: float = option(3.0, "half-width of the coarse-graining kernel in standard deviations",
                                   cli=False)
    kernel_std: tuple[float, ...] = option((), "initial kernel std in fine cells per axis (empty: s)", type=float,
                                           cli=False)
    encoder_var_init: float = option(_VAR_INIT, "initial encoder variance", cli=False)
    decoder_var_init: float = option(_VAR_INIT, "initial decoder expert variances", cli=False)
    diffusion_init: float = option(softplus(1.0), "initial sigma per latent dimension", cli=False)
    diffusion_depends_on_mu: bool = option(False, "sigma = softplus(raw + A mu) with a learnable A", cli=False)
    gp_hidden: tuple[int, ...] = option((32, 32), "hidden widths of the GP time-warp MLP", type=int, cli=False)
    gp_amplitude_init: float = option(1.0, "initial GP kernel amplitude", cli=False)
    gp_length_init: float = option(0.1, "initial GP length scale above its floor (window = [-1, 1])", cli=False)
    gp_noise_init: float = option(1e-2, "initial GP noise variance", cli=False)
    conv_memory_format: str = option("contiguous", "memory layout of the 2-D micro encoder/decoder convolutions "
                                     "(channels_last: faster on CPU, other round-off)",
                                     choices=CONV_MEMORY_FORMATS)
    positional_inputs: bool = option(False, "append sin/cos of the coarse-cell index per axis to the macroscale "
                                     "drift's input (the final paper's cylinder)", cli=False)
    drift_linear: bool = option(False, "add a linear stencil term, its coefficients affine in mu, to the "
                                "macroscale drift", cli=False)

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
            for name in ("diffusion_depends_on_mu", "positional_inputs", "drift_linear"):
                object.__setattr__(self, name, bool(getattr(self, name)))
            object.__setattr__(self, "conv_memory_format", str(self.conv_memory_format))
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
        try:                                     # the drift's stencil pads the coarse field
            check_padding([self.stencil_radius] * nd, (self.channels, *self.coarse_shape), self.boundary)
        except ConfigError as exc:
            raise ConfigError(f"model config: {exc}") from None
        if self.encoder_kernel % 2 == 0:
            raise ConfigError(f"model config: encoder_kernel = {self.encoder_kernel}; expected an odd size "
                              f"(or 0 for the default)")
        for name in ("drift_hidden", "micro_hidden", "encoder_channels", "gp_hidden"):
            vals = getattr(self, name)
            if any(v <= 0 for v in vals):
                raise ConfigError(f"model config: {name} = {list(vals)}; expected positive widths")
        if self.conv_memory_format not in CONV_MEMORY_FORMATS:
            raise ConfigError(f"model config: conv_memory_format = {self.conv_memory_format!r}; expected one of "
                              f"{list(CONV_MEMORY_FORMATS)}")
        if self.conv_memory_format == "channels_last" and nd != 2:
            raise ConfigError("model config: conv_memory_format = 'channels_last' needs a 2-D grid; "
                              f"this one has {nd} axis")
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

    @classmethod
    def for_grid(cls, grid, *, channels: int = 1, n_mu: int = 0, n_f: int = 0, source: str = "model options",
                 **architecture: Any) -> "ModelConfig":
        """The config of a model for a data set on ``grid``: the data fields from the data, the
        architecture fields from ``architecture`` (field names; defaults for the rest).

        ``coarse_shape`` is required; an int means the same count on every axis.

        Raises:
            ConfigError: no or a non-dividing coarse grid, an unknown field, a value of the
                wrong type (named with ``source``), or an impossible size.
        """
        arch = dict(architecture)
        coarse = arch.get("coarse_shape")
        if coarse is None or (isinstance(coarse, (list, tuple)) and not coarse):
            raise ConfigError(f"{source}: no coarse grid given; expected e.g. coarse_shape = [20] (--coarse 20)")
        if isinstance(coarse, int) and not isinstance(coarse, bool):
            arch["coarse_shape"] = (coarse,) * grid.ndim
        return from_mapping(cls, arch, source, "model", fine_shape=grid.shape, channels=channels,
                            boundary=grid.boundary, domain=grid.domain, n_mu=n_mu, n_f=n_f)

    def architecture(self) -> dict[str, Any]:
        """The fields a user chooses (everything but :data:`DATA_FIELDS`), as :meth:`to_dict` writes them:
        the ``[model]`` table of a run's ``config.toml``."""
        return {k: v for k, v in self.to_dict().items() if k not in DATA_FIELDS}


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
