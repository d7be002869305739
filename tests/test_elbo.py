"""The objective (docs/method.md section 6): closed-form expectations, normalisation, batching."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from pymsde.data.grid import Grid
from pymsde.sde.forcing import interp_forcing
from pymsde.training.elbo import (elbo_terms, gaussian_loglik, quadrature_times,
                                   residual_factor)
from pymsde.model import GPPosterior, MultiscaleModel, posterior_drift
from pymsde.util.errors import ConfigError


class LinearToy(nn.Module):
    """A linear-Gaussian model with the MultiscaleModel interface, for closed-form expectations.

    ``D`` latent dimensions, each observed on ``s`` fine points (``u = z`` there, plus noise
    of variance ``r``); encoder = block average with a fixed log-variance; drift
    ``g = a * z + b + c * f`` (diagonal, ``f`` a scalar forcing); constant ``sigma``.
    """

    def __init__(self, D=3, s=4, logv=-3.0, r=0.05):
        super().__init__()
        self.D, self.s, self.r = D, s, r
        self.posterior = GPPosterior(hidden=(8,), noise_init=1e-3)
        self.a = nn.Parameter(torch.linspace(-1.0, -2.0, D))
        self.b = nn.Parameter(torch.linspace(0.1, 0.3, D))
        self.c = nn.Parameter(torch.tensor(0.7))
        self.sigma = nn.Parameter(torch.linspace(0.3, 0.6, D))
        self.logv = nn.Parameter(torch.full((D,), logv))

    def encode(self, u):
        mean = u.reshape(u.shape[0], self.D, self.s).mean(-1)
        return mean, self.logv.expand_as(mean)

    def decode(self, z):
        mean = z.repeat_interleave(self.s, dim=1)[:, None, :]
        return mean, torch.full((1, self.D * self.s), self.r, dtype=z.dtype)

    def drift(self, t, z, mu=None, f=None):
        g = self.a * z + self.b
        return g if f is None else g + self.c * f

    def diffusion(self, mu=None):
        return self.sigma


def _toy_batch(B=2, M=9, D=3, s=4, dt=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, M, 1, D * s, generator=g, dtype=torch.float64) * 0.3
    t = (torch.arange(M, dtype=torch.float64) * dt)[None] + torch.tensor([[0.0], [1.3]], dtype=torch.float64)[:B]
    f = (0.2 + 0.8 * t)[..., None]                          # linear in time: interpolation is exact
    return u, t, f


def test_residual_factor_balances():
    assert residual_factor("per_dataset", n_obs=8008, window=128, n_fine=1000) == pytest.approx(1 / 8008)
    assert residual_factor("elbo", n_obs=8008, window=128, n_fine=1000) == pytest.approx(1 / 128000)
    assert residual_factor(0.25, n_obs=1, window=2, n_fine=3) == 0.25
    with pytest.raises(ConfigError, match="residual_scale"):
        residual_factor("per_window", 1, 2, 3)


def test_quadrature_times_stratified_one_per_bin_and_midpoints():
    g = torch.Generator().manual_seed(1)
    tau = quadrature_times(10, 2.5, True, g, torch.float64)
    bins = torch.floor(tau / 0.25)
    assert torch.equal(bins, torch.arange(10, dtype=torch.float64))
    mid = quadrature_times(4, 2.0, False, dtype=torch.float64)
    assert torch.allclose(mid, torch.tensor([0.25, 0.75, 1.25, 1.75], dtype=torch.float64))
    # stratified sampling is unbiased for the integral of t^2 over [0, 1]: 1/3
    tau = quadrature_times(10, 1.0, True, g, torch.float64)
    est = torch.stack([quadrature_times(10, 1.0, True, g, torch.float64).square().mean() for _ in range(2000)])
    assert est.mean().item() == pytest.approx(1 / 3, abs=3 * est.std().item() / math.sqrt(2000) + 1e-12)


def test_interp_forcing_is_exact_for_linear_forcing():
    dt = 0.1
    k = torch.arange(6, dtype=torch.float64)
    f = torch.stack([1.0 + 2.0 * k * dt, -3.0 * k * dt], -1)[None].repeat(2, 1, 1)   # (B=2, M=6, 2)
    f[1] += 5.0
    tau = torch.tensor([0.0, 0.05, 0.23, 0.5], dtype=torch.float64)
    got = interp_forcing(f, tau, dt)                                                  # (Q, B, 2)
    want0 = torch.stack([1.0 + 2.0 * tau, -3.0 * tau], -1)
    assert torch.allclose(got[:, 0], want0, atol=1e-14)
    assert torch.allclose(got[:, 1], want0 + 5.0, atol=1e-14)


def test_gaussian_loglik_matches_formula():
    g = torch.Generator().manual_seed(0)
    u, m = torch.randn(5, 1, 7, generator=g, dtype=torch.float64), torch.randn(5, 1, 7, generator=g, dtype=torch.float64)
    var = torch.rand(1, 7, generator=g, dtype=torch.float64) + 0.1
    from scipy.stats import norm
    want = norm.logpdf(u.numpy(), m.numpy(), np.sqrt(np.broadcast_to(var.numpy(), u.shape))).mean()
    assert gaussian_loglik(u, m, var).item() == pytest.approx(want, rel=1e-12)


def _closed_form(model, u, t, f, res_factor):
    """E_q of both terms in closed form (midpoint quadrature), window by window."""
    B, M = u.shape[:2]
    D, s, r = model.D, model.s, model.r
    ll, res = [], []
    for b in range(B):
        mean, logvar = model.encode(u[b].flatten(0, 1))
        post = model.posterior.condition(t[b], mean, logvar)
        m, l, _, _ = post.evaluate(t[b])                           # (M, D)
        v = l.exp()
        x = u[b].reshape(M, D, s)
        # E log N(u; z, r) with z ~ N(m, v): -(1/2)(log 2 pi r + ((u - m)^2 + v) / r)
        ll.append((-0.5 * (math.log(2 * math.pi * r) + ((x - m[..., None]) ** 2 + v[..., None]) / r)).mean())
        length = t[b, -1] - t[b, 0]
        tau = t[b, 0] + (torch.arange(10, dtype=t.dtype) + 0.5) / 10 * length
        m, l, dm, dl = post.evaluate(tau)
        v = l.exp()
        Bq = 0.5 * (model.sigma ** 2 / v - dl)
        fq = (0.2 + 0.8 * tau)[:, None]
        # f_q - g = (m' - a m - b - c f) - (B + a)(z - m)
        mean_part = dm - (model.a * m + model.b + model.c * fq)
        e = 0.5 * ((mean_part ** 2 + (Bq + model.a) ** 2 * v) / model.sigma ** 2).sum(-1)
        res.append(res_factor * length * e.mean())
    return torch.stack(ll).mean(), torch.stack(res).mean()


@pytest.mark.parametrize("loglik_frames", [None, 4])
def test_elbo_terms_match_closed_form_expectations(loglik_frames):
    """Both terms agree with their closed forms; decoding a random subset of the frames
    (``loglik_frames``) leaves the likelihood estimate unbiased."""
    torch.manual_seed(0)
    model = LinearToy().double()
    u, t, f = _toy_batch()
    c = 0.37
    want_ll, want_res = _closed_form(model, u, t, f, c)
    g = torch.Generator().manual_seed(3)
    runs = []
    # a random subset of frames adds the frame-to-frame spread of the likelihood: more, smaller runs
    n_runs, n_samples, precision = (40, 200, 5e-3) if loglik_frames is None else (400, 20, 2e-2)
    with torch.no_grad():
        for _ in range(n_runs):
            got = elbo_terms(model, u, t, None, f, beta=0.5, res_factor=c, n_quad=10, n_samples=n_samples,
                             stratified=False, generator=g, loglik_frames=loglik_frames)
            runs.append([got["loglik"].item(), got["residual"].item()])
            assert got["kl"].item() == 0.0
            assert got["loss"].item() == pytest.approx(-(got["loglik"] - 0.5 * got["residual"]).item(), rel=1e-12)
    runs = np.asarray(runs)
    mean, se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(len(runs))
    # Monte Carlo estimates agree with the closed form within 4 standard errors, and the
    # standard errors are small enough (< 0.5 %, 2 % with a subset of frames) for this to be a
    # sharp check
    for got_v, want_v, err in zip(mean, (want_ll.item(), want_res.item()), se):
        assert err < precision * abs(want_v)
        assert abs(got_v - want_v) < 4 * err


def test_elbo_weight_kl_hook_is_scaled_and_annealed():
    model = LinearToy().double()
    u, t, f = _toy_batch()
    hook = lambda m: (m.a ** 2).sum()  # noqa: E731
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    plain = elbo_terms(model, u, t, None, f, beta=0.25, res_factor=0.1, generator=g1)
    with_kl = elbo_terms(model, u, t, None, f, beta=0.25, res_factor=0.1, generator=g2, weight_kl=hook)
    assert with_kl["kl"].item() == pytest.approx(0.1 * (model.a ** 2).sum().item(), rel=1e-12)
    assert with_kl["loss"].item() == pytest.approx(plain["loss"].item() + 0.25 * with_kl["kl"].item(), rel=1e-12)


def test_batched_windows_equal_window_by_window_reference():
    """The (M, B*D) batched evaluation equals an independent per-window computation that uses
    the model's own posterior drift, with the same random numbers."""
    torch.manual_seed(0)
    grid = Grid((40,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, (4,), micro_dim=2, encoder_channels=(2, 4), drift_hidden=(8,),
                                  micro_hidden=(8,)).double()
    B, M, Q, S = 3, 12, 5, 2
    g = torch.Generator().manual_seed(5)
    u = torch.randn(B, M, 1, 40, generator=g, dtype=torch.float64) * 0.2
    t = (torch.arange(M, dtype=torch.float64) * 0.01)[None] + torch.tensor([[0.0], [0.5], [0.9]], dtype=torch.float64)
    c = 0.01
    gen = torch.Generator().manual_seed(11)
    got = elbo_terms(model, u, t, beta=1.0, res_factor=c, n_quad=Q, n_samples=S, generator=gen)

    # replay the random numbers in elbo_terms' order: eps (obs), quadrature jitter, eps (quad)
    D = model.latent_dim
    rep = torch.Generator().manual_seed(11)
    eps_o = torch.randn((S, M, B * D), generator=rep, dtype=torch.float64)
    jitter = torch.rand(Q, generator=rep, dtype=torch.float64)
    eps_q = torch.randn((S, Q, B, D), generator=rep, dtype=torch.float64)
    ll, res = [], []
    sigma = model.diffusion()
    for b in range(B):
        mean, logvar = model.encode(u[b])
        post = model.posterior.condition(t[b], mean, logvar.expand_as(mean))
        m, l, _, _ = post.evaluate(t[b])
        for s_ in range(S):
            z = m + torch.exp(0.5 * l) * eps_o[s_, :, b * D:(b + 1) * D]
            xm, xv = model.decode(z)
            ll.append(torch.distributions.Normal(xm, xv.sqrt()).log_prob(u[b]).mean())
        length = t[b, -1] - t[b, 0]
        tau = t[b, 0] + (torch.arange(Q, dtype=torch.float64) + jitter) / Q * length
        m, l, dm, dl = post.evaluate(tau)
        for s_ in range(S):
            z = m + torch.exp(0.5 * l) * eps_q[s_, :, b]
            fq = post.drift(z, tau, sigma)
            assert torch.allclose(fq, posterior_drift(z, m, l, dm, dl, sigma))
            gq = model.drift(tau, z)
            res.append(c * length * (0.5 * ((fq - gq) / sigma).square().sum(-1)).mean())
    assert got["loglik"].item() == pytest.approx(torch.stack(ll).mean().item(), rel=1e-10)
    assert got["residual"].item() == pytest.approx(torch.stack(res).mean().item(), rel=1e-10)


# ----------------------------------------------------------------------------- n_quad = 0

class _FixedPosterior:
    """A GP stand-in: m = 0, log-variance 0 (sd 1) and zero derivatives at any time."""

    def condition(self, t_rel, mean_cols, logvar_cols):
        self.cols = mean_cols.shape[1]
        return self

    def evaluate(self, times):
        z = torch.zeros(times.shape[0], self.cols, dtype=times.dtype)
        return z, z, z, z


class KnownIntegrand(nn.Module):
    """A model whose residual integrand is a known function of time, whatever the samples.

    Posterior ``m = 0, l = 0`` gives ``f_q = -sigma^2 eps / 2``; the drift
    ``g = -sigma^2 z / 2 + h(t) + f`` with ``z = eps`` leaves ``f_q - g = -(h(t) + f)``, so the
    integrand is ``r(t) = 0.5 sum_d (h_d(t) + f(t))^2 / sigma_d^2``.
    """

    sigma = torch.tensor([1.0, 0.5], dtype=torch.float64)

    def __init__(self):
        super().__init__()
        self.posterior = _FixedPosterior()

    @staticmethod
    def h(t):
        return torch.stack([torch.sin(3.0 * t) + t ** 2, torch.cos(t)], -1)

    def encode(self, u):
        return torch.zeros(u.shape[0], 2, dtype=u.dtype), torch.zeros(u.shape[0], 2, dtype=u.dtype)

    def decode(self, z):
        return torch.zeros(z.shape[0], 1, 3, dtype=z.dtype), torch.ones(1, 3, dtype=z.dtype)

    def drift(self, t, z, mu=None, f=None):
        return -0.5 * self.sigma ** 2 * z + self.h(t) + f

    def diffusion(self, mu=None):
        return self.sigma


def test_n_quad_zero_is_the_equal_weight_rule_on_the_observation_grid():
    """With ``n_quad = 0`` the residual of a known integrand is ``T * mean_k r(t_k)`` over the
    window's observation times (the paper's rule, not the trapezoid), for any seed or setting,
    with the forcing taken as stored at those times."""
    model = KnownIntegrand()
    B, M, dt = 2, 7, 0.1
    t = (torch.arange(M, dtype=torch.float64) * dt)[None] + torch.tensor([[0.0], [0.45]], dtype=torch.float64)
    u = torch.zeros(B, M, 1, 3, dtype=torch.float64)
    f = torch.rand(B, M, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # not linear in t
    r = 0.5 * ((model.h(t) + f) ** 2 / model.sigma ** 2).sum(-1)                              # (B, M)
    T = (t[:, -1] - t[:, 0])[:, None]
    want = (0.3 * T * r.mean(1, keepdim=True)).mean().item()
    trapezoid = (0.3 * T * (r[:, 1:] + r[:, :-1]).mean(1, keepdim=True) / 2).mean().item()
    assert abs(want - trapezoid) > 1e-3 * abs(want)          # the two rules are told apart here
    for seed, stratified in ((0, True), (1, False), (2, True)):
        got = elbo_terms(model, u, t, None, f, res_factor=0.3, n_quad=0, n_samples=3, stratified=stratified,
                         generator=torch.Generator().manual_seed(seed))
        assert got["residual"].item() == pytest.approx(want, rel=1e-12)


def test_n_quad_zero_loss_is_deterministic_and_matches_a_window_by_window_reference():
    """With ``n_quad = 0`` nothing but the reparametrization noise is random: the same
    generator state gives the same loss bit for bit (stratified or not, no times drawn), and the
    batched terms equal a per-window computation at the observation times with the same noise."""
    torch.manual_seed(0)
    grid = Grid((40,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, (4,), micro_dim=2, encoder_channels=(2, 4), drift_hidden=(8,),
                                  micro_hidden=(8,)).double()
    B, M, S = 2, 9, 2
    g = torch.Generator().manual_seed(5)
    u = torch.randn(B, M, 1, 40, generator=g, dtype=torch.float64) * 0.2
    t = (torch.arange(M, dtype=torch.float64) * 0.01)[None] + torch.tensor([[0.0], [0.5]], dtype=torch.float64)
    c = 0.01
    runs = [elbo_terms(model, u, t, beta=0.7, res_factor=c, n_quad=0, n_samples=S, stratified=strat,
                       generator=torch.Generator().manual_seed(11)) for strat in (True, False, True)]
    for other in runs[1:]:
        for k in ("loss", "loglik", "residual"):
            assert torch.equal(other[k], runs[0][k])

    D = model.latent_dim
    rep = torch.Generator().manual_seed(11)
    torch.randn((S, M, B * D), generator=rep, dtype=torch.float64)            # the likelihood's noise first
    eps_q = torch.randn((S, M, B, D), generator=rep, dtype=torch.float64)     # no quadrature jitter drawn
    sigma = model.diffusion()
    res = []
    with torch.no_grad():
        for b in range(B):
            mean, logvar = model.encode(u[b])
            post = model.posterior.condition(t[b] - t[b, 0], mean, logvar.expand_as(mean))
            m, l, dm, dl = post.evaluate(t[b] - t[b, 0])
            for s_ in range(S):
                z = m + torch.exp(0.5 * l) * eps_q[s_, :, b]
                fq = posterior_drift(z, m, l, dm, dl, sigma)
                r = 0.5 * ((fq - model.drift(t[b], z)) / sigma).square().sum(-1)           # (M,)
                res.append(c * (t[b, -1] - t[b, 0]) * r.mean())
    assert runs[0]["residual"].item() == pytest.approx(torch.stack(res).mean().item(), rel=1e-10)


def test_train_config_accepts_n_quad_zero():
    from pymsde.training.config import TrainConfig

    TrainConfig(n_quad=0).validate()
    with pytest.raises(ConfigError, match="train.n_quad"):
        TrainConfig(n_quad=-1).validate()
