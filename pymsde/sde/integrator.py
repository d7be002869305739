"""Fixed-step SDE integrators: the torch reference kernels (one step of each scheme + the loop).

Itô SDEs with diagonal noise on flat states ``z`` of shape ``(B, D)`` (B ensemble members or
trajectories, D latent dimensions)::

    dz = f(t, z) dt + g(t, z) * dW,     dW: D independent Brownian motions per member.

``f(t, z) -> (B, D)`` is the drift. ``g`` is the diagonal diffusion: a callable
``g(t, z) -> (B, D)`` (or anything broadcastable to it, e.g. ``(D,)``), or directly a tensor
``(D,)`` / ``(B, D)`` when the noise is constant (the learned multiscale model's sigma depends
on mu only, so it is a tensor for the whole rollout). ``t`` is handed to ``f`` and ``g`` as a
0-dim tensor of z's dtype (torchsde's convention), in the same units as ``dt``.

Schemes (``SCHEMES``; strong / weak order as designed):

=========  =====================================================  ==============  ======
scheme     noise it is valid for                                   strong          weak
=========  =====================================================  ==============  ======
``em``     any diagonal noise, Itô                                 0.5 (1.0 add.)  1.0
``heun``   additive noise (Itô = Stratonovich only then)           1.0 (additive)  2.0
``sra1``   additive noise: g may depend on t, not on z             1.5             2.0
=========  =====================================================  ==============  ======

Caveat for ``heun``: the stochastic Heun scheme converges to the *Stratonovich* solution. For
additive noise (g independent of z) the Itô and Stratonovich solutions coincide; for
multiplicative noise it solves a different SDE than ``em`` (e.g. geometric Brownian motion
gets an extra drift ``g g'/2``). ``sra1`` (Rößler 2010, "Runge-Kutta methods for the strong
approximation of solutions of stochastic differential equations", SIAM J. Numer. Anal. 48,
table SRA1) uses g at the current state only and is wrong for multiplicative noise.

SRA1 needs, besides ``dW = W(t+h) - W(t)``, the iterated integral
``dI = I_(1,0) = int_t^{t+h} (W(s) - W(t)) ds``, sampled jointly with dW:
``dI = h/2 (dW + dZ / sqrt(3))`` with ``dZ ~ N(0, h)`` independent of dW
(Var dI = h^3/3, Cov(dW, dI) = h^2/2). :func:`coarsen_increments` aggregates fine increments
into coarse ones consistently (for convergence studies on one Brownian path).

The Julia package (``julia/``) ports this file one to one: keep the step functions
small and explicit.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, Union

import torch

from pymsde.util.errors import ConfigError, StabilityError
from pymsde.util.progress import progress

Drift = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Diffusion = Union[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], torch.Tensor]

#: scheme name -> (strong order for additive noise, weak order, needs the dI integral)
SCHEMES: dict[str, tuple[float, float, bool]] = {
    "em": (1.0, 1.0, False),
    "heun": (1.0, 2.0, False),
    "sra1": (1.5, 2.0, True),
}


def _g(g: Diffusion, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Evaluate the diffusion: a constant tensor is returned as is (no call, no copy)."""
    return g if isinstance(g, torch.Tensor) else g(t, z)


def em_step(f: Drift, g: Diffusion, t: torch.Tensor, z: torch.Tensor, dt: float,
            dW: torch.Tensor) -> torch.Tensor:
    """One Euler-Maruyama step: ``z + f(t, z) dt + g(t, z) dW``.

    Args:
        f, g: drift and diagonal diffusion (see the module docstring).
        t: 0-dim tensor, time at the start of the step.
        z: ``(B, D)`` state at ``t``.
        dt: step (float, > 0).
        dW: ``(B, D)`` Brownian increment over the step, ``~ N(0, dt)``.

    Returns:
        ``(B, D)`` state at ``t + dt``.
    """
    return z + f(t, z) * dt + _g(g, t, z) * dW


def heun_step(f: Drift, g: Diffusion, t: torch.Tensor, z: torch.Tensor, dt: float,
              dW: torch.Tensor) -> torch.Tensor:
    """One stochastic Heun step (predictor EM, trapezoidal corrector on f and g).

    Converges to the Stratonovich solution; equal to Itô for additive noise only.
    Shapes as :func:`em_step`.
    """
    f1 = f(t, z)
    g1 = _g(g, t, z)
    z_pred = z + f1 * dt + g1 * dW
    t1 = t + dt
    f2 = f(t1, z_pred)
    g2 = _g(g, t1, z_pred)
    return z + (0.5 * dt) * (f1 + f2) + 0.5 * (g1 + g2) * dW


def sra1_step(f: Drift, g: Diffusion, t: torch.Tensor, z: torch.Tensor, dt: float,
              dW: torch.Tensor, dI: torch.Tensor) -> torch.Tensor:
    """One step of Rößler's SRA1 (strong order 1.5 for additive noise), two drift evaluations.

    Tableau: c0 = (0, 3/4), c1 = (1, 0), A0_21 = 3/4, B0_21 = 3/2, alpha = (1/3, 2/3),
    beta1 = (1, 0), beta2 = (-1, 1)::

        chi = dI / dt
        H2  = z + 3/4 f(t, z) dt + 3/2 g(t + dt) chi
        z1  = z + (f(t, z)/3 + 2/3 f(t + 3/4 dt, H2)) dt + g(t + dt) (dW - chi) + g(t) chi

    Args:
        dI: ``(B, D)`` the integral ``int_t^{t+dt} (W(s) - W(t)) ds`` of the same Brownian
            path as ``dW`` (see :func:`brownian_increments`).
        others: as :func:`em_step`. g is evaluated at ``z`` (additive noise: it must not
            depend on it).
    """
    chi = dI / dt
    k1 = f(t, z)
    g_end = _g(g, t + dt, z)
    g_start = _g(g, t, z)
    h2 = z + (0.75 * dt) * k1 + 1.5 * g_end * chi
    k2 = f(t + 0.75 * dt, h2)
    return z + dt * (k1 / 3.0 + (2.0 / 3.0) * k2) + g_end * (dW - chi) + g_start * chi


def brownian_increments(n_steps: int, shape: Sequence[int], dt: float,
                        generator: torch.Generator | None = None, with_integral: bool = False,
                        dtype: torch.dtype | None = None, device: torch.device | str | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Brownian increments for ``n_steps`` steps of size ``dt``.

    Returns:
        ``dW`` of shape ``(n_steps, *shape)``, ``~ N(0, dt)``; and, when ``with_integral``,
        ``dI = int (W(s) - W(t)) ds`` over each step, jointly Gaussian with dW
        (``dI = dt/2 (dW + dZ/sqrt 3)``, dZ independent); else None.
    """
    size = (int(n_steps), *(int(s) for s in shape))
    dW = torch.randn(size, generator=generator, dtype=dtype, device=device) * math.sqrt(dt)
    if not with_integral:
        return dW, None
    dZ = torch.randn(size, generator=generator, dtype=dtype, device=device) * math.sqrt(dt)
    return dW, (0.5 * dt) * (dW + dZ / math.sqrt(3.0))


def coarsen_increments(dW: torch.Tensor, dI: torch.Tensor | None, factor: int, dt: float
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Aggregate fine increments (step ``dt``) into steps of ``factor * dt`` on the same path.

    ``dW_c = sum_j dW_j``; ``dI_c = sum_j (dI_j + dt * S_j)`` with ``S_j = sum_{i<j} dW_i``
    (``W(s) - W(t)`` over the j-th fine step is the fine-step local part plus the value
    already reached at its start).

    Args:
        dW, dI: ``(n_steps, ...)``; ``n_steps`` must be a multiple of ``factor``.
    Returns:
        ``(n_steps // factor, ...)`` each (``dI_c`` None when ``dI`` is None).
    """
    n = dW.shape[0]
    if factor < 1 or n % factor:
        raise ConfigError(f"coarsen_increments: {n} steps is not a multiple of factor {factor}")
    w = dW.reshape(n // factor, factor, *dW.shape[1:])
    dW_c = w.sum(1)
    if dI is None:
        return dW_c, None
    start = torch.cumsum(w, 1) - w  # S_j: W at the start of fine step j, relative to the coarse start
    dI_c = (dI.reshape(w.shape) + dt * start).sum(1)
    return dW_c, dI_c


def _save_slots(n_steps: int, save_every: int | None, save_at: Sequence[int] | None) -> list[int]:
    """Step indices (0 = the initial state) whose states are stored, ascending and unique."""
    if save_at is not None:
        idx = sorted({int(k) for k in save_at})
        if not idx or idx[0] < 0 or idx[-1] > n_steps:
            raise ConfigError(f"integrate: save_at must lie in [0, n_steps={n_steps}], "
                              f"found {idx[:1]}..{idx[-1:]}")
        return idx
    if save_every is None or save_every < 1:
        raise ConfigError(f"integrate: save_every must be a positive integer, found {save_every!r}")
    return list(range(0, n_steps + 1, save_every))


#: Brownian numbers per generator draw in a rollout (see :func:`noise_chunk`)
NOISE_NUMBERS_PER_DRAW = 1 << 20


def noise_chunk(n_steps: int, batch: int, dim: int) -> int:
    """Steps of Brownian noise :func:`integrate` draws per generator call by default: about
    :data:`NOISE_NUMBERS_PER_DRAW` numbers. Other rollout loops draw in the same pieces, so
    that one generator state gives the same increments on every path (splitting the draws
    differently changes the numbers: torch's CPU ``randn`` fills blocks of 16)."""
    return max(1, min(int(n_steps), NOISE_NUMBERS_PER_DRAW // max(1, int(batch) * int(dim))))


def integrate(f: Drift, g: Diffusion, z0: torch.Tensor, t0: float, dt: float, n_steps: int,
              scheme: str = "em", save_every: int = 1, save_at: Sequence[int] | None = None,
              dW: torch.Tensor | None = None, dI: torch.Tensor | None = None,
              generator: torch.Generator | None = None, chunk: int | None = None,
              check_finite: bool = True, show_progress: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate ``dz = f dt + g dW`` from ``(t0, z0)`` with ``n_steps`` fixed steps ``dt``.

    The loop does the step and nothing else: Brownian increments are drawn ``chunk`` steps
    at a time (or sliced from ``dW``/``dI``), saved states are copied into one preallocated
    ``(n_saved, B, D)`` tensor, no host synchronisation happens until the loop ends. Memory
    is ``O(n_saved * B * D + chunk * B * D)``, independent of ``n_steps`` -- under
    ``torch.no_grad()``; with autograd on (gradients through the path) every step's graph is
    kept and memory grows with ``n_steps``, as it must.

    Args:
        f: drift ``f(t, z) -> (B, D)``; ``t`` a 0-dim tensor.
        g: diagonal diffusion, callable ``g(t, z)`` or a constant tensor ``(D,)``/``(B, D)``.
        z0: ``(B, D)`` initial states (B ensemble members batched in one tensor).
        t0: initial time; dt: step (> 0); n_steps: number of steps (>= 0).
        scheme: ``"em"``, ``"heun"`` or ``"sra1"`` (see :data:`SCHEMES`).
        save_every: store every k-th state, starting with z0 (ignored when ``save_at`` given).
        save_at: explicit step indices to store (0 = z0, n_steps = the final state).
        dW: optional ``(n_steps, B, D)`` increments (then no random numbers are drawn).
        dI: ``(n_steps, B, D)`` the ``I_(1,0)`` integrals matching ``dW``; required with
            ``dW`` for ``sra1``.
        generator: torch.Generator for the increments when ``dW`` is None.
        chunk: steps of noise drawn at once; default :func:`noise_chunk` (about 2^20 numbers).
        check_finite: after the loop, raise StabilityError if a saved state is not finite.
        show_progress: a progress bar over the steps.

    Returns:
        ``ts`` ``(n_saved,)`` (z's dtype and device) and ``zs`` ``(n_saved, B, D)``.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"integrate: unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    if z0.dim() != 2:
        raise ConfigError(f"integrate: z0 must be (B, D), found shape {tuple(z0.shape)}")
    if not (dt > 0) or not math.isfinite(dt):
        raise ConfigError(f"integrate: dt must be positive and finite, found {dt}")
    n_steps = int(n_steps)
    if n_steps < 0:
        raise ConfigError(f"integrate: n_steps must be >= 0, found {n_steps}")
    needs_integral = SCHEMES[scheme][2]
    if dW is not None:
        if tuple(dW.shape) != (n_steps, *z0.shape):
            raise ConfigError(f"integrate: dW must have shape {(n_steps, *z0.shape)}, "
                              f"found {tuple(dW.shape)}")
        if needs_integral and (dI is None or dI.shape != dW.shape):
            raise ConfigError(f"integrate: scheme {scheme!r} needs dI (the integrals of W over "
                              f"each step) of shape {tuple(dW.shape)} together with dW, found "
                              f"{None if dI is None else tuple(dI.shape)}")
    slots = _save_slots(n_steps, save_every, save_at)

    z = z0
    B, D = z0.shape
    zs = z0.new_empty((len(slots), B, D))
    nxt = 0                                   # next slot to fill; slots[nxt] is its step index
    if slots[0] == 0:
        zs[0].copy_(z0)
        nxt = 1
    next_step = slots[nxt] if nxt < len(slots) else -1
    if chunk is None:
        chunk = noise_chunk(n_steps, B, D)
    chunk = max(1, int(chunk))

    # noise and step times come in chunks of `chunk` steps: O(chunk) memory, one allocation
    # per chunk, and t is a 0-dim view handed to f/g without a per-step host->device copy
    noise_w, noise_i, times = None, None, None
    base, end = 0, 0                          # steps [base, end) are covered by the current chunk
    bar = progress(total=n_steps, desc=f"integrate ({scheme})", unit="step", enabled=show_progress)
    for k in range(n_steps):
        if k == end:
            base, end = k, min(n_steps, k + chunk)
            times = (t0 + dt * torch.arange(base, end, dtype=torch.float64)).to(z0.dtype).to(z0.device)
            if dW is None:
                noise_w, noise_i = brownian_increments(end - base, (B, D), dt, generator,
                                                       needs_integral, z0.dtype, z0.device)
            else:
                noise_w = dW[base:end]
                noise_i = None if dI is None else dI[base:end]
        j = k - base
        t = times[j]
        if scheme == "em":
            z = em_step(f, g, t, z, dt, noise_w[j])
        elif scheme == "heun":
            z = heun_step(f, g, t, z, dt, noise_w[j])
        else:
            z = sra1_step(f, g, t, z, dt, noise_w[j], noise_i[j])
        if k + 1 == next_step:
            zs[nxt].copy_(z)
            nxt += 1
            next_step = slots[nxt] if nxt < len(slots) else -1
        bar.update(1)
    bar.close()
    ts = torch.tensor([t0 + dt * k for k in slots], dtype=torch.float64).to(z0.dtype).to(z0.device)
    if check_finite and not bool(torch.isfinite(zs).all()):
        bad = int((~torch.isfinite(zs)).flatten(1).any(1).nonzero()[0])
        raise StabilityError(f"integrate ({scheme}): non-finite state at saved time "
                             f"t = {float(ts[bad]):g} (step {slots[bad]}, dt = {dt:g}); "
                             f"reduce dt or check the drift")
    return ts, zs
