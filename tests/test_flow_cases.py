"""The two generated flow cases registered in CASES: swe2d and cylinder2d (pymsde.systems.flows)."""
import numpy as np
import pytest

from pymsde.cli import main
from pymsde.data import load
from pymsde.systems import CASES, flows, simulate, swe
from pymsde.util.errors import ConfigError, DataError

#: a small cylinder channel: 20 cells per unit, no refinement, the output box as the whole channel
SMALL_CYL = dict(n_grid=(80, 20), t_end=1.0, n_steps=41, refine=1, length=4.0, progress=False)


def test_swe2d_defaults_are_the_papers():
    spec = CASES["swe2d"]
    assert (spec.n_traj, spec.n_grid, spec.n_steps, spec.t_end, spec.noise, spec.coarse) == \
        (1000, (128, 128), 101, 1.0, 1e-2, (8, 8))
    split = flows.swe_split(spec, None, 1000)                 # consecutive, as the paper's assemble script
    assert split["train"] == list(range(900)) and split["val"] == list(range(900, 950))
    assert split["test"] == list(range(950, 1000))
    grid = spec.grid()
    assert grid.domain[0] == (-2.48046875, 2.48046875) and grid.spacing[0] == pytest.approx(5 / 128, rel=1e-14)
    assert np.abs(grid.coordinates(1) - swe.cell_centres(128, -2.5, 2.5)).max() < 1e-15


def test_swe2d_small_matches_the_generator_bit_for_bit():
    tr = simulate("swe2d", n_traj=4, n_grid=32, n_steps=11, seed=3, progress=False)
    ref = swe.generate_swe(4, seed=3, n_grid=32, n_steps=11, show_progress=False)
    assert tr.u.shape == (4, 11, 1, 32, 32) and tr.u.dtype == np.float64
    assert np.array_equal(tr.u, ref["u"]) and np.array_equal(tr.mu, ref["mu"])
    assert np.abs(tr.grid.coordinates(0) - ref["x"]).max() < 1e-15
    assert {k: v.tolist() for k, v in tr.splits.items()} == {"train": [0, 1], "val": [2], "test": [3]}
    assert tr.attrs["boundary_physical"] == [["outflow", "outflow"], ["outflow", "outflow"]]
    assert tr.boundary == ("outflow", "outflow")             # how the model pads it
    assert tr.attrs["ic"]["radius"] == tr.mu[:, 0].tolist() and tr.attrs["g"] == 1.0
    assert np.std(tr.u[:, 0] - np.round(tr.u[:, 0])) == pytest.approx(0.01, rel=0.05)   # u0 in {0, 1} + noise
    clean = simulate("swe2d", n_traj=2, n_grid=32, n_steps=3, seed=3, noise=0.0, progress=False)
    r = np.hypot(*clean.grid.mesh())
    for u0, radius in zip(clean.u[:, 0, 0], clean.mu[:, 0]):
        assert np.array_equal(u0, np.where(r <= radius, 1.0, 0.0))
    assert np.array_equal(clean.mu, tr.mu[:2])                # the radii do not depend on n_traj


def test_cylinder2d_defaults_and_time_split():
    spec = CASES["cylinder2d"]
    assert (spec.n_traj, spec.n_grid, spec.n_steps, spec.t_end, spec.coarse) == (1, (320, 80), 1501, 15.0, (32, 8))
    assert flows.time_split(spec, None, 1501) == {"train": [0, 1301], "val": [1301, 1401], "test": [1401, 1501]}
    assert flows.time_split(spec, (1301, 100, 100), 1501)["val"] == [1301, 1401]
    grid = spec.grid()
    assert grid.domain == ((0.00625, 3.99375), (0.00625, 0.99375))
    assert np.abs(grid.coordinates(0) - (np.arange(320) + 0.5) / 80).max() < 1e-14


def test_cylinder2d_small_run_is_split_in_time():
    tr = simulate("cylinder2d", **SMALL_CYL)
    assert tr.u.shape == (1, 41, 2, 80, 20) and tr.channels == 2
    assert tr.time_splits == {"train": (0, 35), "val": (35, 38), "test": (38, 41)}
    assert np.abs(tr.u[0, :, 0, 0].mean(axis=-1) - 1.0).max() < 1e-12      # the first column carries the inflow
    assert np.abs(tr.u[0, :, 1, :, [0, -1]]).max() < 0.05                   # slip walls: v ~ 0 next to them
    assert tr.boundary == ("dirichlet", "slip")             # so the model's padding makes v odd about them
    assert tr.attrs["reynolds"] == pytest.approx(160.0) and tr.attrs["max_div_internal"] < 1e-11
    test = tr.get_split("test")
    assert test.n_t == 3 and test.t[0].tolist() == pytest.approx([0.95, 0.975, 1.0])
    assert np.shares_memory(test.u, tr.u) and test.attrs["time_window"] == [38, 41]
    assert "time_split" not in test.attrs


def test_flow_cases_refuse_bad_requests():
    with pytest.raises(ConfigError, match="expected 1"):
        simulate("cylinder2d", n_traj=2, **SMALL_CYL)
    with pytest.raises(ConfigError, match="square cells"):
        simulate("cylinder2d", **{**SMALL_CYL, "n_grid": (80, 21)})
    with pytest.raises(ConfigError, match="at least 2|each >= 2"):
        simulate("cylinder2d", **{**SMALL_CYL, "n_steps": 11})            # val would get 1 frame
    with pytest.raises(ConfigError, match="square grid"):
        simulate("swe2d", n_traj=1, n_grid=(32, 16), n_steps=3, progress=False)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['nu'\] for case 'swe2d'"):
        simulate("swe2d", n_traj=1, n_grid=16, n_steps=3, nu=1.0, progress=False)
    with pytest.raises(ConfigError, match="backend 'jax'"):          # julia: tests/test_backend.py
        simulate("swe2d", n_traj=1, n_grid=16, n_steps=3, backend="jax", progress=False)
    with pytest.raises(ConfigError, match="stream it to HDF5"):
        simulate("swe2d", n_traj=10 ** 7, progress=False)


def test_cli_simulate_both_cases(tmp_path, capsys):
    out = tmp_path / "swe.npz"
    assert main(["simulate", "swe2d", "--out", str(out), "--n-traj", "3", "--n-grid", "16", "--n-steps", "5",
                 "--noise", "0"]) == 0
    assert "swe2d, 3 trajectories x 5 times, grid (16, 16)" in capsys.readouterr().out
    tr = load(out)
    assert tr.attrs["noise"] == 0.0 and set(np.unique(tr.u[:, 0])) <= {0.0, 1.0}
    out = tmp_path / "cyl.npz"
    assert main(["simulate", "cylinder2d", "--out", str(out), "--n-grid", "80", "20", "--t-end", "0.5",
                 "--n-steps", "21", "--split", "15,3,3"]) == 0
    text = capsys.readouterr().out
    assert "train frames [0, 15), val frames [15, 18), test frames [18, 21)" in text
    assert load(out).time_splits["test"] == (18, 21)
    assert main(["simulate", "cylinder2d", "--out", str(out), "--n-grid", "80", "20", "--t-end", "0.5",
                 "--n-steps", "21", "--split", "15,3,2"]) == 2
    assert "summing to n_steps (frames) = 21" in capsys.readouterr().err


def test_coarse_dns_of_the_dam_break_on_8x8():
    from pymsde.systems import coarse_grain, solve_coarse

    tr = simulate("swe2d", n_traj=2, n_grid=32, n_steps=11, noise=0.0, progress=False)
    fine, crs = solve_coarse("swe2d", tr.u[:, 0], tr.t[0], return_coarse=True)     # 8 x 8: factors 4
    assert fine.shape == tr.u.shape and crs.shape == (2, 11, 1, 8, 8)
    assert np.abs(coarse_grain(fine[:, 0], (4, 4)) - coarse_grain(tr.u[:, 0], (4, 4))).max() < 1e-14
    mass = crs[:, :, 0].sum(axis=(-1, -2))
    # conservative: exact until the (numerically spread) front reaches the outflow cells at t ~ 0.5,
    # then the mass only leaves (measured: 6e-4 of 2.75 by t = 0.5, 0.18 by t = 1)
    assert np.abs(mass[:, :5] - mass[:, :1]).max() < 1e-12
    assert (np.diff(mass, axis=1) <= 1e-12).all() and (mass[:, -1] < mass[:, 0] - 0.01).all()
    assert np.abs(crs[:, -1] - crs[:, 0]).max() > 0.05               # the water moved
    err = np.linalg.norm((fine - tr.u)[:, -1].reshape(2, -1), axis=1) / np.linalg.norm(tr.u[:, -1].reshape(2, -1), axis=1)
    assert (0.2 < err).all() and (err < 1.5).all()                   # under-resolved, but bounded
    with pytest.raises(ConfigError, match="CFL"):
        solve_coarse("swe2d", tr.u[:, 0], tr.t[0], dt=1e-3)


def test_coarse_dns_of_the_wake_on_32x8():
    from pymsde.systems import solve_coarse

    tr = simulate("cylinder2d", **{**SMALL_CYL, "n_grid": (160, 40), "t_end": 2.0, "n_steps": 81})
    test = tr.get_split("test")                                       # t in (1.9, 2]: 4 frames
    fine, crs = solve_coarse("cylinder2d", test.u[:, 0], test.t[0], return_coarse=True)   # factors (5, 5)
    assert fine.shape == test.u.shape and crs.shape == (1, test.n_t, 2, 32, 8)
    assert np.isfinite(fine).all()
    assert np.abs(crs[0, :, 0, 0].mean(axis=-1) - 1.0).max() < 1e-12          # the inflow, every frame
    err = np.linalg.norm(fine[0, -1] - test.u[0, -1]) / np.linalg.norm(test.u[0, -1])
    assert 0.01 < err < 0.5


def test_the_solvers_reproduce_the_numbers_of_the_code_before_the_backend_kernels():
    # values written by the code before the time loops became the kernels swe_run / cylinder_run
    # (commit cc741f1; the refactor was compared bit for bit on 53 arrays of both solvers); the
    # tolerance only allows other CPUs' rounding (torch's fma and FFT code paths)
    from pymsde.systems import cylinder

    tr = simulate("swe2d", n_traj=3, n_grid=16, n_steps=5, seed=2, progress=False)
    assert tr.u[1, -1, 0, 7, 8] == pytest.approx(-0.160090173598412, rel=1e-12, abs=0)
    assert tr.u[:, -1].std() == pytest.approx(0.06342801229900774, rel=1e-12, abs=0)
    r = cylinder.run_cylinder(show_progress=False, cells_per_unit=20, refine=1, length=2.0, out_length=2.0,
                              t_end=0.2, dt_out=0.05)
    assert r["steps"] == 11 and r["u"][-1, 1].std() == pytest.approx(0.06978035536867645, rel=1e-10, abs=0)
    assert r["cd"][-1] == pytest.approx(3.1137071390334583, rel=1e-10, abs=0)
    assert r["probe_v"][-1] == pytest.approx(0.029485413134344034, rel=1e-10, abs=0)
    r = cylinder.run_cylinder(show_progress=False, cells_per_unit=20, refine=2, length=3.0, out_length=2.0,
                              t_end=0.3, dt_out=0.05)
    assert r["steps"] == 34 and r["u"][-1, 1].std() == pytest.approx(0.07757861530829448, rel=1e-10, abs=0)
    assert r["cl"][-1] == pytest.approx(0.04888549117550278, rel=1e-10, abs=0)
