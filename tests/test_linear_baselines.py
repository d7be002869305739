"""The DMD and POD-SINDy baselines (pymsde.evaluate.linear_baselines) on systems with known answers."""
import math
import sys

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from pymsde.evaluate import linear_baselines as lb
from pymsde.evaluate.metrics import relative_error, relative_error_summary
from pymsde.util.errors import ConfigError, DataError

FIELD = (2, 8)  # (C, grid): 16 features per frame


def _basis(k: int, seed: int = 0) -> np.ndarray:
    """(16, k) orthonormal spatial patterns."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(int(np.prod(FIELD)), k)))
    return q


def _linear_map() -> tuple[np.ndarray, np.ndarray]:
    """A rank-3 map A = Q M Q^T on 16 features: a damped rotation (|lambda| = 0.98) plus 0.95."""
    q = _basis(3)
    th = 0.3
    m = np.array([[0.98 * np.cos(th), -0.98 * np.sin(th), 0.0],
                  [0.98 * np.sin(th), 0.98 * np.cos(th), 0.0],
                  [0.0, 0.0, 0.95]])
    return q @ m @ q.T, q


def _iterate(a: np.ndarray, x0: np.ndarray, n: int) -> np.ndarray:
    out = [x0]
    for _ in range(n):
        out.append(a @ out[-1])
    return np.stack(out).reshape((n + 1,) + FIELD)


def test_baseline_rank_is_n_coarse_plus_5():
    assert [lb.baseline_rank(n) for n in (20, 64, 512)] == [25, 69, 517]
    with pytest.raises(ConfigError):
        lb.baseline_rank(0)


@pytest.mark.filterwarnings("ignore:Input data condition number")
def test_dmd_recovers_exact_linear_system():
    """Data from x_{k+1} = A x_k with rank(A) = 3: plain DMD of rank 3 has A's eigenvalues
    and forecasts a new initial state in A's range to 1e-8 relative over 60 steps."""
    pytest.importorskip("pydmd")
    a, q = _linear_map()
    train = _iterate(a, q @ np.array([1.0, -0.5, 2.0]), 40)
    model = lb.fit_dmd(train, rank=3, dt=0.1, tikhonov=None)
    assert model.rank == 3 and model.field_shape == FIELD and model.dt == 0.1
    expected = np.sort_complex(np.array([0.98 * np.exp(0.3j), 0.98 * np.exp(-0.3j), 0.95]))
    assert np.allclose(np.sort_complex(model.eigs), expected, atol=1e-10)
    x0 = q @ np.array([-0.3, 1.2, 0.7])
    truth = _iterate(a, x0, 60)
    pred = model.forecast(x0.reshape(FIELD), 60)
    assert pred.shape == (61,) + FIELD
    assert np.array_equal(pred[0], x0.reshape(FIELD))
    diff, ref = (pred - truth).reshape(61, -1), truth.reshape(61, -1)
    rel = np.linalg.norm(diff, axis=1) / np.linalg.norm(ref, axis=1)
    assert rel.max() < 1e-8
    both = model.forecast_trajectories(np.stack([truth, truth]))
    assert np.allclose(both[1], pred, rtol=0, atol=1e-14)


def test_dmd_matches_the_papers_pydmd_loop():
    """With the paper's tikhonov 0.01, the forecast equals run_dmd.py's loop
    x_{j+1} = dmd.predict(x_j).real, and the regularisation visibly changes the operator."""
    pydmd = pytest.importorskip("pydmd")
    rng = np.random.default_rng(5)
    a, q = _linear_map()
    train = _iterate(a, q @ np.array([1.0, -0.5, 2.0]), 30) + 1e-3 * rng.normal(size=(31,) + FIELD)
    model = lb.fit_dmd(train, rank=5)
    ref = pydmd.DMD(svd_rank=5, tikhonov_regularization=lb.PAPER_DMD_TIKHONOV)
    ref.fit(train.reshape(31, -1).T)
    x = [train[0].ravel()]
    for _ in range(20):
        x.append(ref.predict(x[-1]).real)
    pred = model.forecast(train[0], 20).reshape(21, -1)
    assert np.allclose(pred, np.stack(x), rtol=1e-10, atol=1e-12)
    plain = lb.fit_dmd(train, rank=5, tikhonov=None)
    assert np.abs(np.sort(np.abs(plain.eigs)) - np.sort(np.abs(model.eigs))).max() > 1e-3


def _fields(z: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(n_t, k) coordinates -> (n_t, C, grid) fields u = phi z."""
    return (z @ phi.T).reshape((z.shape[0],) + FIELD)


def test_pod_sindy_recovers_linear_ode_exactly():
    """z(t) = expm(B t) z0 in a 2-D subspace. With forward differences the exact derivative
    target is D = (expm(B dt) - I) / dt, so SINDy (degree 1) must return R^T D R in POD
    coordinates w = R^T z (R = phi^T modes) to round-off; its forecast follows the exact
    solution of that ODE to RK45's default tolerance."""
    pytest.importorskip("pysindy")
    pytest.importorskip("sklearn")
    b = np.array([[-0.1, 1.0], [-1.0, -0.1]])
    dt, n_t = 0.01, 301
    phi = _basis(2, seed=1)
    step = expm(b * dt)

    def traj(z0):
        z = [np.asarray(z0, float)]
        for _ in range(n_t - 1):
            z.append(step @ z[-1])
        return np.stack(z)

    train = np.stack([_fields(traj(z0), phi) for z0 in ([1.0, 0.5], [-0.4, 1.5])])
    val = np.stack([_fields(traj([0.8, -0.9]), phi)])
    model = lb.fit_pod_sindy(train, val, dt, n_pod=2, thresholds=(0.01,), degrees=(1,))
    r = phi.T @ model.modes
    assert np.allclose(r.T @ r, np.eye(2), atol=1e-12)  # the POD spans the data's subspace
    d = (step - np.eye(2)) / dt
    assert model.feature_names == ["x0", "x1"]
    assert np.allclose(model.coefficients, r.T @ d @ r, rtol=0, atol=1e-9)
    t = dt * np.arange(n_t)
    pred = model.forecast(val[0, 0], t)
    w0 = model.encode(val[0, 0])
    exact = model.decode(np.stack([expm(model.coefficients * s) @ w0 for s in t]))  # the learned ODE
    assert relative_error_summary(pred[None], exact[None])["mean"] < 0.05  # percent, RK45 defaults
    # against the data: forward differences bias D - B = O(dt |B|^2), about 1 % by t = 3
    assert relative_error_summary(pred[None], val)["mean"] < 1.0
    # the fast polynomial right-hand side equals pysindy's own predict
    w = np.array([0.3, -1.1])
    assert np.allclose(model.rhs(w), np.asarray(model.sindy.predict(w[None])).ravel(), rtol=1e-13, atol=0)


def test_pod_sindy_recovers_lotka_volterra_and_selects_degree_2():
    """Lotka-Volterra dz1 = z1 - 0.5 z1 z2, dz2 = -0.8 z2 + 0.4 z1 z2 in a 2-D subspace. In POD
    coordinates w = R^T z the field is R^T f(R w), a quadratic without constant; SINDy must
    return its coefficients to the forward-difference bias O(dt) (dt = 1e-3), and the
    validation sweep must prefer degree 2 over degree 1."""
    pytest.importorskip("pysindy")
    pytest.importorskip("sklearn")

    def f(_t, z):
        return [z[0] - 0.5 * z[0] * z[1], -0.8 * z[1] + 0.4 * z[0] * z[1]]

    dt, t_end = 1e-3, 3.0
    t = np.arange(0.0, t_end + dt / 2, dt)
    phi = _basis(2, seed=2)

    def traj(z0):
        sol = solve_ivp(f, (0.0, t_end), z0, t_eval=t, method="DOP853", rtol=1e-12, atol=1e-12)
        return _fields(sol.y.T, phi)

    train = np.stack([traj(z0) for z0 in ([1.5, 1.0], [2.5, 1.5], [1.0, 3.0])])
    val = np.stack([traj([2.0, 2.0])])
    model = lb.fit_pod_sindy(train, val, dt, n_pod=2, thresholds=(0.001, 0.01), degrees=(1, 2))
    assert (model.threshold, model.degree) == (0.001, 2)
    assert set(model.val_scores) == {(0.001, 1), (0.01, 1), (0.001, 2), (0.01, 2)}
    assert model.val_scores[(0.001, 2)] < 0.01 < 5.0 < model.val_scores[(0.001, 1)]
    assert model.feature_names == ["x0", "x1", "x0^2", "x0 x1", "x1^2"]
    r = phi.T @ model.modes
    w = np.random.default_rng(0).normal(size=(40, 2))
    target = np.array([f(0, z) for z in w @ r.T]) @ r  # rows: R^T f(R w)
    theta = np.prod(w[:, None, :] ** model.powers[None], axis=2)
    expected = np.linalg.lstsq(theta, target, rcond=None)[0].T
    assert np.allclose(theta @ expected.T, target, atol=1e-12)  # the library represents it exactly
    assert np.abs(model.coefficients - expected).max() < 2.5e-3


def test_pod_sindy_divergence_gives_nan_frames_and_inf_error():
    """dz/dt = 10 z fitted exactly, forecast to t = 100: the state overflows near t = 71; the
    forecast does not raise, unreached frames are NaN, info says so, the error is inf, and a
    diverging setting loses the validation sweep."""
    pytest.importorskip("pysindy")
    pytest.importorskip("sklearn")
    phi = _basis(1, seed=3)
    dt = 0.01
    z = np.exp(10.0 * dt * np.arange(21))[:, None]
    train = _fields(z, phi)[None]
    model = lb.fit_pod_sindy(train, train, dt, n_pod=1, thresholds=(0.01,), degrees=(1,))
    assert abs(abs(model.coefficients[0, 0]) - (np.exp(0.1) - 1) / dt) < 1e-8
    t = np.linspace(0.0, 100.0, 101)
    pred, info = model.forecast(train[0, 0], t, return_info=True)
    assert not info["success"] and 60 < info["n_reached"] < 80
    assert np.all(np.isfinite(pred[:info["n_reached"]])) and np.all(np.isnan(pred[info["n_reached"]:]))
    truth = _fields(np.exp(10.0 * np.minimum(t, 50.0))[:, None], phi)[None]
    eps = relative_error(pred[None], truth)
    assert np.all(np.isinf(eps[0, info["n_reached"]:]))
    assert relative_error_summary(pred[None], truth)["mean"] == np.inf


def test_missing_optional_packages_raise_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydmd", None)
    with pytest.raises(ConfigError, match=r"pip install pymsde\[baselines\]"):
        lb.fit_dmd(np.ones((3,) + FIELD), rank=1)
    monkeypatch.setitem(sys.modules, "pysindy", None)
    monkeypatch.setitem(sys.modules, "sklearn.utils.extmath", None)
    with pytest.raises(ConfigError, match="pysindy|sklearn"):
        lb.fit_pod_sindy(np.ones((1, 3) + FIELD), np.ones((1, 3) + FIELD), 0.1, n_pod=1)


def test_input_errors():
    for module in ("pydmd", "pysindy", "sklearn"):
        pytest.importorskip(module)
    with pytest.raises(DataError, match="NaN"):
        lb.fit_dmd(np.full((3,) + FIELD, np.nan), rank=1)
    with pytest.raises(DataError, match="same frame shape"):
        lb.fit_pod_sindy(np.ones((1, 3) + FIELD), np.ones((1, 3, 2, 4)), 0.1, n_pod=1)


# ----------------------------------------------------------------------------- the Prediction builders

def _trajectories(u: np.ndarray, dt: float):
    from pymsde.data.trajectories import Trajectories

    return Trajectories(u=u, t=dt * np.arange(u.shape[1]), domain=[[0.0, 1.0]], boundary=("periodic",))


def test_require_baseline_packages(monkeypatch):
    for module in ("pydmd", "pysindy", "sklearn"):
        pytest.importorskip(module)
    lb.require_baseline_packages(("closure", "dns", "dmd", "sindy"))      # all present: no error
    monkeypatch.setitem(sys.modules, "pysindy", None)
    lb.require_baseline_packages(("closure", "dmd"))                      # sindy not asked for
    with pytest.raises(ConfigError, match=r"POD-SINDy baseline \(sindy\) needs the optional package 'pysindy'.*"
                                          r"pip install pymsde\[baselines\]"):
        lb.require_baseline_packages(("dmd", "sindy"))


@pytest.mark.filterwarnings("ignore:Input data condition number")
def test_dmd_prediction_is_the_papers_dmd_on_the_first_training_trajectory():
    """rank n_coarse + 5 = 6 fitted on train.u[0] only (a second, different training trajectory
    changes nothing), iterated from each test frame 0; deterministic; a test trajectory at
    another time step is refused."""
    pytest.importorskip("pydmd")
    from pymsde.evaluate.baselines import dmd_prediction

    a, q = _linear_map()
    rng = np.random.default_rng(7)
    first = _iterate(a, q @ np.array([1.0, -0.5, 2.0]), 30) + 1e-3 * rng.normal(size=(31,) + FIELD)
    train = _trajectories(np.stack([first, 3.0 * first[::-1]]), 0.1)
    test = _trajectories(np.stack([_iterate(a, q @ np.array([-0.3, 1.2, 0.7]), 40),
                                   _iterate(a, q @ np.array([0.5, 0.5, -1.0]), 40)]), 0.1)
    pred = dmd_prediction(test, train, n_coarse=1, n_score=5)
    want = lb.fit_dmd(first, lb.baseline_rank(1)).forecast_trajectories(test.u)
    assert pred.name == "dmd" and pred.deterministic and pred.std is None
    assert np.array_equal(pred.mean, want) and pred.mean.shape == test.u.shape
    assert np.array_equal(pred.mean[:, 0], test.u[:, 0])                   # frame 0 is the observation
    assert pred.info["rank_requested"] == 6 and pred.info["tikhonov"] == lb.PAPER_DMD_TIKHONOV
    assert pred.info["dt"] == pytest.approx(0.1) and pred.info["n_nonfinite_frames"] == 0
    assert pred.score_index.tolist() == [1, 11, 20, 30, 40]                # t0 left out, the last kept
    eps = relative_error(pred.mean, test.u)
    assert np.all(eps[:, 0] == 0) and np.all(np.isfinite(eps)) and eps[:, 1].max() < 1.0
    with pytest.raises(DataError, match=r"evaluated trajectory 0 has time step 0.05.*DMD is a discrete map"):
        dmd_prediction(_trajectories(test.u, 0.05), train, n_coarse=1)


def test_sindy_prediction_selects_on_val_and_forecasts_the_test_split():
    """A rank-6 stable linear ODE (n_pod = n_coarse + 5 = 6 modes span it): the builder is
    fit_pod_sindy on (train, val) + forecast_trajectories on the test split, to the bit."""
    pytest.importorskip("pysindy")
    pytest.importorskip("sklearn")
    from pymsde.evaluate.baselines import sindy_prediction

    rng = np.random.default_rng(3)
    s = rng.normal(size=(6, 6))
    b = -0.2 * np.eye(6) + 0.3 * (s - s.T)
    phi = _basis(6, seed=4)
    dt, n_t = 0.01, 101
    step = expm(b * dt)

    def traj(z0):
        z = [z0]
        for _ in range(n_t - 1):
            z.append(step @ z[-1])
        return _fields(np.stack(z), phi)

    z0s = rng.normal(size=(5, 6))
    train, val, test = (_trajectories(np.stack([traj(z) for z in zs]), dt) for zs in (z0s[:2], z0s[2:3], z0s[3:]))
    pred = sindy_prediction(test, train, val, n_coarse=1, thresholds=(0.001, 0.1), degrees=(1,), n_score=4)
    model = lb.fit_pod_sindy(train.u, val.u, dt, 6, thresholds=(0.001, 0.1), degrees=(1,), t_val=val.t)
    assert np.array_equal(pred.mean, model.forecast_trajectories(test.u, test.t))
    assert pred.deterministic and pred.info["n_pod"] == 6 and pred.info["degree"] == 1
    assert pred.info["threshold"] == model.threshold == min(model.val_scores, key=model.val_scores.get)[0]
    assert [(v["threshold"], v["degree"]) for v in pred.info["val_scores"]] == [(0.001, 1), (0.1, 1)]
    assert (pred.info["n_train"], pred.info["n_val"]) == (2, 1)
    # forward differences bias the derivative by O(dt |B|^2): about 1 % over the horizon
    assert relative_error_summary(pred.mean, test.u)["mean"] < 1.0          # percent


def test_pod_sindy_leaves_out_a_degree_whose_library_does_not_fit_in_memory(monkeypatch, caplog):
    """The library of degree d has C(n_pod + d, d) terms per sample: with room for degree 1
    only, degree 2 is left out of the sweep with a warning; with room for none, a one-line
    ResourceError before any fit (the cylinder's degree-2 fit was killed for memory)."""
    from pymsde.util.errors import ResourceError

    n_pod, n_samples = 517, 1300
    one = 8.0 * lb.SINDY_LIBRARY_COPIES * math.comb(n_pod + 1, 1) * n_samples
    two = 8.0 * lb.SINDY_LIBRARY_COPIES * math.comb(n_pod + 2, 2) * n_samples
    assert two / one == pytest.approx((n_pod + 2) / 2)                        # 134421 terms against 518
    monkeypatch.setattr(lb, "available_memory", lambda device="cpu": (2 * one, "test room"))
    with caplog.at_level("WARNING"):
        assert lb._affordable_degrees((1, 2), n_pod, n_samples, 5) == [1]
    assert "degree 2 left out" in caplog.text and "test room" in caplog.text
    monkeypatch.setattr(lb, "available_memory", lambda device="cpu": (one / 2, "test room"))
    with pytest.raises(ResourceError, match=r"no library degree of \[1, 2\] fits") as err:
        lb._affordable_degrees((1, 2), n_pod, n_samples, 5)
    assert "\n" not in str(err.value)


def test_pod_sindy_sweep_cost_bounds_the_ridge_regressions_pysindy_runs(monkeypatch):
    """sindy_sweep_cost is an upper bound on the n x p^2 of the ridge regressions pysindy's STLSQ
    solves (one per target and iteration); its first iteration sees the whole library (threshold 0
    keeps every term, so STLSQ stops after it: exactly a max_iter-th of the bound)."""
    pytest.importorskip("pysindy")
    from pysindy.optimizers import stlsq

    seen = []
    real = stlsq.ridge_regression

    def counting(x, y, alpha, **kw):
        seen.append(x.shape[0] * x.shape[1] ** 2)
        return real(x, y, alpha, **kw)

    monkeypatch.setattr(stlsq, "ridge_regression", counting)
    rng = np.random.default_rng(0)
    z = [rng.standard_normal((40, 3)) for _ in range(2)]
    dz = [rng.standard_normal((40, 3)) for _ in range(2)]
    modes = np.eye(3)
    for thr, exact in ((0.0, True), (0.3, False)):
        seen.clear()
        lb._sindy_model(modes, z, dz, 0.1, thr, 2, (3,))
        bound = lb.sindy_sweep_cost(3, 2, 80, 1)       # 9 terms (C(5, 2) - 1) x 80 samples x 3 targets x 10
        assert bound == 10 * 3 * 80 * 9 ** 2
        assert seen[:3] == [80 * 9 ** 2] * 3                 # iteration 1: the whole library per target
        if exact:
            assert sum(seen) == bound / lb.PAPER_STLSQ_MAX_ITER
        assert sum(seen) <= bound


def test_pod_sindy_leaves_out_a_degree_that_costs_too_much(caplog):
    """Burgers 2-D's sizes (69 POD coefficients, 20 x 1000 samples, 5 thresholds): degree 1 costs
    about 3e11 multiply-adds and is swept; degree 2 (2484 terms) about 4e14 (3 hours at 4e10 a
    second), left out with a warning before any fit (it ran for more than 45 minutes), and a grid
    of degree 2 alone is refused."""
    from pymsde.util.errors import ResourceError

    assert lb.sindy_sweep_cost(69, 1, 20000, 5) == pytest.approx(5 * 10 * 69 * 20000 * 69 ** 2)
    assert lb.sindy_sweep_cost(69, 2, 20000, 5) > 10 * lb.SINDY_MAX_MULTIPLY_ADDS
    with caplog.at_level("WARNING"):
        assert lb._affordable_degrees((1, 2), 69, 20000, 5) == [1]
    assert "degree 2 left out" in caplog.text and "multiply-adds" in caplog.text
    with pytest.raises(ResourceError, match=r"no library degree of \[2\] fits"):
        lb._affordable_degrees((2,), 69, 20000, 5)
    assert lb._affordable_degrees((1, 2), 25, 10000, 5) == [1, 2]    # KdV's sizes keep the paper's sweep
