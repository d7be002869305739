"""The least-squares pre-fit of the drift's linear term (pymsde.training.prefit)."""

import numpy as np
import pytest
import torch

from pymsde.data.trajectories import Trajectories
from pymsde.model import MultiscaleModel
from pymsde.model.drift import linear_features
from pymsde.numerics.padding import gather_stencil
from pymsde.training.prefit import prefit_linear_drift
from pymsde.util.errors import ConfigError


def _advection(speeds, n=64, n_t=41, dt=0.002, seed=0, modes=(1, 2)):
    """u_t + c u_x = 0 on the periodic unit interval: sums of sinusoids moving at speed c."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    t = dt * np.arange(n_t)
    u = np.zeros((len(speeds), n_t, 1, n))
    for i, c in enumerate(speeds):
        for k in modes:
            a, ph = rng.normal(), rng.uniform(0, 2 * np.pi)
            u[i, :, 0] += a * np.sin(2 * np.pi * k * (x[None] - c * t[:, None]) + ph)
    return Trajectories(u=u, t=t, domain=[[0.0, 1.0]], boundary=["periodic"], mu=np.asarray(speeds)[:, None])


def _model(data, coarse=16, micro=0):
    torch.manual_seed(0)
    return MultiscaleModel.build(data.grid, coarse, micro_dim=micro, n_mu=1, drift_linear=True).double()


def test_prefit_recovers_the_advection_operator_and_carries_it_to_a_new_speed():
    train = _advection([0.5, 1.0, 1.5])
    model = _model(train)
    res = prefit_linear_drift(model, train)
    # central differences in time are second order: (omega dt)^2 / 6 ~ 1e-4 here
    assert res.relative_error < 1e-3 and res.rows == 3 * 39 * 16
    # the drift is now the linear term alone; on another speed and other phases it predicts dz/dt
    test = _advection([0.8], seed=5)
    with torch.no_grad():
        z = model.encode(torch.as_tensor(test.u[0]))[0]
        dz = (z[2:] - z[:-2]) / (2 * test.dt)
        g = model.drift(0.0, z[1:-1], torch.full((z.shape[0] - 2, 1), 0.8, dtype=torch.float64))
    assert float((g - dz).norm() / dz.norm()) < 2e-3
    assert torch.count_nonzero(model.drift_net.macro_weights[-1]) == 0


def test_prefit_is_the_least_squares_solution_of_its_features():
    # the normal equations assembled trajectory by trajectory equal numpy's lstsq on the stacked rows
    train = _advection([0.6, 1.2], n_t=21, modes=(1, 2, 3, 4))
    model = _model(train, micro=2)
    prefit_linear_drift(model, train)
    xs, ys = [], []
    with torch.no_grad():
        for i in range(train.n_traj):
            zM = model.encode(torch.as_tensor(train.u[i]))[0][:, :16]
            ys.append(((zM[2:] - zM[:-2]) / (2 * train.dt)).reshape(-1, 1).numpy())
            rows = gather_stencil(zM[1:-1].reshape(-1, 1, 16), 2, ("periodic",)).reshape(-1, 5)
            xs.append(linear_features(rows, torch.full((rows.shape[0] // 16, 1), float(train.mu[i, 0]),
                                                       dtype=torch.float64), 16).numpy())
    w, *_ = np.linalg.lstsq(np.concatenate(xs), np.concatenate(ys), rcond=None)
    fitted = model.drift_net.linear.detach().numpy().T
    x, y = np.concatenate(xs), np.concatenate(ys)
    # the same residual (the ridge of 1e-8 moves it by less than 1e-6 of it)
    assert np.linalg.norm(x @ fitted - y) == pytest.approx(np.linalg.norm(x @ w - y), rel=1e-6, abs=1e-9)


def test_prefit_refusals_are_one_line():
    train = _advection([1.0])
    plain = MultiscaleModel.build(train.grid, 16, micro_dim=0, n_mu=1).double()
    with pytest.raises(ConfigError, match="drift_prefit: the model has no linear drift term; set drift_linear"):
        prefit_linear_drift(plain, train)
    short = Trajectories(u=train.u[:, :2], t=train.t[0, :2], domain=[[0.0, 1.0]], boundary=["periodic"], mu=train.mu)
    with pytest.raises(ConfigError, match="the trajectories have 2 times"):
        prefit_linear_drift(_model(train), short)


def test_a_channel_of_small_units_is_fitted_as_well_as_a_large_one():
    # two advected channels, the second 1e-4 times smaller: the equilibrated ridge fits both
    big, small = _advection([0.5, 1.0, 1.5]), _advection([0.5, 1.0, 1.5], seed=3)
    u = np.concatenate([big.u, 1e-4 * small.u], axis=2)
    two = Trajectories(u=u, t=big.t[0], domain=[[0.0, 1.0]], boundary=["periodic"], mu=big.mu)
    torch.manual_seed(0)
    model = MultiscaleModel.build(two.grid, 16, micro_dim=0, channels=2, n_mu=1, drift_linear=True).double()
    res = prefit_linear_drift(model, two)
    assert len(res.channel_errors) == 2 and max(res.channel_errors) < 1e-3, res.channel_errors


def test_a_zero_field_is_refused_in_one_line():
    zero = Trajectories(u=np.zeros((2, 5, 1, 64)), t=np.arange(5) * 0.1, domain=[[0.0, 1.0]], boundary=["periodic"],
                        mu=np.ones((2, 1)))
    with pytest.raises(ConfigError, match="drift_prefit: the coarse-grained training field is zero everywhere"):
        prefit_linear_drift(_model(zero), zero)
