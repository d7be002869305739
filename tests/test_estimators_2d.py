"""The cheaper 2-D training step (docs/cost_2d.md): each shortcut against the full term.

- ``loglik_frames``: the likelihood on a random subset of frames is unbiased for the
  likelihood on every frame (Monte Carlo over many draws, within 3 standard errors estimated
  from the draws), on a small 2-D model with every other part of the ELBO as in training;
- ``encode_stride``: the ELBO of the posterior conditioned on every s-th frame equals an
  independent computation of that posterior's ELBO with the same random numbers (it is a
  different variational family, not an estimator of the full one);
- the defaults leave the step unchanged, and the CUDA step agrees with the CPU one.
"""
import math

import numpy as np
import pytest
import torch

from pymsde.data.grid import Grid
from pymsde.model import MultiscaleModel
from pymsde.training.elbo import elbo_terms, encoded_frames, gaussian_loglik
from pymsde.util.errors import ConfigError

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread (on a loaded machine, idle OpenMP threads make each of
    these small steps hundreds of times slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SMALL = dict(encoder_channels=(2, 4), encoder_kernel=3, drift_hidden=(8,), micro_hidden=(8,), gp_hidden=(4,))


def _model_and_batch(B=2, M=9, n=16, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    grid = Grid((n, n), ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"))
    model = MultiscaleModel.build(grid, (4, 4), micro_dim=2, **SMALL).to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.linspace(0, 1, n, dtype=dtype)
    bump = torch.exp(-((x[:, None] - 0.4) ** 2 + (x[None, :] - 0.5) ** 2) / 0.05)
    # frames whose amplitude grows along the window: their likelihoods differ, so a biased
    # choice of frames would show
    amp = 0.5 + torch.arange(M, dtype=dtype) / (M - 1)
    u = amp[None, :, None, None, None] * bump + 0.05 * torch.randn(B, M, 1, n, n, generator=g, dtype=dtype)
    t = (torch.arange(M, dtype=dtype) * 0.01)[None] + 0.3 * torch.arange(B, dtype=dtype)[:, None]
    return model, u, t


def _draws(model, u, t, n, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return np.array([[v.item() for v in (d["loglik"], d["residual"])] for d in
                         (elbo_terms(model, u, t, beta=1.0, res_factor=0.1, generator=g, **kw) for _ in range(n))])


def test_loglik_frames_is_unbiased_for_the_full_likelihood_2d(monkeypatch):
    """E[likelihood on K random frames] = E[likelihood on all M frames], eps and quadrature
    drawn as in training; the residual is untouched by the choice of frames."""
    model, u, t = _model_and_batch()
    full = _draws(model, u, t, 150, seed=1)
    sub = _draws(model, u, t, 600, seed=2, loglik_frames=3)
    se = [math.sqrt(full[:, j].var(ddof=1) / len(full) + sub[:, j].var(ddof=1) / len(sub)) for j in (0, 1)]
    for j in (0, 1):
        assert abs(full[:, j].mean() - sub[:, j].mean()) < 3 * se[j], (j, full[:, j].mean(), sub[:, j].mean(), se[j])
    # the check is sharp: always scoring the first K frames (a biased choice) is rejected by far
    real = torch.randperm
    monkeypatch.setattr(torch, "randperm", lambda n, generator=None, device=None: torch.arange(n, device=device))
    first = _draws(model, u, t, 100, seed=2, loglik_frames=3)
    monkeypatch.setattr(torch, "randperm", real)
    se_first = math.sqrt(full[:, 0].var(ddof=1) / len(full) + first[:, 0].var(ddof=1) / len(first))
    assert abs(full[:, 0].mean() - first[:, 0].mean()) > 30 * se_first


def test_encoded_frames_keep_both_ends():
    assert encoded_frames(128, 1) is None
    assert encoded_frames(9, 4).tolist() == [0, 4, 8]
    assert encoded_frames(10, 4).tolist() == [0, 4, 8, 9]
    assert encoded_frames(128, 4).tolist() == list(range(0, 127, 4)) + [127]
    assert encoded_frames(5, 100).tolist() == [0, 4]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ConfigError, match="encode_stride"):
            encoded_frames(9, bad)


def test_encode_stride_is_the_elbo_of_the_posterior_on_the_strided_frames():
    """The step with ``encode_stride`` equals a window-by-window computation in which the GP is
    conditioned on the encoder's output at frames 0, s, 2s, ... and M - 1 only, and the
    likelihood still scores every frame (same random numbers, replayed)."""
    model, u, t = _model_and_batch(B=2, M=10)
    B, M, Q, S, s = 2, 10, 4, 2, 4
    got = elbo_terms(model, u, t, beta=1.0, res_factor=0.2, n_quad=Q, n_samples=S,
                     generator=torch.Generator().manual_seed(7), encode_stride=s)
    D = model.latent_dim
    rep = torch.Generator().manual_seed(7)
    eps_o = torch.randn((S, M, B * D), generator=rep, dtype=u.dtype)
    jitter = torch.rand(Q, generator=rep, dtype=u.dtype)
    eps_q = torch.randn((S, Q, B, D), generator=rep, dtype=u.dtype)
    idx = [0, 4, 8, 9]
    sigma = model.diffusion()
    ll, res = [], []
    for b in range(B):
        t_rel = t[b] - t[b, 0]
        mean, logvar = model.encode(u[b, idx])
        post = model.posterior.condition(t_rel[idx], mean, logvar.expand_as(mean))
        m, l, _, _ = post.evaluate(t_rel)
        for k in range(S):
            xm, xv = model.decode(m + torch.exp(0.5 * l) * eps_o[k, :, b * D:(b + 1) * D])
            ll.append(gaussian_loglik(u[b], xm, xv))
        tau = (torch.arange(Q, dtype=u.dtype) + jitter) / Q * t_rel[-1]
        m, l, dm, dl = post.evaluate(tau)
        for k in range(S):
            z = m + torch.exp(0.5 * l) * eps_q[k, :, b]
            fq = post.drift(z, tau, sigma)
            res.append(0.2 * t_rel[-1] * (0.5 * ((fq - model.drift(t[b, 0] + tau, z)) / sigma).square().sum(-1)).mean())
    assert got["loglik"].item() == pytest.approx(torch.stack(ll).mean().item(), rel=1e-10)
    assert got["residual"].item() == pytest.approx(torch.stack(res).mean().item(), rel=1e-10)


def test_defaults_are_the_full_step():
    """``encode_stride=1`` and ``loglik_frames=None`` are the plain step, bit for bit."""
    model, u, t = _model_and_batch()
    a = elbo_terms(model, u, t, generator=torch.Generator().manual_seed(4))
    b = elbo_terms(model, u, t, generator=torch.Generator().manual_seed(4), encode_stride=1, loglik_frames=None)
    c = elbo_terms(model, u, t, generator=torch.Generator().manual_seed(4), loglik_frames=u.shape[1])
    for k in ("loss", "loglik", "residual"):
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("levers", [{}, {"loglik_frames": 3, "encode_stride": 4}])
def test_cuda_step_matches_cpu(levers, monkeypatch):
    """The same step on CUDA and on the CPU (float64, channels-last convolutions, the same
    random numbers: drawn on the CPU and moved): equal ELBO terms and gradients to round-off."""
    real_randn, real_randperm = torch.randn, torch.randperm
    grid = Grid((32, 32), ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"))
    _, u, t = _model_and_batch(M=9, n=32)
    out = {}
    for dev in ("cpu", "cuda"):
        cpu_gen = torch.Generator().manual_seed(5)
        monkeypatch.setattr(torch, "randn", lambda shape, generator=None, dtype=None, device=None:
                            real_randn(shape, generator=cpu_gen, dtype=dtype).to(device))
        monkeypatch.setattr(torch, "randperm", lambda n, generator=None, device=None:
                            real_randperm(n, generator=cpu_gen).to(device))
        torch.manual_seed(0)
        model = MultiscaleModel.build(grid, (4, 4), micro_dim=2, conv_memory_format="channels_last", **SMALL)
        model = model.double().to(dev)
        terms = elbo_terms(model, u.to(dev), t.to(dev), beta=1.0, res_factor=0.1, n_quad=4, stratified=False,
                           generator=torch.Generator(dev), **levers)
        terms["loss"].backward()
        out[dev] = ({k: v.item() for k, v in terms.items()}, [p.grad.cpu() for p in model.parameters()])
    for k, v in out["cpu"][0].items():
        assert out["cuda"][0][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    for a, b in zip(out["cpu"][1], out["cuda"][1]):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-10)
