"""Finite-difference stencils, Fourier helpers and exponential-integrator coefficients."""
import math

import numpy as np
import pytest
import torch

from pymsde.numerics import spectral
from pymsde.numerics.stencils import central_weights, derivative, extrapolation_weights, fd_weights, symbol_bounds


def test_known_weights():
    assert central_weights(1, 2) == pytest.approx((-0.5, 0.0, 0.5), abs=1e-15)
    assert central_weights(1, 4) == pytest.approx((1 / 12, -2 / 3, 0.0, 2 / 3, -1 / 12), abs=1e-15)
    assert central_weights(2, 4) == pytest.approx((-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12), abs=1e-15)
    # ghost value one point outside a boundary: degree-4 extrapolation 5 -10 10 -5 1
    assert extrapolation_weights(4)[0] == pytest.approx((5, -10, 10, -5, 1), abs=1e-12)
    # one-sided weights are exact for polynomials of the stencil's degree
    w = fd_weights(1, (0, 1, 2, 3, 4))
    for p in range(5):
        exact = 1.0 if p == 1 else 0.0
        assert sum(wi * o ** p for wi, o in zip(w, range(5))) == pytest.approx(exact, abs=1e-12)


def test_symbol_bounds():
    s1, s2 = symbol_bounds(4)
    assert s1 == pytest.approx(1.3722, abs=1e-4)   # max (8 sin t - sin 2t) / 6
    assert s2 == pytest.approx(16 / 3, abs=1e-12)
    assert symbol_bounds(2) == pytest.approx((1.0, 4.0), abs=1e-12)


@pytest.mark.parametrize("order", [2, 4, 6])
@pytest.mark.parametrize("deriv", [1, 2])
def test_periodic_convergence_order(order, deriv):
    errs, hs = [], []
    for n in (16, 32, 64):
        x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
        u = torch.exp(torch.sin(x))[None, None]
        exact = (torch.cos(x) * torch.exp(torch.sin(x)) if deriv == 1 else
                 (torch.cos(x) ** 2 - torch.sin(x)) * torch.exp(torch.sin(x)))
        d = derivative(u, 0, deriv, 2 * math.pi / n, "periodic", order)
        errs.append(float((d[0, 0] - exact).abs().max()))
        hs.append(2 * math.pi / n)
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (slope, errs)


@pytest.mark.parametrize("order", [2, 4, 6])
def test_dirichlet_exact_for_polynomials(order):
    # the ghost points extrapolate with degree `order`: derivatives of polynomials of that
    # degree are exact on every node, boundary nodes included
    n = 12
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    h = 1.0 / (n - 1)
    u = (1 + x) ** order
    d1 = derivative(u[None, None], 0, 1, h, "dirichlet", order)[0, 0]
    d2 = derivative(u[None, None], 0, 2, h, "dirichlet", order)[0, 0]
    assert torch.allclose(d1, order * (1 + x) ** (order - 1), atol=1e-9, rtol=1e-9)
    assert torch.allclose(d2, order * (order - 1) * (1 + x) ** (order - 2), atol=1e-8, rtol=1e-8)


def test_dirichlet_first_derivative_order():
    errs, hs = [], []
    for n in (21, 41, 81):
        x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
        h = 1.0 / (n - 1)
        d = derivative(torch.exp(2 * x)[None, None], 0, 1, h, "dirichlet", 4)[0, 0]
        errs.append(float((d - 2 * torch.exp(2 * x)).abs().max()))
        hs.append(h)
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - 4) < 0.3, (slope, errs)


def test_derivative_acts_on_the_named_axis():
    n = 24
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    u = torch.sin(x)[:, None] * torch.ones(n, dtype=torch.float64)[None, :]      # depends on axis 0 only
    d0 = derivative(u[None, None], 0, 1, 2 * math.pi / n, "periodic", 6)[0, 0]
    d1 = derivative(u[None, None], 1, 1, 2 * math.pi / n, "periodic", 6)[0, 0]
    assert float(d1.abs().max()) < 1e-13
    assert torch.allclose(d0[:, 3], torch.cos(x), atol=1e-4)


def test_etd_coefficients_limits_and_direct_formula():
    dt = 0.1
    lin = torch.tensor([0.0, -0.01j, -20.0, 30j, -5 + 7j], dtype=torch.complex128)
    e, e2, q, f1, f2, f3 = spectral.etd_coefficients(lin, dt)
    # z = 0: Q = dt/2, f1 = f2 = f3 = dt/6 (where the direct formulas are 0/0)
    assert abs(complex(q[0]) - dt / 2) < 1e-14
    for f in (f1, f2, f3):
        assert abs(complex(f[0]) - dt / 6) < 1e-14
    # small z = -1e-3 i: Taylor series Q = dt/2 (1 + z/4 + z^2/24 + z^3/192), error ~ z^4
    zs = complex(lin[1]) * dt
    assert abs(complex(q[1]) - dt / 2 * (1 + zs / 4 + zs ** 2 / 24 + zs ** 3 / 192)) < 1e-15
    # |z| >= 1: the direct formulas are accurate; the contour mean must agree
    z = lin[2:] * dt
    assert torch.allclose(q[2:], dt * (torch.exp(z / 2) - 1) / z, rtol=1e-12, atol=0)
    assert torch.allclose(f1[2:], dt * (-4 - z + torch.exp(z) * (4 - 3 * z + z ** 2)) / z ** 3, rtol=1e-11, atol=0)
    assert torch.allclose(f2[2:], dt * (2 + z + torch.exp(z) * (-2 + z)) / z ** 3, rtol=1e-11, atol=0)
    assert torch.allclose(f3[2:], dt * (-4 - 3 * z - z ** 2 + torch.exp(z) * (4 - z)) / z ** 3, rtol=1e-11, atol=0)
    assert torch.allclose(e, torch.exp(lin * dt))


def test_padded_square_is_alias_free():
    n = 16
    rng = np.random.default_rng(1)
    coef = np.zeros(n // 2 + 1, complex)
    coef[: n // 2] = rng.standard_normal(n // 2) + 1j * rng.standard_normal(n // 2)
    coef[0] = coef[0].real
    v_hat = torch.as_tensor(coef)
    # reference: the square on a 4x finer grid (no aliasing there), truncated
    m = 4 * n
    u_fine = torch.fft.irfft(torch.cat([v_hat, torch.zeros(m // 2 + 1 - len(coef), dtype=v_hat.dtype)]), n=m) * (m / n)
    ref = torch.fft.rfft(u_fine ** 2)[: n // 2 + 1] * (n / m)
    got = spectral.padded_square(v_hat, n)
    assert torch.allclose(got[: n // 2], ref[: n // 2], atol=1e-12)
    # the plain grid square aliases: it must differ
    plain = torch.fft.rfft(torch.fft.irfft(v_hat, n=n) ** 2)
    assert float((plain[: n // 2] - ref[: n // 2]).abs().max()) > 1e-3


def test_dealias_mask():
    m = spectral.dealias_mask(12, "2/3")
    assert m.tolist() == [True] * 4 + [False] * 3          # 3 m < 12: m = 4 = n/3 goes too
    assert spectral.dealias_mask(13, "2/3").tolist() == [True] * 5 + [False] * 2
    # the mode n/3 squared lands on 2n/3, which aliases back onto n/3: it must not be kept
    n = 999
    u = torch.cos(2 * math.pi * (n // 3) * torch.arange(n, dtype=torch.float64) / n)
    mask = spectral.dealias_mask(n, "2/3")
    k = spectral.wavenumbers(n, 1.0)
    from pymsde.numerics.pde import conservative_advection_hat

    nonlinear = conservative_advection_hat(torch.fft.rfft(u), k, mask, n)
    assert float(nonlinear.abs().max()) < 1e-6     # round-off (1.3e-9 seen); keeping n/3 gave 2.6e5
    m = spectral.dealias_mask(12, "3/2")
    assert m.tolist() == [True] * 6 + [False]
    with pytest.raises(ValueError):
        spectral.dealias_mask(12, "1/2")
