"""Warm start (FINAL_PAPER.md section 1.4): the enlarged model starts as the trained one."""
import numpy as np
import pytest
import torch

from pymsde.data.grid import Grid
from pymsde.data.trajectories import Trajectories
from pymsde.model import MultiscaleModel
from pymsde.model.warm_start import NEW_DIFFUSION_RAW_1D, check_warm_start_compatible, warm_start
from pymsde.util.errors import ConfigError, DataError

GRID = Grid((40,), ((0.0, 1.0),), ("periodic",))
SMALL = dict(encoder_channels=(2, 4), drift_hidden=(8, 8), micro_hidden=(8, 8))


def _trained(micro_dim, grid=GRID, coarse=(4,), **kw):
    """A float64 model whose every parameter is moved off its initial value (a stand-in for a
    trained one: non-zero biases, unequal variances)."""
    torch.manual_seed(3)
    model = MultiscaleModel.build(grid, coarse, micro_dim=micro_dim, **{**SMALL, **kw}).double()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def _inputs(model, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64)
    mu = torch.randn(n, model.config.n_mu, generator=g, dtype=torch.float64) if model.config.n_mu else None
    f = torch.randn(n, model.config.n_f, generator=g, dtype=torch.float64) if model.config.n_f else None
    return z, t, mu, f


@pytest.mark.parametrize("old_micro, extras", [(0, {}), (2, {"n_mu": 1, "n_f": 1}),
                                               (1, {"n_mu": 1, "positional_inputs": True})])
def test_warm_started_model_equals_the_trained_one_with_new_dims_at_zero(old_micro, extras):
    """Must-show: before any training, with the new microscale entries of z held at 0, the drift
    (macro part and the old micro components), the decoder mean and the old encoder means of the
    warm-started model equal the trained model's (float64, 1e-6); the new weights are Xavier
    draws (not all zero), the new biases 0."""
    old = _trained(old_micro, **extras)
    new = warm_start(old, 5, seed=1).eval()
    assert new.micro_dim == 5 and new.config.coarse_shape == old.config.coarse_shape
    z, t, mu, f = _inputs(old)
    z_new = torch.cat([z, torch.zeros(z.shape[0], 5 - old_micro, dtype=z.dtype)], 1)
    with torch.no_grad():
        g_old, g_new = old.drift(t, z, mu, f), new.drift(t, z_new, mu, f)
        assert torch.allclose(g_new[:, :old.latent_dim], g_old, rtol=0, atol=1e-6)
        assert torch.allclose(new.decode(z_new)[0], old.decode(z)[0], rtol=0, atol=1e-6)
        u = torch.randn(3, 1, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        assert torch.allclose(new.encode(u)[0][:, :old.latent_dim], old.encode(u)[0], rtol=0, atol=1e-6)

    S = new.drift_net.params().stencil_size + new.drift_net.params().n_positional   # zm columns start here
    dn = new.drift_net
    fresh = {"macro drift zm columns": dn.macro_weights[0][:, S + old_micro:S + 5],
             "micro drift zm columns": dn.micro_weights[0][:, old_micro:5],
             "micro drift output rows": dn.micro_weights[-1][old_micro:],
             "encoder micro head rows": new.encoder.micro.linear.weight[old_micro:],
             "decoder micro columns": new.decoder.micro.linear.weight[:, old_micro:]}
    for what, w in fresh.items():
        assert bool((w != 0).any()), what
        assert w.std().item() < 1.5, what                    # Xavier-sized, not some other scale
    assert torch.all(dn.micro_biases[-1][old_micro:] == 0)
    assert torch.all(new.encoder.micro.linear.bias[old_micro:] == 0)
    D_old = old.latent_dim
    assert torch.allclose(new.encoder.raw_var[D_old:], torch.tensor(-4.0, dtype=torch.float64), atol=1e-9)
    assert torch.all(new.diffusion_net.raw[D_old:] == NEW_DIFFUSION_RAW_1D)
    assert torch.equal(new.diffusion_net.raw[:D_old], old.diffusion_net.raw)
    assert torch.equal(new.posterior.raw_length, old.posterior.raw_length)


def test_warm_start_is_seeded_by_its_generator_and_leaves_the_global_rng_alone():
    old = _trained(1)
    state = torch.get_rng_state()
    a = warm_start(old, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)
    b = warm_start(old, 3, generator=torch.Generator().manual_seed(7))
    c = warm_start(old, 3, generator=torch.Generator().manual_seed(8))
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.drift_net.micro_weights[-1], c.drift_net.micro_weights[-1])
    assert a.training and next(a.parameters()).dtype == torch.float64


def test_two_dimensional_warm_start_draws_the_new_diffusion():
    grid = Grid((8, 8), ((0.0, 1.0), (0.0, 1.0)), ("dirichlet", "dirichlet"))
    old = _trained(0, grid=grid, coarse=(2, 2), encoder_channels=(2,))
    new = warm_start(old, 2, seed=0).eval()
    z, t, _, _ = _inputs(old)
    z_new = torch.cat([z, torch.zeros(z.shape[0], 2, dtype=z.dtype)], 1)
    with torch.no_grad():
        assert torch.allclose(new.drift(t, z_new)[:, :old.latent_dim], old.drift(t, z), rtol=0, atol=1e-6)
        assert torch.allclose(new.decode(z_new)[0], old.decode(z)[0], rtol=0, atol=1e-6)
    raw = new.diffusion_net.raw[old.latent_dim:]
    assert raw[0] != raw[1] and bool((raw != NEW_DIFFUSION_RAW_1D).all())     # N(0, 1) draws in 2-D


@pytest.mark.parametrize("micro_dim", [2, 1, 0, 2.5])
def test_a_target_not_larger_is_refused_on_one_line(micro_dim):
    with pytest.raises(ConfigError, match=r"not larger than the trained model's micro_dim = 2") as err:
        warm_start(_trained(2), micro_dim)
    assert "\n" not in str(err.value)


def _traj(n=40, channels=1):
    u = np.zeros((2, 5, channels, n))
    return Trajectories(u=u, t=np.tile(np.arange(5.0), (2, 1)), domain=np.array([[0.0, 1.0]]), boundary=("periodic",))


def test_compatibility_check_names_both_sides():
    cfg = _trained(0).config
    check_warm_start_compatible(cfg, _traj(), coarse_shape=(4,))
    check_warm_start_compatible(cfg.to_dict(), _traj(), coarse_shape=4)     # a checkpoint's dict, an int
    with pytest.raises(DataError, match=r"fine grid \(40,\), but the data have the grid \(20,\)"):
        check_warm_start_compatible(cfg, _traj(n=20))
    with pytest.raises(DataError, match="1 channel\\(s\\), but the data have 2"):
        check_warm_start_compatible(cfg, _traj(channels=2))
    with pytest.raises(ConfigError, match=r"coarse grid is \(4,\), but \(8,\) was asked for"):
        check_warm_start_compatible(cfg, _traj(), coarse_shape=(8,))
