"""KdV simulator: exact travelling soliton, invariants, stability limit, case recipe."""
import numpy as np
import pytest

from pymsde.systems import CASES, integrate_kdv, simulate
from pymsde.util.errors import StabilityError

L, D = 10.0, 0.02


def soliton(x, t, c=1.0, x0=2.0):
    """u = 3c sech^2(sqrt(c/d)/2 (x - c t - x0)) solves u_t + u u_x + d u_xxx = 0 (periodised;
    its tails are ~1e-13 at half a period away)."""
    xi = (x - c * t - x0 + L / 2) % L - L / 2
    return 3 * c / np.cosh(np.sqrt(c / D) / 2 * xi) ** 2


def _run(n, t_end, dt, n_out=41):
    x = np.arange(n) * L / n
    t = np.linspace(0, t_end, n_out)
    u, info = integrate_kdv(soliton(x, 0)[None, None], t, L, D, dt=dt, show_progress=False)
    return x, t, u[0, :, 0], info


def test_soliton_speed_and_amplitude_after_long_run():
    # four time units: the soliton travels 40 % of the domain (its own width is 0.28)
    x, t, u, _ = _run(256, 4.0, 1e-3)
    assert np.abs(u - soliton(x, t[:, None])).max() < 1e-7           # measured 3.0e-8
    u_hat0, u_hat = np.fft.rfft(u[0]), np.fft.rfft(u[-1])
    speed = -np.angle(u_hat[1] / u_hat0[1]) / (2 * np.pi / L * t[-1])
    assert speed == pytest.approx(1.0, abs=1e-8)                      # measured 1 - 8e-10
    m = 64 * len(x)                                                    # peak of the trig. interpolant
    amp = (np.fft.irfft(u_hat, n=m) * (m / len(x))).max()
    assert amp == pytest.approx(3.0, rel=1e-5)                        # measured 3 - 2.2e-6 (grid)


def test_time_order_is_four():
    errs = []
    for dt in (4e-3, 2e-3):
        x, t, u, _ = _run(256, 1.0, dt, n_out=2)
        errs.append(np.abs(u[-1] - soliton(x, 1.0)).max())
    order = np.log2(errs[0] / errs[1])
    assert abs(order - 4) < 0.3, (order, errs)


def test_invariants_on_the_case():
    tr = simulate("kdv1d", n_traj=2, n_steps=201, noise=0.0, progress=False)
    u = tr.u[:, :, 0]
    mass, l2 = u.sum(-1), (u ** 2).sum(-1)
    scale = np.abs(u[:, 0]).sum(-1)
    assert (np.abs(mass - mass[:, :1]) / scale[:, None]).max() < 1e-13   # round-off (measured 3e-16)
    # the semi-discrete scheme conserves sum u^2 exactly; the ETDRK4 time error loses a little
    # (measured 7.2e-9 here, internal dt = 2.5e-3; 3.5e-9 at dt = 1e-3, bench --accuracy)
    assert (np.abs(l2 - l2[:, :1]) / l2[:, :1]).max() < 1e-6
    assert np.abs(u[:, -1] - u[:, 0]).max() > 0.5                      # it did evolve


def test_unstable_time_step_raises():
    with pytest.raises(StabilityError, match="stability limit"):
        simulate("kdv1d", n_traj=1, n_steps=3, t_end=0.2, dt=0.05, progress=False)
    # a stable explicit step is accepted
    tr = simulate("kdv1d", n_traj=1, n_steps=3, t_end=0.002, dt=1e-3, progress=False)
    assert tr.attrs["dt_internal"] == pytest.approx(1e-3)


def test_case_recipe():
    spec = CASES["kdv1d"]
    assert (spec.domain, spec.n_grid, spec.params["d"], spec.noise) == (((0.0, 10.0),), (1000,), 0.02, 0.01)
    assert (spec.n_traj, spec.coarse, spec.score_steps) == (20, (20,), None)     # FINAL_PAPER.md 2.1
    tr = simulate("kdv1d", n_traj=3, n_steps=3, t_end=0.002, seed=5, noise=0.0, progress=False)
    x = np.arange(1000) * 0.01
    amp, var = np.array(tr.attrs["ic"]["A"]), np.array(tr.attrs["ic"]["V"])
    u0 = amp[:, None] * np.cos(np.pi * x) * np.exp(-(x - 7.5) ** 2 / var[:, None])
    assert np.abs(tr.u[:, 0, 0] - u0).max() < 1e-14        # the saved first frame is the recipe's u0
    assert abs(amp.mean() - 2) < 0.3 and abs(var.mean() - 1) < 0.3


def test_final_paper_defaults_and_the_older_method_draw():
    # final paper (FINAL_PAPER.md 2.1, datasets/kdv_1d/gen_data.py): 20 trajectories, 10/5/5, noise 0.01
    tr = simulate("kdv1d", n_steps=2, t_end=1e-3, progress=False)
    assert tr.n_traj == 20 and tr.attrs["noise"] == 0.01
    assert {k: len(v) for k, v in tr.splits.items()} == {"train": 10, "val": 5, "test": 5}
    assert sorted(np.concatenate(list(tr.splits.values())).tolist()) == list(range(20))
    clean = simulate("kdv1d", n_steps=2, t_end=1e-3, noise=0.0, progress=False)
    resid = tr.u - clean.u                                               # same seed: same initial draws
    assert abs(resid.std() / 0.01 - 1) < 5 / np.sqrt(2 * resid.size)     # 5 sigma (4.0e4 samples)
    # docs/method.md's older draw stays one call away: 10 trajectories split 8/1/1, the same noise
    old = simulate("kdv1d", n_traj=10, split=(8, 1, 1), noise=0.01, n_steps=2, t_end=1e-3, progress=False)
    assert {k: len(v) for k, v in old.splits.items()} == {"train": 8, "val": 1, "test": 1}
    # the first 10 initial draws of a seed do not depend on how many trajectories are drawn
    assert old.attrs["ic"]["A"] == tr.attrs["ic"]["A"][:10]


def test_method_draw_is_the_old_default_file():
    # docs/method.md's draw through counts equals the old default (fractions 0.8/0.1/0.1 of 10): same
    # initial draws, noise and split permutation, bit for bit
    kw = dict(n_traj=10, n_steps=2, t_end=1e-3, seed=4, progress=False)
    a = simulate("kdv1d", split=(8, 1, 1), **kw)
    b = simulate("kdv1d", split=(0.8, 0.1, 0.1), **kw)
    assert np.array_equal(a.u, b.u) and a.attrs == b.attrs
