"""The GP path posterior: interpolation, closed-form time derivatives, the posterior drift."""
import math

import pytest
import torch

from pymsde.data.grid import Grid
from pymsde.model import GPPosterior, MultiscaleModel, posterior_drift


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)


def _window(M=128, t_end=1.27):
    T = torch.linspace(0.3, 0.3 + t_end, M)
    mean = torch.stack([torch.sin(2 * T), 0.3 * torch.cos(5 * T) + 1.0], -1)
    logvar = torch.stack([-4 + 0.5 * torch.sin(3 * T), -3 + 0.2 * T], -1)
    return T, mean, logvar


def _randomise_warp(gp, scale=0.3):
    # a visibly non-identity (still monotone) warp, so the chain rule through the MLP is exercised
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for w in gp.warp_weights:
            w.copy_(scale * torch.randn(w.shape, generator=g))
        for b in gp.warp_biases:
            b.copy_(scale * torch.randn(b.shape, generator=g))


@pytest.mark.parametrize("noise", [1e-2, 1e-4, 1e-6])
def test_interpolates_window_values_to_noise_level(noise):
    gp = GPPosterior(hidden=(16, 16), noise_init=noise, min_noise=0.0)
    T, mean, logvar = _window()
    m, l, _, _ = gp.condition(T, mean, logvar).evaluate(T)
    tol = math.sqrt(noise)                      # the GP's observation-noise standard deviation
    assert (m - mean).abs().max() < tol
    assert (l - logvar).abs().max() < tol


def test_interpolant_between_window_times_is_accurate():
    gp = GPPosterior(hidden=(16, 16), noise_init=1e-8, min_noise=0.0)
    T, mean, logvar = _window()
    mid = 0.5 * (T[1:] + T[:-1])
    m, l, dm, _ = gp.condition(T, mean, logvar).evaluate(mid)
    assert (m[:, 0] - torch.sin(2 * mid)).abs().max() < 1e-4
    assert (l[:, 0] - (-4 + 0.5 * torch.sin(3 * mid))).abs().max() < 1e-4
    # interior derivative (edges of a window are less constrained)
    inner = slice(10, -10)
    assert (dm[inner, 0] - 2 * torch.cos(2 * mid[inner])).abs().max() < 1e-2


def test_closed_form_derivatives_match_autograd():
    gp = GPPosterior(hidden=(8, 8), noise_init=1e-3)
    _randomise_warp(gp)
    T, mean, logvar = _window(M=40)
    win = gp.condition(T, mean, logvar)
    t = torch.linspace(T[0].item(), T[-1].item(), 23).requires_grad_(True)
    m, l, dm, dl = win.evaluate(t)
    for val, deriv in ((m, dm), (l, dl)):
        for d in range(val.shape[1]):
            (g,) = torch.autograd.grad(val[:, d].sum(), t, retain_graph=True)
            rel = (g - deriv[:, d]).abs().max() / g.abs().max()
            assert rel < 1e-5, rel
    # the warp really is non-trivial (else the test would not exercise w')
    _, dw = gp.warp(torch.linspace(-1, 1, 50))
    assert (dw - 1).abs().max() > 0.05


def test_batched_windows_equal_separate_windows():
    gp = GPPosterior(hidden=(8,))
    _randomise_warp(gp)
    T, mean, logvar = _window(M=30)
    T2 = torch.stack([T, T + 5.0])
    mean2 = torch.stack([mean, 2 * mean])
    logvar2 = torch.stack([logvar, logvar - 1])
    tq = torch.stack([torch.linspace(T[0].item(), T[-1].item(), 7), torch.linspace(T[0].item() + 5, T[-1].item() + 5, 7)])
    batched = gp.condition(T2, mean2, logvar2).evaluate(tq)
    for w in range(2):
        single = gp.condition(T2[w], mean2[w], logvar2[w]).evaluate(tq[w])
        for a, b in zip(batched, single):
            torch.testing.assert_close(a[w], b, rtol=1e-10, atol=1e-12)


def test_posterior_drift_reproduces_marginals():
    """Simulate dz = f_q dt + sigma dW (Euler-Maruyama) from N(m(t0), exp l(t0)) and compare
    the sample mean and variance with the GP marginals."""
    gp = GPPosterior(hidden=(8,), noise_init=1e-4)
    T = torch.linspace(0.0, 1.0, 32)
    mean = torch.stack([torch.sin(2 * T), 0.5 * T - 0.2], -1)
    logvar = torch.stack([math.log(0.05) + 0.7 * T, math.log(0.02) - 0.8 * T], -1)
    with torch.no_grad():
        win = gp.condition(T, mean, logvar)
    sigma = torch.tensor([0.3, 0.2])
    n_paths, n_steps = 20_000, 1000
    dt = 1.0 / n_steps
    ts = torch.linspace(0.0, 1.0, n_steps + 1)
    with torch.no_grad():
        m, l, dm, dl = win.evaluate(ts)                        # (n_steps + 1, 2), evaluated once
    # f_q is affine in z: z + f_q dt = a_k z + c_k with a_k = 1 - B_k dt, c_k = (m'_k + B_k m_k) dt;
    # the assertion below compares with posterior_drift itself at one step
    B = 0.5 * (sigma ** 2 * torch.exp(-l) - dl)
    a, c = 1.0 - B * dt, (dm + B * m) * dt
    z_test = torch.randn(4, 2)
    torch.testing.assert_close(z_test + posterior_drift(z_test, m[7], l[7], dm[7], dl[7], sigma) * dt,
                               a[7] * z_test + c[7])
    g = torch.Generator().manual_seed(0)
    z = m[0] + torch.exp(0.5 * l[0]) * torch.randn(n_paths, 2, generator=g)
    noise_scale = sigma * math.sqrt(dt)
    checks = {250: None, 500: None, 1000: None}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # 40k-element ops: threading only adds contention
    try:
        for k in range(n_steps):
            z = torch.addcmul(c[k], a[k], z).add_(noise_scale * torch.randn(n_paths, 2, generator=g))
            if k + 1 in checks:
                checks[k + 1] = (z.mean(0), z.var(0))
    finally:
        torch.set_num_threads(threads)
    for k, (zmean, zvar) in checks.items():
        v = torch.exp(l[k])
        # Monte Carlo standard errors: mean sqrt(v/N), variance v sqrt(2/(N-1));
        # 5 standard errors, plus 1% of v for the O(dt) Euler-Maruyama bias
        se_mean = torch.sqrt(v / n_paths)
        se_var = v * math.sqrt(2.0 / (n_paths - 1))
        assert ((zmean - m[k]).abs() < 5 * se_mean + 0.01 * v.sqrt()).all(), (k, zmean, m[k])
        assert ((zvar - v).abs() < 5 * se_var + 0.01 * v).all(), (k, zvar, v)
    # the marginals moved (the test is not trivially satisfied by a stationary process)
    assert (m[-1] - m[0]).abs().min() > 0.3 and (torch.exp(l[-1]) / torch.exp(l[0]) - 1).abs().min() > 0.3


def test_window_drift_method_matches_function():
    gp = GPPosterior(hidden=(8,))
    T, mean, logvar = _window(M=20)
    win = gp.condition(T, mean, logvar)
    t = torch.linspace(T[0].item(), T[-1].item(), 5)
    z = torch.randn(3, 5, 2)
    sigma = torch.tensor([0.2, 0.4])
    m, l, dm, dl = win.evaluate(t)
    expected = dm - 0.5 * (sigma ** 2 / torch.exp(l) - dl) * (z - m)
    torch.testing.assert_close(win.drift(z, t, sigma), expected)


def test_posterior_is_a_trained_and_saved_submodule():
    grid = Grid((64,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 8, micro_dim=2, encoder_channels=(2,), encoder_kernel=5)
    keys = model.state_dict().keys()
    assert {"posterior.raw_amplitude", "posterior.raw_length", "posterior.raw_noise"} <= set(keys)
    assert any(k.startswith("posterior.warp_weights") for k in keys)
    u = torch.randn(16, 1, 64)
    mean, logvar = model.encode(u)
    win = model.posterior.condition(torch.linspace(0, 1, 16), mean, logvar)
    m, l, dm, dl = win.evaluate(torch.tensor([0.25, 0.5]))
    (m.sum() + l.sum() + dm.sum() + dl.sum()).backward()
    for name, p in model.posterior.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.posterior.raw_length.grad.abs() > 0


def test_initial_length_is_a_few_window_steps():
    gp = GPPosterior()                                     # the model's defaults
    M = 128
    steps = gp.length(M).item() / (2.0 / (M - 1))
    assert 3 < steps < 12
    w, dw = gp.warp(torch.linspace(-1, 1, 11))
    torch.testing.assert_close(w, torch.linspace(-1, 1, 11))   # identity warp at initialisation
    torch.testing.assert_close(dw, torch.ones(11))
