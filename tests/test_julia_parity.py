"""Julia vs torch on the same inputs (and the same Brownian increments).

Tolerances (float64): one kernel call or one SDE step agrees to 1e-10 relative; a whole
rollout of 1000 Euler-Maruyama steps to 1e-8 relative (max |difference| / max |value|), the
two sides differing only in the order of floating-point operations. float32: 1e-4 relative.

Every test here skips with "Julia not available: <reason>" when juliacall cannot start Julia
and load PyMSDEKernels (as on the machines this package was written on).
"""
from dataclasses import replace

import pytest
import torch

from pymsde.numerics import padding
from pymsde.numerics import stencils
from pymsde.backends import julia
from pymsde.forecast.rollout import sde_rollout as torch_sde_rollout
from pymsde.model.mlp import init_mlp, mlp_forward
from pymsde.model.drift import DriftParams, multiscale_drift
from pymsde.util.errors import BackendUnavailableError


@pytest.fixture(scope="module")
def jlb():
    """The Julia kernels (the module :mod:`pymsde.backends.julia`), or a skip with the reason."""
    try:
        julia.load()
    except BackendUnavailableError as exc:
        pytest.skip(f"Julia not available: {str(exc).split(';')[0]}")
    return julia


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _params(coarse, boundary, C=1, dm=5, n_mu=0, n_f=0, act="tanh", dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = 2
    n_cells = 1
    for c in coarse:
        n_cells *= c
    mw, mb = init_mlp([C * (2 * r + 1) ** len(coarse) + dm + n_mu + n_f, 32, 32, C], generator=g, dtype=dtype)
    qw, qb = init_mlp([dm + C * n_cells + 2 + n_mu + n_f, 32, dm], generator=g, dtype=dtype) if dm else ([], [])
    for b in mb + qb:
        b.normal_(0.0, 0.1, generator=g)
    return DriftParams(mw, mb, qw, qb, act, r, tuple(boundary), tuple(coarse), C, dm, n_mu, n_f)


@pytest.mark.parametrize("shape,boundary", [((3, 2, 17), ("periodic",)), ((2, 1, 9), ("dirichlet",)),
                                            ((2, 2, 6, 7), ("periodic", "dirichlet")),
                                            ((2, 1, 9), ("slip",)), ((2, 2, 6, 7), ("outflow", "slip")),
                                            ((2, 2, 6, 7), ("slip", "slip")), ((2, 1, 6, 7), ("slip", "periodic"))])
@pytest.mark.parametrize("mode", ["edge", "zeros"])
def test_pad_and_gather(jlb, shape, boundary, mode):
    x = torch.randn(*shape, dtype=torch.float64)
    assert torch.equal(jlb.pad(x, 2, boundary, mode), padding.pad(x, 2, boundary, mode))
    assert torch.equal(jlb.gather_stencil(x, 2, boundary, mode), padding.gather_stencil(x, 2, boundary, mode))


@pytest.mark.parametrize("boundary", ["periodic", "dirichlet"])
@pytest.mark.parametrize("order", [2, 4, 6])
@pytest.mark.parametrize("deriv", [1, 2])
def test_derivative(jlb, boundary, order, deriv):
    u = torch.randn(2, 1, 16, 12, dtype=torch.float64)
    for axis in (0, 1):
        assert rel(jlb.derivative(u, axis, deriv, 0.05, boundary, order),
                   stencils.derivative(u, axis, deriv, 0.05, boundary, order)) < 1e-10


@pytest.mark.parametrize("act", ["tanh", "silu", "softplus", "relu"])
def test_mlp(jlb, act):
    g = torch.Generator().manual_seed(3)
    w, b = init_mlp([7, 16, 16, 3], generator=g, dtype=torch.float64)
    x = 3 * torch.randn(50, 7, generator=g, dtype=torch.float64)
    assert rel(jlb.mlp_forward(x, w, b, act), mlp_forward(x, w, b, act)) < 1e-10


@pytest.mark.parametrize("coarse,boundary,C,dm,n_mu,n_f", [((20,), ("periodic",), 1, 5, 0, 0),
                                                         ((20,), ("periodic",), 1, 0, 0, 0),
                                                         ((8, 8), ("dirichlet", "dirichlet"), 1, 5, 2, 1),
                                                         ((10,), ("periodic",), 2, 3, 1, 0)])
def test_multiscale_drift(jlb, coarse, boundary, C, dm, n_mu, n_f):
    p = _params(coarse, boundary, C, dm, n_mu, n_f)
    B = 6
    z = torch.randn(B, p.latent_dim, dtype=torch.float64)
    mu = torch.randn(B, n_mu, dtype=torch.float64) if n_mu else None
    f = torch.randn(B, n_f, dtype=torch.float64) if n_f else None
    assert rel(jlb.multiscale_drift(p, 0.7, z, mu, f), multiscale_drift(p, 0.7, z, mu, f)) < 1e-10


@pytest.mark.parametrize("scheme", ["em", "heun", "sra1"])
def test_one_step(jlb, scheme):
    p = _params((20,), ("periodic",))
    z0 = torch.randn(16, p.latent_dim, dtype=torch.float64)
    dW = 0.03 * torch.randn(1, *z0.shape, dtype=torch.float64)
    dI = 1e-3 * torch.randn(1, *z0.shape, dtype=torch.float64)
    sigma = torch.full((p.latent_dim,), 0.1, dtype=torch.float64)
    _, zj = jlb.sde_rollout(p, sigma, z0, 0.0, 1e-3, 1, scheme=scheme, dW=dW, dI=dI)
    _, zt = torch_sde_rollout(p, sigma, z0, 0.0, 1e-3, 1, scheme=scheme, dW=dW, dI=dI)
    assert rel(zj[1] - z0, zt[1] - z0) < 1e-10     # relative to the increment, not the state


def test_whole_rollout_float64(jlb):
    p = _params((20,), ("periodic",))
    B, n = 32, 1000
    z0 = torch.randn(B, p.latent_dim, dtype=torch.float64)
    dW = (1e-3) ** 0.5 * torch.randn(n, B, p.latent_dim, dtype=torch.float64)
    sigma = torch.full((p.latent_dim,), 0.05, dtype=torch.float64)
    tj, zj = jlb.sde_rollout(p, sigma, z0, 0.0, 1e-3, n, save_every=100, dW=dW)
    tt, zt = torch_sde_rollout(p, sigma, z0, 0.0, 1e-3, n, save_every=100, dW=dW)
    assert torch.allclose(tj, tt, rtol=0, atol=1e-14)
    assert zj.shape == zt.shape == (11, B, p.latent_dim)
    assert rel(zj, zt) < 1e-8


def test_float32_step(jlb):
    p = _params((20,), ("periodic",), dtype=torch.float32)
    z0 = torch.randn(8, p.latent_dim)
    dW = 0.03 * torch.randn(1, *z0.shape)
    sigma = torch.full((p.latent_dim,), 0.1)
    _, zj = jlb.sde_rollout(p, sigma, z0, 0.0, 1e-3, 1, dW=dW)
    _, zt = torch_sde_rollout(p, sigma, z0, 0.0, 1e-3, 1, dW=dW)
    assert zj.dtype == torch.float32 and rel(zj, zt) < 1e-4


def test_increments_drawn_in_julia_have_the_right_variance(jlb):
    # zero drift (last layers zero) and sigma = 1: z(T) - z0 ~ N(0, T) per component
    p = _params((20,), ("periodic",), dm=0)
    for w, b in zip(p.macro_weights[-1:], p.macro_biases[-1:]):
        w.zero_()
        b.zero_()
    B, n, dt = 4096, 100, 1e-2
    z0 = torch.zeros(B, p.latent_dim, dtype=torch.float64)
    _, zj = jlb.sde_rollout(p, torch.ones(p.latent_dim, dtype=torch.float64), z0, 0.0, dt, n,
                            save_every=n, seed=11)
    var = float(zj[-1].var())
    assert abs(var - n * dt) < 4 * (2 / (B * p.latent_dim)) ** 0.5 * n * dt


def _burgers_case(shape, boundary):
    g = torch.Generator().manual_seed(4)
    u = 0.5 * torch.randn(*shape, generator=g, dtype=torch.float64)
    dx = tuple(1.0 / n for n in shape[2:])
    return u, dx, tuple(boundary)


@pytest.mark.parametrize("shape,boundary", [((2, 1, 64), ("periodic",)), ((2, 1, 12, 16), ("dirichlet", "dirichlet")),
                                            ((1, 1, 12, 16), ("periodic", "dirichlet"))])
def test_burgers_rhs_and_run(jlb, shape, boundary):
    from pymsde.numerics import pde
    from pymsde.systems.solvers import burgers_fd_run as torch_burgers_fd_run

    u, dx, bc = _burgers_case(shape, boundary)
    assert rel(jlb.burgers_rhs(u, dx, 5e-3, bc, 4), pde.burgers_rhs(u, dx, 5e-3, bc, 4)) < 1e-10
    a = jlb.burgers_fd_run(u, 1e-4, 5, 3, dx, 5e-3, bc, 4)
    b = torch_burgers_fd_run(u, 1e-4, 5, 3, dx, 5e-3, bc, 4)
    assert rel(a, b) < 1e-10


@pytest.mark.parametrize("dealias", ["2/3", "3/2"])
def test_spectral_run(jlb, dealias):
    from pymsde.numerics import pde
    from pymsde.numerics import spectral
    from pymsde.systems.solvers import spectral_run as torch_spectral_run

    n = 64
    x = torch.arange(n, dtype=torch.float64) * (10.0 / n)
    u0 = (2.0 * torch.cos(torch.pi * x) * torch.exp(-(x - 7.5) ** 2)).reshape(1, 1, n)
    k = spectral.wavenumbers(n, 10.0)
    mask = spectral.dealias_mask(n, dealias)
    coeffs = spectral.etd_coefficients(pde.kdv_linear_symbol(k, 0.02), 1e-3)
    v0 = torch.fft.rfft(u0)
    a = jlb.spectral_run(v0, coeffs, k, mask, n, dealias, 10, 4)
    b = torch_spectral_run(v0, coeffs, k, mask, n, dealias, 10, 4)
    assert rel(a, b) < 1e-10


# ---------------------------------------------------------------------------------------------
# The Python half of the bridge, run here: a numpy stand-in for PyMSDEKernels that honours the
# package's array contract (Julia layout = reversed axes, column-major, zero-copy views; tuples
# as comma-separated strings in Julia dimension order) and computes with the torch kernels.
# Any slip in the wrappers' marshalling (axis order, boundary order, layer order, in-place
# output) breaks the exact equality with torch asserted below.

import numpy as np  # noqa: E402

from pymsde.backends import julia as jlmod  # noqa: E402


def _t(a):
    """Julia-layout numpy view -> torch-layout tensor over the same memory."""
    return torch.from_numpy(a.transpose())


def _csv(s, conv=str):
    return tuple(conv(v) for v in reversed(s.split(",")))   # Julia order -> torch order


class FakePyMSDEKernels:
    def wrap_tensor(self, t, *dims):
        assert t.dim() == 1 and t.is_contiguous()
        a = np.from_dlpack(t).reshape(dims, order="F")
        assert np.shares_memory(a, np.from_dlpack(t))
        return a

    def pad_b(self, out, x, widths, boundary, mode):
        _t(out).copy_(padding.pad(_t(x), _csv(widths, int), _csv(boundary), mode))

    def gather_stencil_b(self, out, x, radius, boundary, mode):
        _t(out).copy_(padding.gather_stencil(_t(x), radius, _csv(boundary), mode))

    def derivative_b(self, out, u, dim, deriv, dx, boundary, order):
        nd = u.ndim - 2
        _t(out).copy_(stencils.derivative(_t(u), nd - dim, deriv, dx, boundary, order))

    def mlp_forward_b(self, out, x, act, *wb):
        _t(out).copy_(mlp_forward(_t(x), [_t(w) for w in wb[0::2]], [_t(b) for b in wb[1::2]], act))

    @staticmethod
    def _params(act, radius, boundary, coarse, C, dm, n_mu, n_f, n_macro, *arrays):
        ws, bs = [_t(a) for a in arrays[0::2]], [_t(a) for a in arrays[1::2]]
        return DriftParams(ws[:n_macro], bs[:n_macro], ws[n_macro:], bs[n_macro:], act, radius, _csv(boundary),
                           _csv(coarse, int), C, dm, n_mu, n_f)

    def multiscale_drift_b(self, out, t, z, mu, f, *pargs):
        p = self._params(*pargs)
        if isinstance(t, np.ndarray):
            assert t.ndim == 1 and t.dtype == z.dtype
            t = torch.from_numpy(t)
        _t(out).copy_(multiscale_drift(p, t, _t(z), None if mu is None else _t(mu), None if f is None else _t(f)))

    def rollout_b(self, zs, z0, sigma, t0, dt, n, scheme, save_every, dW, dI, mu, f, seed, *pargs):
        p = self._params(*pargs)
        opt = lambda a: None if a is None else _t(a)  # noqa: E731
        _, ref = torch_sde_rollout(p, _t(sigma), _t(z0), t0, dt, n, scheme, save_every, opt(dW), opt(dI),
                                   opt(mu), opt(f), None if seed < 0 else seed)
        _t(zs).copy_(ref)

    def burgers_rhs_b(self, out, u, dx, nu, boundary, order):
        from pymsde.numerics import pde

        _t(out).copy_(pde.burgers_rhs(_t(u), _csv(dx, float), nu, _csv(boundary), order))

    def burgers_fd_run_b(self, out, u0, dt, n_sub, dx, nu, boundary, order):
        from pymsde.systems.solvers import burgers_fd_run as torch_burgers_fd_run

        ref = torch_burgers_fd_run(_t(u0), dt, n_sub, out.shape[-2], _csv(dx, float), nu, _csv(boundary), order)
        _t(out).copy_(ref)

    def spectral_run_b(self, out, v0, e, e2, q, f1, f2, f3, k, mask, n, dealias, n_sub):
        from pymsde.systems.solvers import spectral_run as torch_spectral_run

        ref = torch_spectral_run(_t(v0), [_t(c) for c in (e, e2, q, f1, f2, f3)], _t(k), _t(mask).bool(), n,
                                 dealias, n_sub, out.shape[2])
        _t(out).copy_(ref)

    def etd_coefficients_b(self, e, e2, q, f1, f2, f3, lin, dt, n_contour):
        from pymsde.numerics import spectral

        for dst, src in zip((e, e2, q, f1, f2, f3), spectral.etd_coefficients(_t(lin), dt, n_contour)):
            _t(dst).copy_(src)

    @staticmethod
    def _faces(flat, nd):
        # Julia order (fastest torch axis first), two entries per dimension -> torch order
        assert len(flat) == 2 * nd
        pairs = [None if flat[2 * j] is None else (_t(flat[2 * j]), _t(flat[2 * j + 1])) for j in range(nd)]
        return pairs[::-1]

    def burgers_fv_rhs_b(self, out, c, dx, nu, boundary, *faces):
        from pymsde.numerics import pde

        nd = c.ndim - 2
        _t(out).copy_(pde.burgers_fv_rhs(_t(c), _csv(dx, float), nu, _csv(boundary), self._faces(faces, nd)))

    def burgers_fv_run_b(self, out, c0, dt, n_sub, dx, nu, boundary, *faces):
        from pymsde.systems.coarse import burgers_fv_run as torch_burgers_fv_run

        nd = c0.ndim - 2
        ref = torch_burgers_fv_run(_t(c0), dt, n_sub, out.shape[-2], _csv(dx, float), nu, _csv(boundary),
                                   self._faces(faces, nd))
        _t(out).copy_(ref)

    def swe_run_b(self, out, steps, q0, t_out, dx, g, boundary, cfl, limiter, rk):
        from pymsde.systems.swe import swe_run as torch_swe_run

        assert out.ndim == 5 and steps.dtype == np.int64 and t_out.ndim == 1
        ref, n = torch_swe_run(_t(q0), torch.from_numpy(t_out), _csv(dx, float), g, _csv(boundary), cfl, limiter, rk,
                               "h" if out.shape[2] == 1 else "all")
        _t(out).copy_(ref)
        _t(steps).copy_(n)
        return t_out.size                                  # every frame written

    def cylinder_run_b(self, frames, forces, probe_v, max_div, stats, u0, v0, chi_u, chi_v, h, nu, u_in, dt_out, cfl,
                       refine, ip, jp):
        from pymsde.systems.cylinder import cylinder_run as torch_cylinder_run

        assert frames.shape[2] == 2 and forces.shape == (2, frames.shape[3] - 1) and stats.shape == (2,)
        got = torch_cylinder_run(_t(u0), _t(v0), _t(chi_u), _t(chi_v), h, nu, u_in, dt_out, frames.shape[3], cfl,
                                 refine, frames.shape[1], (ip, jp))
        for dst, src in zip((frames, forces, probe_v, max_div), got[:4]):
            _t(dst).copy_(src)
        _t(stats).copy_(torch.tensor([float(got[4]), 0.0], dtype=torch.float64))
        return 0

    def synchronize_device(self, a):
        pass

    def select_device(self, ordinal):
        return ordinal


@pytest.fixture
def fake(monkeypatch):
    mod = FakePyMSDEKernels()
    fns = {name: getattr(mod, name.replace("!", "_b")) for name in jlmod._JULIA_FUNCTIONS}
    monkeypatch.setattr(jlmod, "_STATE", {"module": mod, "error": None, "fns": fns, "cuda": False, "info": {}})
    return mod


def test_bridge_marshals_stencil_kernels(fake):
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    bc = ("periodic", "dirichlet")
    for mode in ("edge", "zeros"):
        assert torch.equal(jlmod.pad(x, (2, 1), bc, mode), padding.pad(x, (2, 1), bc, mode))
        assert torch.equal(jlmod.gather_stencil(x, 1, bc, mode), padding.gather_stencil(x, 1, bc, mode))
    for axis in (0, 1):
        assert torch.equal(jlmod.derivative(x, axis, 2, 0.1, bc[axis], 4),
                           stencils.derivative(x, axis, 2, 0.1, bc[axis], 4))


def test_bridge_marshals_the_drift_and_the_rollout(fake):
    p = _params((4, 5), ("periodic", "dirichlet"), C=2, dm=3, n_mu=1, n_f=2)
    z = torch.randn(3, p.latent_dim, dtype=torch.float64)
    mu, f = torch.randn(3, 1, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    assert torch.equal(jlmod.multiscale_drift(p, 0.4, z, mu, f), multiscale_drift(p, 0.4, z, mu, f))
    x = torch.randn(5, p.macro_in, dtype=torch.float64)
    assert torch.equal(jlmod.mlp_forward(x, p.macro_weights, p.macro_biases, "tanh"),
                       mlp_forward(x, p.macro_weights, p.macro_biases, "tanh"))
    dW = 0.01 * torch.randn(12, 3, p.latent_dim, dtype=torch.float64)
    sigma = torch.rand(p.latent_dim, dtype=torch.float64)
    tj, zj = jlmod.sde_rollout(p, sigma, z, 0.5, 1e-2, 12, scheme="heun", save_every=4, dW=dW, mu=mu, f=f)
    tt, zt = torch_sde_rollout(p, sigma, z, 0.5, 1e-2, 12, scheme="heun", save_every=4, dW=dW, mu=mu, f=f)
    assert torch.equal(zj, zt) and torch.allclose(tj, tt, rtol=0, atol=1e-15)
    # broadcast views (how forecasts pass constant forcing) are copied, not refused
    f_b = f[:1].expand(3, -1)
    _, zj = jlmod.sde_rollout(p, sigma, z, 0.5, 1e-2, 12, scheme="em", save_every=4, dW=dW, mu=mu, f=f_b)
    _, zt = torch_sde_rollout(p, sigma, z, 0.5, 1e-2, 12, scheme="em", save_every=4, dW=dW, mu=mu, f=f_b)
    assert torch.equal(zj, zt)


def test_bridge_refuses_bad_input_before_calling_julia(fake):
    from pymsde.util.errors import ConfigError, DataError

    with pytest.raises(DataError, match="x: non-contiguous"):
        jlmod.gather_stencil(torch.zeros(2, 1, 8, dtype=torch.float64).transpose(0, 2), 1, ("periodic",))
    with pytest.raises(DataError, match="dtype float16"):
        jlmod.pad(torch.zeros(1, 1, 8, dtype=torch.float16), 1, ("periodic",))
    p = _params((20,), ("periodic",))
    z0 = torch.zeros(2, p.latent_dim, dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"dW must have shape \(5, 2, 25\)"):
        jlmod.sde_rollout(p, torch.ones(p.latent_dim, dtype=torch.float64), z0, 0.0, 0.1, 5,
                          dW=torch.zeros(4, 2, p.latent_dim, dtype=torch.float64))


def test_bridge_marshals_the_pde_kernels(fake):
    from pymsde.numerics import pde
    from pymsde.numerics import spectral
    from pymsde.systems.solvers import burgers_fd_run as torch_burgers_fd_run, spectral_run as torch_spectral_run

    u, dx, bc = _burgers_case((2, 1, 10, 14), ("periodic", "dirichlet"))
    assert torch.equal(jlmod.burgers_rhs(u, dx, 5e-3, bc, 4), pde.burgers_rhs(u, dx, 5e-3, bc, 4))
    assert torch.equal(jlmod.burgers_fd_run(u, 1e-4, 3, 3, dx, 5e-3, bc, 4),
                       torch_burgers_fd_run(u, 1e-4, 3, 3, dx, 5e-3, bc, 4))
    n = 32
    u0 = torch.sin(2 * torch.pi * torch.arange(n, dtype=torch.float64) / n).reshape(1, 1, n).repeat(2, 1, 1)
    k = spectral.wavenumbers(n, 1.0)
    mask = spectral.dealias_mask(n, "2/3")
    coeffs = spectral.etd_coefficients(pde.burgers_linear_symbol(k, 1e-2), 1e-3)
    v0 = torch.fft.rfft(u0)
    assert torch.equal(jlmod.spectral_run(v0, coeffs, k, mask, n, "2/3", 4, 3),
                       torch_spectral_run(v0, coeffs, k, mask, n, "2/3", 4, 3))


def test_bridge_marshals_the_finite_volume_solver_and_etd_coefficients(fake):
    from pymsde.numerics import pde
    from pymsde.numerics import spectral
    from pymsde.systems.coarse import burgers_fv_run as torch_burgers_fv_run

    g = torch.Generator().manual_seed(6)
    c = 0.3 + 0.1 * torch.randn(2, 1, 6, 5, generator=g, dtype=torch.float64)
    lo = 0.2 + 0.01 * torch.randn(2, 1, 1, 5, generator=g, dtype=torch.float64)
    hi = 0.4 + 0.01 * torch.randn(2, 1, 1, 5, generator=g, dtype=torch.float64)
    bc, dx = ("dirichlet", "periodic"), (0.2, 0.25)
    faces = [(lo, hi), None]
    assert torch.equal(jlmod.burgers_fv_rhs(c, dx, 0.01, bc, faces), pde.burgers_fv_rhs(c, dx, 0.01, bc, faces))
    assert torch.equal(jlmod.burgers_fv_run(c, 0.05, 2, 3, dx, 0.01, bc, faces),
                       torch_burgers_fv_run(c, 0.05, 2, 3, dx, 0.01, bc, faces))
    # the other axis Dirichlet: the face pair must land on its own Julia dimension
    bc2 = ("periodic", "dirichlet")
    faces2 = [None, (lo.reshape(2, 1, 5, 1), hi.reshape(2, 1, 5, 1))]
    c2 = c.transpose(2, 3).contiguous()
    assert torch.equal(jlmod.burgers_fv_rhs(c2, dx[::-1], 0.01, bc2, faces2),
                       pde.burgers_fv_rhs(c2, dx[::-1], 0.01, bc2, faces2))
    from pymsde.util.errors import ConfigError

    with pytest.raises(ConfigError, match=r"face value lo of axis 0 has shape \(2, 1, 6, 5\)"):
        jlmod.burgers_fv_rhs(c, dx, 0.01, bc, [(c, c), None])
    k = spectral.wavenumbers(16, 10.0)
    lin = pde.kdv_linear_symbol(k, 0.02)
    for a, b in zip(jlmod.etd_coefficients(lin, 1e-3), spectral.etd_coefficients(lin, 1e-3)):
        assert a.dtype == torch.complex128 and torch.equal(a, b)


def _swe_state(B=2, nx=12, ny=10, seed=9):
    """A depth bump with some momentum, non-square, float64 ``(B, 3, nx, ny)``."""
    g = torch.Generator().manual_seed(seed)
    q = torch.zeros(B, 3, nx, ny, dtype=torch.float64)
    q[:, 0] = 1.0 + 0.5 * torch.rand(B, nx, ny, generator=g, dtype=torch.float64)
    q[:, 1:] = 0.1 * torch.randn(B, 2, nx, ny, generator=g, dtype=torch.float64)
    return q


#: a small cylinder channel with a crop (out_length) and a block average (refine 2)
SMALL_SETUP = dict(cells_per_unit=8, refine=2, length=2.0, out_length=1.5, t_end=0.1, dt_out=0.05)


def test_bridge_marshals_the_flow_solvers(fake):
    from pymsde.backends import julia_flows as jf
    from pymsde.backends.protocol import Backend
    from pymsde.systems import cylinder, swe

    q0 = _swe_state()
    t = torch.linspace(0.0, 0.3, 4, dtype=torch.float64)
    bc, dx = ("outflow", "reflective"), (0.4, 0.5)          # not symmetric: a swapped axis would show
    for channels, lim, rk in (("h", "mc", 2), ("all", "minmod", 3)):
        a = jf.swe_run(q0, t, dx, 1.0, bc, 0.4, lim, rk, channels)
        b = swe.swe_run(q0, t, dx, 1.0, bc, 0.4, lim, rk, channels)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # the callers' path: a resolved julia Backend hands the whole loop to the bridge
    julia_be = Backend("julia", "julia", "fake PyMSDEKernels")
    out, info = swe.integrate_swe(q0, t.numpy(), dx, 1.0, bc, backend=julia_be)
    ref, ref_info = swe.integrate_swe(q0, t.numpy(), dx, 1.0, bc)
    assert np.array_equal(out, ref) and info["steps"] == ref_info["steps"] and info["backend"] == "julia"
    a = cylinder.run_cylinder(show_progress=False, backend=julia_be, **SMALL_SETUP)
    b = cylinder.run_cylinder(show_progress=False, **SMALL_SETUP)
    assert a["u"].shape == (3, 2, 12, 8) and a["steps"] == b["steps"] and a["backend"] == "julia"
    for key in ("u", "cd", "cl", "probe_v", "max_div"):     # bit for bit with one thread; the set-up
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-12, err_msg=key)  # runs in torch's pool


def test_bridge_refuses_bad_flow_input_and_reports_blow_ups(fake, monkeypatch):
    from pymsde.backends import julia_flows as jf
    from pymsde.util.errors import ConfigError, StabilityError

    q0, t = _swe_state(), torch.linspace(0.0, 0.3, 4, dtype=torch.float64)
    args = [q0, t, (0.4, 0.5), 1.0, ("outflow", "outflow"), 0.4, "mc", 2, "h"]
    for i, bad, match in ((0, q0[:, :2], r"q0 of shape \(2, 2, 12, 10\)"), (4, ("outflow", "wall"), "boundary"),
                          (6, "superbee", "limiter"), (7, 4, "rk 4"), (1, t[:1], "t_out of shape")):
        with pytest.raises(ConfigError, match=match):
            jf.swe_run(*args[:i], bad, *args[i + 1:])
    monkeypatch.setitem(jlmod._STATE["fns"], "swe_run!", lambda *a: 2)        # stopped before frame 2
    with pytest.raises(StabilityError, match="before t = 0.2 "):
        jf.swe_run(*args)
    u0, v0 = torch.ones(9, 4, dtype=torch.float64), torch.zeros(8, 5, dtype=torch.float64)
    chi_u, chi_v = torch.zeros_like(u0), torch.zeros_like(v0)
    chi_u[3, 1], chi_v[3, 2] = 0.5, 0.5
    cargs = [u0, v0, chi_u, chi_v, 0.25, 1e-3, 1.0, 0.05, 3, 0.8, 1, 8, (4, 2)]
    with pytest.raises(ConfigError, match="volume fractions"):
        jf.cylinder_run(*cargs[:2], chi_v, chi_u, *cargs[4:])
    with pytest.raises(ConfigError, match="probe"):
        jf.cylinder_run(*cargs[:-1], (8, 2))
    with pytest.raises(ConfigError, match="refine dividing ny"):
        jf.cylinder_run(*cargs[:10], 3, 2, (4, 2))
    for status, match in ((2, r"blew up \(max \|u\| \+ \|v\| = 0\) before t = 0.1;"), (-1, "non-finite")):
        monkeypatch.setitem(jlmod._STATE["fns"], "cylinder_run!", lambda *a, s=status: s)
        with pytest.raises(StabilityError, match=match):
            jf.cylinder_run(*cargs)


def test_bridge_passes_per_sample_times(fake):
    p = _params((6,), ("periodic",), dm=2)
    z = torch.randn(4, p.latent_dim, dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    got = jlmod.multiscale_drift(p, t, z)
    assert torch.equal(got, multiscale_drift(p, t, z))
    # the micro drift really depends on t (else the test above could not fail)
    assert not torch.equal(got[:, -2:], multiscale_drift(p, 0.0, z)[:, -2:])


# ---------------------------------------------------------------------------------------------
# Further Julia-vs-torch parity (skip without Julia): ETD coefficients, the finite-volume coarse
# solver, per-sample times, and the simulators / coarse solver end to end through the switch.

@pytest.mark.parametrize("symbol", ["kdv", "burgers"])
def test_etd_coefficients(jlb, symbol):
    from pymsde.numerics import pde
    from pymsde.numerics import spectral

    k = spectral.wavenumbers(64, 10.0)
    lin = pde.kdv_linear_symbol(k, 0.02) if symbol == "kdv" else pde.burgers_linear_symbol(k, 0.01)
    for a, b in zip(jlb.etd_coefficients(lin, 1e-3), spectral.etd_coefficients(lin, 1e-3)):
        assert rel(a, b) < 1e-12


@pytest.mark.parametrize("shape,boundary", [((2, 1, 20), ("periodic",)), ((2, 1, 8, 8), ("dirichlet", "dirichlet")),
                                            ((1, 2, 6, 9), ("dirichlet", "periodic"))])
def test_burgers_fv_rhs_and_run(jlb, shape, boundary):
    from pymsde.numerics import pde
    from pymsde.systems.coarse import burgers_fv_run as torch_burgers_fv_run

    g = torch.Generator().manual_seed(8)
    c = 0.3 + 0.1 * torch.randn(*shape, generator=g, dtype=torch.float64)
    faces = []
    for a, bc in enumerate(boundary):
        fshape = list(shape)
        fshape[2 + a] = 1
        faces.append(None if bc == "periodic" else
                     (0.25 + 0.01 * torch.randn(*fshape, generator=g, dtype=torch.float64),
                      0.35 + 0.01 * torch.randn(*fshape, generator=g, dtype=torch.float64)))
    dx = tuple(1.0 / n for n in shape[2:])
    assert rel(jlb.burgers_fv_rhs(c, dx, 0.01, boundary, faces),
               pde.burgers_fv_rhs(c, dx, 0.01, boundary, faces)) < 1e-10
    a = jlb.burgers_fv_run(c, 5e-3, 4, 3, dx, 0.01, boundary, faces)
    b = torch_burgers_fv_run(c, 5e-3, 4, 3, dx, 0.01, boundary, faces)
    assert rel(a, b) < 1e-10


def test_multiscale_drift_per_sample_times(jlb):
    p = _params((12,), ("periodic",), dm=3)
    z = torch.randn(5, p.latent_dim, dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 5, dtype=torch.float64)
    assert rel(jlb.multiscale_drift(p, t, z), multiscale_drift(p, t, z)) < 1e-10


@pytest.mark.parametrize("case", ["burgers1d", "burgers2d", "kdv1d"])
def test_solve_coarse_backends_agree(jlb, case):
    import numpy as np

    from pymsde.systems import solve_coarse

    g = np.random.default_rng(3)
    if case == "burgers1d":
        x = np.arange(200) / 200
        u0, t, fac = (0.2 + 0.1 * np.sin(2 * np.pi * x)).reshape(1, 1, 200), np.linspace(0, 0.2, 5), (10,)
    elif case == "burgers2d":
        u0, t, fac = 0.2 + 0.05 * g.standard_normal((1, 1, 32, 32)), np.linspace(0, 0.05, 3), (4, 4)
    else:
        x = np.arange(200) * 10 / 200
        u0, t, fac = (0.5 * np.exp(-(x - 5) ** 2)).reshape(1, 1, 200), np.linspace(0, 0.2, 3), (10,)
    a = solve_coarse(case, u0, t, factors=fac, backend="julia")
    b = solve_coarse(case, u0, t, factors=fac, backend="torch")
    assert float(np.abs(a - b).max() / np.abs(b).max()) < 1e-9


@pytest.mark.parametrize("scheme", ["fd", "spectral"])
def test_integrate_burgers_backends_agree(jlb, scheme):
    import numpy as np

    from pymsde.systems.solvers import integrate_burgers

    n = 64
    x = np.arange(n) / n
    u0 = (0.3 * np.sin(2 * np.pi * x) + 0.1).reshape(1, 1, n)
    t = np.linspace(0.0, 0.1, 4)
    a, ia = integrate_burgers(u0, t, (1.0 / n,), 0.01, ("periodic",), scheme=scheme, backend="julia",
                              show_progress=False)
    b, ib = integrate_burgers(u0, t, (1.0 / n,), 0.01, ("periodic",), scheme=scheme, backend="torch",
                              show_progress=False)
    assert ia["backend"] == "julia" and ib["backend"] == "torch"
    assert float(np.abs(a - b).max() / np.abs(b).max()) < 1e-9


def test_slip_refusals_match_torch(jlb):
    """The Julia kernels refuse what check_padding refuses, with its message."""
    for x, w, bc in ((torch.zeros(1, 3, 6, 7, dtype=torch.float64), 2, ("dirichlet", "slip")),
                     (torch.zeros(1, 1, 4, dtype=torch.float64), 5, ("slip",))):
        with pytest.raises(Exception) as torch_err:
            padding.pad(x, w, bc)
        with pytest.raises(Exception) as julia_err:
            jlb.pad(x, w, bc)
        assert str(torch_err.value) in str(julia_err.value)


def test_pad_with_per_axis_widths(jlb):
    x = torch.randn(2, 1, 7, 9, dtype=torch.float64)
    bc = ("dirichlet", "periodic")
    assert torch.equal(jlb.pad(x, (1, 3), bc, "zeros"), padding.pad(x, (1, 3), bc, "zeros"))


# ---------------------------------------------------------------------------------------------
# The flow solvers' whole runs, Julia (swe.jl, cylinder.jl) against torch (skip without Julia).
# Same operations in the same order on both sides (torch's add-with-alpha and lerp are fmas, as
# Julia's fma); the shallow-water step counts must agree exactly, the fields to 1e-10. The
# cylinder's cosine transforms are FFTW's against torch's pocketfft: 1e-9 over its few steps.

@pytest.mark.parametrize("boundary", [("outflow", "outflow"), ("reflective", "periodic")])
@pytest.mark.parametrize("limiter,rk", [("mc", 2), ("minmod", 3)])
def test_swe_run(jlb, boundary, limiter, rk):
    from pymsde.backends import julia_flows
    from pymsde.systems import swe

    q0 = _swe_state(nx=16, ny=12)
    t = torch.linspace(0.0, 0.4, 5, dtype=torch.float64)
    a, sa = julia_flows.swe_run(q0, t, (0.3, 0.25), 1.0, boundary, 0.4, limiter, rk, "all")
    b, sb = swe.swe_run(q0, t, (0.3, 0.25), 1.0, boundary, 0.4, limiter, rk, "all")
    assert torch.equal(sa, sb) and rel(a, b) < 1e-10


def test_cylinder_run(jlb):
    from pymsde.systems import cylinder

    a = cylinder.run_cylinder(show_progress=False, backend="julia", **SMALL_SETUP)
    b = cylinder.run_cylinder(show_progress=False, **SMALL_SETUP)
    assert a["steps"] == b["steps"] and a["backend"] == "julia"
    for key in ("u", "cd", "cl", "probe_v"):
        assert rel(torch.as_tensor(a[key]), torch.as_tensor(b[key])) < 1e-9, key
    assert a["max_div"].max() < 1e-11


@pytest.mark.parametrize("case", ["swe2d", "cylinder2d"])
def test_flow_cases_backends_agree(jlb, case):
    import numpy as np

    from pymsde.systems import simulate, solve_coarse

    kw = (dict(n_traj=2, n_grid=32, n_steps=6, noise=0.0) if case == "swe2d" else
          dict(n_grid=(64, 16), t_end=0.3, n_steps=13, refine=1, length=4.0, split=(9, 2, 2)))
    a = simulate(case, backend="julia", progress=False, **kw)
    b = simulate(case, backend="torch", progress=False, **kw)
    assert a.attrs["backend"] == "julia" and float(np.abs(a.u - b.u).max() / np.abs(b.u).max()) < 1e-9
    fa = solve_coarse(case, b.u[:, 0], b.t[0], backend="julia")
    fb = solve_coarse(case, b.u[:, 0], b.t[0], backend="torch")
    assert float(np.abs(fa - fb).max() / np.abs(fb).max()) < 1e-9


def _positional_params(dtype=torch.float64):
    g = torch.Generator().manual_seed(7)
    coarse, C, dm = (4, 6), 2, 3
    mw, mb = init_mlp([C * 25 + 4 + dm, 16, C], generator=g, dtype=dtype)
    qw, qb = init_mlp([dm + C * 24 + 2, 16, dm], generator=g, dtype=dtype)
    for b in mb + qb:
        b.normal_(0.0, 0.1, generator=g)
    return DriftParams(mw, mb, qw, qb, "tanh", 2, ("periodic", "dirichlet"), coarse, C, dm, positional=True)


def test_multiscale_drift_with_positional_inputs(jlb):
    p = _positional_params()
    z = torch.randn(5, p.latent_dim, dtype=torch.float64)
    assert rel(jlb.multiscale_drift(p, 0.3, z), multiscale_drift(p, 0.3, z)) < 1e-10


def test_bridge_passes_the_positional_flag(fake, monkeypatch):
    # the flag travels after n_f only when it is on (drift_params_from_python's optional Bool)
    seen = []

    def drift_b(out, t, z, mu, f, *pargs):
        seen.append(pargs[8])
        flag = pargs[8] is True
        head, rest = pargs[:8], pargs[9:] if flag else pargs[8:]
        ws, bs = [_t(a) for a in rest[1::2]], [_t(a) for a in rest[2::2]]
        n = rest[0]
        act, radius, boundary, coarse, C, dm, n_mu, n_f = head
        p = DriftParams(ws[:n], bs[:n], ws[n:], bs[n:], act, radius, _csv(boundary), _csv(coarse, int), C, dm, n_mu,
                        n_f, positional=flag)
        _t(out).copy_(multiscale_drift(p, t, _t(z)))

    monkeypatch.setitem(jlmod._STATE["fns"], "multiscale_drift!", drift_b)
    p = _positional_params()
    z = torch.randn(3, p.latent_dim, dtype=torch.float64)
    assert torch.equal(jlmod.multiscale_drift(p, 0.2, z), multiscale_drift(p, 0.2, z)) and seen == [True]
    off = _params((6,), ("periodic",), dm=2)
    z = torch.randn(3, off.latent_dim, dtype=torch.float64)
    assert torch.equal(jlmod.multiscale_drift(off, 0.2, z), multiscale_drift(off, 0.2, z))
    assert seen[1] == len(off.macro_weights)                  # off: n_macro right after n_f, as before


def _linear_params(dtype=torch.float64):
    # a 2-channel, 2-parameter drift with a random linear stencil term (C, S (1 + n_mu)) = (2, 150)
    p = _params((4, 6), ("periodic", "dirichlet"), C=2, dm=3, n_mu=2, dtype=dtype, seed=3)
    lin = torch.randn(2, 2 * 25 * 3, generator=torch.Generator().manual_seed(4), dtype=dtype)
    return replace(p, linear=lin)


def test_multiscale_drift_with_the_linear_term(jlb):
    p = _linear_params()
    z, mu = torch.randn(5, p.latent_dim, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    assert rel(jlb.multiscale_drift(p, 0.3, z, mu), multiscale_drift(p, 0.3, z, mu)) < 1e-10


def test_bridge_passes_the_linear_term_after_the_flag(fake, monkeypatch):
    # drift_params_from_python(..., n_f, positional::Bool, linear, n_macro, arrays...): the flag is
    # passed (False here) whenever a linear term follows, the term in the Julia layout (in, out)
    seen = []

    def drift_b(out, t, z, mu, f, *pargs):
        act, radius, boundary, coarse, C, dm, n_mu, n_f = pargs[:8]
        flag, lin, rest = pargs[8], _t(pargs[9]), pargs[10:]
        seen.append((flag, tuple(lin.shape)))
        ws, bs = [_t(a) for a in rest[1::2]], [_t(a) for a in rest[2::2]]
        n = rest[0]
        p = DriftParams(ws[:n], bs[:n], ws[n:], bs[n:], act, radius, _csv(boundary), _csv(coarse, int), C, dm, n_mu,
                        n_f, positional=flag, linear=lin)
        _t(out).copy_(multiscale_drift(p, t, _t(z), _t(mu)))

    monkeypatch.setitem(jlmod._STATE["fns"], "multiscale_drift!", drift_b)
    p = _linear_params()
    z, mu = torch.randn(3, p.latent_dim, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    assert torch.equal(jlmod.multiscale_drift(p, 0.2, z, mu), multiscale_drift(p, 0.2, z, mu))
    assert seen == [(False, (2, 150))]
