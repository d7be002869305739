"""Coarse-graining kernel, encoder, Product-of-Experts decoder, ModelConfig."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from pymsde.data.grid import Grid
from pymsde.model import CoarseGrainingKernel, ModelConfig, MultiscaleModel
from pymsde.numerics.padding import pad_axis
from pymsde.util.errors import ConfigError


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)


def _grid(shape, boundary="periodic"):
    return Grid(shape, [(0.0, 1.0)] * len(shape), [boundary] * len(shape))


SMALL = dict(encoder_channels=(2, 4), encoder_kernel=5, drift_hidden=(8,), micro_hidden=(8,), gp_hidden=(4,))


# -- the kernel --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,coarse,boundary,channels", [
    ((1000,), (20,), "periodic", 1),
    ((120,), (8,), "dirichlet", 3),          # odd factor 15
    ((128, 128), (8, 8), "dirichlet", 2),
    ((64, 48), (8, 4), "periodic", 1),
])
def test_coarse_graining_of_constant_is_the_constant(shape, coarse, boundary, channels):
    # Exact up to float64 round-off: usually 2e-16. Twice in about ten runs of this module on a
    # loaded machine (2 other jobs on the 2 cores), decode gave 6.3e-12 at some points; the
    # initial taps are deterministic, so the spread comes from the CPU matmul path, and 200
    # repeats in one process gave 2.2e-16. The bound is 1e-10: any real leak of the constant
    # (an edge or bias error) is O(1e-2) or more.
    model = MultiscaleModel.build(_grid(shape, boundary), coarse, micro_dim=0, channels=channels)
    u = torch.full((2, channels, *shape), 0.37)
    mean, _ = model.encode(u)
    torch.testing.assert_close(mean, torch.full_like(mean, 0.37), rtol=0, atol=1e-10)
    # the bias is a latent offset: added by the encoder, removed by the macro expert
    with torch.no_grad():
        model.kernel.bias.fill_(0.5)
    mean, _ = model.encode(u)
    torch.testing.assert_close(mean, torch.full_like(mean, 0.87), rtol=0, atol=1e-10)
    x, _ = model.decode(mean)
    torch.testing.assert_close(x, u, rtol=0, atol=1e-10)          # constants decode exactly, edges included
    torch.testing.assert_close(model.kernel.smooth(u), u, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_coarse", [20, 50, 100])
def test_macro_expert_inverts_coarse_graining_on_smooth_fields(n_coarse):
    """encode -> macro expert is a Gaussian blur of std sqrt(2) s cells: for a Fourier mode
    of wavenumber k the error is 1 - exp(-(k sigma)^2) <= (k sigma)^2, sigma = s dx
    (second order in the coarse cell size)."""
    N = 1000
    model = MultiscaleModel.build(_grid((N,)), n_coarse, micro_dim=0)
    x = torch.arange(N) / N
    sigma = (N // n_coarse) / N
    for k in (1, 2, 3):
        u = torch.sin(2 * math.pi * k * x + 0.3).view(1, 1, N)
        xM, _ = model.decode(model.encode(u)[0])
        err = (xM - u).abs().max().item()
        ks2 = (2 * math.pi * k * sigma) ** 2
        assert err <= ks2, (k, err, ks2)
        assert err >= 0.9 * (1 - math.exp(-ks2))                   # and the blur is what it is


def test_macro_inversion_error_is_second_order():
    N, errs = 1000, []
    x = torch.arange(N) / N
    u = torch.sin(2 * math.pi * x + 0.3).view(1, 1, N)
    for n_coarse in (50, 100):
        model = MultiscaleModel.build(_grid((N,)), n_coarse, micro_dim=0)
        errs.append((model.decode(model.encode(u)[0])[0] - u).abs().max().item())
    assert 3.6 < errs[0] / errs[1] < 4.4


def test_macro_inversion_2d():
    N, nc = 128, 16
    model = MultiscaleModel.build(_grid((N, N)), (nc, nc), micro_dim=0)
    x = torch.arange(N) / N
    u = (torch.sin(2 * math.pi * x)[:, None] * torch.cos(2 * math.pi * x)[None, :]).view(1, 1, N, N)
    xM, _ = model.decode(model.encode(u)[0])
    ks2 = (2 * math.pi * (N // nc) / N) ** 2
    assert (xM - u).abs().max().item() <= 2 * ks2     # one blur per axis


def test_dirichlet_padding_behaves_as_documented():
    """Dirichlet axes repeat the edge value: linear fields coarse-grain to the block-centre
    value away from the edges (symmetric kernel), cells within the half-width of an edge are
    pulled towards the edge value, and nothing wraps around."""
    N, s = 200, 10
    kernel = CoarseGrainingKernel((N,), 1, (s,), ("dirichlet",))
    i = torch.arange(N, dtype=torch.float64)
    c = kernel.coarse(i.view(1, 1, N))[0, 0]
    centres = i.view(-1, s).mean(1)
    reach = -(-(kernel.pads[0] - (s - 1) / 2 + s / 2) // s)           # cells whose kernel leaves the grid
    interior = slice(int(reach), N // s - int(reach))
    torch.testing.assert_close(c[interior], centres[interior], rtol=0, atol=1e-10)
    assert c[0] > centres[0] and c[-1] < centres[-1]                   # pulled towards the edge values,
    assert c[0] < centres[1] and c[-1] > centres[-2]                   # not wrapped to the far end
    # direct check of the edge rule for the first cell
    w = kernel.weights[0][0]
    padded = pad_axis(i.view(1, 1, N), 2, kernel.pads[0], kernel.pads[0], periodic=False)[0, 0]
    torch.testing.assert_close(c[0], (w * padded[:w.numel()]).sum())
    # periodic, by contrast, wraps: cell 0 of a ramp sees the high values at the far end
    cp = CoarseGrainingKernel((N,), 1, (s,), ("periodic",)).coarse(i.view(1, 1, N))[0, 0]
    assert cp[0] > c[0] + 1


def test_even_factor_smoothing_is_centred():
    # for even s the stride-1 kernel is K * [1/2, 1/2]: symmetric about each fine point,
    # so a linear ramp (periodic bump-free interior) is reproduced exactly away from edges
    N, s = 400, 20
    kernel = CoarseGrainingKernel((N,), 1, (s,), ("dirichlet",))
    i = torch.arange(N, dtype=torch.float64).view(1, 1, N)
    sm = kernel.smooth(i)[0, 0]
    h = (kernel.smoothing_taps(0).shape[-1] - 1) // 2
    torch.testing.assert_close(sm[h:-h], i[0, 0, h:-h], rtol=0, atol=1e-9)
    assert kernel.smoothing_taps(0).shape[-1] % 2 == 1


def test_kernel_ops_match_direct_convolutions():
    """The GEMM / FFT implementations equal the plain strided (transposed) convolutions."""
    for shape, factors, bc in [((300,), (15,), ("periodic",)), ((96, 64), (16, 8), ("dirichlet", "periodic"))]:
        k = CoarseGrainingKernel(shape, 2, factors, bc)
        with torch.no_grad():
            for w in k.weights:
                w.add_(1e-3 * torch.randn(w.shape))
            k.bias.fill_(0.2)
        nd = len(shape)
        conv, conv_t = (F.conv1d, F.conv_transpose1d) if nd == 1 else (F.conv2d, F.conv_transpose2d)
        u = torch.randn(3, 2, *shape)
        z = torch.randn(3, 2, *k.coarse_shape)
        ref_c, ref_s, ref_t = u, u, z - k.bias.view(1, 2, *([1] * nd))
        for a in range(nd):
            per = k.periodic[a]
            view = [2, 1] + [1] * nd
            st = [1] * nd
            st[a] = k.factors[a]
            w = k.weights[a]
            view[2 + a] = w.shape[-1]
            ref_c = conv(pad_axis(ref_c, 2 + a, k.pads[a], k.pads[a], per), w.view(view), stride=st, groups=2)
            ws = k.smoothing_taps(a)
            hs = (ws.shape[-1] - 1) // 2
            view_s = list(view)
            view_s[2 + a] = ws.shape[-1]
            ref_s = conv(pad_axis(ref_s, 2 + a, hs, hs, per), ws.view(view_s), groups=2)
            pc = k.coarse_pads[a]
            ref_t = conv_t(pad_axis(ref_t, 2 + a, pc, pc, per), (w * k.factors[a]).view(view), stride=st, groups=2)
            ref_t = ref_t.narrow(2 + a, pc * k.factors[a] + k.pads[a], shape[a])
        torch.testing.assert_close(k.coarse(u), ref_c + k.bias.view(1, 2, *([1] * nd)))
        torch.testing.assert_close(k.smooth(u), ref_s)
        torch.testing.assert_close(k.transpose(z), ref_t)


def test_initial_kernel_is_gaussian_of_width_s():
    kernel = CoarseGrainingKernel((1000,), 1, (50,), ("periodic",))
    w = kernel.weights[0][0]
    assert w.numel() == 300                                           # half-width 3 s around the block centre
    torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    a = torch.arange(300) - kernel.pads[0] - 24.5                     # offsets from the block centre
    std = torch.sqrt((w * a ** 2).sum())
    assert abs(std.item() - 50) < 0.03 * 50                           # truncated at 3 sigma: ~1.5% narrower
    phase_sums = torch.zeros(50).index_add_(0, (torch.arange(300) - kernel.pads[0]) % 50, w)
    torch.testing.assert_close(phase_sums, torch.full((50,), 1 / 50))


# -- encoder / decoder -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,coarse,boundary,channels,micro", [
    ((64,), (8,), "periodic", 1, 3),
    ((60,), (6,), "dirichlet", 3, 2),
    ((32, 32), (4, 4), "dirichlet", 2, 3),
    ((32, 24), (4, 3), "periodic", 1, 0),
])
def test_shapes(shape, coarse, boundary, channels, micro):
    model = MultiscaleModel.build(_grid(shape, boundary), coarse, micro_dim=micro, channels=channels, **SMALL)
    D = channels * math.prod(coarse) + micro
    assert model.latent_dim == D and model.macro_dim == D - micro
    u = torch.randn(5, channels, *shape)
    mean, logvar = model.encode(u)
    assert mean.shape == (5, D) and logvar.shape == (5, D)
    x, var = model.decode(mean)
    assert x.shape == u.shape
    assert torch.broadcast_shapes(var.shape, x.shape) == x.shape and (var > 0).all()
    zM, zm = model.split_latent(mean)
    assert zM.shape == (5, channels, *coarse) and zm.shape == (5, micro)
    assert torch.equal(model.join_latent(zM, zm), mean)
    assert model.drift(0.0, mean).shape == (5, D)
    # the encoder variance starts at softplus(-4) in every dimension
    torch.testing.assert_close(logvar, torch.full_like(logvar, math.log(math.log1p(math.exp(-4)))))


def test_closure_decoder_mean_is_macro_expert_exactly():
    model = MultiscaleModel.build(_grid((100,)), 10, micro_dim=0)
    assert model.encoder.micro is None and model.decoder.micro is None
    assert model.decoder.raw_var_micro is None
    assert not any("micro" in name for name, _ in model.named_parameters())
    z = torch.randn(4, 10)
    x, var = model.decode(z)
    assert torch.equal(x, model.kernel.transpose(z.view(4, 1, 10)))
    assert torch.equal(var, F.softplus(model.decoder.raw_var_macro))


def test_product_of_experts_combination():
    model = MultiscaleModel.build(_grid((64,)), 8, micro_dim=2, **SMALL)
    with torch.no_grad():
        model.decoder.raw_var_macro.copy_(torch.linspace(-3, 1, 64).view(1, 64))
        model.decoder.raw_var_micro.copy_(torch.linspace(2, -4, 64).view(1, 64))
    z = torch.randn(3, 10)
    x, var = model.decode(z)
    vM = F.softplus(model.decoder.raw_var_macro)
    vm = F.softplus(model.decoder.raw_var_micro)
    xM = model.kernel.transpose(z[:, :8].view(3, 1, 8))
    xm = model.decoder.micro(z[:, 8:])
    expected_var = 1 / (1 / vM + 1 / vm)
    torch.testing.assert_close(var, expected_var)
    torch.testing.assert_close(x, xM + expected_var / vm * xm)
    # where the micro expert is far less certain, the mean follows the macro expert
    assert ((x - xM).abs()[..., :5] < (x - xM).abs()[..., -5:].mean()).all()


def test_micro_encoder_sees_only_the_fluctuation():
    model = MultiscaleModel.build(_grid((64,)), 8, micro_dim=3, **SMALL)
    with torch.no_grad():
        for p in model.encoder.micro.parameters():
            p.add_(0.1)                                                # non-zero biases too
    a = model.encode(torch.full((1, 1, 64), 0.2))[0]
    b = model.encode(torch.full((1, 1, 64), -1.3))[0]
    torch.testing.assert_close(a[:, 8:], b[:, 8:])                     # u - K_smooth u = 0 for both
    c = model.encode(torch.sin(torch.arange(64.0) * 2.5).view(1, 1, 64))[0]
    assert (c[:, 8:] - a[:, 8:]).abs().max() > 1e-3


def test_kernel_is_shared_and_trained_by_both_ends():
    model = MultiscaleModel.build(_grid((64,)), 8, micro_dim=2, **SMALL)
    assert model.encoder.kernel is model.decoder.kernel is model.kernel
    names = [n for n, _ in model.named_parameters()]
    assert sum("weights.0" in n and "kernel" in n for n in names) == 1      # one parameter, not two
    u = torch.randn(4, 1, 64)
    model.encode(u)[0].sum().backward()
    g_enc = model.kernel.weights[0].grad.clone()
    model.zero_grad()
    model.decode(torch.randn(4, 10))[0].sum().backward()
    assert g_enc.abs().max() > 0 and model.kernel.weights[0].grad.abs().max() > 0


# -- configuration ----------------------------------------------------------------------------------
def test_config_round_trip_and_rebuild():
    model = MultiscaleModel.build(_grid((32, 32), "dirichlet"), (4, 4), micro_dim=3, channels=2, n_mu=1, **SMALL)
    d = model.config.to_dict()
    text = json.dumps(d)                                               # JSON-safe
    assert ModelConfig.from_dict(json.loads(text)) == model.config
    for v in d.values():
        assert isinstance(v, (int, float, str, bool, list))
    clone = MultiscaleModel.from_config(json.loads(text))
    clone.load_state_dict(model.state_dict())
    u = torch.randn(2, 2, 32, 32)
    torch.testing.assert_close(clone.encode(u)[0], model.encode(u)[0])


def test_config_errors():
    g = _grid((100,))
    with pytest.raises(ConfigError, match="divide"):
        MultiscaleModel.build(g, 30)
    with pytest.raises(ConfigError, match="one per axis"):
        MultiscaleModel.build(g, (10, 10))
    with pytest.raises(ConfigError, match="micro_dim"):
        MultiscaleModel.build(g, 10, micro_dim=-1)
    with pytest.raises(ConfigError, match="positive"):
        MultiscaleModel.build(g, 0)
    with pytest.raises(ConfigError, match="unknown"):
        MultiscaleModel.build(g, 10, hidden=(3,))
    with pytest.raises(ConfigError, match="activation"):
        MultiscaleModel.build(g, 10, activation="gelu")
    with pytest.raises(ConfigError, match="odd"):
        MultiscaleModel.build(g, 10, encoder_kernel=4)
    with pytest.raises(ConfigError, match="stencil_radius = 11 is wider than the periodic coarse axis of 10 cells"):
        MultiscaleModel.build(g, 10, stencil_radius=11)
    model = MultiscaleModel.build(g, 10, stencil_radius=10)                  # as wide as the axis: runs
    assert model.drift(0.0, torch.zeros(2, model.config.latent_dim)).shape == (2, model.config.latent_dim)
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({**MultiscaleModel.build(g, 10, micro_dim=0).config.to_dict(), "extra": 1})


def test_dimension_dependent_defaults_are_recorded():
    one = MultiscaleModel.build(_grid((100,)), 10).config
    two = MultiscaleModel.build(_grid((32, 32)), (4, 4)).config
    assert one.to_dict()["encoder_channels"] == [8, 16, 32] and one.to_dict()["encoder_kernel"] == 9
    assert two.to_dict()["encoder_channels"] == [4, 16, 64] and two.to_dict()["encoder_kernel"] == 5
    explicit = MultiscaleModel.build(_grid((100,)), 10, encoder_channels=(4, 16, 64), encoder_kernel=25).config
    assert explicit.encoder_channels == (4, 16, 64) and explicit.encoder_kernel == 25


def test_channels_last_convolutions_are_the_same_model():
    """``conv_memory_format = "channels_last"`` changes the layout the micro CNNs run in, not the
    model: the same seed builds the same parameters, the state dicts are interchangeable, and
    encode, decode and the gradients agree to round-off (float64 and float32); 2-D only."""
    g = _grid((32, 32), "dirichlet")
    torch.manual_seed(3)
    a = MultiscaleModel.build(g, (4, 4), micro_dim=3, **SMALL)
    torch.manual_seed(3)
    b = MultiscaleModel.build(g, (4, 4), micro_dim=3, conv_memory_format="channels_last", **SMALL)
    assert a.config.conv_memory_format == "contiguous" and b.encoder.micro.channels_last
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    u = torch.randn(5, 1, 32, 32)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        a.to(dtype), b.to(dtype)
        x = u.to(dtype)
        for m in (a, b):
            m.zero_grad()
            m.decode(m.encode(x)[0])[0].square().sum().backward()
        torch.testing.assert_close(b.encode(x)[0], a.encode(x)[0], rtol=tol, atol=tol)
        torch.testing.assert_close(b.decode(a.encode(x)[0])[0], a.decode(a.encode(x)[0])[0], rtol=tol, atol=tol)
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            torch.testing.assert_close(pb.grad, pa.grad, rtol=10 * tol, atol=10 * tol, msg=name)
    assert MultiscaleModel.from_config(b.config.to_dict()).config.conv_memory_format == "channels_last"
    with pytest.raises(ConfigError, match="needs a 2-D grid"):
        MultiscaleModel.build(_grid((100,)), 10, conv_memory_format="channels_last")
    with pytest.raises(ConfigError, match="conv_memory_format"):
        MultiscaleModel.build(g, (4, 4), conv_memory_format="nhwc")
