"""The multiscale drift kernel, the drift/diffusion modules and the functional MLP."""
import pytest
import torch
from torch import nn

from pymsde.data.grid import Grid
from pymsde.model.mlp import ACTIVATIONS, init_mlp, mlp_forward
import math

from pymsde.model.drift import DriftParams, DriftWorkspace, multiscale_drift, positional_features
from pymsde.model import MultiscaleDrift, MultiscaleModel
from pymsde.model.config import softplus


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)


def _drift(coarse=(10,), boundary=("periodic",), channels=1, micro_dim=3, radius=2, n_mu=0, n_f=0,
           activation="tanh", positional=False):
    return MultiscaleDrift(coarse, channels, micro_dim, radius, boundary, (16, 16), (16,), activation, n_mu, n_f,
                           positional)


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
    """The drift by its definition: per cell, concatenate [stencil, pos, zm, mu, f] and apply h
    (pos: cos, sin of 2 pi i_a / n_a per axis a, written out here cell by cell)."""
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
        pos = []
        if p.positional:
            for j, n in zip(cell, shape):
                pos += [math.cos(2 * math.pi * j / n), math.sin(2 * math.pi * j / n)]
        pos = torch.tensor(pos).expand(B, len(pos))
        feats = [torch.stack(vals, 1), pos, zm] + ([mu] if mu is not None else []) + ([f] if f is not None else [])
        out = mlp_forward(torch.cat(feats, 1), p.macro_weights, p.macro_biases, p.activation)
        gM[(slice(None), slice(None), *cell)] = out
    if not p.micro_dim:
        return gM.flatten(1)
    tt = torch.as_tensor(t).expand(B)[:, None]
    x = torch.cat([zm, zM.flatten(1), torch.sin(tt), torch.cos(tt)] + ([mu] if mu is not None else [])
                  + ([f] if f is not None else []), 1)
    return torch.cat([gM.flatten(1), mlp_forward(x, p.micro_weights, p.micro_biases, p.activation)], 1)


@pytest.mark.parametrize("positional", [False, True])
@pytest.mark.parametrize("coarse,boundary,channels,micro_dim,n_mu,n_f", [
    ((7,), ("periodic",), 1, 3, 0, 0),
    ((7,), ("dirichlet",), 2, 2, 1, 2),
    ((4, 5), ("periodic", "dirichlet"), 2, 0, 2, 0),
    ((5, 5), ("dirichlet", "dirichlet"), 1, 4, 0, 1),
    ((3, 4), ("periodic", "periodic"), 2, 0, 0, 0),
])
def test_drift_equals_its_definition(coarse, boundary, channels, micro_dim, n_mu, n_f, positional):
    net = _drift(coarse, boundary, channels, micro_dim, radius=1 if len(coarse) == 2 else 2, n_mu=n_mu, n_f=n_f,
                 positional=positional)
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


def _old_drift(p: DriftParams, t, z, mu, f):
    """The drift as multiscale_drift computed it before positional inputs existed (the same
    torch operations in the same order), for the bit-for-bit check."""
    from pymsde.model.mlp import activation_fn, dense, mlp_layers
    from pymsde.numerics.padding import gather_stencil

    B, act = z.shape[0], activation_fn(p.activation)
    zM, zm = z[:, :p.macro_dim], z[:, p.macro_dim:]
    extras = [x for x in (mu, f) if x is not None]
    rows = gather_stencil(zM.reshape(B, p.channels, *p.coarse_shape), p.radius, p.boundary)
    rows = rows.reshape(B * p.n_cells, p.stencil_size)
    w0, b0 = p.macro_weights[0], p.macro_biases[0]
    glob = [zm] + extras if p.micro_dim else extras
    if glob:
        g = torch.cat(glob, dim=1) if len(glob) > 1 else glob[0]
        per_sample = torch.addmm(b0, g, w0[:, p.stencil_size:].t())
        h = rows @ w0[:, :p.stencil_size].t()
        h = (h.view(B, p.n_cells, -1) + per_sample.unsqueeze(1)).view(B * p.n_cells, -1)
    else:
        h = dense(rows, w0, b0, None)
    h = mlp_layers(h, p.macro_weights[1:], p.macro_biases[1:], act, None, ())
    gM = h.view(B, p.n_cells, p.channels).transpose(1, 2).reshape(B, p.macro_dim)
    if not p.micro_dim:
        return gM
    tt = torch.as_tensor(t, dtype=z.dtype).reshape(-1, 1).expand(B, 1)
    x = torch.cat([zm, zM, torch.sin(tt), torch.cos(tt)] + extras, dim=1)
    gm = mlp_layers(dense(x, p.micro_weights[0], p.micro_biases[0]), p.micro_weights[1:], p.micro_biases[1:], act,
                    None)
    return torch.cat([gM, gm], dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("coarse,boundary,channels,micro_dim,n_mu", [
    ((10,), ("periodic",), 1, 3, 0), ((4, 6), ("dirichlet", "periodic"), 2, 0, 0), ((4, 6), ("periodic",) * 2, 2, 0, 1)])
def test_positional_off_is_bit_identical_to_before(coarse, boundary, channels, micro_dim, n_mu, dtype):
    net = _drift(coarse, boundary, channels, micro_dim, radius=1, n_mu=n_mu).to(dtype)
    _randomise_biases(net)
    p = net.params()
    assert not p.positional and p.macro_in == channels * 3 ** len(coarse) + micro_dim + n_mu
    z = torch.randn(5, p.latent_dim, dtype=dtype)
    mu = torch.randn(5, n_mu, dtype=dtype) if n_mu else None
    with torch.no_grad():
        want = _old_drift(p, 0.4, z, mu, None)
        assert torch.equal(net(0.4, z, mu), want)
        assert torch.equal(multiscale_drift(p.detach(), 0.4, z, mu, workspace=DriftWorkspace(p, 5)), want)


def test_positional_features_are_the_papers():
    pos = positional_features((4, 6), dtype=torch.float64)
    assert pos.shape == (24, 4)
    i, j = 3, 5                                   # cell (3, 5): row-major index 3 * 6 + 5
    torch.testing.assert_close(pos[3 * 6 + 5], torch.tensor([math.cos(2 * math.pi * i / 4), math.sin(2 * math.pi * i / 4),
                                                             math.cos(2 * math.pi * j / 6), math.sin(2 * math.pi * j / 6)]))
    assert positional_features((8,), dtype=torch.float32).dtype == torch.float32


def test_positional_inputs_tell_equal_stencils_apart_by_hand():
    # a one-layer h on a constant field: every cell sees the same stencil, so without positional
    # inputs every cell gets the same drift; with them, cell j gets W [c,...,c, cos, sin] + b
    n, r, c = 8, 2, 0.7
    w = torch.randn(1, 2 * r + 1 + 2)
    b = torch.randn(1)
    z = torch.full((2, n), c)
    with_pos = DriftParams([w], [b], [], [], "tanh", r, ("periodic",), (n,), 1, 0, positional=True)
    g = multiscale_drift(with_pos, 0.0, z)
    by_hand = torch.tensor([c * w[0, :5].sum() + w[0, 5] * math.cos(2 * math.pi * j / n)
                            + w[0, 6] * math.sin(2 * math.pi * j / n) + b[0] for j in range(n)])
    torch.testing.assert_close(g, by_hand.expand(2, n))
    assert (g[:, 1] - g[:, 3]).abs().min() > 1e-6
    without = DriftParams([w[:, :5]], [b], [], [], "tanh", r, ("periodic",), (n,), 1, 0)
    g0 = multiscale_drift(without, 0.0, z)
    assert torch.equal(g0[:, 1], g0[:, 3])
    # a model with the option: two cells of a constant 2-D field differ
    grid = Grid((16, 24), ((0.0, 1.0), (0.0, 1.5)), ("dirichlet", "periodic"))
    model = MultiscaleModel.build(grid, (4, 6), micro_dim=2, positional_inputs=True, encoder_channels=(2,))
    assert model.drift_params().positional and model.drift_params().macro_in == 25 + 4 + 2
    zc = torch.cat([torch.full((1, 24), 0.3), torch.zeros(1, 2)], 1)
    gM = model.drift(0.0, zc)[0, :24]
    assert (gM[1] - gM[7]).abs() > 1e-6          # cells (0, 1) and (1, 1): equal stencils, not equal drifts


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


def _linear_drift(n_mu=1, micro_dim=2, channels=1, coarse=(12,)):
    """A drift whose MLP output is zero, so that it is the linear stencil term alone."""
    net = MultiscaleDrift(coarse, channels, micro_dim, 2, ("periodic",) * len(coarse), (16, 16), (16,), "tanh",
                          n_mu, 0, False, True)
    with torch.no_grad():
        net.macro_weights[-1].zero_()
        net.macro_biases[-1].zero_()
    return net


def test_linear_term_is_the_stencil_operator_with_coefficients_affine_in_mu():
    # W_0 = diffusion nu D2, W_1 = -D1: the drift is nu z'' - mu z' by central differences, exactly
    n, h, nu = 12, 1.0 / 12, 0.01
    net = _linear_drift(n_mu=1, micro_dim=2, coarse=(n,))
    d1 = torch.tensor([0.0, -0.5, 0.0, 0.5, 0.0]) / h          # stencil offsets -2..2
    d2 = torch.tensor([0.0, 1.0, -2.0, 1.0, 0.0]) / h ** 2
    with torch.no_grad():
        net.linear.copy_(torch.cat([nu * d2, -d1]).view(1, -1))
    x = torch.arange(n) * h
    zM = torch.stack([torch.sin(2 * math.pi * x), torch.cos(4 * math.pi * x)])   # 2 samples
    z = torch.cat([zM, torch.randn(2, 2)], dim=1)
    mu = torch.tensor([[0.7], [1.3]])
    g = net(0.0, z, mu)[:, :n]
    right, left = zM.roll(-1, 1), zM.roll(1, 1)
    expect = nu * (right - 2 * zM + left) / h ** 2 - mu * (right - left) / (2 * h)
    assert torch.allclose(g, expect, rtol=0, atol=1e-12)


def test_linear_term_starts_at_zero_and_the_workspace_path_agrees():
    net = _drift(n_mu=2, micro_dim=3)
    lin = MultiscaleDrift((10,), 1, 3, 2, ("periodic",), (16, 16), (16,), "tanh", 2, 0, False, True)
    lin.load_state_dict({**net.state_dict(), "linear": torch.zeros(1, 15)})
    z, mu = torch.randn(4, 13), torch.randn(4, 2)
    assert torch.equal(lin(0.3, z, mu), net(0.3, z, mu))        # a zero linear term changes nothing
    with torch.no_grad():
        lin.linear.normal_()
    p = lin.params().detach()
    assert torch.equal(multiscale_drift(p, 0.3, z, mu, workspace=DriftWorkspace(p, 4)), multiscale_drift(p, 0.3, z, mu))
    with pytest.raises(Exception, match=r"DriftParams.linear: shape \(1, 5\); expected \(1, 15\)"):
        DriftParams(p.macro_weights, p.macro_biases, p.micro_weights, p.micro_biases, "tanh", 2, ("periodic",),
                    (10,), 1, 3, 2, linear=torch.zeros(1, 5))
