"""Coarse-graining, refinement and the under-resolved DNS baseline (coarse-grid solver)."""

import numpy as np
import pytest
import torch

from pymsde.systems import coarse_grain, refine, simulate, solve_coarse
from pymsde.util.errors import ConfigError, StabilityError


def nrmse(pred, truth):
    """docs/method.md section 7, per trajectory, in percent."""
    ax = tuple(range(2, truth.ndim))
    return 100 * np.sqrt(np.mean(np.sum((pred - truth) ** 2, axis=ax) / np.sum(truth ** 2, axis=ax), axis=1))


@pytest.fixture(scope="module")
def fine():
    # clean reference solutions; Burgers 2-D on 64 x 64 (coarse 8 x 8 as in docs/method.md) to keep the test short
    return {
        "burgers1d": simulate("burgers1d", n_traj=2, noise=0.0, progress=False),
        "kdv1d": simulate("kdv1d", n_traj=2, noise=0.0, progress=False),
        "burgers2d": simulate("burgers2d", n_traj=2, n_grid=64, n_steps=101, noise=0.0, progress=False),
    }


def test_coarse_grain_of_constant_is_constant():
    u = np.full((3, 1, 1000), 0.7)
    eps = np.finfo(np.float64).eps
    out = coarse_grain(u, (50,))
    assert out.shape == (3, 1, 20) and np.abs(out - 0.7).max() <= 4 * eps      # summation round-off only
    v = torch.full((2, 5, 1, 128, 128), -1.25, dtype=torch.float64)     # leading (n, n_t) axes allowed
    out = coarse_grain(v, (16, 16))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 1, 8, 8)
    assert torch.equal(out, torch.full_like(out, -1.25))                        # exact for a dyadic value


def test_coarse_grain_is_block_mean():
    u = np.arange(12).reshape(1, 1, 12)            # integers in, float64 means out
    assert coarse_grain(u, (4,)).tolist() == [[[1.5, 5.5, 9.5]]]
    u2 = np.arange(16.0).reshape(1, 1, 4, 4)
    assert coarse_grain(u2, (2, 2))[0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]


@pytest.mark.parametrize("method,boundary,shape,factors", [
    ("linear", ("periodic",), (20,), (50,)),
    ("constant", ("periodic",), (20,), (50,)),
    ("spectral", ("periodic",), (20,), (50,)),
    ("spectral", ("periodic",), (7,), (3,)),
    ("linear", ("dirichlet", "dirichlet"), (8, 8), (16, 16)),
    ("spectral", ("periodic", "periodic"), (8, 6), (4, 5)),
])
def test_coarse_grain_inverts_refine(method, boundary, shape, factors):
    c = np.random.default_rng(0).standard_normal((3, 1, *shape))
    f = refine(c, factors, boundary, method=method)
    assert f.shape == (3, 1, *(n * s for n, s in zip(shape, factors)))
    # round-off is ~1e-15; one full-suite run on a loaded machine (2026-11-23) gave 3.1e-11 on
    # the 2-D spectral case, not reproduced in 300 repeats: 1e-10 still catches any real defect
    assert np.abs(coarse_grain(f, factors) - c).max() < 1e-10


def test_spectral_refine_is_exact_for_band_limited_fields():
    nc, s = 20, 50
    x = np.arange(nc * s) / (nc * s)
    rng = np.random.default_rng(1)
    f = sum(rng.standard_normal() * np.cos(2 * np.pi * m * x + rng.uniform(0, 6)) for m in range(nc // 2))
    f = f + 0.3 * np.cos(2 * np.pi * (nc // 2) * (x - (s - 1) / 2 / (nc * s)))   # Nyquist through block centres
    back = refine(coarse_grain(f[None, None], (s,)), (s,), ("periodic",), method="spectral")[0, 0]
    assert np.abs(back - f).max() < 1e-11


def test_linear_refine_is_exact_for_linear_fields_and_adds_no_extrema():
    x = np.linspace(0, 1, 128)
    f = 2 * x + 1
    back = refine(coarse_grain(f[None, None], (16,)), (16,), ("dirichlet",))[0, 0]
    assert np.abs(back[16:-16] - f[16:-16]).max() < 1e-12          # end blocks are flat by design
    c = np.random.default_rng(2).standard_normal((4, 1, 20))
    r = refine(c, (10,), ("periodic",))
    assert (r.max(-1) <= c.max(-1) + 1e-15).all() and (r.min(-1) >= c.min(-1) - 1e-15).all()


@pytest.mark.parametrize("case,bound", [("burgers1d", 30.0), ("kdv1d", 50.0), ("burgers2d", 40.0)])
def test_coarse_solver_runs_to_the_end_at_method_sizes(fine, case, bound):
    tr = fine[case]
    coarse_shape = (20,) if case != "burgers2d" else (8, 8)
    s = tr.grid.coarsening_factors(coarse_shape)
    u = solve_coarse(case, tr.u[:, 0], tr.t[0], factors=s)
    assert u.shape == tr.u.shape and np.isfinite(u).all()
    diff = coarse_grain(u[:, 0], s) - coarse_grain(tr.u[:, 0], s)
    if case == "kdv1d":
        # the Fourier-Galerkin solver drops the coarse Nyquist mode (no real odd derivative);
        # every other coarse mode of the initial condition is kept exactly
        assert np.abs(np.fft.rfft(diff)[..., :-1]).max() < 1e-12
    else:
        assert np.abs(diff).max() < 1e-12
    err = nrmse(u, tr.u)
    persistence = nrmse(np.repeat(tr.u[:, :1], tr.n_t, axis=1), tr.u)
    # measured (10 / 10 / 3 trajectories): Burgers 1-D 12.6-25.7 %, KdV 40.6-44.3 %,
    # Burgers 2-D 30.2-30.7 % (128 x 128); persistence u(t) = u0: 47-83 %, 79-86 %, 94-96 %
    assert (err < bound).all(), err
    assert (err < 0.6 * persistence).all(), (err, persistence)


def test_coarse_solver_converges_to_the_fine_solution(fine):
    for case, tol in (("burgers1d", 3.0), ("kdv1d", 0.5)):
        tr = fine[case]
        u, t = tr.u[:, :601], tr.t[0, :601]           # to t = 0.6: past the Burgers shock formation
        e50 = nrmse(solve_coarse(case, u[:, 0], t, factors=(50,)), u)
        e10 = nrmse(solve_coarse(case, u[:, 0], t, factors=(10,)), u)
        # measured (2 trajectories, to t = 0.6): Burgers 12.7 -> 1.5 %, KdV 36 -> 0.04 %
        assert (e10 < tol).all() and (e10 < e50 / 4).all(), (case, e50, e10)


def test_coarse_burgers_conserves_mass_and_creates_no_extrema(fine):
    tr = fine["burgers1d"]
    _, c = solve_coarse("burgers1d", tr.u[:, 0], tr.t[0, :601], return_coarse=True)
    mass = c[:, :, 0].sum(-1)
    assert np.abs(mass - mass[:, :1]).max() < 1e-13 * np.abs(c[:, 0]).sum()
    assert c.max() <= c[:, 0].max() + 1e-14 and c.min() >= c[:, 0].min() - 1e-14


def test_coarse_burgers2d_holds_face_values(fine):
    # a constant field equal to its own boundary values is a steady state
    tr = fine["burgers2d"]
    u0 = np.full((1, 1, 64, 64), 0.4)
    u = solve_coarse("burgers2d", u0, tr.t[0][:11])
    assert np.abs(u - 0.4).max() < 1e-14


def test_bad_input():
    u0 = np.zeros((1, 1, 1000))
    t = np.linspace(0, 1, 11)
    with pytest.raises(StabilityError, match="stability limit"):
        solve_coarse("burgers1d", u0 + 0.3, t, dt=0.5)
    with pytest.raises(ConfigError, match="does not divide"):
        solve_coarse("burgers1d", u0, t, factors=(30,))
    with pytest.raises(ConfigError, match="does not divide"):
        coarse_grain(u0, (7,))
    with pytest.raises(ConfigError, match="periodic"):
        refine(np.zeros((1, 1, 8, 8)), (2, 2), ("dirichlet", "dirichlet"), method="spectral")
    with pytest.raises(ConfigError, match="unknown case"):
        solve_coarse("heat", u0, t)


# ------------------------------------------------------------------ wave1d (linear advection)

def test_coarse_wave_is_second_order_under_refinement():
    # smooth periodic field, exact solution u0(x - t); errors of the coarse block averages
    # against the block averages of the exact solution at t = 0.5
    n = 1600
    x = np.arange(n) / n
    u0 = np.exp(np.sin(2 * np.pi * x))[None, None]
    t = np.linspace(0.0, 0.5, 51)
    errs = []
    for nc in (20, 40, 80, 160):
        s = n // nc
        exact = coarse_grain(np.exp(np.sin(2 * np.pi * (x - t[-1])))[None, None], (s,))
        _, c = solve_coarse("wave1d", u0, t, factors=(s,), return_coarse=True)
        errs.append(np.abs(c[:, -1] - exact).max())
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # measured: max errors 0.208, 0.0537, 0.0132, 0.00330; orders 1.96, 2.02, 2.00
    assert (np.abs(orders - 2) < 0.1).all(), (errs, orders)


def test_coarse_wave_conserves_mass_at_the_paper_sizes():
    tr = simulate("wave1d", n_traj=3, noise=0.0, progress=False)      # 1000 points -> 20 cells, T = 1
    u, c = solve_coarse("wave1d", tr.u[:, 0], tr.t[0], return_coarse=True)
    assert u.shape == tr.u.shape and c.shape == (3, 1001, 1, 20) and np.isfinite(u).all()
    mass = c[:, :, 0].sum(-1)
    assert np.abs(mass - mass[:, :1]).max() < 1e-13 * np.abs(c[:, 0]).sum(-1).max()     # measured 9.6e-16
    energy = (c[:, :, 0] ** 2).sum(-1)        # conserved by the semi-discrete scheme; RK4 only loses
    assert (np.diff(energy, axis=1) <= 1e-15).all() and (energy[:, -1] / energy[:, 0] > 1 - 1e-6).all()
    assert np.abs(coarse_grain(u[:, 0], (50,)) - coarse_grain(tr.u[:, 0], (50,))).max() < 1e-12
    # the paper's score on the first 201 steps (per-frame relative error): the sub-cell pulse
    # (width 0.01-0.02, cells 0.05) is not resolved: already 0.76-0.85 at t = 0 (block average
    # + linear refine), mean 0.89, max 0.98 over the 201 steps (3 trajectories)
    y, p = tr.u[:, :201, 0], u[:, :201, 0]
    err = np.linalg.norm(p - y, axis=-1) / np.linalg.norm(y, axis=-1)
    assert 0.6 < err.mean() < 1.1 and err[:, 0].max() < 0.95


def test_coarse_wave_runs_on_torch_whatever_the_backend():
    u0 = np.exp(np.sin(2 * np.pi * np.arange(200) / 200))[None, None]
    t = np.linspace(0.0, 0.1, 11)
    ref = solve_coarse("wave1d", u0, t)
    assert np.array_equal(solve_coarse("wave1d", u0, t, backend="julia"), ref)   # no Julia mirror: torch
    assert np.array_equal(solve_coarse("wave1d", u0, t, backend="auto"), ref)
    with pytest.raises(ConfigError, match="backend 'cuda'"):
        solve_coarse("wave1d", u0, t, backend="cuda")
    with pytest.raises(StabilityError, match="stability limit"):     # dt |c| / H <= 2.8284, H = 0.05
        solve_coarse("wave1d", u0, np.linspace(0.0, 1.0, 3), dt=0.2)
    slow = solve_coarse("wave1d", u0, t, params={"c": 0.5})
    assert not np.allclose(slow, ref) and np.isfinite(slow).all()
