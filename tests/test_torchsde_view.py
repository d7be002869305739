"""The torchsde view (pymsde.forecast.LatentSDE) against pymsde's own Euler-Maruyama."""
import math

import numpy as np
import pytest
import torch

from pymsde.forecast import EulerMaruyama, LatentSDE, LinearForcing, solve
from pymsde.model.drift import multiscale_drift
from pymsde.sde.integrator import brownian_increments, integrate

torchsde = pytest.importorskip("torchsde")
F64 = torch.float64


class GridBrownian(torchsde.BrownianInterval):
    """A torchsde Brownian motion replaying given increments on the grid t0 + k dt:
    W(tb) - W(ta) from the cumulative sum (ta, tb on the grid)."""

    def __init__(self, dW: torch.Tensor, t0: float, dt: float):
        super().__init__(t0=t0, t1=t0 + dt * dW.shape[0], size=dW.shape[1:], dtype=dW.dtype)
        self._W = torch.cat([torch.zeros_like(dW[:1]), torch.cumsum(dW, 0)])
        self._t0, self._dt = t0, dt

    def _index(self, t) -> int:
        k = (float(t) - self._t0) / self._dt
        assert abs(k - round(k)) < 1e-9, f"time {float(t)} is off the increment grid"
        return int(round(k))

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        return self._W[self._index(tb)] - self._W[self._index(ta)]


def _model(n_mu=0, n_f=0):
    from pymsde.data.grid import Grid
    from pymsde.model.multiscale import MultiscaleModel

    torch.manual_seed(0)
    grid = Grid((32,), ((0.0, 1.0),), ("periodic",))
    return MultiscaleModel.build(grid, 8, micro_dim=3, drift_hidden=(16, 16), micro_hidden=(16,),
                                 encoder_channels=(2, 4), n_mu=n_mu, n_f=n_f).double()


def test_sdeint_euler_equals_pymsde_em_on_the_same_increments():
    """torchsde.sdeint(LatentSDE, method='euler') and pymsde's EM (solver object over the view,
    and the kernel loop over the functional drift) give the same path, to rounding, for the
    same Brownian increments; with parameters mu and time-dependent forcing."""
    model = _model(n_mu=1, n_f=2)
    B, D = 5, model.latent_dim
    dt, n = 2.0 ** -6, 64
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(B, D, dtype=F64, generator=gen)
    dW, _ = brownian_increments(n, (B, D), dt, gen, dtype=F64)
    mu = torch.linspace(0.5, 1.5, B, dtype=F64)[:, None]
    f_t = np.linspace(0.0, 1.0, 7)
    f_v = np.stack([np.sin(3 * f_t), f_t ** 2], 1)          # (7, 2), shared by the batch
    sde = LatentSDE(model, mu=mu, forcing=(f_t, f_v))
    ts = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=F64)
    with torch.no_grad():
        ref = torchsde.sdeint(sde, z0, ts, method="euler", dt=dt, bm=GridBrownian(dW, 0.0, dt))
        save = [0, 16, 32, 64]
        _, ours = solve(sde, z0, 0.0, dt, n, EulerMaruyama(), save_at=save, dW=dW)
        params = model.drift_params().detach()
        forcing = LinearForcing.from_samples(f_t, f_v, dtype=F64)
        sigma = model.diffusion(mu)
        _, kern = integrate(lambda t, z: multiscale_drift(params, t, z, mu, forcing(t).expand(B, 2)),
                            sigma, z0, 0.0, dt, n, save_at=save, dW=dW)
    assert ref.shape == ours.shape == (4, B, D)
    scale = float(ref.abs().max())
    assert float((ours - ref).abs().max()) <= 1e-12 * scale
    assert float((kern - ref).abs().max()) <= 1e-12 * scale
    # the path moved: a wrong drift or noise could not pass by accident
    assert float((ref[-1] - ref[0]).abs().mean()) > 0.1


def test_view_shapes_and_defaults():
    """f, g have the state's shape; mu given as (n_mu,) broadcasts; sigma is the model's;
    torchsde's default Brownian motion works too (finite, right shape)."""
    model = _model(n_mu=1)
    sde = LatentSDE(model, mu=[0.7])
    assert sde.noise_type == "diagonal" and sde.sde_type == "ito"
    z = torch.randn(3, model.latent_dim, dtype=F64)
    t = torch.tensor(0.1, dtype=F64)
    assert sde.f(t, z).shape == z.shape
    g = sde.g(t, z)
    assert g.shape == z.shape and torch.allclose(g[1], model.diffusion(None))
    with torch.no_grad():
        zs = torchsde.sdeint(sde, z, torch.tensor([0.0, 0.1], dtype=F64), method="euler", dt=0.01)
    assert zs.shape == (2, 3, model.latent_dim) and bool(torch.isfinite(zs).all())
    assert math.isclose(float((zs[0] - z).abs().max()), 0.0)
