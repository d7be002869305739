"""The multiscale drift kernel, the drift/diffusion modules and the functional MLP."""
import pytest
import torch
from torch import nn

from pymsde.data.grid import Grid
from pymsde.model.mlp import ACTIVATIONS, init_mlp, mlp_forward
from pymsde.model.drift import DriftParams, DriftWorkspace, multiscale_drift
from pymsde.model import MultiscaleDrift, MultiscaleModel
from pymsde.model.config import softplus


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)


def _drift(coarse=(10,), boundary=("periodic",), channels=1, micro_dim=3, radius=2, n_mu=0, n_f=0,
           activation="tanh"):
    return MultiscaleDrift(coarse, channels, micro_dim, radius, boundary, (16, 16), (16,), activation, n_mu, n_f)


def _randomise_biases(module):
    # zero-initialised biases would hide bias bugs
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "biases" in name:
                p.copy_(0.1 * torch.randn(p.shape))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_mlp_forward_matches_sequential(name):
    w, b = init_mlp([4, 7, 5, 2])
    b = [0.1 * torch.randn(x.shape) for x in b]
    act = {"tanh": nn.Tanh(), "silu": nn.SiLU(), "softplus": nn.Softplus(), "relu": nn.ReLU()}[name]
    seq = nn.Sequential(nn.Linear(4, 7), act, nn.Linear(7, 5), act, nn.Linear(5, 2))
    with torch.no_grad():
        for lin, wi, bi in zip([seq[0], seq[2], seq[4]], w, b):
            lin.weight.copy_(wi)
            lin.bias.copy_(bi)
    x = torch.randn(9, 4)
    torch.testing.assert_close(mlp_forward(x, w, b, name), seq(x))
    torch.testing.assert_close(mlp_forward(x[None], w, b, name)[0], seq(x))   # leading dims


def test_mlp_rejects_unknown_activation():
    w, b = init_mlp([2, 3, 1])
    with pytest.raises(ValueError, match="gelu"):
        mlp_forward(torch.zeros(1, 2), w, b, "gelu")


def _explicit_drift(p: DriftParams, t, z, mu, f):
    """The drift by its definition: per cell, concatenate [stencil, zm, mu, f] and apply h."""
    B = z.shape[0]
    C, shape, r = p.channels, p.coarse_shape, p.radius
    zM = z[:, :p.macro_dim].reshape(B, C, *shape)
    zm = z[:, p.macro_dim:]
    gM = torch.zeros(B, C, *shape)
    import itertools
    offs = list(itertools.product(range(-r, r + 1), repeat=len(shape)))
    for cell in itertools.product(*(range(n) for n in shape)):
        vals = []
        for c in range(C):
            for off in offs:
                idx = []
                for a, (j, o) in enumerate(zip(cell, off)):
                    k = j + o
                    k = k % shape[a] if p.boundary[a] == "periodic" else min(max(k, 0), shape[a] - 1)
                    idx.append(k)
                vals.append(zM[(slice(None), c, *idx)])
        feats = [torch.stack(vals, 1), zm] + ([mu] if mu is not None else []) + ([f] if f is not None else [])
        out = mlp_forward(torch.cat(feats, 1), p.macro_weights, p.macro_biases, p.activation)
        gM[(slice(None), slice(None), *cell)] = out
    if not p.micro_dim:
        return gM.flatten(1)
    tt = torch.as_tensor(t).expand(B)[:, None]
    x = torch.cat([zm, zM.flatten(1), torch.sin(tt), torch.cos(tt)] + ([mu] if mu is not None else [])
                  + ([f] if f is not None else []), 1)
    return torch.cat([gM.flatten(1), mlp_forward(x, p.micro_weights, p.micro_biases, p.activation)], 1)


@pytest.mark.parametrize("coarse,boundary,channels,micro_dim,n_mu,n_f", [
    ((7,), ("periodic",), 1, 3, 0, 0),
    ((7,), ("dirichlet",), 2, 2, 1, 2),
    ((4, 5), ("periodic", "dirichlet"), 2, 0, 2, 0),
    ((5, 5), ("dirichlet", "dirichlet"), 1, 4, 0, 1),
])
def test_drift_equals_its_definition(coarse, boundary, channels, micro_dim, n_mu, n_f):
    net = _drift(coarse, boundary, channels, micro_dim, radius=1 if len(coarse) == 2 else 2, n_mu=n_mu, n_f=n_f)
    _randomise_biases(net)
    p = net.params()
    B = 6
    z = torch.randn(B, p.latent_dim)
    mu = torch.randn(B, n_mu) if n_mu else None
    f = torch.randn(B, n_f) if n_f else None
    t = torch.rand(B)
    want = _explicit_drift(p, t, z, mu, f)
    torch.testing.assert_close(net(t, z, mu, f), want)
    # the rollout path of the same function: buffers reused, activations in place
    with torch.no_grad():
        ws = DriftWorkspace(p, B)
        torch.testing.assert_close(multiscale_drift(p.detach(), t, z, mu, f, workspace=ws), want)


def test_periodic_drift_is_translation_equivariant_1d():
    net = _drift((10,), ("periodic",), channels=2, micro_dim=3)
    _randomise_biases(net)
    B, macro = 5, 20
    z = torch.randn(B, macro + 3)
    g = net(0.7, z)
    zM = z[:, :macro].reshape(B, 2, 10)
    z_shift = torch.cat([torch.roll(zM, 1, dims=-1).flatten(1), z[:, macro:]], 1)   # zm fixed
    g_shift = net(0.7, z_shift)
    torch.testing.assert_close(g_shift[:, :macro].reshape(B, 2, 10), torch.roll(g[:, :macro].reshape(B, 2, 10), 1, dims=-1))


@pytest.mark.parametrize("axis", [0, 1])
def test_periodic_drift_is_translation_equivariant_2d(axis):
    net = _drift((4, 6), ("periodic", "periodic"), channels=1, micro_dim=2, radius=1)
    _randomise_biases(net)
    z = torch.randn(3, 24 + 2)
    gM = net(0.0, z)[:, :24].reshape(3, 1, 4, 6)
    zM = z[:, :24].reshape(3, 1, 4, 6)
    g2 = net(0.0, torch.cat([torch.roll(zM, 1, dims=2 + axis).flatten(1), z[:, 24:]], 1))[:, :24].reshape(3, 1, 4, 6)
    torch.testing.assert_close(g2, torch.roll(gM, 1, dims=2 + axis))


def test_dirichlet_drift_is_not_wrapped_and_is_local():
    r = 2
    net = _drift((12,), ("dirichlet",), micro_dim=0, radius=r)
    _randomise_biases(net)
    z = torch.randn(2, 12)
    base = net(0.0, z)
    for j in (0, 5, 11):
        dz = torch.zeros_like(z)
        dz[:, j] = 1.0
        changed = (net(0.0, z + dz) - base).abs().amax(0) > 0
        expected = torch.zeros(12, dtype=torch.bool)
        expected[max(j - r, 0):j + r + 1] = True         # no wrap-around on a Dirichlet axis
        assert torch.equal(changed, expected), (j, changed)
    # edge padding: the stencil of cell 0 sees zM[0] repeated, so moving zM[0] matters
    # exactly as much as if it sat at offsets -2, -1 and 0 (covered by the definition test)


def test_periodic_drift_wraps():
    net = _drift((12,), ("periodic",), micro_dim=0, radius=2)
    _randomise_biases(net)
    z = torch.randn(2, 12)
    dz = torch.zeros_like(z)
    dz[:, 0] = 1.0
    changed = (net(0.0, z + dz) - net(0.0, z)).abs().amax(0) > 0
    assert changed.nonzero().flatten().tolist() == [0, 1, 2, 10, 11]


def test_scalar_and_per_sample_time_agree():
    net = _drift()
    z = torch.randn(4, 13)
    torch.testing.assert_close(net(0.3, z), net(torch.full((4,), 0.3), z))
    torch.testing.assert_close(net(torch.tensor(0.3), z), net(torch.full((4,), 0.3), z))
    assert not torch.allclose(net(0.3, z)[:, 10:], net(1.3, z)[:, 10:])   # q sees sin t, cos t


def test_missing_mu_raises():
    net = _drift(n_mu=2)
    with pytest.raises(ValueError, match="mu"):
        net(0.0, torch.randn(2, 13))


def test_drift_params_validation():
    p = _drift().params()
    with pytest.raises(ValueError, match="macro layer 0"):
        DriftParams([torch.zeros(16, 3)] + p.macro_weights[1:], p.macro_biases, p.micro_weights, p.micro_biases,
                    p.activation, p.radius, p.boundary, p.coarse_shape, p.channels, p.micro_dim)
    with pytest.raises(ValueError, match="activation"):
        DriftParams(p.macro_weights, p.macro_biases, p.micro_weights, p.micro_biases, "elu", p.radius,
                    p.boundary, p.coarse_shape, p.channels, p.micro_dim)


def test_model_drift_uses_the_functional_kernel():
    grid = Grid((40,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 10, micro_dim=2, encoder_channels=(2,), encoder_kernel=5, n_mu=1, n_f=1)
    z = torch.randn(3, model.latent_dim)
    mu, f = torch.randn(3, 1), torch.randn(3, 1)
    params = model.drift_params()
    torch.testing.assert_close(model.drift(0.5, z, mu, f), multiscale_drift(params, 0.5, z, mu, f))
    detached = params.detach()
    assert all(not w.requires_grad for w in detached.macro_weights + detached.micro_weights)
    assert all(w.requires_grad for w in params.macro_weights)
    assert params.to(torch.float32).macro_weights[0].dtype == torch.float32


def test_closure_drift_has_no_micro_part():
    grid = Grid((40,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 10, micro_dim=0)
    assert model.drift_params().micro_weights == []
    assert model.drift(0.0, torch.randn(3, 10)).shape == (3, 10)
    assert not any("micro" in n for n, _ in model.named_parameters())


def test_diffusion_positive_and_initial_value():
    grid = Grid((40,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 10, micro_dim=2, encoder_channels=(2,), encoder_kernel=5, n_mu=2,
                                  diffusion_init=0.25, diffusion_depends_on_mu=True)
    sigma = model.diffusion()
    assert sigma.shape == (12,)
    torch.testing.assert_close(sigma, torch.full((12,), 0.25))
    mu = torch.randn(4, 2)
    torch.testing.assert_close(model.diffusion(mu), torch.full((4, 12), 0.25))   # A starts at zero
    with torch.no_grad():
        model.diffusion_net.mu_map.fill_(-50.0)
    s = model.diffusion(torch.ones(4, 2))
    assert s.shape == (4, 12) and (s > 0).all()
    default = MultiscaleModel.build(grid, 10, micro_dim=0).diffusion()
    torch.testing.assert_close(default, torch.full((10,), softplus(1.0)))
