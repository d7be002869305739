"""The latent rollout of a learned multiscale SDE: the one loop every forecast goes through.

:func:`rollout` integrates ``dz = g(t, z; mu, f) dt + sigma dW`` for a whole ensemble with
:func:`pymsde.sde.integrator.integrate` (torch) or hands the loop to an accelerated backend
(:mod:`pymsde.backends.protocol`) whose ``sde_rollout`` kernel has the signature of
:func:`sde_rollout` here, the torch implementation. Either way the initial noise and the
Brownian increments come from the caller's torch generator in the same pieces
(:func:`pymsde.sde.integrator.noise_chunk`), so a seed means the same path on every backend.

The drift is the functional kernel :func:`pymsde.model.drift.multiscale_drift` on detached
weights with a :class:`~pymsde.model.drift.DriftWorkspace` (buffers reused; the same numbers
as the model's autograd drift), or ``model.drift`` for a model without ``drift_params()``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from pymsde.backends.protocol import resolve_backend
from pymsde.model.drift import DriftParams, DriftWorkspace, multiscale_drift
from pymsde.sde.forcing import LinearForcing
from pymsde.sde.integrator import brownian_increments, integrate, noise_chunk
from pymsde.util.errors import ConfigError

#: Brownian increments (numbers) handed to one accelerated ``sde_rollout`` call (16 MiB float32)
NOISE_NUMBERS_PER_CALL = 1 << 22


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
            check_finite: bool = True) -> torch.Tensor:
    """The latent ensemble rollout; returns the states at ``steps``: ``(len(steps), N, D)``.

    Args:
        source: :class:`DriftParams` or a model with ``drift`` (torch backend only).
        sigma: ``(D,)`` or ``(N, D)``; z0: ``(N, D)``; t0, dt, n_steps: the time grid.
        scheme: ``"em"``, ``"heun"`` or ``"sra1"``.
        steps: ascending step indices to keep (0 = ``z0``).
        mu: ``(N, n_mu)``; forcing: see :func:`drift_function` (an accelerated backend takes
            forcing constant in time only).
        generator: the source of the Brownian increments.
        backend: ``"torch"``, ``"julia"`` or ``"auto"``.
        check_finite: raise StabilityError on a non-finite saved state (torch loop).
    """
    if backend != "torch" and not isinstance(source, DriftParams):
        raise ConfigError(f"forecast: a model without drift_params() runs on backend 'torch' only, not {backend!r}")
    be = resolve_backend(backend)
    if not be.accelerated:
        _, zs = integrate(drift_function(source, mu, forcing, z0.shape[0]), sigma, z0, t0, dt, n_steps,
                          scheme=scheme, save_at=steps.tolist(), generator=generator,
                          show_progress=show_progress, check_finite=check_finite)
        return zs
    f_const = None
    if forcing is not None:
        if forcing.times.shape[0] > 1 and not bool((forcing.values == forcing.values[..., :1, :]).all()):
            raise ConfigError(f"forecast: backend {be.name!r} takes constant forcing only; this "
                              f"forcing varies in time -- use backend='torch'")
        f_const = forcing.values[..., 0, :].expand(z0.shape[0], -1)
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


__all__ = ["rollout", "sde_rollout", "drift_function", "NOISE_NUMBERS_PER_CALL"]
