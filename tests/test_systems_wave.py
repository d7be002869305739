"""wave1d: the final paper's advected Gaussian pulse (FINAL_PAPER.md section 3), written in
closed form; its defaults, noise, split and scored steps."""
import numpy as np
import pytest

from pymsde.systems import CASES, simulate
from pymsde.systems.solvers import advect_fourier, gaussian_pulse_advection, periodic_offset
from pymsde.util.errors import ConfigError


def pulse_by_images(x, t, w, c=1.0, x0=0.0):
    """The periodic pulse as a sum over periodic images (independent of the nearest-image code):
    the images beyond the nearest are below exp(-(0.5/0.02)^2) = exp(-625)."""
    return sum(np.exp(-((x - x0 - c * t + m) / w) ** 2) for m in range(-3, 4))


@pytest.fixture(scope="module")
def default_noisy():
    return simulate("wave1d", progress=False)          # 30 x 1001 x 1 x 1000, noise 1e-3


def test_case_defaults_follow_the_paper(default_noisy):
    spec = CASES["wave1d"]
    assert (spec.pde, spec.domain, spec.boundary, spec.n_grid, spec.coarse) == (
        "advection", ((0.0, 1.0),), ("periodic",), (1000,), (20,))
    assert (spec.params, spec.n_traj, spec.t_end, spec.n_steps, spec.noise, spec.score_steps) == (
        {"c": 1.0}, 30, 1.0, 1001, 1e-3, 201)
    tr = default_noisy
    assert tr.u.shape == (30, 1001, 1, 1000) and tr.mu is None
    assert tr.dt == pytest.approx(1e-3, rel=1e-12) and tr.t[0, -1] == 1.0
    assert {k: len(v) for k, v in tr.splits.items()} == {"train": 20, "val": 5, "test": 5}
    assert sorted(np.concatenate(list(tr.splits.values())).tolist()) == list(range(30))
    width = np.array(tr.attrs["ic"]["width"])
    assert width.shape == (30,) and (width >= 0.01).all() and (width <= 0.02).all()
    assert width.min() < 0.012 and width.max() > 0.018                    # U(0.01, 0.02), 30 draws
    assert (tr.attrs["c"], tr.attrs["noise"], tr.attrs["coarse"]) == (1.0, 1e-3, [20])
    assert (tr.attrs["score_steps"], tr.attrs["score_t_end"]) == (201, 0.2)
    assert tr.t[0, tr.attrs["score_steps"] - 1] == pytest.approx(0.2, abs=1e-15)


def test_noise_is_gaussian_with_the_paper_std(default_noisy):
    tr = default_noisy
    x = tr.grid.coordinates(0)
    width = np.array(tr.attrs["ic"]["width"])
    resid = np.stack([tr.u[i, :, 0] - pulse_by_images(x[None], tr.t[i][:, None], w) for i, w in enumerate(width)])
    n = resid.size                                                   # 3.0e7 samples
    assert abs(resid.mean()) < 5 * 1e-3 / np.sqrt(n)                 # 5 sigma of the sample mean
    assert abs(resid.std() / 1e-3 - 1) < 5 / np.sqrt(2 * n)          # 5 sigma of the sample std (1.3e-4 rel.)
    kurt = np.mean(resid ** 4) / resid.var() ** 2
    assert abs(kurt - 3) < 5 * np.sqrt(24 / n)                       # Gaussian tails
    # independent from point to point: neighbour correlation is Monte-Carlo small
    r = resid[:3].reshape(-1, 1000)
    assert abs(np.mean(r[:, 1:] * r[:, :-1]) / r.var()) < 5 / np.sqrt(r[:, 1:].size)


def test_clean_field_is_the_closed_form_pulse():
    tr = simulate("wave1d", n_traj=4, seed=3, noise=0.0, progress=False)
    x, t = tr.grid.coordinates(0), tr.t[0]
    assert np.abs(x - np.arange(1000) / 1000).max() == 0.0            # periodic grid j / N on [0, 1)
    width = np.array(tr.attrs["ic"]["width"])
    rng = np.random.default_rng(0)
    i, k, j = rng.integers(0, 4, 20000), rng.integers(0, 1001, 20000), rng.integers(0, 1000, 20000)
    exact = pulse_by_images(x[j], t[k], width[i])
    assert np.abs(tr.u[i, k, 0, j] - exact).max() < 1e-12
    # the whole field, including the frames where the pulse straddles x = 0 = 1
    full = np.stack([pulse_by_images(x[None], t[:, None], w) for w in width])
    assert np.abs(tr.u[:, :, 0] - full).max() < 1e-12
    assert tr.u[:, 0, 0, 0].tolist() == [1.0] * 4                     # centred at x = 0 at t = 0


def test_one_cell_per_step_and_one_period():
    # dt = dx and c = 1: frame k is frame 0 rolled by k points; T = 1 is one full period
    tr = simulate("wave1d", n_traj=2, seed=1, noise=0.0, progress=False)
    u = tr.u[:, :, 0]
    for k in (1, 37, 500, 999, 1000):
        assert np.abs(u[:, k] - np.roll(u[:, 0], k, axis=-1)).max() < 1e-12
    assert np.abs(u[:, -1] - u[:, 0]).max() < 1e-12
    assert np.abs(u.sum(-1) - u[:, :1].sum(-1)).max() < 1e-11        # mass carried round intact


def test_speed_override_and_nearest_image_offset():
    tr = simulate("wave1d", n_traj=1, n_steps=5, t_end=2.4, noise=0.0, c=-0.75, progress=False)
    x, t, w = tr.grid.coordinates(0), tr.t[0], tr.attrs["ic"]["width"][0]
    assert tr.attrs["c"] == -0.75
    assert np.abs(tr.u[0, :, 0] - pulse_by_images(x[None], t[:, None], w, c=-0.75)).max() < 1e-12
    assert periodic_offset(0.99, 7.0 + 0.01, 1.0) == pytest.approx(-0.02, abs=1e-12)   # many periods travelled
    out = gaussian_pulse_advection(np.array([0.0, 0.5]), np.array([0.0, 0.5]), [0.1, 0.2])
    assert out.shape == (2, 2, 1, 2) and out[1, 1, 0, 1] == 1.0 and out[0, 0, 0, 0] == 1.0


def test_given_u0_is_translated_exactly():
    n = 64
    rng = np.random.default_rng(4)
    u0 = rng.standard_normal((2, 1, n))                                 # not band-limited
    tr = simulate("wave1d", u0=u0, n_grid=n, n_steps=4, t_end=3 / n, noise=0.0, progress=False)
    assert tr.attrs["ic"] == {"given": True}
    for k in range(4):                                                  # whole-cell shifts: exact rolls
        assert np.abs(tr.u[:, k] - np.roll(u0, k, axis=-1)).max() < 1e-13
    x = np.arange(n) / n                                                # band-limited, any shift
    f = np.cos(2 * np.pi * 3 * x) + 0.5 * np.sin(2 * np.pi * 7 * x)
    out = advect_fourier(f[None, None], np.array([0.0, 0.123]), 1.3, 1.0)
    xs = x - 1.3 * 0.123
    assert np.abs(out[0, 1, 0] - (np.cos(2 * np.pi * 3 * xs) + 0.5 * np.sin(2 * np.pi * 7 * xs))).max() < 1e-13


def test_score_steps_follow_the_time_grid():
    assert all(CASES[c].score_steps is None for c in ("burgers1d", "kdv1d", "burgers2d"))
    tr = simulate("wave1d", n_traj=1, n_steps=2001, noise=0.0, progress=False)
    assert (tr.attrs["score_steps"], tr.attrs["score_t_end"]) == (401, 0.2)   # t <= 0.2 at dt = 5e-4
    tr = simulate("wave1d", n_traj=1, n_steps=11, t_end=0.1, progress=False)
    assert tr.attrs["score_steps"] == 11                                    # shorter than 0.2: all
    kdv = simulate("kdv1d", n_traj=1, n_steps=2, t_end=1e-3, progress=False)
    assert "score_steps" not in kdv.attrs


def test_options_that_do_not_apply_and_the_backend():
    with pytest.raises(ConfigError, match="do not apply to case 'wave1d'"):
        simulate("wave1d", n_traj=1, n_steps=2, dt=1e-3, progress=False)
    with pytest.raises(ConfigError, match="backend 'cuda'"):
        simulate("wave1d", n_traj=1, n_steps=2, backend="cuda", progress=False)
    # no solver runs: a Julia request neither starts Julia nor fails without it
    tr = simulate("wave1d", n_traj=1, n_steps=2, backend="julia", progress=False)
    assert tr.attrs["backend"] == "numpy"
    with pytest.raises(ConfigError, match="split counts"):
        simulate("wave1d", n_traj=6, n_steps=2, split=(3, 1, 1), progress=False)
    tr = simulate("wave1d", n_traj=6, n_steps=2, split=(4, 1, 1), progress=False)
    assert {k: len(v) for k, v in tr.splits.items()} == {"train": 4, "val": 1, "test": 1}


def test_same_seed_same_data():
    a = simulate("wave1d", n_traj=3, n_steps=11, seed=7, progress=False)
    b = simulate("wave1d", n_traj=3, n_steps=11, seed=7, progress=False)
    c = simulate("wave1d", n_traj=3, n_steps=11, seed=8, progress=False)
    assert np.array_equal(a.u, b.u) and a.attrs == b.attrs and not np.array_equal(a.u, c.u)
