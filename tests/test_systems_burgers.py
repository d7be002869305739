"""Burgers simulators (1-D and 2-D) against exact viscous solutions, conservation,
symmetry, stability limits and the case recipe."""
import math

import numpy as np
import pytest

from pymsde.data.trajectories import Trajectories
from pymsde.systems import CASES, burgers_dt_limit, integrate_burgers, simulate
from pymsde.util.errors import ConfigError, StabilityError

NU = 0.01


def cole_hopf(xi, t, nu, a=0.8, k=2 * math.pi):
    """Exact periodic solution of v_t + v v_x = nu v_xx: v = -2 nu phi_x / phi with the heat
    solution phi = 1 + a exp(-nu k^2 t) cos(k x). Zero at x = 0, 1/2, 1 for all t."""
    e = a * np.exp(-nu * k * k * t)
    return 2 * nu * k * e * np.sin(k * xi) / (1 + e * np.cos(k * xi))


def _fd_errors(bc, order, ns=(32, 64, 128), t_end=0.5):
    errs = []
    for n in ns:
        x = np.arange(n) / n if bc == "periodic" else np.linspace(0.0, 1.0, n + 1)
        u, _ = integrate_burgers(cole_hopf(x, 0, NU)[None, None], np.linspace(0, t_end, 6), [1.0 / n], NU, (bc,),
                                 order=order, scheme="fd", show_progress=False)
        errs.append(np.abs(u[0, -1, 0] - cole_hopf(x, t_end, NU)).max())
    slope = np.polyfit(np.log([1.0 / n for n in ns]), np.log(errs), 1)[0]
    return slope, errs


@pytest.mark.parametrize("order", [2, 4, 6])
def test_burgers1d_fd_converges_at_design_order_periodic(order):
    slope, errs = _fd_errors("periodic", order)
    assert abs(slope - order) < 0.3, (slope, errs)


def test_burgers1d_fd_converges_at_design_order_dirichlet():
    # u = 0 at x = 0 and 1 for all t, so "boundary values held fixed" is exact here; the
    # extrapolated ghost points keep fourth order
    slope, errs = _fd_errors("dirichlet", 4)
    assert abs(slope - 4) < 0.3, (slope, errs)
    assert errs[-1] < 5e-7


def test_burgers1d_spectral_is_spectrally_accurate():
    errs = []
    for n in (16, 32, 64):
        x = np.arange(n) / n
        u, info = integrate_burgers(cole_hopf(x, 0, NU)[None, None], np.linspace(0, 0.5, 2), [1.0 / n], NU,
                                    ("periodic",), dt=1e-3, scheme="spectral", show_progress=False)
        errs.append(np.abs(u[0, -1, 0] - cole_hopf(x, 0.5, NU)).max())
    # measured: 8.4e-4, 7.0e-6, 1.5e-10 -- the error ratio grows with n (exponential convergence)
    assert errs[2] < 1e-9
    assert errs[0] / errs[1] > 50 and errs[1] / errs[2] > 1e4


def test_burgers1d_spectral_time_order_is_four():
    n = 128
    x = np.arange(n) / n
    errs = []
    for dt in (0.05, 0.025, 0.0125):
        u, _ = integrate_burgers(cole_hopf(x, 0, NU)[None, None], np.linspace(0, 0.5, 2), [1.0 / n], NU,
                                 ("periodic",), dt=dt, scheme="spectral", show_progress=False)
        errs.append(np.abs(u[0, -1, 0] - cole_hopf(x, 0.5, NU)).max())
    slope = np.polyfit(np.log([0.05, 0.025, 0.0125]), np.log(errs), 1)[0]
    assert abs(slope - 4) < 0.3, (slope, errs)


def test_burgers2d_fd_converges_to_exact_solution():
    # u(x, y, t) = v(x + y, t) / 2 solves u_t + u (u_x + u_y) = nu lap u when v solves 1-D
    # Burgers with viscosity 2 nu; doubly periodic on [0, 1)^2
    errs, ns = [], (16, 32, 64)
    for n in ns:
        x = np.arange(n) / n
        xi = x[:, None] + x[None, :]
        u0 = cole_hopf(xi, 0, 2 * NU, a=0.5) / 2
        u, _ = integrate_burgers(u0[None, None], np.linspace(0, 0.25, 2), [1.0 / n] * 2, NU,
                                 ("periodic", "periodic"), show_progress=False)
        errs.append(np.abs(u[0, -1, 0] - cole_hopf(xi, 0.25, 2 * NU, a=0.5) / 2).max())
    slope = np.polyfit(np.log([1.0 / n for n in ns]), np.log(errs), 1)[0]
    assert abs(slope - 4) < 0.3, (slope, errs)


def test_burgers2d_dirichlet_self_convergence():
    # the case's own initial condition and held boundary values, nested grids 17/33/65 nodes:
    # differences between successive refinements shrink at the design order
    sols = []
    for n in (17, 33, 65):
        tr = simulate("burgers2d", n_traj=1, n_grid=n, n_steps=2, t_end=0.1, nu=0.05, noise=0.0, progress=False)
        sols.append(tr.u[0, -1, 0])
    c = sols[0]
    m = sols[1][::2, ::2]
    f = sols[2][::4, ::4]
    order = math.log2(np.abs(c - m).max() / np.abs(m - f).max())
    assert abs(order - 4) < 0.5, order


def test_burgers2d_symmetric_ic_stays_symmetric():
    # the case's initial condition is centred at (0.3, 0.3): symmetric under x <-> y
    tr = simulate("burgers2d", n_traj=2, n_grid=32, n_steps=51, t_end=0.5, noise=0.0, progress=False)
    u = tr.u[:, :, 0]
    assert np.abs(u[:, 0] - u[:, 0].transpose(0, 2, 1)).max() == 0.0
    assert np.abs(u - u.transpose(0, 1, 3, 2)).max() <= 1e-14
    assert np.abs(u[:, -1] - u[:, 0]).max() > 0.1          # it did evolve
    # boundary values held fixed
    for sl in (np.s_[:, :, 0, :], np.s_[:, :, -1, :], np.s_[:, :, :, 0], np.s_[:, :, :, -1]):
        assert np.array_equal(u[sl], np.broadcast_to(u[sl][:, :1], u[sl].shape))


@pytest.mark.parametrize("scheme", ["spectral", "fd"])
def test_periodic_burgers1d_conserves_mass_to_roundoff(scheme):
    # to t = 0.6, past the time the steepening front becomes a viscous shock (~0.45)
    tr = simulate("burgers1d", n_traj=3, n_steps=61, t_end=0.6, noise=0.0, scheme=scheme, progress=False)
    mass = tr.u[:, :, 0].sum(-1)
    scale = np.abs(tr.u[:, 0, 0]).sum(-1)
    # measured: 4e-16 (spectral), 4.3e-14 (fd) relative
    assert (np.abs(mass - mass[:, :1]) / scale[:, None]).max() < 1e-12


def test_spectral_and_fd_agree_on_the_case():
    # two independent discretisations of the steepening Gaussian (shock forms near t = 0.5)
    kw = dict(n_traj=1, n_steps=61, t_end=0.6, noise=0.0, progress=False)
    a = simulate("burgers1d", scheme="spectral", **kw).u
    b = simulate("burgers1d", scheme="fd", **kw).u
    assert np.abs(a - b).max() < 2e-5          # measured 3.6e-6 to T = 1 (bench --accuracy; fd error)
    assert np.abs(a[:, -1]).max() <= np.abs(a[:, 0]).max() + 1e-6   # maximum principle


@pytest.mark.parametrize("case,scheme,n_grid", [("burgers1d", "spectral", None), ("burgers1d", "fd", None),
                                                ("burgers2d", "fd", 32)])
def test_unstable_time_step_raises(case, scheme, n_grid):
    # limits at these sizes: 4.3e-3 (spectral), 9.0e-4 (fd, N = 1000), ~1.7e-2 (2-D, 32 x 32)
    with pytest.raises(StabilityError, match="stability limit"):
        simulate(case, n_traj=1, n_grid=n_grid, n_steps=3, t_end=0.2, dt=0.1, scheme=scheme, progress=False)


def test_fd_stability_limit_is_sharp():
    # just below the stated limit the scheme runs; 1.2 x the limit (bypassing the check) blows up
    import torch

    from pymsde.numerics import pde

    n, nu = 200, 0.05
    rng = np.random.default_rng(0)
    u0 = 0.5 * np.sin(2 * np.pi * np.arange(n) / n) + 0.01 * rng.standard_normal(n)
    limit = burgers_dt_limit(np.abs(u0).max(), [1.0 / n], nu, 4)
    for factor, stable in ((0.95, True), (1.2, False)):
        u = torch.as_tensor(u0)[None, None]
        for _ in range(400):
            u = pde.burgers_rk4_step(u, factor * limit, [1.0 / n], nu, ("periodic",), 4)
        assert bool(torch.isfinite(u).all() and u.abs().max() < 1) == stable, factor


def test_case_recipe_and_determinism():
    spec = CASES["burgers1d"]
    assert (spec.n_grid, spec.params["nu"], spec.n_traj, spec.n_steps, spec.noise) == ((1000,), 5e-4, 10, 1001, 1e-3)
    kw = dict(n_traj=4, n_grid=200, n_steps=21, t_end=0.2, progress=False)
    a, b = simulate("burgers1d", seed=3, **kw), simulate("burgers1d", seed=3, **kw)
    c = simulate("burgers1d", seed=4, **kw)
    assert isinstance(a, Trajectories)
    assert np.array_equal(a.u, b.u) and not np.array_equal(a.u, c.u)
    assert a.u.shape == (4, 21, 1, 200) and a.t.shape == (4, 21) and a.dt == pytest.approx(0.01)
    assert a.boundary == ("periodic",) and a.domain.tolist() == [[0.0, 1.0]]
    assert a.attrs["case"] == "burgers1d" and a.attrs["nu"] == 5e-4 and len(a.attrs["ic"]["A"]) == 4
    assert sorted(np.concatenate(list(a.splits.values())).tolist()) == [0, 1, 2, 3]
    # initial condition follows the recipe: u0 = A exp(-(x - 0.5)^2 / V)
    clean = simulate("burgers1d", seed=3, noise=0.0, **kw)
    x = np.arange(200) / 200
    amp, var = np.array(a.attrs["ic"]["A"]), np.array(a.attrs["ic"]["V"])
    assert np.allclose(clean.u[:, 0, 0], amp[:, None] * np.exp(-(x - 0.5) ** 2 / var[:, None]), atol=1e-12)
    # noise is N(0, 0.001^2) added on top of the clean solution
    resid = a.u - clean.u
    assert abs(resid.std() - 1e-3) < 5e-5 and abs(resid.mean()) < 5e-5


def test_burgers_widths_are_positive_and_zero_viscosity_runs():
    # seed 5183 draws V = -1.19e-3 for one of its 10 trajectories (exp(+x^2/|V|): a run that
    # never ends); the recipe's distribution is conditioned on V > 0, so that draw is redrawn
    bad = simulate("burgers1d", seed=5183, n_steps=2, t_end=1e-3, noise=0.0, progress=False)
    assert min(bad.attrs["ic"]["V"]) > 0 and np.abs(bad.u).max() < 1.0
    ok = simulate("burgers1d", seed=3, n_grid=64, n_steps=2, t_end=1e-3, progress=False)
    rng = np.random.default_rng(3)                                   # no bad draw: the plain draws
    assert ok.attrs["ic"]["A"] == rng.normal(0.25, 0.05, 10).tolist()
    assert ok.attrs["ic"]["V"] == rng.normal(0.01, 0.0025, 10).tolist()
    inviscid = simulate("burgers2d", n_traj=1, n_grid=16, n_steps=3, t_end=0.01, nu=0.0, progress=False)
    assert np.isfinite(inviscid.u).all()


def test_a_run_needing_absurdly_many_substeps_is_refused():
    from pymsde.util.errors import StabilityError

    x = np.arange(64) / 64
    with pytest.raises(StabilityError, match="substeps per output interval"):
        simulate("burgers1d", n_traj=1, n_grid=64, n_steps=2, t_end=1.0, u0=1e12 * np.sin(2 * np.pi * x)[None],
                 progress=False)


def test_default_split_counts():
    tr = simulate("burgers1d", n_grid=100, n_steps=3, t_end=0.01, progress=False)
    assert {k: len(v) for k, v in tr.splits.items()} == {"train": 8, "val": 1, "test": 1}


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown case"):
        simulate("heat1d")
    with pytest.raises(ConfigError, match="unknown option"):
        simulate("burgers1d", viscosity=1.0)
    with pytest.raises(ConfigError, match="u0 of shape"):
        simulate("burgers1d", n_traj=2, n_grid=64, n_steps=3, u0=np.zeros((3, 64)), progress=False)
    with pytest.raises(ConfigError, match="backend"):
        simulate("burgers1d", n_traj=1, backend="cuda")
    with pytest.raises(ConfigError, match="spectral"):
        simulate("burgers2d", n_traj=1, n_grid=16, n_steps=3, scheme="spectral", progress=False)


def test_burgers2d_defaults_are_the_final_papers():
    # FINAL_PAPER.md section 4.1: nu 0.005 on [0, 1]^2, 128 x 128 nodes with the boundary values
    # held, T = 1 in 1001 saved steps, noise 0.001, 30 trajectories split 20/5/5, float32 storage
    from pymsde.systems.cases import split_sizes

    spec = CASES["burgers2d"]
    assert (spec.params, spec.domain, spec.boundary, spec.n_grid, spec.coarse) == (
        {"nu": 5e-3}, ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"), (128, 128), (8, 8))
    assert (spec.t_end, spec.n_steps, spec.noise, spec.n_traj) == (1.0, 1001, 1e-3, 30)
    assert split_sizes(spec.split, spec.n_traj) == {"train": 20, "val": 5, "test": 5}
    assert spec.storage_dtype == "float32"
    tr = simulate("burgers2d", n_grid=8, n_steps=2, t_end=1e-3, progress=False)   # default count and split
    assert tr.n_traj == 30 and {k: len(v) for k, v in tr.splits.items()} == {"train": 20, "val": 5, "test": 5}
    assert tr.u.dtype == np.float64                       # the simulator works in float64; files store float32


def test_burgers2d_older_draw_is_two_options_away():
    # the former default (20 trajectories, fractions 0.9/0.05/0.05 -> 18/1/1, float64 file) through
    # counts: the same initial draws, noise and split permutation, bit for bit
    kw = dict(n_traj=20, n_grid=8, n_steps=3, t_end=2e-3, seed=3, progress=False)
    a = simulate("burgers2d", split=(18, 1, 1), **kw)
    b = simulate("burgers2d", split=(0.9, 0.05, 0.05), **kw)
    assert np.array_equal(a.u, b.u) and a.attrs == b.attrs and a.u.dtype == np.float64
    assert {k: len(v) for k, v in a.splits.items()} == {"train": 18, "val": 1, "test": 1}


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_burgers2d_files_store_float32_unless_asked(tmp_path, suffix):
    from pymsde.data.io import load
    from pymsde.systems import simulate_to_file

    if suffix == ".h5":
        pytest.importorskip("h5py")
    kw = dict(n_traj=3, n_grid=8, n_steps=3, t_end=2e-3, seed=1, progress=False)
    s = simulate_to_file("burgers2d", tmp_path / f"a{suffix}", **kw)
    a = load(s["path"])
    ref = simulate("burgers2d", **kw)
    assert s["dtype"] == "float32" and a.u.dtype == np.float32
    assert np.array_equal(a.u, ref.u.astype(np.float32)) and a.splits == ref.splits
    b = load(simulate_to_file("burgers2d", tmp_path / f"b{suffix}", dtype="float64", **kw)["path"])
    assert b.u.dtype == np.float64 and np.array_equal(b.u, ref.u)
    assert load(simulate_to_file("burgers1d", tmp_path / f"c{suffix}", n_traj=3, n_grid=40, n_steps=2, t_end=1e-3,
                                 progress=False)["path"]).u.dtype == np.float64     # other cases: float64
    with pytest.raises(ConfigError, match="dtype"):
        simulate_to_file("burgers2d", tmp_path / f"d{suffix}", dtype="float16", **kw)
    assert not (tmp_path / f"d{suffix}").exists()


def test_simulate_command_stores_burgers2d_as_float32(tmp_path, capsys):
    from pymsde.cli import main
    from pymsde.data.io import load

    args = ["simulate", "burgers2d", "--n-grid", "8", "--n-steps", "2", "--t-end", "1e-3"]
    assert main(args + ["--out", str(tmp_path / "a.npz")]) == 0
    assert "float32" in capsys.readouterr().out
    a = load(tmp_path / "a.npz")
    assert a.u.dtype == np.float32 and a.n_traj == 30 and len(a.splits["train"]) == 20
    assert main(args + ["--out", str(tmp_path / "b.npz"), "--dtype", "float64", "--n-traj", "20",
                        "--split", "18,1,1"]) == 0
    b = load(tmp_path / "b.npz")
    assert b.u.dtype == np.float64 and b.n_traj == 20 and len(b.splits["test"]) == 1
