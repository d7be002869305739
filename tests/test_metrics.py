"""Forecast scores (pymsde.evaluate.metrics) against known values and closed forms."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from pymsde.evaluate.metrics import crps_ensemble, nrmse, nrmse_per_time, spread_skill
from pymsde.util.errors import DataError


def test_nrmse_known_values():
    """A truth scaled by 1.03 has nRMSE 3 % at every time; a per-time error e_k with
    ||e_k|| = r_k ||u_k|| gives nRMSE_k = 100 r_k and the overall RMS of them."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(7, 2, 16))
    assert nrmse(1.03 * truth, truth) == pytest.approx(3.0, rel=1e-12)
    assert np.allclose(nrmse_per_time(0.97 * truth, truth), 3.0, rtol=1e-12)
    r = np.linspace(0.01, 0.07, 7)
    direction = rng.normal(size=truth.shape)
    direction /= np.sqrt((direction ** 2).sum(axis=(1, 2), keepdims=True))
    norms = np.sqrt((truth ** 2).sum(axis=(1, 2)))
    pred = truth + (r * norms)[:, None, None] * direction
    assert np.allclose(nrmse_per_time(pred, truth), 100 * r, rtol=1e-10)
    assert nrmse(pred, truth) == pytest.approx(100 * math.sqrt(np.mean(r ** 2)), rel=1e-10)
    # torch input gives the same number
    assert nrmse(torch.from_numpy(pred), torch.from_numpy(truth)) == pytest.approx(nrmse(pred, truth), rel=1e-12)


def test_crps_deterministic_ensemble_is_mae_and_matches_brute_force():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(4, 5))
    x = rng.normal(size=(4, 5))
    same = np.broadcast_to(x, (6, 4, 5))
    mae = float(np.abs(x - y).mean())
    assert crps_ensemble(same, y) == pytest.approx(mae, rel=1e-12)
    assert crps_ensemble(same, y, fair=True) == pytest.approx(mae, rel=1e-12)
    assert crps_ensemble(x[None], y) == pytest.approx(mae, rel=1e-12)
    # O(n^2) definition on a random ensemble, both forms
    ens = rng.normal(size=(7, 4, 5))
    n = ens.shape[0]
    skill = np.abs(ens - y).mean(0)
    pair = np.abs(ens[:, None] - ens[None, :]).sum((0, 1))
    assert np.allclose(crps_ensemble(ens, y, reduce=False), skill - pair / (2 * n * n), rtol=1e-12)
    assert np.allclose(crps_ensemble(ens, y, fair=True, reduce=False), skill - pair / (2 * n * (n - 1)),
                       rtol=1e-12)


def test_crps_gaussian_closed_form():
    """Members ~ N(m, s^2): the fair CRPS estimates the Gaussian closed form
    s [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)], z = (y - m)/s, without bias; the standard
    form exceeds it by E|X - X'| / (2n) = s / (n sqrt(pi)). Tolerance: 4 Monte Carlo standard
    errors of the mean over the 20000 points."""
    rng = np.random.default_rng(2)
    n, P, s = 8, 20000, 0.7
    m = rng.normal(size=P)
    y = m + rng.normal(scale=1.3 * s, size=P)
    ens = m + s * rng.normal(size=(n, P))
    z = (y - m) / s
    exact = s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    fair = crps_ensemble(ens, y, fair=True, reduce=False)
    se = float(np.std(fair - exact) / math.sqrt(P))
    assert abs(float(fair.mean() - exact.mean())) < 4 * se
    std_form = crps_ensemble(ens, y)
    assert std_form - exact.mean() == pytest.approx(s / (n * math.sqrt(math.pi)), abs=4 * se)


def test_spread_skill_calibrated_and_overdispersive():
    """Calibrated ensemble (members and truth from one Gaussian): ratio 1 (the uncorrected
    ratio would be sqrt(n/(n+1)) = 0.913 for n = 5). Members with twice the spread:
    sqrt((n+1)/n) 2 / sqrt(1 + 4/n) = 1.633. Tolerance 0.03 (~6 standard errors at 40000
    points)."""
    rng = np.random.default_rng(3)
    n, P = 5, 40000
    centre = rng.normal(size=P) * 3
    truth = centre + rng.normal(size=P)
    ens = centre + rng.normal(size=(n, P))
    ratio, spread, skill = spread_skill(ens, truth, return_parts=True)
    assert ratio == pytest.approx(1.0, abs=0.03)
    assert spread == pytest.approx(1.0, abs=0.02) and skill == pytest.approx(math.sqrt(1.2), abs=0.02)
    wide = centre + 2 * rng.normal(size=(n, P))
    assert spread_skill(wide, truth) == pytest.approx(math.sqrt(1.2) * 2 / math.sqrt(1.8), abs=0.03)


def test_metric_input_errors():
    with pytest.raises(DataError, match="shape"):
        nrmse(np.zeros((3, 4)), np.ones((3, 5)))
    with pytest.raises(DataError, match="identically zero at time index 1"):
        nrmse(np.ones((3, 4)), np.array([[1.0] * 4, [0.0] * 4, [1.0] * 4]))
    with pytest.raises(DataError, match="NaN"):
        nrmse(np.full((2, 2), np.nan), np.ones((2, 2)))
    with pytest.raises(DataError, match=r"expected samples \(n_members, \*truth.shape\)"):
        crps_ensemble(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(DataError, match="at least 2 members"):
        crps_ensemble(np.zeros((1, 3)), np.zeros(3), fair=True)
    with pytest.raises(DataError, match="at least 2 members"):
        spread_skill(np.zeros((1, 3)), np.zeros(3))
