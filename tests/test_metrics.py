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


from pymsde.evaluate.metrics import relative_error, relative_error_summary  # noqa: E402


def test_relative_error_hand_made_values():
    """eps[i, k] = 100 ||pred - truth|| / ||truth|| over all channels and grid points of a frame.
    Frames of norm 5 (3, 4) and 13 (5, 12) with errors of norm 0.5, 1, 1.3 and 2.6 give
    10, 20, 10 and 20 %; the pooled std is the population one (ddof = 0)."""
    truth = np.zeros((2, 2, 2, 1, 1))  # (n_traj, n_t, C, *grid) with C = 2, grid (1, 1)
    truth[:, :, 0, 0, 0] = [[3.0, 5.0], [3.0, 5.0]]
    truth[:, :, 1, 0, 0] = [[4.0, 12.0], [4.0, 12.0]]
    delta = np.zeros_like(truth)
    delta[0, 0, :, 0, 0] = [0.3, 0.4]      # norm 0.5 over ||truth|| 5
    delta[0, 1, :, 0, 0] = [-1.2, 0.5]     # norm 1.3 over 13
    delta[1, 0, :, 0, 0] = [0.0, -1.0]     # norm 1 over 5
    delta[1, 1, :, 0, 0] = [2.4, 1.0]      # norm 2.6 over 13
    eps = relative_error(truth + delta, truth)
    assert eps.shape == (2, 2) and eps.dtype == np.float64
    assert np.allclose(eps, [[10.0, 10.0], [20.0, 20.0]], rtol=1e-13, atol=0)
    s = relative_error_summary(truth + delta, truth)
    assert s["mean"] == pytest.approx(15.0, rel=1e-13) and s["std"] == pytest.approx(5.0, rel=1e-13)
    assert (s["n"], s["n_inf"]) == (4, 0)
    # torch input, same numbers; a perfect prediction scores 0
    assert np.allclose(relative_error(torch.from_numpy(truth + delta), torch.from_numpy(truth)), eps, rtol=1e-15)
    assert np.all(relative_error(truth, truth) == 0.0)
    # values whose squares overflow float64 still give the exact ratio
    assert np.allclose(relative_error(1e200 * (truth + delta), 1e200 * truth), eps, rtol=1e-12)


def test_relative_error_zero_frames_and_diverged_predictions():
    truth = np.ones((2, 3, 1, 4))
    truth[1, 2] = 0.0
    with pytest.raises(DataError, match="trajectory 1, time index 2"):
        relative_error(truth, truth)
    truth[1, 2] = 1.0
    pred = 1.1 * truth                       # 10 % everywhere
    pred[0, 1, 0, 3] = np.nan                # a frame the integrator did not reach
    pred[1, 2, 0, 0] = np.inf
    eps = relative_error(pred, truth)
    assert np.isinf(eps[0, 1]) and np.isinf(eps[1, 2])
    assert np.allclose(np.delete(eps.ravel(), [1, 5]), 10.0, rtol=1e-13)
    s = relative_error_summary(pred, truth)
    assert s["mean"] == np.inf and s["std"] == np.inf and (s["n"], s["n_inf"]) == (6, 2)
    with pytest.raises(DataError, match="NaN"):
        relative_error(truth, np.full_like(truth, np.nan))
    with pytest.raises(DataError, match="shape"):
        relative_error(np.ones((2, 3, 1, 4)), np.ones((2, 3, 1, 5)))
    with pytest.raises(DataError, match=r"\(n_traj, n_t, C, \*grid\)"):
        relative_error(np.ones((3, 4)), np.ones((3, 4)))
