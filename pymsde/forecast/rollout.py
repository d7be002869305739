"""The latent rollout of a learned multiscale SDE: the one loop every forecast goes through.

:func:`rollout` integrates ``dz = g(t, z; mu, f) dt + sigma dW`` for a whole ensemble with
:func:`pymsde.sde.integrator.integrate` (torch) or hands the loop to an accelerated backend
(:mod:`pymsde.backends.protocol`) whose ``sde_rollout`` kernel has the signature of
:func:`sde_rollout` here, the torch implementation. The noise comes either

- from a caller's torch generator, drawn for the whole ensemble in the pieces of
  :func:`pymsde.sde.integrator.noise_chunk` (the same path on every backend), or
- keyed (:class:`MemberNoise`): member ``(b, s)`` (initial observation ``b``, sample ``s``) draws
  its initial noise and then its increments step by step from its own stream
  ``(seed, "forecast", b, s)`` (:mod:`pymsde.util.rng`), integrated in pieces of
  :data:`KEYED_PIECE_STEPS` steps whatever the ensemble size. A member's path then depends
  only on ``(seed, b, s)``: an ensemble computed in chunks (``sample_offset``) or on several
  devices is the one-piece ensemble, bit for bit, and CPU and GPU draw the same numbers.

The drift is the functional kernel :func:`pymsde.model.drift.multiscale_drift` on detached
weights with a :class:`~pymsde.model.drift.DriftWorkspace` (buffers reused; the same numbers
as the model's autograd drift), or ``model.drift`` for a model without ``drift_params()``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from pymsde.backends.protocol import resolve_backend
from pymsde.model.drift import DriftParams, DriftWorkspace, multiscale_drift
from pymsde.sde.forcing import LinearForcing
from pymsde.sde.integrator import brownian_increments, integrate, noise_chunk
from pymsde.util import rng
from pymsde.util.errors import ConfigError, StabilityError
from pymsde.util.progress import progress

#: Brownian increments (numbers) handed to one accelerated ``sde_rollout`` call (16 MiB float32)
NOISE_NUMBERS_PER_CALL = 1 << 22
#: steps per piece of a keyed rollout (noise memory ``64 N D`` numbers; fixed, so that the
#: pieces, and with them every number and time, do not depend on the ensemble size)
KEYED_PIECE_STEPS = 64


class MemberNoise:
    """The keyed noise of an ensemble of ``n_batch x n_samples`` members (rows ``b * n_samples + s``).

    Member ``(b, s)`` draws from the stream ``(seed, "forecast", batch_offset + b, sample_offset + s)``:
    first its ``D`` initial values (:meth:`initial`), then per step its increment (and, for SRA1,
    the second normal of the step's integral), in time order (:meth:`increments`).

    Args:
        seed: the forecast's seed.
        n_batch, n_samples: initial observations and members per observation.
        batch_offset, sample_offset: the index of the first observation and the first member
            (a chunk of a larger ensemble).
    """

    def __init__(self, seed: int, n_batch: int, n_samples: int, batch_offset: int = 0, sample_offset: int = 0):
        self.seed = int(seed)
        self.streams = [rng.stream(seed, "forecast", batch_offset + b, sample_offset + s)
                        for b in range(n_batch) for s in range(n_samples)]

    def initial(self, dim: int, dtype: torch.dtype, device) -> torch.Tensor:
        """``(N, dim)`` standard normals: the members' initial noise."""
        return rng.normal_rows(self.streams, (dim,), dim=0, dtype=dtype, device=device)

    def increments(self, n_steps: int, dim: int, dt: float, with_integral: bool, dtype: torch.dtype, device
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next ``n_steps`` steps: ``dW (n_steps, N, dim)`` and, ``with_integral``, ``dI`` as
        :func:`~pymsde.sde.integrator.brownian_increments` forms them."""
        x = rng.normal_rows(self.streams, (n_steps, 2 if with_integral else 1, dim), dim=1, dtype=dtype,
                            device=device)                                            # (n, N, k, dim)
        dW = x[:, :, 0] * math.sqrt(dt)
        if not with_integral:
            return dW, None
        return dW, (0.5 * dt) * (dW + x[:, :, 1] * math.sqrt(dt) / math.sqrt(3.0))


def drift_function(source: Any, mu: torch.Tensor | None, forcing: Any, n_rows: int) -> Callable:
    """``f(t, z) -> (n_rows, D)`` for :func:`~pymsde.sde.integrator.integrate`.

    Args:
        source: :class:`DriftParams` (detached weights: the kernel with a workspace) or a
            model with ``drift(t, z, mu, f)``.
        mu: ``(n_rows, n_mu)`` or None.
        forcing: None, a constant ``(n_rows, n_f)`` tensor, or a
            :class:`~pymsde.sde.forcing.LinearForcing` with values ``(n_t, n_f)`` (shared by
            all rows) or ``(n_rows, n_t, n_f)``.
    """
    if isinstance(source, DriftParams):
        ws = DriftWorkspace(source, n_rows)   # buffers reused across the steps (no autograd here)

        def g(t, z, fv):
            return multiscale_drift(source, t, z, mu, fv, workspace=ws)
    else:
        def g(t, z, fv):
            return source.drift(t, z, mu, fv)
    # the forcing's layout is fixed for the rollout: decided here, not at every step
    if forcing is None or torch.is_tensor(forcing):
        return lambda t, z: g(t, z, forcing)
    if forcing.values.dim() == 2:              # shared by all rows: (n_f,) -> (n_rows, n_f) view
        return lambda t, z: g(t, z, forcing(t).expand(n_rows, -1))
    return lambda t, z: g(t, z, forcing(t))


def sde_rollout(params: DriftParams, sigma: torch.Tensor, z0: torch.Tensor, t0: float, dt: float,
                n_steps: int, scheme: str = "em", save_every: int = 1, dW: torch.Tensor | None = None,
                dI: torch.Tensor | None = None, mu: torch.Tensor | None = None,
                f: torch.Tensor | None = None, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The backend protocol's ``sde_rollout`` in torch: the learned SDE from ``z0`` with given noise.

    Args:
        params: drift weights (detached here).
        sigma: ``(D,)`` or ``(B, D)`` diagonal diffusion.
        z0: ``(B, D)`` initial latent states.
        t0, dt, n_steps: start time, step and number of steps.
        scheme: ``"em"``, ``"heun"`` or ``"sra1"``.
        save_every: keep every k-th state, starting with ``z0``.
        dW, dI: ``(n_steps, B, D)`` Brownian increments (and the SRA1 integrals).
        mu: ``(B, n_mu)``; f: ``(B, n_f)`` constant forcing.
        seed: seeds a ``torch.Generator`` for the increments when ``dW`` is None (each
            backend draws from its own generator: the same seed is not the same path).

    Returns:
        ``ts (n_saved,)`` and ``zs (n_saved, B, D)``.
    """
    gen = None if dW is not None or seed is None else torch.Generator(device=z0.device).manual_seed(int(seed))
    with torch.no_grad():
        drift = drift_function(params.detach(), mu, f, z0.shape[0])
        return integrate(drift, sigma.to(z0), z0, t0, dt, n_steps, scheme=scheme, save_every=save_every,
                         dW=dW, dI=dI, generator=gen)


def rollout(source: Any, sigma: torch.Tensor, z0: torch.Tensor, t0: float, dt: float, n_steps: int,
            scheme: str, steps: np.ndarray, mu: torch.Tensor | None = None, forcing: LinearForcing | None = None,
            generator: torch.Generator | None = None, backend: str = "torch", show_progress: bool = False,
            check_finite: bool = True, noise: MemberNoise | None = None) -> torch.Tensor:
    """The latent ensemble rollout; returns the states at ``steps``: ``(len(steps), N, D)``.

    Args:
        source: :class:`DriftParams` or a model with ``drift`` (torch backend only).
        sigma: ``(D,)`` or ``(N, D)``; z0: ``(N, D)``; t0, dt, n_steps: the time grid.
        scheme: ``"em"``, ``"heun"`` or ``"sra1"``.
        steps: ascending step indices to keep (0 = ``z0``).
        mu: ``(N, n_mu)``; forcing: see :func:`drift_function` (an accelerated backend takes
            forcing constant in time only).
        generator: the source of the Brownian increments (unless ``noise``).
        backend: ``"torch"``, ``"julia"`` or ``"auto"``.
        check_finite: raise StabilityError on a non-finite saved state.
        noise: keyed per-member increments (:class:`MemberNoise`, after its initial values).
    """
    if backend != "torch" and not isinstance(source, DriftParams):
        raise ConfigError(f"forecast: a model without drift_params() runs on backend 'torch' only, not {backend!r}")
    be = resolve_backend(backend)
    if noise is not None:
        return _rollout_keyed(source, sigma, z0, t0, dt, n_steps, scheme, steps, mu, forcing, noise, be,
                              show_progress, check_finite)
    if not be.accelerated:
        _, zs = integrate(drift_function(source, mu, forcing, z0.shape[0]), sigma, z0, t0, dt, n_steps,
                          scheme=scheme, save_at=steps.tolist(), generator=generator,
                          show_progress=show_progress, check_finite=check_finite)
        return zs
    f_const = _constant_forcing(be, forcing, z0.shape[0])
    # The increments come from the torch generator in the torch loop's pieces (noise_chunk
    # steps per draw). One call covers whole pieces (noise memory O(per_call), not
    # O(n_steps)) and saves every step; the output steps are picked from those.
    N, D = z0.shape
    chunk = noise_chunk(n_steps, N, D)
    per_call = chunk * max(1, NOISE_NUMBERS_PER_CALL // max(1, N * D * chunk))
    out = z0.new_empty((len(steps), N, D))
    slot = {int(k): i for i, k in enumerate(steps)}
    if 0 in slot:
        out[slot[0]] = z0
    z, base = z0, 0
    sra1 = scheme == "sra1"
    while base < n_steps:
        n = min(per_call, n_steps - base)
        pieces = [brownian_increments(min(chunk, base + n - s), (N, D), dt, generator, sra1, z0.dtype, z0.device)
                  for s in range(base, base + n, chunk)]
        dW = torch.cat([p[0] for p in pieces])
        dI = torch.cat([p[1] for p in pieces]) if sra1 else None
        _, zs = be.sde_rollout(source, sigma, z, t0 + base * dt, dt, n, scheme=scheme, save_every=1,
                               dW=dW, dI=dI, mu=mu, f=f_const)
        for k in range(base + 1, base + n + 1):
            if k in slot:
                out[slot[k]] = zs[k - base]
        z, base = zs[-1], base + n
    return out


def _constant_forcing(be, forcing: LinearForcing | None, n_rows: int) -> torch.Tensor | None:
    """An accelerated backend takes forcing constant in time: ``(n_rows, n_f)`` (ConfigError otherwise)."""
    if forcing is None:
        return None
    if forcing.times.shape[0] > 1 and not bool((forcing.values == forcing.values[..., :1, :]).all()):
        raise ConfigError(f"forecast: backend {be.name!r} takes constant forcing only; this "
                          f"forcing varies in time -- use backend='torch'")
    return forcing.values[..., 0, :].expand(n_rows, -1)


def _rollout_keyed(source, sigma, z0, t0, dt, n_steps, scheme, steps, mu, forcing, noise: MemberNoise, be,
                   show_progress: bool, check_finite: bool) -> torch.Tensor:
    """:func:`rollout` with keyed noise: pieces of :data:`KEYED_PIECE_STEPS` steps, each with the
    members' next increments, through ``integrate`` (torch) or the backend's ``sde_rollout``."""
    N, D = z0.shape
    out = z0.new_empty((len(steps), N, D))
    slot = {int(k): i for i, k in enumerate(steps)}
    if 0 in slot:
        out[slot[0]] = z0
    if be.accelerated:
        f_const = _constant_forcing(be, forcing, N)
    else:
        drift = drift_function(source, mu, forcing, N)          # one workspace for every piece
    z, base = z0, 0
    bar = progress(total=n_steps, desc=f"integrate ({scheme})", unit="step", enabled=show_progress)
    while base < n_steps:
        n = min(KEYED_PIECE_STEPS, n_steps - base)
        dW, dI = noise.increments(n, D, dt, scheme == "sra1", z0.dtype, z0.device)
        if be.accelerated:
            _, zs = be.sde_rollout(source, sigma, z, t0 + base * dt, dt, n, scheme=scheme, save_every=1,
                                   dW=dW, dI=dI, mu=mu, f=f_const)
        else:
            _, zs = integrate(drift, sigma, z, t0 + base * dt, dt, n, scheme=scheme, dW=dW, dI=dI,
                              check_finite=False)
        for k in range(base + 1, base + n + 1):
            if k in slot:
                out[slot[k]] = zs[k - base]
        z, base = zs[-1], base + n
        bar.update(n)
    bar.close()
    if check_finite and not bool(torch.isfinite(out).all()):
        bad = int((~torch.isfinite(out)).flatten(1).any(1).nonzero()[0])
        raise StabilityError(f"integrate ({scheme}): non-finite state at saved time t = {t0 + dt * int(steps[bad]):g} "
                             f"(step {int(steps[bad])}, dt = {dt:g}); reduce dt or check the drift")
    return out


__all__ = ["rollout", "sde_rollout", "drift_function", "MemberNoise", "KEYED_PIECE_STEPS", "NOISE_NUMBERS_PER_CALL"]
