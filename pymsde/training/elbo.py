"""The training objective: the amortized-reparametrization ELBO of docs/method.md section 6.

For a batch of ``B`` windows of ``M`` consecutive observations ``u_k`` at times ``t_k``
(one common step ``dt``), with the encoder's means / log-variances interpolated through time
by the model's GP posterior ``q`` (marginals ``N(m(t), diag exp l(t))``, drift
``f_q = m' - B (z - m)``, ``B = 0.5 (sigma^2 / exp(l) - l')``)::

    loglik   = mean over windows, samples, observations k and fine values of
               log N(u_k; decoder mean, decoder var)  at  z_k = m(t_k) + exp(l(t_k)/2) eps
    residual = c * mean over windows of
               (t_M - t_1) * mean over quadrature times and samples of
               0.5 * || (f_q(z, t) - g(z, t; mu, f(t))) / sigma ||^2,  z = m(t) + exp(l(t)/2) eps
    kl       = c * KL(weights)        (a hook, zero by default)
    loss     = -(loglik - beta * (residual + kl))

The factor ``c`` is the *balance* between the two terms (``residual_scale``, see
:func:`residual_factor`): the reference divides by the number of observations in the
training set (``"per_dataset"``); ``"elbo"`` divides by ``M * (fine values)``, which makes
``-loss`` the true ELBO of the window per fine value.

Quadrature: ``n_quad`` times in ``[t_1, t_M]``, either stratified (one uniform random time
in each of ``n_quad`` equal bins, a fresh draw per step: an unbiased estimate of the
integral that never aliases with the observation grid) or the bin midpoints. The forcing
``f`` is interpolated linearly at these times (``mu`` is constant per trajectory). The
times are shared by the windows of a batch (still unbiased for each window), so the GP is
evaluated once per step: for all windows, at the observation and quadrature times together.

``n_quad = 0`` is the final paper's rule (its ``n_tquad = 0``, ``visde/sde.py``
``_residual_norm``): the residual at the window's own ``M`` observation times, weighted
equally, ``(t_M - t_1) * mean_k r(t_k)`` (not the trapezoid rule: the end points weigh
``1/M`` each). No random times are drawn; ``f`` is used at the observation times as stored;
the residual's samples ``z`` are drawn independently of the likelihood's, as there.

Two options make a step cheaper where the decoder and encoder dominate (2-D fields; both
off by default, see docs/cost_2d.md):

- ``loglik_frames = K``: the likelihood at ``K`` of the ``M`` frames, drawn uniformly without
  replacement each step: an unbiased estimate of the likelihood term at ``K/M`` of the decoder's cost.
- ``encode_stride = s``: the posterior is conditioned on every ``s``-th observation of the window
  and its last one (:func:`encoded_frames`), so the encoder sees ``ceil((M-1)/s) + 1`` frames.
  This is not an estimator shortcut but a different variational family (``q`` amortized from
  fewer frames, its GP length floor one encoded step); the objective stays a lower bound and is
  estimated exactly as before, and the likelihood still scores every (or ``K`` random) frames at
  the GP's interpolated latents.

Randomness: either one ``torch.Generator`` (``generator``: the numbers follow the order of the
draws, so they depend on the batch) or keyed streams (``noise``, a :class:`WindowNoise`; what
training and validation use): what the windows of a batch share (the frame subset, the
quadrature jitter) comes from the stream ``(seed, step)``, each window's reparametrisation noise
from the stream ``(seed, step, the window's position in the global batch)``
(:mod:`pymsde.util.rng`). Then a window's numbers do not depend on which other windows are
evaluated with it, so a batch split over ranks draws what the whole batch draws in one process.

Everything returned is a tensor (no host synchronisation): log them in blocks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from pymsde.sde.forcing import interp_forcing
from pymsde.util import rng
from pymsde.util.errors import ConfigError

_LOG_2PI = math.log(2.0 * math.pi)

WeightKL = Callable[[torch.nn.Module], torch.Tensor]


def residual_factor(residual_scale: str | float, n_obs: int, window: int, n_fine: int) -> float:
    """The factor ``c`` multiplying the residual integral and the weight KL.

    Args:
        residual_scale: ``"per_dataset"`` -> ``1 / n_obs`` (reference); ``"elbo"`` ->
            ``1 / (window * n_fine)`` (true ELBO per fine value); a number -> that number.
        n_obs: observations in the training set (trajectories x times).
        window: observations per window ``M``.
        n_fine: fine-grid values per observation (``C * prod(grid)``).
    """
    if isinstance(residual_scale, str):
        if residual_scale == "per_dataset":
            return 1.0 / n_obs
        if residual_scale == "elbo":
            return 1.0 / (window * n_fine)
        raise ConfigError(f"residual_scale = {residual_scale!r}; expected 'per_dataset', 'elbo' or a number")
    return float(residual_scale)


def quadrature_times(n_quad: int, length: float, stratified: bool, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                     jitter: torch.Tensor | None = None) -> torch.Tensor:
    """``n_quad`` times in ``[0, length]``: bin midpoints, or one uniform draw per equal bin.

    Args:
        jitter: ``(n_quad,)`` the uniform draws in ``[0, 1)`` of the stratified times (keyed
            noise); None draws them from ``generator``.

    Returns:
        ``(n_quad,)`` tensor, ascending.
    """
    j = torch.arange(n_quad, dtype=dtype, device=device)
    if stratified:
        u = torch.rand(n_quad, generator=generator, dtype=dtype, device=device) if jitter is None else jitter
    else:
        u = torch.full((n_quad,), 0.5, dtype=dtype, device=device)
    return (j + u) * (length / n_quad)


def residual_times(n_quad: int, t_rel: torch.Tensor, stratified: bool,
                   generator: torch.Generator | None = None, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """The times of the residual quadrature, relative to the window's first observation.

    Args:
        n_quad: quadrature times; 0 means the window's observation times themselves.
        t_rel: ``(M,)`` the observation times minus the first (ascending, ``t_rel[0] = 0``).
        stratified, generator, jitter: see :func:`quadrature_times` (unused when ``n_quad = 0``).

    Returns:
        ``(Q,)`` ascending times in ``[0, t_rel[-1]]``: ``t_rel`` itself (``Q = M``) when
        ``n_quad = 0``, else :func:`quadrature_times` scaled to the window (``Q = n_quad``).
        The residual integral is ``t_rel[-1] * mean over these times`` in both cases.
    """
    if n_quad == 0:
        return t_rel
    return quadrature_times(n_quad, 1.0, stratified, generator, t_rel.dtype, t_rel.device, jitter) * t_rel[-1]


def encoded_frames(window: int, stride: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """The frames of a window the posterior is conditioned on: ``0, s, 2s, ...`` and ``M - 1``.

    Args:
        window: ``M``, observations per window.
        stride: ``s >= 1``; 1 means every frame (returns None).

    Returns:
        ``(M_e,)`` ascending int64 indices that include both ends of the window, or None.

    Raises:
        ConfigError: ``stride`` is not an integer >= 1.
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"encode_stride = {stride!r}; expected an integer >= 1")
    if stride == 1 or window <= 2:
        return None
    idx = list(range(0, window - 1, stride)) + [window - 1]
    return torch.tensor(idx, dtype=torch.long, device=device)


@dataclass(frozen=True)
class WindowNoise:
    """The keyed random numbers of one evaluation of the objective (:mod:`pymsde.util.rng`).

    Attributes:
        seed: the run's seed.
        step: the optimiser step (validation: 0).
        windows: the positions of this batch's windows in the *global* batch of the step, one per
            window (a rank holding windows 2 and 3 of a global batch of 4 passes ``(2, 3)``).
        kind: ``"train"`` or ``"val"``: the streams ``kind.shared`` and ``kind.window``.
    """

    seed: int
    step: int
    windows: tuple[int, ...]
    kind: str = "train"

    def shared(self):
        """The stream of what the windows of the batch share (frame subset, quadrature jitter)."""
        return rng.stream(self.seed, f"{self.kind}.shared", self.step, 0)

    def per_window(self) -> list:
        """One stream per window: its reparametrisation noise, likelihood first, then residual."""
        return [rng.stream(self.seed, f"{self.kind}.window", self.step, w) for w in self.windows]


def draw_noise(noise: WindowNoise | None, generator: torch.Generator | None, M: int, K: int, S: int, B: int,
               D: int, n_quad: int, stratified: bool, t_rel: torch.Tensor):
    """Every random number of :func:`elbo_terms`: the frame subset (None: all ``M`` frames), the
    likelihood's noise ``eps (S, K, B*D)``, the residual's times ``tau (Q,)`` and noise
    ``eps_q (S, Q, B, D)``.

    With ``noise``, window ``b`` draws ``(S, K + Q, D)`` numbers from its own stream (per sample:
    the ``K`` likelihood values, then the ``Q`` residual values); the frame subset, then the
    quadrature jitter come from the shared stream. Else everything comes from ``generator`` in
    the order frame subset, ``eps``, quadrature jitter, ``eps_q``.
    """
    dtype, device = t_rel.dtype, t_rel.device
    if noise is None:
        idx = torch.randperm(M, generator=generator, device=device)[:K] if K < M else None
        eps = torch.randn((S, K, B * D), generator=generator, dtype=dtype, device=device)
        tau = residual_times(n_quad, t_rel, stratified, generator)
        eps_q = torch.randn((S, tau.shape[0], B, D), generator=generator, dtype=dtype, device=device)
        return idx, eps, tau, eps_q
    if len(noise.windows) != B:
        raise ConfigError(f"elbo_terms: noise names {len(noise.windows)} windows for a batch of {B}")
    shared = noise.shared()
    idx = rng.subset(shared, M, K, device) if K < M else None
    jitter = rng.uniform(shared, (n_quad,), dtype, device) if n_quad and stratified else None
    tau = residual_times(n_quad, t_rel, stratified, jitter=jitter)
    Q = tau.shape[0]
    x = rng.normal_rows(noise.per_window(), (S, K + Q, D), dim=2, dtype=dtype, device=device)   # (S, K+Q, B, D)
    return idx, x[:, :K].reshape(S, K, B * D), tau, x[:, K:]


def gaussian_loglik(u: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Mean over all entries of ``log N(u; mean, var)`` (``var`` broadcastable to ``mean``)."""
    var = torch.broadcast_to(var, mean.shape)
    return -0.5 * (_LOG_2PI + torch.log(var) + (u - mean).square() / var).mean()


def condition_posterior(model, u: torch.Tensor, frames: torch.Tensor, t_rel: torch.Tensor, enc_idx: torch.Tensor | None):
    """Encode the windows' frames (all, or those of ``enc_idx``) and condition the GP posterior.

    Args:
        model: see :func:`elbo_terms`.
        u: ``(B, M, C, *grid)`` the windows; frames: ``u.flatten(0, 1)``.
        t_rel: ``(M,)`` times relative to the windows' first.
        enc_idx: the frames to encode (:func:`encoded_frames`), or None for all.

    Returns:
        the conditioned posterior (columns ``b * D + d``) and the latent size ``D``.
    """
    B = u.shape[0]
    if enc_idx is not None:
        frames, t_rel = u[:, enc_idx].flatten(0, 1), t_rel[enc_idx]
    Me = t_rel.shape[0]
    mean, logvar = model.encode(frames)                           # (B*Me, D) each
    D = mean.shape[-1]
    logvar = torch.broadcast_to(logvar, mean.shape)
    # The windows share their relative times, so one GP conditioning serves all of them:
    # the B windows' latent dimensions become B*D columns of one (Me, B*D) problem.
    mean_cols = mean.reshape(B, Me, D).transpose(0, 1).reshape(Me, B * D)
    logvar_cols = logvar.reshape(B, Me, D).transpose(0, 1).reshape(Me, B * D)
    return model.posterior.condition(t_rel, mean_cols, logvar_cols), D


def elbo_terms(model, u: torch.Tensor, t: torch.Tensor, mu: torch.Tensor | None = None,
               f: torch.Tensor | None = None, *, beta: float | torch.Tensor = 1.0,
               res_factor: float = 1.0, n_quad: int = 10, n_samples: int = 1,
               stratified: bool = True, generator: torch.Generator | None = None,
               weight_kl: WeightKL | None = None, loglik_frames: int | None = None,
               encode_stride: int = 1, noise: WindowNoise | None = None) -> dict[str, torch.Tensor]:
    """The ELBO terms of a batch of windows (module docstring), as 0-dim tensors.

    Args:
        model: a ``MultiscaleModel`` (``encode``, ``decode``, ``drift``, ``diffusion`` and a
            GP posterior ``model.posterior``; any module with the same methods works).
        u: ``(B, M, C, *grid)`` the windows' observations.
        t: ``(B, M)`` their times (uniform step, the same step in every window); any float
            dtype (float64 keeps the resolution of late times).
        mu: ``(B, n_mu)`` or None; f: ``(B, M, n_f)`` or None.
        beta: KL-annealing weight of the residual and KL terms.
        res_factor: the balance ``c`` (:func:`residual_factor`).
        n_quad, n_samples: quadrature times (0: the window's ``M`` observation times,
            deterministic, see the module docstring) and reparametrized samples per time.
        stratified: stratified random quadrature times (else the bin midpoints); unused
            when ``n_quad = 0``.
        generator: the source of every random number (quadrature times, eps) when ``noise``
            is None (then the numbers depend on the batch: see the module docstring).
        weight_kl: ``weight_kl(model) -> 0-dim tensor``, KL of priors on network weights.
        loglik_frames: decode only this many observations per window, drawn at random
            without replacement each step (an unbiased estimate of the likelihood term at a
            fraction of the decoder's cost); None = every observation.
        encode_stride: condition the posterior on every ``encode_stride``-th observation of
            the window and its last one (:func:`encoded_frames`); 1 = every observation.
        noise: keyed streams for every random number (:class:`WindowNoise`, one window
            position per window of ``u``); ``generator`` is then unused.

    Returns:
        dict with ``loss``, ``loglik``, ``residual`` and ``kl`` (0-dim tensors; ``residual``
        and ``kl`` already multiplied by ``res_factor``, not by ``beta``).
    """
    B, M = u.shape[:2]
    S = n_samples
    frames = u.flatten(0, 1)                                      # (B*M, C, *grid)
    # relative times in the model's dtype; ``t`` may be float64 so that late absolute times
    # (t ~ 1e4) keep their resolution before the subtraction
    t_rel = (t[0] - t[0, 0]).to(u.dtype)                          # (M,)
    length = t_rel[-1]
    post, D = condition_posterior(model, u, frames, t_rel, encoded_frames(M, encode_stride, u.device))

    # ---- likelihood at the observation times (all of them, or a random subset of K: K distinct
    # frames drawn uniformly, shared by the windows of the batch; the mean over them is an
    # unbiased estimate of the mean over the window, at K/M of the decoder cost)
    K = M if loglik_frames is None or loglik_frames >= M else loglik_frames
    # every random number at once; the quadrature times are drawn with them so that one GP
    # evaluation serves both sets of times (its cost is many small ops per call)
    idx, eps, tau, eps_q = draw_noise(noise, generator, M, K, S, B, D, n_quad, stratified, t_rel)
    t_obs, target = (t_rel, frames) if idx is None else (t_rel[idx], u[:, idx].flatten(0, 1))
    Q = tau.shape[0]                                              # n_quad, or M when n_quad = 0
    m_all, l_all, dm_all, dl_all = post.evaluate(torch.cat([t_obs, tau]))   # (K + Q, B*D)
    m_o, l_o = m_all[:K], l_all[:K]                               # (K, B*D)
    z_o = m_o + torch.exp(0.5 * l_o) * eps                        # (S, K, B*D)
    z_o = z_o.reshape(S, K, B, D).permute(0, 2, 1, 3).reshape(S * B * K, D)   # rows (s, b, k)
    x_mean, x_var = model.decode(z_o)                             # (S*B*K, C, *grid)
    if S > 1:
        target = target.unsqueeze(0).expand(S, *target.shape).flatten(0, 1)
    loglik = gaussian_loglik(target, x_mean, x_var)

    # ---- drift residual by quadrature
    dt = length / (M - 1)
    m_q, l_q, dm_q, dl_q = (x[K:].reshape(Q, B, D) for x in (m_all, l_all, dm_all, dl_all))
    sigma = model.diffusion(mu)                                   # (D,) or (B, D)
    sig2 = sigma.square()
    if sig2.dim() == 2:
        sig2 = sig2[None]                                         # (1, B, D)
    sd = torch.exp(0.5 * l_q)
    z_q = m_q + sd * eps_q                                        # (S, Q, B, D)
    # f_q = m' - B (z - m), B = 0.5 (sigma^2 / exp(l) - l'), and z - m = sd * eps
    f_q = dm_q - 0.5 * (sig2 * torch.exp(-l_q) - dl_q) * sd * eps_q
    # absolute times (Q, B) and forcing (Q, B, n_f): with n_quad = 0 the observations' own, as stored
    t_qb = t.transpose(0, 1) if n_quad == 0 else t[:, 0][None, :] + tau[:, None].to(t.dtype)
    t_abs = t_qb.to(u.dtype).expand(S, Q, B).reshape(-1)                                    # (S*Q*B,)
    mu_q = None if mu is None else mu[None, None].expand(S, Q, B, mu.shape[-1]).reshape(-1, mu.shape[-1])
    f_in = None
    if f is not None:
        f_tau = f.transpose(0, 1) if n_quad == 0 else interp_forcing(f, tau, dt)
        f_in = f_tau[None].expand(S, Q, B, f.shape[-1]).reshape(-1, f.shape[-1])
    g = model.drift(t_abs, z_q.reshape(-1, D), mu_q, f_in).reshape(S, Q, B, D)
    r = 0.5 * ((f_q - g).square() / sig2).sum(-1)                # (S, Q, B)
    residual = res_factor * length * r.mean()                     # mean over windows = mean over B

    if weight_kl is None:
        kl = torch.zeros((), dtype=u.dtype, device=u.device)
    else:
        kl = res_factor * weight_kl(model)
    loss = -(loglik - beta * (residual + kl))
    return {"loss": loss, "loglik": loglik, "residual": residual, "kl": kl}


class Objective(torch.nn.Module):
    """:func:`elbo_terms` of ``model`` as a module's ``forward`` (the unit that
    ``torch.nn.parallel.DistributedDataParallel`` wraps: one forward per step, then backward).

    Args:
        model: the model (a submodule: its parameters are the objective's).
        options: the keyword arguments of :func:`elbo_terms` fixed for the run (``res_factor``,
            ``n_quad``, ``n_samples``, ``stratified``, ``weight_kl``, ``loglik_frames``,
            ``encode_stride``).
    """

    def __init__(self, model: torch.nn.Module, **options):
        super().__init__()
        self.model = model
        self.options = options

    def forward(self, u, t, mu, f, beta, noise: WindowNoise) -> dict[str, torch.Tensor]:
        return elbo_terms(self.model, u, t, mu, f, beta=beta, noise=noise, **self.options)
