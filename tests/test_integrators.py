"""Fixed-step SDE integrators (pymsde.sde.integrator, pymsde.sde.solvers): convergence
orders against SDEs with known solutions, ensemble statistics, increments, errors."""
import math

import numpy as np
import pytest
import torch

from pymsde.sde.solvers import SRA1, EulerMaruyama, StochasticHeun, get_solver, solve
from pymsde.sde.integrator import (brownian_increments, coarsen_increments, em_step, integrate,
                                sra1_step)
from pymsde.util.errors import ConfigError, StabilityError

F64 = torch.float64


def _slope(hs, errs):
    """Least-squares slope of log(err) against log(h)."""
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


# ---------------------------------------------------------------- OU with time-dependent sigma
# dz = -theta z dt + sigma(t) dW,  sigma(t) = s0 + s1 t.  The exact transition over a step h,
# given the path's dW and dI = int (W(s) - W(t)) ds, is
#   z1 = e^{-theta h} z + sigma(t) (dW - theta dI) + s1 (h dW - dI) + O(h^2.5)   (per step),
# so on a grid 2^6 times finer than the finest tested step it is the exact solution to
# O(h_ref^2) ~ 1e-8, far below the errors measured.
THETA, S0, S1, T_END = 2.0, 0.5, 0.5, 1.0


def _ou_reference(z0, dW, dI, h):
    z = z0.clone()
    decay = math.exp(-THETA * h)
    for k in range(dW.shape[0]):
        t = k * h
        z = decay * z + (S0 + S1 * t) * (dW[k] - THETA * dI[k]) + S1 * (h * dW[k] - dI[k])
    return z


class _OU:
    """torchsde-style SDE object (f, g) for the solver-object API."""

    def f(self, t, z):
        return -THETA * z

    def g(self, t, z):
        return (S0 + S1 * t).expand_as(z)


@pytest.mark.parametrize("solver, order", [(EulerMaruyama(), 1.0), (StochasticHeun(), 1.0),
                                           (SRA1(), 2.0)])
def test_strong_convergence_to_exact_ou(solver, order):
    """Strong convergence to the exact OU solution (additive, time-dependent noise), same
    Brownian path at every step size. EM and Heun: order 1.0. SRA1: 2.0 here -- its h^1.5
    error terms involve f'' and vanish for a linear drift (see the nonlinear test below for
    its design order 1.5); this test pins the limit it converges to."""
    gen = torch.Generator().manual_seed(11)
    n_paths, n_ref = 400, 2 ** 12
    h_ref = T_END / n_ref
    z0 = torch.full((n_paths, 1), 1.0, dtype=F64)
    dW, dI = brownian_increments(n_ref, (n_paths, 1), h_ref, gen, with_integral=True, dtype=F64)
    z_ref = _ou_reference(z0, dW, dI, h_ref)
    hs, errs = [], []
    for factor in (2 ** 6, 2 ** 7, 2 ** 8, 2 ** 9):
        h = h_ref * factor
        dWc, dIc = coarsen_increments(dW, dI, factor, h_ref)
        _, zs = solve(_OU(), z0, 0.0, h, n_ref // factor, solver, save_at=[n_ref // factor],
                      dW=dWc, dI=dIc)
        hs.append(h)
        errs.append(float(((zs[-1] - z_ref) ** 2).mean().sqrt()))
    assert _slope(hs, errs) == pytest.approx(order, abs=0.2), (hs, errs)


@pytest.mark.parametrize("scheme", ["em", "heun", "sra1"])
def test_strong_order_nonlinear_additive(scheme):
    """Design strong orders for additive noise on dz = (sin 3z - z^3) dt + (0.5 + 0.5 t) dW:
    EM 1.0, Heun 1.0, SRA1 1.5. No closed form: the reference is SRA1 on a grid 8x finer
    than the finest tested step (its error there, ~1e-6, is 40x below the smallest
    error fitted), on the same Brownian path. Observed with seeds 11 and 12: EM 0.98/0.98,
    Heun 0.99/1.05, SRA1 1.55/1.62."""
    gen = torch.Generator().manual_seed(11)
    n_paths, n_ref = 400, 2 ** 12
    h_ref = 1.0 / n_ref
    f = lambda t, z: torch.sin(3 * z) - z ** 3  # noqa: E731
    g = lambda t, z: 0.5 + 0.5 * t  # noqa: E731
    z0 = torch.full((n_paths, 1), 0.3, dtype=F64)
    dW, dI = brownian_increments(n_ref, (n_paths, 1), h_ref, gen, with_integral=True, dtype=F64)
    _, z_ref = integrate(f, g, z0, 0.0, h_ref, n_ref, scheme="sra1", save_at=[n_ref], dW=dW, dI=dI)
    hs, errs = [], []
    for factor in (2 ** 3, 2 ** 4, 2 ** 5, 2 ** 6):
        dWc, dIc = coarsen_increments(dW, dI, factor, h_ref)
        _, zs = integrate(f, g, z0, 0.0, h_ref * factor, n_ref // factor, scheme=scheme,
                          save_at=[n_ref // factor], dW=dWc, dI=dIc)
        hs.append(h_ref * factor)
        errs.append(float(((zs[-1] - z_ref[-1]) ** 2).mean().sqrt()))
    design = get_solver(scheme).strong_order
    assert design == {"em": 1.0, "heun": 1.0, "sra1": 1.5}[scheme]
    assert _slope(hs, errs) == pytest.approx(design, abs=0.2), (hs, errs)


# ---------------------------------------------------------------- geometric Brownian motion
# dX = a X dt + b X dW, X_T = X_0 exp((a - b^2/2) T + b W_T), E X_T = X_0 e^{a T}.
@pytest.mark.parametrize("a, b, kind", [(2.0, 1.0, "strong"), (2.0, 0.1, "weak")])
def test_em_strong_and_weak_order_gbm(a, b, kind):
    """EM on multiplicative noise (Higham 2001's set-up): strong order 0.5 with a noise-
    dominated GBM (a = 2, b = 1, mean |X_h - X_T|); weak order 1.0 on E X_T with a
    drift-dominated one (a = 2, b = 0.1). One path set for all step sizes; for the weak error
    the difference of means over the same paths has the weak error as expectation and Monte
    Carlo noise of size strong error / sqrt(n_paths), well below it here."""
    gen = torch.Generator().manual_seed(5)
    n_paths, n_fine = 4000, 2 ** 9
    h_fine = 1.0 / n_fine
    x0 = torch.ones(n_paths, 1, dtype=F64)
    dW, _ = brownian_increments(n_fine, (n_paths, 1), h_fine, gen, dtype=F64)
    x_exact = x0 * torch.exp((a - 0.5 * b * b) + b * dW.sum(0))
    hs, errs = [], []
    for factor in (2 ** 1, 2 ** 2, 2 ** 3, 2 ** 4, 2 ** 5):
        dWc, _ = coarsen_increments(dW, None, factor, h_fine)
        _, xs = integrate(lambda t, x: a * x, lambda t, x: b * x, x0, 0.0, h_fine * factor,
                          n_fine // factor, save_at=[n_fine // factor], dW=dWc)
        hs.append(h_fine * factor)
        diff = xs[-1] - x_exact
        errs.append(float(diff.abs().mean()) if kind == "strong" else abs(float(diff.mean())))
    design = 0.5 if kind == "strong" else EulerMaruyama().weak_order
    assert _slope(hs, errs) == pytest.approx(design, abs=0.2), errs


@pytest.mark.parametrize("scheme, design", [("em", 1.0), ("heun", 2.0), ("sra1", 2.0)])
def test_weak_order_ou_exact_moments(scheme, design):
    """Weak order on the law of z_T for OU (constant sigma), without Monte Carlo noise.

    On a linear SDE every scheme here is linear in (z0, dW_k, dI_k), so z_N is Gaussian with
    mean = the run with zero noise and variance = sum_k [a_k b_k] S [a_k b_k]^T, where a_k / b_k
    are the code's responses to a unit dW_k / dI_k (one ensemble member per impulse) and
    S = [[h, h^2/2], [h^2/2, h^3/3]] the covariance of (dW, dI). The error of E z_T^2 against
    the exact m^2 + v gives the weak order: EM 1, Heun 2, SRA1 2."""
    theta, sigma, z_init = 2.0, 1.0, 1.0
    exact = (z_init * math.exp(-theta)) ** 2 + sigma ** 2 * (1 - math.exp(-2 * theta)) / (2 * theta)
    sig = torch.tensor([sigma], dtype=F64)
    hs, errs = [], []
    for n in (16, 32, 64, 128):
        h = 1.0 / n
        m = 2 * n + 1  # member 0: mean path; 1..n: unit dW_k; n+1..2n: unit dI_k
        z0 = torch.zeros(m, 1, dtype=F64)
        z0[0] = z_init
        dW = torch.zeros(n, m, 1, dtype=F64)
        dI = torch.zeros(n, m, 1, dtype=F64)
        k = torch.arange(n)
        dW[k, 1 + k] = 1.0
        dI[k, 1 + n + k] = 1.0
        _, zs = integrate(lambda t, z: -theta * z, sig, z0, 0.0, h, n, scheme=scheme,
                          save_at=[n], dW=dW, dI=dI)
        zN = zs[-1, :, 0]
        a, b = zN[1:n + 1], zN[n + 1:]
        var = float((a * a * h + a * b * h ** 2 + b * b * h ** 3 / 3).sum())
        hs.append(h)
        errs.append(abs(float(zN[0]) ** 2 + var - exact))
    assert _slope(hs, errs) == pytest.approx(design, abs=0.2), errs


# ---------------------------------------------------------------- ensemble statistics
@pytest.mark.parametrize("scheme", ["em", "sra1"])
def test_ou_ensemble_mean_and_variance(scheme):
    """An ensemble of 10000 OU paths matches the exact mean and variance at t = 0.5 and 1 within
    4 Monte Carlo standard errors (mean: sqrt(v/M); variance: v sqrt(2/(M-1)) = 1.4 % of v);
    the time discretisation bias (EM: relative theta dt / 2 = 1.25e-3 on the stationary
    variance) is far smaller."""
    theta, sigma, m_paths, dt = 1.0, 0.8, 10000, 2.5e-3
    z0 = torch.full((m_paths, 1), 1.5, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    ts, zs = integrate(lambda t, z: -theta * z, torch.tensor([sigma], dtype=F64), z0, 0.0, dt,
                       400, scheme=scheme, save_every=200, generator=gen)
    assert torch.allclose(ts, torch.tensor([0.0, 0.5, 1.0], dtype=F64))
    for i, t in ((1, 0.5), (2, 1.0)):
        mean = 1.5 * math.exp(-theta * t)
        var = sigma ** 2 * (1 - math.exp(-2 * theta * t)) / (2 * theta)
        assert abs(float(zs[i].mean()) - mean) < 4 * math.sqrt(var / m_paths)
        assert abs(float(zs[i].var()) - var) < 4 * var * math.sqrt(2 / (m_paths - 1))


# ---------------------------------------------------------------- increments and loop details
def test_increment_moments_and_aggregation():
    """dI has Var h^3/3 and Cov(dW, dI) = h^2/2, also after aggregation (exactly the
    identity coarsen(coarsen(x, 2), 2) = coarsen(x, 4))."""
    gen = torch.Generator().manual_seed(2)
    h = 0.01
    dW, dI = brownian_increments(8, (50000,), h, gen, with_integral=True, dtype=F64)
    dW4, dI4 = coarsen_increments(dW, dI, 4, h)
    dW2, dI2 = coarsen_increments(*coarsen_increments(dW, dI, 2, h), 2, 2 * h)
    assert torch.allclose(dW4, dW2) and torch.allclose(dI4, dI2)
    H = 4 * h
    flat_w, flat_i = dW4.flatten(), dI4.flatten()
    n = flat_w.numel()
    assert float(flat_w.var()) == pytest.approx(H, rel=5 / math.sqrt(n))
    assert float(flat_i.var()) == pytest.approx(H ** 3 / 3, rel=5 / math.sqrt(n))
    cov = float((flat_w * flat_i).mean())
    assert cov == pytest.approx(H ** 2 / 2, rel=6 / math.sqrt(n))


def test_save_options_and_given_noise_reproduce_the_path():
    """save_every / save_at store exactly the states of the full path; passing dW reproduces
    a path; the deterministic limit (g = 0) of SRA1 is an order-2 RK method on z' = -z."""
    gen = torch.Generator().manual_seed(4)
    z0 = torch.randn(3, 2, dtype=F64, generator=gen)
    dW, _ = brownian_increments(12, (3, 2), 0.1, gen, dtype=F64)
    f = lambda t, z: torch.sin(z) + t  # noqa: E731
    g = lambda t, z: 0.3 * torch.cos(z)  # noqa: E731  (multiplicative is fine for EM)
    ts, full = integrate(f, g, z0, 1.0, 0.1, 12, dW=dW)
    assert full.shape == (13, 3, 2) and torch.allclose(ts, 1.0 + 0.1 * torch.arange(13, dtype=F64))
    z = z0
    for k in range(12):
        z = em_step(f, g, torch.tensor(1.0 + 0.1 * k, dtype=F64), z, 0.1, dW[k])
    assert torch.allclose(full[-1], z, rtol=1e-12, atol=1e-12)
    _, every4 = integrate(f, g, z0, 1.0, 0.1, 12, save_every=4, dW=dW)
    assert every4.shape == (4, 3, 2) and torch.equal(every4, full[::4])
    ts_at, at = integrate(f, g, z0, 1.0, 0.1, 12, save_at=[12, 5], dW=dW)
    assert torch.equal(at, full[[5, 12]]) and torch.allclose(ts_at, ts[[5, 12]])
    # SRA1 with g = 0: Ralston-type RK2 (alpha = 1/3, 2/3 at c = 0, 3/4); error ~ h^2
    zero = torch.zeros(1, dtype=F64)
    errs = []
    for n in (10, 20, 40):
        _, zz = integrate(lambda t, z: -z, zero, torch.ones(1, 1, dtype=F64), 0.0, 1.0 / n, n,
                          scheme="sra1", save_at=[n], dW=torch.zeros(n, 1, 1, dtype=F64),
                          dI=torch.zeros(n, 1, 1, dtype=F64))
        errs.append(abs(float(zz[-1]) - math.exp(-1)))
    assert _slope([0.1, 0.05, 0.025], errs) == pytest.approx(2.0, abs=0.1)


def test_sra1_matches_torchsde_srk_additive():
    """Our SRA1 step equals torchsde's SRK (which uses the same SRA1 tableau for additive
    noise) fed the same W and U = int (W(s) - W(t)) ds: an independent implementation."""
    torchsde = pytest.importorskip("torchsde")

    class Add(torch.nn.Module):
        noise_type, sde_type = "additive", "ito"

        def f(self, t, y):
            return torch.sin(3 * y) - y ** 3 + t

        def g(self, t, y):
            return (0.4 + t).expand(y.shape[0], y.shape[1]).unsqueeze(-1) * torch.eye(y.shape[1], dtype=F64)

    class FixedBrownian(torchsde.BrownianInterval):
        def __init__(self, w, u):
            super().__init__(t0=0.0, t1=1.0, size=w.shape, dtype=F64,
                             levy_area_approximation="space-time")
            self._w, self._u = w, u

        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            return (self._w, self._u) if return_U else self._w

    gen = torch.Generator().manual_seed(8)
    y0 = torch.randn(5, 3, dtype=F64, generator=gen)
    dt = 0.1
    dW, dI = brownian_increments(1, (5, 3), dt, gen, with_integral=True, dtype=F64)
    ref = torchsde.sdeint(Add(), y0, torch.tensor([0.2, 0.2 + dt], dtype=F64), method="srk",
                          dt=dt, bm=FixedBrownian(dW[0], dI[0]))[-1]
    ours = sra1_step(lambda t, z: torch.sin(3 * z) - z ** 3 + t, lambda t, z: 0.4 + t,
                     torch.tensor(0.2, dtype=F64), y0, dt, dW[0], dI[0])
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_bad_input_raises():
    z0 = torch.zeros(2, 3, dtype=F64)
    f = lambda t, z: -z  # noqa: E731
    sig = torch.ones(3, dtype=F64)
    with pytest.raises(ConfigError, match="unknown scheme"):
        integrate(f, sig, z0, 0.0, 0.1, 5, scheme="rk4")
    with pytest.raises(ConfigError, match=r"dW must have shape \(5, 2, 3\)"):
        integrate(f, sig, z0, 0.0, 0.1, 5, dW=torch.zeros(5, 2, 4, dtype=F64))
    with pytest.raises(ConfigError, match="needs dI"):
        integrate(f, sig, z0, 0.0, 0.1, 5, scheme="sra1", dW=torch.zeros(5, 2, 3, dtype=F64))
    with pytest.raises(ConfigError, match=r"z0 must be \(B, D\)"):
        integrate(f, sig, torch.zeros(3, dtype=F64), 0.0, 0.1, 5)
    with pytest.raises(ConfigError, match="dt must be positive"):
        integrate(f, sig, z0, 0.0, -0.1, 5)
    with pytest.raises(ConfigError, match="save_at"):
        integrate(f, sig, z0, 0.0, 0.1, 5, save_at=[6])
    with pytest.raises(StabilityError, match="non-finite state"):
        integrate(lambda t, z: z ** 3, sig * 0, z0 + 10, 0.0, 1.0, 20)
    with pytest.raises(ConfigError, match="unknown solver"):
        get_solver("rk45")


def test_noise_is_drawn_in_chunks_and_only_saved_states_are_stored(monkeypatch):
    """Memory independent of n_steps: 10000 steps draw noise `chunk` steps at a time (never
    all at once) and store only the saved states; the chunked path equals the same path given
    the increments explicitly."""
    import pymsde.sde.integrator as sde

    sizes = []
    real = sde.brownian_increments

    def spy(n, *args, **kwargs):
        sizes.append(n)
        return real(n, *args, **kwargs)

    monkeypatch.setattr(sde, "brownian_increments", spy)
    z0 = torch.zeros(4, 3, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    ts, zs = sde.integrate(lambda t, z: -z, torch.ones(3, dtype=F64), z0, 0.0, 1e-4, 10000,
                           save_every=2500, generator=gen, chunk=64)
    assert zs.shape == (5, 4, 3) and max(sizes) == 64 and sum(sizes) == 10000
    assert torch.allclose(ts, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=F64))
    gen = torch.Generator().manual_seed(0)
    dW = torch.cat([real(n, (4, 3), 1e-4, gen, dtype=F64)[0] for n in sizes])
    _, zs2 = sde.integrate(lambda t, z: -z, torch.ones(3, dtype=F64), z0, 0.0, 1e-4, 10000,
                           save_every=2500, dW=dW)
    assert torch.equal(zs, zs2)


@pytest.mark.parametrize("solver", [EulerMaruyama(), StochasticHeun(), SRA1()])
def test_order_is_the_observed_order_on_an_ode(solver):
    """With no noise each scheme is a Runge-Kutta method; its ``order`` is what
    dz/dt = -z + sin t shows under step halving (float64, exact solution by hand)."""
    import math

    def f(t, z):
        return -z + torch.sin(t)

    def exact(t):      # z(0) = 1: z = 1.5 e^-t + (sin t - cos t) / 2
        return 1.5 * math.exp(-t) + 0.5 * (math.sin(t) - math.cos(t))

    sde = type("ODE", (), {"f": staticmethod(f), "g": staticmethod(lambda t, z: torch.zeros_like(z))})()
    errs = []
    for n in (20, 40, 80, 160):
        z0 = torch.ones(1, 1, dtype=torch.float64)
        dW = torch.zeros(n, 1, 1, dtype=torch.float64)
        _, zs = solve(sde, z0, 0.0, 1.0 / n, n, solver=solver, save_every=n, dW=dW, dI=dW.clone())
        errs.append(abs(float(zs[-1, 0, 0]) - exact(1.0)))
    slopes = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert abs(slopes[-1] - solver.order) < 0.1, (solver.scheme, slopes)
