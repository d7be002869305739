"""The drift of the learned multiscale SDE as a pure function of plain tensors.

The latent state is flat, ``z = concat(zM.flatten(1), zm)`` with ``zM`` of shape
``(B, C, *coarse_shape)`` (channel slowest, row-major cells) and ``zm`` of shape
``(B, micro_dim)``. The drift ``g(t, z; mu, f)`` has two parts (docs/method.md section 2):

- macroscale, per coarse cell ``j`` and channel: ``g_M[:, j] = h([zM over the stencil of
  radius r around j], zm, mu, f)`` -- one MLP ``h`` (C outputs) shared by every cell. The
  stencil is :func:`pymsde.numerics.padding.gather_stencil` (row-major offsets, channel
  slowest; periodic axes wrap, Dirichlet axes repeat the edge cell). ``h``'s input per cell
  is ``[stencil (C (2r+1)^d), pos (2d or 0), zm (d_m), mu (n_mu), f (n_f)]``; ``pos`` (with
  ``positional``) is :func:`positional_features` of the cell, ``cos, sin (2 pi i_a / n_a)``
  per axis ``a`` (the final paper's cylinder drift), so cells with equal stencils can differ.
  With ``linear`` (the ``drift_linear`` model option) a linear stencil term is added to ``h``:
  ``g_M[:, j] += (W_0 + sum_k mu_k W_k) s_j`` with ``s_j`` the cell's stencil and ``W_k`` of
  shape ``(C, C (2r+1)^d)``: the exact form of a linear PDE's coarse operator whose
  coefficients are affine in the parameters. Why: a per-cell MLP fitted on a few trajectories
  does not carry a linear operator to an initial state outside their span (measured in
  docs/own_data.md); the linear term does, and the MLP is left the nonlinear remainder.
- microscale: ``g_m = q([zm, zM flat, sin t, cos t, mu, f])`` -> ``d_m`` numbers.

Both MLPs are :func:`pymsde.model.mlp.mlp_forward`'s layers (``addmm`` per layer, the
activation between layers). :func:`multiscale_drift` is the one torch implementation: the
model (:mod:`pymsde.model.drift`, with autograd), the torch rollouts
(:mod:`pymsde.forecast.rollout`, the
validation forecast of training) and, as the reference, the Julia kernel all evaluate it.
Rollouts pass a :class:`DriftWorkspace` (buffers reused, activations in place; same numbers).

Cost: the shared MLP runs as one dense matmul over all ``B * n_cells`` rows. The part of
``h``'s first layer that acts on the per-sample inputs ``[zm, mu, f]`` is computed once per
sample and broadcast over cells (the same numbers as concatenating them to every row, at a
fraction of the cost). With ``positional`` the first layer's part on ``pos`` is one
``(n_cells, 2d) x (2d, H)`` product per call, broadcast over the batch.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torch import nn

from pymsde.model.mlp import ACTIVATIONS, INPLACE_ACTIVATIONS, activation_fn, dense, init_mlp, mlp_layers
from pymsde.numerics.padding import gather_stencil
from pymsde.util.errors import ConfigError


class LatentSizes:
    """Sizes of the flat latent vector ``z = (zM, zm)``, derived from ``coarse_shape``,
    ``channels`` and ``micro_dim`` (shared by :class:`DriftParams` and the model's config)."""

    coarse_shape: tuple[int, ...]
    channels: int
    micro_dim: int

    @property
    def n_cells(self) -> int:
        """Cells of the coarse mesh."""
        return math.prod(self.coarse_shape)

    @property
    def macro_dim(self) -> int:
        """``C * n_cells``: the length of ``zM`` in the flat latent vector."""
        return self.channels * self.n_cells

    @property
    def latent_dim(self) -> int:
        """``macro_dim + micro_dim``: the length of ``z``."""
        return self.macro_dim + self.micro_dim


@dataclass(frozen=True)
class DriftParams(LatentSizes):
    """Weights of the multiscale drift as plain tensors, plus the metadata to apply them.

    Attributes:
        macro_weights, macro_biases: layers of ``h``; ``macro_weights[0]`` has
            ``C (2r+1)^d + n_positional + micro_dim + n_mu + n_f`` columns, the last layer ``C`` rows.
        micro_weights, micro_biases: layers of ``q`` (empty lists when ``micro_dim == 0``);
            input width ``micro_dim + C n_cells + 2 + n_mu + n_f``, output ``micro_dim``.
        activation: activation name (see :data:`pymsde.model.mlp.ACTIVATIONS`).
        radius: stencil radius ``r`` (coarse cells).
        boundary: the boundary kind per spatial axis (:data:`pymsde.data.grid.BOUNDARY_TYPES`).
        coarse_shape: coarse cells per axis.
        channels: field channels ``C``.
        micro_dim, n_mu, n_f: sizes of ``zm``, ``mu`` and ``f``.
        positional: append :func:`positional_features` (``2d`` values per cell) to ``h``'s input
            after the stencil (default False: the input and the numbers of before).
        linear: None (no linear term) or the ``(C, S (1 + n_mu))`` matrix ``[W_0, W_1, ...]`` of
            the linear stencil term (``S = C (2r+1)^d``), applied to ``[s, mu_1 s, ..., mu_k s]``
            (:func:`linear_features`).
    """

    macro_weights: list[torch.Tensor]
    macro_biases: list[torch.Tensor]
    micro_weights: list[torch.Tensor]
    micro_biases: list[torch.Tensor]
    activation: str
    radius: int
    boundary: tuple[str, ...]
    coarse_shape: tuple[int, ...]
    channels: int
    micro_dim: int
    n_mu: int = 0
    n_f: int = 0
    positional: bool = False
    linear: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # cheap integer checks only: this object is rebuilt on every model.drift call
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"DriftParams.activation {self.activation!r}; expected one of {sorted(ACTIVATIONS)}")
        if len(self.boundary) != len(self.coarse_shape):
            raise ConfigError(f"DriftParams: boundary has {len(self.boundary)} axes, coarse_shape "
                             f"{self.coarse_shape} has {len(self.coarse_shape)}")
        _check_layers("macro", self.macro_weights, self.macro_biases, self.macro_in, self.channels)
        if self.micro_dim > 0:
            _check_layers("micro", self.micro_weights, self.micro_biases, self.micro_in, self.micro_dim)
        elif self.micro_weights:
            raise ConfigError("DriftParams: micro_dim is 0 but micro weights were given")
        if self.linear is not None and tuple(self.linear.shape) != (self.channels, self.linear_in):
            raise ConfigError(f"DriftParams.linear: shape {tuple(self.linear.shape)}; expected "
                              f"({self.channels}, {self.linear_in}) = (C, stencil size x (1 + n_mu))")

    @property
    def ndim(self) -> int:
        """Spatial axes of the coarse mesh."""
        return len(self.coarse_shape)

    @property
    def stencil_size(self) -> int:
        """``C (2r+1)^d`` stencil values per cell."""
        return self.channels * (2 * self.radius + 1) ** self.ndim

    @property
    def n_positional(self) -> int:
        """``2d`` positional inputs per cell with ``positional``, else 0."""
        return 2 * self.ndim if self.positional else 0

    @property
    def macro_in(self) -> int:
        return self.stencil_size + self.n_positional + self.micro_dim + self.n_mu + self.n_f

    @property
    def linear_in(self) -> int:
        """``S (1 + n_mu)``: the columns of the linear stencil term (:func:`linear_features`)."""
        return self.stencil_size * (1 + self.n_mu)

    @property
    def micro_in(self) -> int:
        return self.micro_dim + self.macro_dim + 2 + self.n_mu + self.n_f

    def detach(self) -> "DriftParams":
        """A copy whose tensors are detached from autograd (for rollouts)."""
        return self._map(lambda x: x.detach())

    def to(self, *args, **kwargs) -> "DriftParams":
        """A copy with every tensor moved/cast as ``Tensor.to(*args, **kwargs)``."""
        return self._map(lambda x: x.to(*args, **kwargs))

    def _map(self, fn) -> "DriftParams":
        return replace(self, macro_weights=[fn(w) for w in self.macro_weights],
                       macro_biases=[fn(b) for b in self.macro_biases],
                       micro_weights=[fn(w) for w in self.micro_weights],
                       micro_biases=[fn(b) for b in self.micro_biases],
                       linear=None if self.linear is None else fn(self.linear))


def _check_layers(name: str, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                  n_in: int, n_out: int) -> None:
    if len(weights) == 0 or len(weights) != len(biases):
        raise ConfigError(f"DriftParams.{name}: {len(weights)} weight matrices and {len(biases)} bias "
                         f"vectors; expected the same positive number")
    width = n_in
    for k, (w, b) in enumerate(zip(weights, biases)):
        if w.dim() != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
            raise ConfigError(f"DriftParams.{name} layer {k}: weight {tuple(w.shape)}, bias {tuple(b.shape)}; "
                             f"expected (out, {width}) and (out,)")
        width = w.shape[0]
    if width != n_out:
        raise ConfigError(f"DriftParams.{name}: last layer has {width} outputs; expected {n_out}")


def _time_features(t: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor:
    """``[sin t, cos t]`` as ``(B, 2)`` for a scalar or per-sample ``t``."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    t = t.reshape(-1, 1).expand(batch, 1)
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def positional_features(coarse_shape: Sequence[int], dtype: torch.dtype | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Per coarse cell ``[cos(2 pi i_0 / n_0), sin(2 pi i_0 / n_0), cos(2 pi i_1 / n_1), ...]``.

    ``i_a`` is the cell's 0-based index along axis ``a`` (``n_a`` cells); the order and the
    features are those of the final paper's cylinder drift (``DriftMacroNetGraph`` in
    ``experiments_refac/cylinder_2d/def_model.py``). Computed in float64, then cast.

    Returns:
        ``(n_cells, 2 d)``, cells row-major (the order of the stencil rows); a cached tensor
        per (shape, dtype, device): do not modify it in place.
    """
    return _positional_cached(tuple(int(n) for n in coarse_shape), dtype or torch.get_default_dtype(),
                              torch.device(device) if device is not None else torch.device("cpu"))


@functools.lru_cache(maxsize=32)
def _positional_cached(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    cols = []
    for a, n in enumerate(shape):
        angle = 2.0 * math.pi * torch.arange(n, dtype=torch.float64) / n
        view = [1] * len(shape)
        view[a] = n
        for fn in (torch.cos, torch.sin):
            cols.append(fn(angle).view(view).expand(shape).reshape(-1))
    return torch.stack(cols, dim=1).to(dtype=dtype, device=device)


def linear_features(rows: torch.Tensor, mu: torch.Tensor | None, n_cells: int) -> torch.Tensor:
    """The inputs of the linear stencil term: ``[s, mu_1 s, ..., mu_k s]`` per cell.

    Args:
        rows: ``(B n_cells, S)`` stencils, sample slowest (the rows of the drift's MLP).
        mu: ``(B, n_mu)`` parameters, or None (then the result is ``rows``).
        n_cells: cells per sample.

    Returns:
        ``(B n_cells, S (1 + n_mu))``.
    """
    if mu is None or mu.shape[1] == 0:
        return rows
    batch, S = rows.shape[0] // n_cells, rows.shape[1]
    scaled = rows.view(batch, n_cells, 1, S) * mu.view(batch, 1, -1, 1)        # (B, n_cells, n_mu, S)
    return torch.cat([rows, scaled.reshape(batch * n_cells, -1)], dim=1)


class DriftWorkspace:
    """Reusable buffers for many autograd-free :func:`multiscale_drift` calls on one batch size.

    Why: in a rollout the drift runs thousands of times on the same shapes, and its large
    temporaries are the hidden activations of the shared cell MLP, ``(B n_cells, H)`` each
    (256 members x 20 cells x 128 = 2.6 MB in float32). Writing them into buffers allocated
    once (``addmm(..., out=)``) and activating them in place saves the page faults and extra
    memory passes of fresh allocations. The numbers are those of the ``workspace=None`` path
    (tested equal in float64).

    Use only without autograd (``torch.no_grad()`` or detached params): ``out=`` refuses
    tensors that require grad, and the buffers are overwritten by the next call. The drift
    returned by each call is a fresh tensor (Heun/SRA1 keep two drift values alive).

    Args:
        params: the drift's weights (for the hidden widths, dtype and device).
        batch: ``B``, the number of rows of every ``z`` it will be used with.
    """

    def __init__(self, params: DriftParams, batch: int):
        self.batch = int(batch)
        ref = params.macro_weights[0]
        rows = self.batch * params.n_cells
        # one buffer per hidden layer of h (every layer but the last, whose output is returned)
        self.hidden = [torch.empty(rows, w.shape[0], dtype=ref.dtype, device=ref.device)
                       for w in params.macro_weights[:-1]]
        self.act_inplace = INPLACE_ACTIVATIONS.get(params.activation)


def multiscale_drift(params: DriftParams, t: torch.Tensor | float, z: torch.Tensor,
                     mu: torch.Tensor | None = None, f: torch.Tensor | None = None,
                     workspace: DriftWorkspace | None = None) -> torch.Tensor:
    """The drift ``g(t, z; mu, f)`` of the latent SDE (the one implementation).

    Args:
        params: weights and metadata.
        t: time, scalar or ``(B,)`` (same units as the data's ``t``).
        z: ``(B, D)`` latent states, ``D = C n_cells + micro_dim``.
        mu: ``(B, n_mu)`` parameters, or None when ``n_mu == 0``.
        f: ``(B, n_f)`` forcing at time ``t``, or None when ``n_f == 0``.
        workspace: None (differentiable; training) or a :class:`DriftWorkspace` built for
            ``B`` rows (rollouts without autograd: hidden activations in reused buffers,
            activations in place; the same numbers).

    Returns:
        ``(B, D)``: ``concat(g_M.flatten(1), g_m)`` in the layout of ``z`` (a fresh tensor).

    Raises:
        ValueError: mu/f missing, or a workspace built for another batch size.
    """
    p = params
    batch = z.shape[0]
    if workspace is None:
        buffers: Sequence[torch.Tensor] = ()
        act_inplace = None
    else:
        if batch != workspace.batch:   # integer compare: out= would silently resize the buffers
            raise ConfigError(f"multiscale_drift: workspace built for batch {workspace.batch}, called with {batch}")
        buffers, act_inplace = workspace.hidden, workspace.act_inplace
    act = activation_fn(p.activation)
    macro_dim = p.macro_dim
    zM = z[:, :macro_dim]
    zm = z[:, macro_dim:]
    extras = []                                            # per-sample inputs shared by all cells
    if p.n_mu:
        if mu is None:
            raise ConfigError(f"multiscale_drift: the model takes n_mu = {p.n_mu} parameters but mu is None")
        extras.append(mu)
    if p.n_f:
        if f is None:
            raise ConfigError(f"multiscale_drift: the model takes n_f = {p.n_f} forcing values but f is None")
        extras.append(f)

    # macroscale: stencil gather, then one shared MLP over all B * n_cells rows
    stencil = gather_stencil(zM.reshape(batch, p.channels, *p.coarse_shape), p.radius, p.boundary)
    rows = stencil.reshape(batch * p.n_cells, p.stencil_size)
    w0, b0 = p.macro_weights[0], p.macro_biases[0]
    out0 = buffers[0] if buffers else None                 # None: one-layer h, or autograd
    glob = [zm] + extras if p.micro_dim else extras
    S, P = p.stencil_size, p.n_positional
    if glob or P:
        # first layer = W_s stencil + (W_p pos + W_g [zm, mu, f] + b): the shift once per sample
        # (B, 1, H) and once per cell (1, n_cells, H), broadcast over the other
        if glob:
            g = torch.cat(glob, dim=1) if len(glob) > 1 else glob[0]
            shift = torch.addmm(b0, g, w0[:, S + P:].t()).unsqueeze(1)
        else:
            shift = b0
        if P:
            pos = positional_features(p.coarse_shape, dtype=w0.dtype, device=w0.device)
            shift = shift + (pos @ w0[:, S:S + P].t()).unsqueeze(0)
        ws = w0[:, :S].t()
        h = rows @ ws if out0 is None else torch.mm(rows, ws, out=out0)
        if out0 is None:
            h = (h.view(batch, p.n_cells, -1) + shift).view(batch * p.n_cells, -1)
        else:
            h.view(batch, p.n_cells, -1).add_(shift)
    else:
        h = dense(rows, w0, b0, out0)
    h = mlp_layers(h, p.macro_weights[1:], p.macro_biases[1:], act, act_inplace, buffers[1:])
    if p.linear is not None:
        h = torch.addmm(h, linear_features(rows, mu if p.n_mu else None, p.n_cells), p.linear.t())
    # (B * n_cells, C) -> (B, C, n_cells) -> flat, channel slowest like zM.flatten(1)
    gM = h.view(batch, p.n_cells, p.channels).transpose(1, 2).reshape(batch, macro_dim)
    if not p.micro_dim:
        return gM

    x = torch.cat([zm, zM, _time_features(t, batch, z)] + extras, dim=1)
    gm = mlp_layers(dense(x, p.micro_weights[0], p.micro_biases[0]), p.micro_weights[1:],
                    p.micro_biases[1:], act, act_inplace)
    return torch.cat([gM, gm], dim=1)


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
        positional: the per-cell positional inputs of :func:`positional_features`.
        linear: the linear stencil term (``DriftParams.linear``), a parameter ``linear`` of
            shape ``(C, S (1 + n_mu))``.

    Initialisation: Xavier-normal weights, zero biases (as the reference implementation); the
    linear term starts at zero (:func:`pymsde.training.prefit.prefit_linear_drift` fits it).
    """

    def __init__(self, coarse_shape: Sequence[int], channels: int, micro_dim: int, radius: int,
                 boundary: Sequence[str], macro_hidden: Sequence[int], micro_hidden: Sequence[int],
                 activation: str, n_mu: int = 0, n_f: int = 0, positional: bool = False,
                 linear: bool = False):
        super().__init__()
        self.meta = dict(activation=activation, radius=int(radius), boundary=tuple(boundary),
                         coarse_shape=tuple(int(c) for c in coarse_shape), channels=int(channels),
                         micro_dim=int(micro_dim), n_mu=int(n_mu), n_f=int(n_f), positional=bool(positional))
        # layer widths as DriftParams expects them (its __post_init__ checks them on every call)
        nd = len(coarse_shape)
        n_cells = 1
        for c in coarse_shape:
            n_cells *= int(c)
        macro_in = channels * (2 * radius + 1) ** nd + (2 * nd if positional else 0) + micro_dim + n_mu + n_f
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
        if linear:
            stencil = channels * (2 * radius + 1) ** nd
            self.linear = nn.Parameter(torch.zeros(channels, stencil * (1 + n_mu)))
        else:
            self.register_parameter("linear", None)

    def params(self) -> DriftParams:
        """The live parameters (autograd-connected) as :class:`DriftParams`."""
        return DriftParams(list(self.macro_weights), list(self.macro_biases),
                           list(self.micro_weights), list(self.micro_biases), **self.meta, linear=self.linear)

    def forward(self, t: torch.Tensor | float, z: torch.Tensor, mu: torch.Tensor | None = None,
                f: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, D)`` drift; see :func:`multiscale_drift`."""
        return multiscale_drift(self.params(), t, z, mu, f)
