"""Ensemble forecasts of a learned multiscale model on the fine grid (docs/method.md section 7).

From an initial observation ``u0``: sample ``z0 = m + exp(l/2) eps`` from the encoder
(``n_samples`` members per observation), integrate the prior SDE for the whole ensemble in
one ``(B * n_samples, D)`` tensor, keep the latent states at the output times only, decode
them, and reduce over the members (mean, standard deviation, quantiles).

Cost model (Burgers 1-D sizes): a drift step costs ~1 MFLOP per member, a decode ~15 MFLOP
per member and output time. So the latent rollout stores only the output times
(``t_out``), decoding happens once per output time in batches of ``decode_batch`` rows, the
members' fine fields are reduced on the fly, and they are kept only at ``sample_index``
when ``return_samples`` is set. ``decode=False`` skips decoding altogether (latent paths
only).

The latent rollout is :func:`pymsde.forecast.rollout.rollout` (torch or an accelerated
backend, the same noise for a seed on both).

Noise: with ``seed``, member ``s`` of initial observation ``b`` draws its initial noise and its
Brownian increments from its own stream ``(seed, b + batch_offset, s + sample_offset)``
(:class:`~pymsde.forecast.rollout.MemberNoise`), so an ensemble computed in chunks -- members
``0..k-1`` with ``sample_offset=0``, then ``k..n-1`` with ``sample_offset=k``, in one process or
on several -- has exactly the members (latent paths, decoded samples) of the one-piece
ensemble. With ``generator``, every number is drawn from that torch generator in turn (the
numbers depend on the ensemble's size).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from pymsde.forecast.rollout import MemberNoise, rollout
from pymsde.sde.forcing import LinearForcing
from pymsde.sde.solvers import get_solver
from pymsde.util import rng
from pymsde.util.errors import ConfigError, DataError, check_seed


@dataclass
class Forecast:
    """An ensemble forecast. Shapes are for one initial observation; a batch of ``B``
    observations adds a leading ``B`` axis to every field but ``t`` and ``quantile_levels``.

    Attributes:
        t: ``(n_out,)`` output times.
        mean: ``(n_out, C, *grid)`` ensemble mean of the decoded fields (None if not decoded).
        std: ``(n_out, C, *grid)`` ensemble standard deviation (ddof = 1) of the decoded means;
            with ``observation_noise`` the decoder variance is added (law of total variance).
        quantiles: ``(n_q, n_out, C, *grid)`` empirical quantiles of the decoded means over
            the members (linear interpolation), at ``quantile_levels``.
        quantile_levels: the levels, e.g. ``(0.05, 0.5, 0.95)``.
        macro: ``(n_samples, n_out, C, *coarse)`` macroscale latent paths ``zM``.
        micro: ``(n_samples, n_out, micro_dim)`` microscale latent paths ``zm``.
        samples: ``(n_samples, n_sample_times, C, *grid)`` decoded members at
            ``t[sample_index]`` when ``return_samples``; else None.
        sample_index: ``(n_sample_times,)`` indices into ``t`` of ``samples``' times.
        info: solver, dt, n_steps, backend, seeds, timings (JSON-safe).
    """

    t: torch.Tensor
    mean: torch.Tensor | None
    std: torch.Tensor | None
    quantiles: torch.Tensor | None
    quantile_levels: tuple[float, ...]
    macro: torch.Tensor
    micro: torch.Tensor
    samples: torch.Tensor | None = None
    sample_index: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def output_steps(t_out: np.ndarray, t0: float, dt: float, tol: float = 1e-3) -> np.ndarray:
    """Step indices ``k`` with ``t0 + k dt = t_out`` (within ``tol`` steps).

    The default tolerance admits times stored in float32 (rounding ~6e-8 of t: 6e-5 of a step
    for 1000 steps over [0, 1], 5e-4 for 10^4 steps over [0, 10]), like the data layer's
    uniform-step check (:data:`pymsde.data.trajectories.DT_RTOL`).

    Raises:
        ConfigError: ``t_out`` not strictly increasing, before ``t0``, or off the step grid.
    """
    t_out = np.asarray(t_out, dtype=np.float64).reshape(-1)
    if t_out.size == 0:
        raise ConfigError("forecast: t_out is empty; expected at least one output time")
    if t_out.size > 1 and not np.all(np.diff(t_out) > 0):
        raise ConfigError("forecast: t_out must be strictly increasing")
    x = (t_out - t0) / dt
    k = np.rint(x)
    if k[0] < 0:
        raise ConfigError(f"forecast: output time {t_out[0]:g} is before the initial time t0 = {t0:g}")
    off = np.abs(x - k)
    if np.any(off > tol):
        j = int(np.argmax(off))
        raise ConfigError(f"forecast: output time t_out[{j}] = {t_out[j]:.9g} is not on the step grid "
                          f"t0 + k dt (t0 = {t0:g}, dt = {dt:g}); choose dt dividing the output spacing")
    return k.astype(np.int64)


def _model_ref(model) -> torch.Tensor:
    ref = next(model.parameters(), None)
    return ref if ref is not None else torch.zeros(())


def _rows(x: Any, n_batch: int, width: int, name: str, ref: torch.Tensor) -> torch.Tensor | None:
    """mu-like input -> ``(n_batch, width)`` or None."""
    if x is None:
        if width:
            raise DataError(f"forecast: the model takes {name} with {width} values per trajectory, "
                            f"but {name} is None")
        return None
    x = torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
    if x.dim() == 1:
        x = x.unsqueeze(0).expand(n_batch, -1)
    if tuple(x.shape) != (n_batch, width):
        raise DataError(f"forecast: {name} must be ({width},) or ({n_batch}, {width}), "
                        f"found {tuple(x.shape)}")
    return x


def forecast(model, u0: Any, t_out: Any, mu: Any = None, f: Any = None, *, f_times: Any = None,
             t0: float | None = None, n_samples: int = 64, solver: str = "em",
             dt: float | None = None, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
             return_samples: bool = False, sample_index: Sequence[int] | None = None,
             decode: bool = True, observation_noise: bool = False, decode_batch: int = 2048,
             seed: int | None = None, generator: torch.Generator | None = None,
             backend: str = "torch", show_progress: bool = False, check_finite: bool = True,
             sample_offset: int = 0, batch_offset: int = 0) -> Forecast:
    """Ensemble forecast from initial observation(s) ``u0``.

    Args:
        model: a :class:`~pymsde.model.MultiscaleModel` (or anything with its ``config``,
            ``encode``, ``decode``, ``drift``, ``diffusion``, ``split_latent`` and optionally
            ``drift_params``).
        u0: ``(C, *grid)`` one observation, or ``(B, C, *grid)`` a batch (numpy or torch).
        t_out: ``(n_out,)`` output times, strictly increasing, on the step grid ``t0 + k dt``.
        mu: ``(n_mu,)`` or ``(B, n_mu)`` parameters (constant in time).
        f: forcing samples ``(n_tf, n_f)`` or ``(B, n_tf, n_f)`` at ``f_times`` (linearly
            interpolated in time), or a :class:`~pymsde.sde.forcing.LinearForcing`.
        f_times: ``(n_tf,)`` times of the forcing samples; default ``t_out``.
        t0: time of ``u0``; default ``t_out[0]``.
        n_samples: ensemble members per observation (>= 1).
        solver: ``"em"`` (the paper's Euler-Maruyama), ``"heun"``, ``"sra1"`` or a Solver.
        dt: integration step; default the smallest spacing of ``[t0, *t_out]`` (the data step
            when ``t_out`` are the data times), refined as the span ``t_out[-1] - t0`` over its
            number of such steps.
        quantiles: levels in [0, 1] for :attr:`Forecast.quantiles` (empty: none).
        return_samples: keep the decoded members at ``sample_index``.
        sample_index: indices into ``t_out`` of the kept members; default all output times.
        decode: False returns the latent paths only (no decoding cost).
        observation_noise: add the decoder's variance to ``std``.
        decode_batch: rows per decoder call (memory vs call overhead).
        seed / generator: the random source of ``z0`` and the increments: a seed keys one
            stream per member (see the module docstring); a generator is drawn from in turn;
            neither: torch's global RNG (drawn from in turn).
        backend: ``"torch"``, ``"julia"`` or ``"auto"`` (see the module docstring).
        show_progress: a progress bar over the integration steps.
        check_finite: raise StabilityError when a latent state becomes non-finite (False:
            return it, e.g. to score a diverged model as infinitely wrong).
        sample_offset, batch_offset: with ``seed``, the index of this call's first member and
            first initial observation in a larger ensemble computed in chunks.

    Returns:
        :class:`Forecast` (torch tensors on the model's device, detached).
    """
    ref = _model_ref(model)
    cfg = model.config
    fine_shape = tuple(cfg.fine_shape)
    u = torch.as_tensor(u0, dtype=ref.dtype, device=ref.device)
    single = u.dim() == 1 + len(fine_shape)
    if single:
        u = u.unsqueeze(0)
    if tuple(u.shape[1:]) != (cfg.channels, *fine_shape):
        raise DataError(f"forecast: u0 must be (C, *grid) = {(cfg.channels, *fine_shape)} or batched, "
                        f"found {tuple(torch.as_tensor(u0).shape)}")
    if n_samples < 1:
        raise ConfigError(f"forecast: n_samples must be >= 1, found {n_samples}")
    levels = tuple(float(q) for q in quantiles)
    if any(not 0.0 <= q <= 1.0 for q in levels):
        raise ConfigError(f"forecast: quantile levels must lie in [0, 1], found {levels}")
    s = get_solver(solver)
    t_out_np = np.asarray(torch.as_tensor(t_out).cpu(), dtype=np.float64).reshape(-1)
    t0 = float(t_out_np[0]) if t0 is None else float(t0)
    if dt is None:
        gaps = np.diff(np.concatenate([[t0], t_out_np]))
        gaps = gaps[gaps > 0]
        if gaps.size == 0:
            raise ConfigError("forecast: cannot infer dt from t_out (a single output time at t0); pass dt")
        # the smallest gap fixes the number of steps; the step itself comes from the whole span,
        # so rounding in stored times (float32 files) hardly biases it
        span = t_out_np[-1] - t0
        n_span = int(np.rint(span / gaps.min()))
        dt = float(span / n_span) if n_span >= 1 else float(gaps.min())   # else t0 after t_out: refused below
    steps = output_steps(t_out_np, t0, float(dt))
    n_steps = int(steps[-1])
    n_batch, S = u.shape[0], int(n_samples)
    N = n_batch * S
    noise = None
    if generator is None and seed is not None:
        for name, v in (("sample_offset", sample_offset), ("batch_offset", batch_offset)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ConfigError(f"forecast: {name} = {v!r}; expected an integer >= 0")
        noise = MemberNoise(check_seed(seed, "forecast: seed"), n_batch, S, int(batch_offset), int(sample_offset))

    mu_b = _rows(mu, n_batch, cfg.n_mu, "mu", ref) if cfg.n_mu else None
    forcing = None
    if cfg.n_f:
        if f is None:
            raise DataError(f"forecast: the model takes n_f = {cfg.n_f} forcing values but f is None")
        if not isinstance(f, LinearForcing):
            f = LinearForcing.from_samples(t_out_np if f_times is None else f_times, f,
                                           dtype=ref.dtype, device=ref.device)
        if f.values.shape[-1] != cfg.n_f or (f.values.dim() == 3 and f.values.shape[0] != n_batch):
            raise DataError(f"forecast: forcing values must be (n_t, {cfg.n_f}) or ({n_batch}, n_t, "
                            f"{cfg.n_f}), found {tuple(f.values.shape)}")
        forcing = f.expand(S)

    with torch.no_grad():
        m, logvar = model.encode(u)                                          # (B, D) each
        eps = (torch.randn((N, m.shape[1]), generator=generator, dtype=m.dtype, device=m.device) if noise is None
               else noise.initial(m.shape[1], m.dtype, m.device))
        z0 = m.repeat_interleave(S, 0) + torch.exp(0.5 * logvar).repeat_interleave(S, 0) * eps
        mu_n = None if mu_b is None else mu_b.repeat_interleave(S, 0)
        sigma = model.diffusion(mu_n)
        source = model.drift_params().detach() if hasattr(model, "drift_params") else model
        zs = rollout(source, sigma, z0, t0, float(dt), n_steps, s.scheme, steps, mu_n, forcing, generator,
                     backend, show_progress, check_finite, noise=noise)      # (n_out, N, D)
        n_out = zs.shape[0]
        zM, zm = model.split_latent(zs.reshape(n_out * N, -1))
        macro = zM.reshape(n_out, n_batch, S, *zM.shape[1:]).movedim(0, 2)  # (B, S, n_out, C, *coarse)
        micro = zm.reshape(n_out, n_batch, S, zm.shape[1]).movedim(0, 2)
        mean = std = qs = samples = None
        idx = None
        if decode:
            idx = np.arange(n_out) if sample_index is None else np.asarray(sample_index, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= n_out):
                raise ConfigError(f"forecast: sample_index must lie in [0, {n_out}), found "
                                  f"[{idx.min()}, {idx.max()}]")
            if np.unique(idx).size != idx.size:
                raise ConfigError(f"forecast: sample_index repeats an output time ({idx.tolist()}); "
                                  f"expected distinct indices")
            mean, std, qs, samples = _decode_reduce(model, zs, n_batch, S, levels, observation_noise,
                                                    decode_batch, idx if return_samples else None)
    fc = Forecast(t=torch.as_tensor(t_out_np, dtype=ref.dtype, device=ref.device), mean=mean, std=std, quantiles=qs,
                  quantile_levels=levels, macro=macro, micro=micro, samples=samples,
                  sample_index=idx if return_samples else None,
                  info={"solver": s.scheme, "dt": float(dt), "n_steps": n_steps, "t0": t0,
                        "n_samples": S, "backend": backend, "seed": seed,
                        "noise": "torch generator" if noise is None else rng.SCHEME,
                        "sample_offset": int(sample_offset), "batch_offset": int(batch_offset),
                        "drift": "model.drift" if source is model else "model.drift.multiscale_drift"})
    if single:
        for name in ("mean", "std", "macro", "micro", "samples"):
            val = getattr(fc, name)
            if val is not None:
                setattr(fc, name, val[0])
        if fc.quantiles is not None:
            fc.quantiles = fc.quantiles[:, 0]
    return fc


def _decode_reduce(model, zs: torch.Tensor, n_batch: int, S: int, levels: tuple[float, ...],
                   observation_noise: bool, decode_batch: int, keep: np.ndarray | None):
    """Decode ``zs (n_out, B*S, D)`` a few output times at a time and reduce over members.

    Returns mean/std ``(B, n_out, C, *grid)``, quantiles ``(n_q, B, n_out, C, *grid)``,
    samples ``(B, S, n_keep, C, *grid)`` or None.
    """
    n_out, N, D = zs.shape
    rows = max(1, int(decode_batch))
    per_call = max(1, rows // N)                     # output times reduced together
    keep_slot = {} if keep is None else {int(k): i for i, k in enumerate(keep)}
    mean = std = qs = samples = None
    for a in range(0, n_out, per_call):
        b = min(n_out, a + per_call)
        flat = zs[a:b].reshape((b - a) * N, D)
        # at most `rows` rows per decoder call (its activations are the memory peak)
        parts = [model.decode(flat[i:i + rows]) for i in range(0, flat.shape[0], rows)]
        x, var = parts[0]
        if len(parts) > 1:
            x = torch.cat([p[0] for p in parts])
            if torch.is_tensor(var) and var.dim() == x.dim() and var.shape[0] == parts[0][0].shape[0]:
                var = torch.cat([p[1] for p in parts])       # a variance per row; else one per field
        x = x.reshape(b - a, n_batch, S, *x.shape[1:]).movedim(0, 2)       # (B, S, nt, C, *grid)
        if mean is None:
            shape = (n_batch, n_out, *x.shape[3:])
            mean = x.new_empty(shape)
            std = x.new_empty(shape)
            qs = x.new_empty((len(levels), *shape)) if levels else None
            if keep is not None:
                samples = x.new_empty((n_batch, S, len(keep), *x.shape[3:]))
        mean[:, a:b] = x.mean(1)
        v = x.var(1, unbiased=True) if S > 1 else torch.zeros_like(x[:, 0])
        if observation_noise:
            var = torch.as_tensor(var, dtype=x.dtype, device=x.device)
            if var.dim() == x.dim() - 2:                 # per sample: (nt*N, C, *grid)
                var = var.reshape(b - a, n_batch, S, *var.shape[1:]).movedim(0, 2).mean(1)
            v = v + var
        std[:, a:b] = v.sqrt()
        if levels:
            q = torch.tensor(levels, dtype=x.dtype, device=x.device)
            qs[:, :, a:b] = torch.quantile(x, q, dim=1)
        for k in range(a, b):
            i = keep_slot.get(k)
            if i is not None:
                samples[:, :, i] = x[:, :, k - a]
    return mean, std, qs, samples
