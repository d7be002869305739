"""Ensemble forecasts (pymsde.forecast.ensemble): exact OU statistics through the whole
encode -> integrate -> decode path, forcing and parameters, the real MultiscaleModel."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pymsde.forecast import LinearForcing, forecast, output_steps
from pymsde.util.errors import ConfigError, DataError

F64 = torch.float64


class OUModel(nn.Module):
    """Stand-in with the MultiscaleModel interface and a linear latent SDE.

    Fine grid (1, 8), coarse (1, 2) (block factor 4), micro_dim 1, D = 3.
    encode: block means (exact, with logvar = log 1e-12), micro 0. decode: block values
    repeated onto the fine grid (micro ignored). drift: -theta z + f(t) (+ n_f = 1 forcing
    added to every component) with theta = mu[0] when n_mu = 1. sigma: constant per dim.
    No drift_params(): the forecast falls back to model.drift.
    """

    def __init__(self, theta=1.0, sigma=(0.3, 0.5, 0.2), n_mu=0, n_f=0):
        super().__init__()
        self.theta = theta
        self.sigma = nn.Parameter(torch.tensor(sigma, dtype=F64), requires_grad=False)
        self.config = SimpleNamespace(fine_shape=(8,), channels=1, coarse_shape=(2,), micro_dim=1,
                                      n_mu=n_mu, n_f=n_f)

    def encode(self, u):
        zM = u.reshape(u.shape[0], 2, 4).mean(-1)
        m = torch.cat([zM, torch.zeros(u.shape[0], 1, dtype=u.dtype)], 1)
        return m, torch.full_like(m, math.log(1e-12))

    def split_latent(self, z):
        return z[:, :2].reshape(-1, 1, 2), z[:, 2:]

    def decode(self, z):
        return z[:, :2].repeat_interleave(4, 1).unsqueeze(1), torch.full((1, 8), 0.01, dtype=z.dtype)

    def drift(self, t, z, mu=None, f=None):
        theta = self.theta if mu is None else mu[:, :1]
        out = -theta * z
        return out if f is None else out + f[:, :1]

    def diffusion(self, mu=None):
        return self.sigma


def _u0():
    return torch.tensor([[1.0] * 4 + [-2.0] * 4], dtype=F64)  # block means 1 and -2


def test_ensemble_matches_exact_ou_statistics():
    """4000 members: the decoded mean, std and quantiles and the latent paths match the exact
    OU law N(m0 e^{-theta t}, sigma^2 (1 - e^{-2 theta t}) / (2 theta)) within Monte Carlo
    error (4 standard errors; EM bias at dt = 1e-3 is ~5e-4 relative, far smaller)."""
    model = OUModel(theta=1.5)
    t_out = np.array([0.0, 0.25, 1.0])
    M = 4000
    fc = forecast(model, _u0(), t_out, n_samples=M, dt=1e-3, seed=0, quantiles=(0.05, 0.5, 0.95))
    assert fc.mean.shape == (3, 1, 8) and fc.std.shape == (3, 1, 8)
    assert fc.quantiles.shape == (3, 3, 1, 8) and fc.macro.shape == (M, 3, 1, 2)
    assert fc.micro.shape == (M, 3, 1) and fc.samples is None
    assert fc.info["n_steps"] == 1000 and fc.info["drift"] == "model.drift"
    sig = model.sigma.detach().numpy()
    for k, t in enumerate(t_out):
        m = np.array([1.0, -2.0]) * math.exp(-1.5 * t)
        v = sig[:2] ** 2 * (1 - math.exp(-3.0 * t)) / 3.0
        mean_fine = fc.mean[k, 0].numpy().reshape(2, 4)
        std_fine = fc.std[k, 0].numpy().reshape(2, 4)
        se = np.sqrt(v / M) + 1e-7  # + the encoder sample (variance 1e-12) at t = 0
        assert np.all(np.abs(mean_fine - m[:, None]) < 4 * se[:, None])
        if t > 0:
            assert np.all(np.abs(std_fine ** 2 - v[:, None]) < 4 * v[:, None] * math.sqrt(2 / (M - 1)))
            # quantiles of a Gaussian: m +- 1.645 sd; SE of a sample quantile ~ sd * 2.1/sqrt(M)
            q = fc.quantiles[:, k, 0].numpy().reshape(3, 2, 4)[:, :, 0]
            z = np.array([-1.6449, 0.0, 1.6449])
            assert np.all(np.abs(q - (m[None] + z[:, None] * np.sqrt(v)[None]))
                          < 4 * 2.2 * np.sqrt(v)[None] / math.sqrt(M))
    # the micro path (its own OU from 0) and the initial state (encoder sample, var 1e-12)
    v_m = sig[2] ** 2 * (1 - math.exp(-3.0)) / 3.0
    assert abs(float(fc.micro[:, 2, 0].var()) - v_m) < 4 * v_m * math.sqrt(2 / (M - 1))
    assert torch.allclose(fc.macro[:, 0, 0], torch.tensor([1.0, -2.0], dtype=F64), atol=1e-5)


def test_forcing_and_parameters_enter_the_drift():
    """Batch of two observations with theta = mu = (1, 2) and forcing f(t) = 3 t given as
    samples (linear, so interpolation is exact): the ensemble mean follows
    m(t) = m0 e^{-theta t} + 3 (t/theta - (1 - e^{-theta t})/theta^2) per observation."""
    model = OUModel(n_mu=1, n_f=1)
    u0 = torch.cat([_u0(), -_u0()])[:, None].reshape(2, 1, 8)
    t_out = np.linspace(0.0, 1.0, 5)
    f_times = np.linspace(0.0, 1.0, 11)
    M = 2000
    fc = forecast(model, u0, t_out, mu=np.array([[1.0], [2.0]]), f=3.0 * f_times[:, None], f_times=f_times,
                  n_samples=M, dt=1e-3, seed=1, quantiles=())
    assert fc.mean.shape == (2, 5, 1, 8) and fc.macro.shape == (2, M, 5, 1, 2) and fc.quantiles is None
    sig = model.sigma.detach().numpy()[:2]
    for b, (theta, sign) in enumerate([(1.0, 1.0), (2.0, -1.0)]):
        for k, t in enumerate(t_out):
            m0 = sign * np.array([1.0, -2.0])
            m = m0 * math.exp(-theta * t) + 3.0 * (t / theta - (1 - math.exp(-theta * t)) / theta ** 2)
            v = sig ** 2 * (1 - math.exp(-2 * theta * t)) / (2 * theta)
            got = fc.macro[b, :, k, 0].mean(0).numpy()
            # MC error + EM bias (O(dt) = 1e-3 on a mean of size ~1)
            assert np.all(np.abs(got - m) < 4 * np.sqrt(v / M) + 2e-3), (b, t, got, m)


def test_real_model_kernel_path_equals_model_drift_and_is_reproducible():
    """With the real MultiscaleModel: the functional-kernel rollout (drift_params) and the
    model.drift fallback give the same latent paths for one seed; a seed reproduces a forecast;
    kept samples, mean and quantiles agree with each other; backend 'auto' falls back to torch
    here (no Julia) and gives the same numbers."""
    from pymsde.data.grid import Grid
    from pymsde.model.multiscale import MultiscaleModel

    torch.manual_seed(0)
    grid = Grid((32,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 4, micro_dim=2, drift_hidden=(16,), micro_hidden=(16,),
                                  encoder_channels=(2, 4)).double()
    u0 = torch.sin(2 * math.pi * torch.arange(32, dtype=F64) / 32)[None]
    t_out = np.arange(0, 21) * 0.01
    kw = dict(n_samples=6, seed=3, return_samples=True, sample_index=[0, 10, 20])
    fc = forecast(model, u0, t_out, **kw)
    assert fc.info["drift"] == "model.drift.multiscale_drift" and fc.info["dt"] == pytest.approx(0.01)
    assert fc.mean.shape == (21, 1, 32) and fc.samples.shape == (6, 3, 1, 32)
    assert fc.macro.shape == (6, 21, 1, 4) and fc.micro.shape == (6, 21, 2)

    class NoKernel(nn.Module):  # the same model without drift_params()
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def __getattr__(self, name):
            if name in ("encode", "decode", "drift", "diffusion", "split_latent"):
                return getattr(self.inner, name)
            return super().__getattr__(name)

    fc2 = forecast(NoKernel(model), u0, t_out, **kw)
    assert fc2.info["drift"] == "model.drift"
    assert torch.allclose(fc.macro, fc2.macro, rtol=1e-12, atol=1e-12)
    assert torch.allclose(fc.micro, fc2.micro, rtol=1e-12, atol=1e-12)
    again = forecast(model, u0, t_out, **kw)
    assert torch.equal(again.mean, fc.mean)
    other = forecast(model, u0, t_out, **{**kw, "seed": 4})
    assert not torch.allclose(other.mean, fc.mean)
    assert torch.allclose(fc.samples.mean(0), fc.mean[[0, 10, 20]], rtol=1e-12, atol=1e-12)
    assert torch.allclose(fc.samples.std(0), fc.std[[0, 10, 20]], rtol=1e-12, atol=1e-12)
    q = np.quantile(fc.samples.numpy(), [0.05, 0.5, 0.95], axis=0)
    assert np.allclose(fc.quantiles[:, [0, 10, 20]].numpy(), q, rtol=1e-12, atol=1e-12)
    auto = forecast(model, u0, t_out, backend="auto", **kw)
    assert torch.equal(auto.mean, fc.mean)
    latent_only = forecast(model, u0, t_out, decode=False, n_samples=6, seed=3)
    assert latent_only.mean is None and torch.equal(latent_only.macro, fc.macro)


def test_linear_forcing_interpolation():
    """Vectorised interpolation equals numpy's interp (per series), clamps outside the range."""
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 2, 9))
    vals = rng.normal(size=(3, 9, 2))
    lf = LinearForcing.from_samples(times, vals, dtype=F64)
    for t in [times[0] - 1, times[0], 0.77, 1.3, times[-1], times[-1] + 5]:
        got = lf(torch.tensor(t, dtype=F64)).numpy()
        want = np.array([[np.interp(t, times, vals[b, :, j]) for j in range(2)] for b in range(3)])
        assert got.shape == (3, 2) and np.allclose(got, want, rtol=1e-12, atol=1e-12)
    assert lf.expand(2).values.shape == (6, 9, 2)
    shared = LinearForcing.from_samples(times, vals[0], dtype=F64)
    assert shared(0.5).shape == (2,)
    with pytest.raises(DataError, match="strictly increasing"):
        LinearForcing.from_samples(times[::-1], vals[0])
    with pytest.raises(DataError, match=r"found shape \(9, 2, 1\)"):
        LinearForcing.from_samples(times, vals[0][:, :, None])


def test_output_steps_and_bad_input():
    assert output_steps(np.array([0.1, 0.3, 0.6]), 0.0, 0.1).tolist() == [1, 3, 6]
    assert output_steps(np.arange(1001) * 1e-3, 0.0, 1e-3)[-1] == 1000
    model = OUModel()
    with pytest.raises(ConfigError, match="not on the step grid"):
        forecast(model, _u0(), [0.0, 0.15], dt=0.1)
    with pytest.raises(ConfigError, match="strictly increasing"):
        forecast(model, _u0(), [0.0, 0.2, 0.1])
    with pytest.raises(ConfigError, match="before the initial time"):
        forecast(model, _u0(), [0.0, 0.1], t0=0.5)
    with pytest.raises(DataError, match=r"u0 must be \(C, \*grid\) = \(1, 8\)"):
        forecast(model, torch.zeros(1, 9, dtype=F64), [0.0, 0.1])
    with pytest.raises(DataError, match="mu is None"):
        forecast(OUModel(n_mu=1), _u0(), [0.0, 0.1])
    with pytest.raises(DataError, match="f is None"):
        forecast(OUModel(n_f=1), _u0(), [0.0, 0.1])
    with pytest.raises(DataError, match=r"mu must be \(1,\) or \(1, 1\)"):
        forecast(OUModel(n_mu=1), _u0(), [0.0, 0.1], mu=[1.0, 2.0])
    with pytest.raises(ConfigError, match="quantile levels"):
        forecast(model, _u0(), [0.0, 0.1], quantiles=(1.5,))
    with pytest.raises(ConfigError, match=r"sample_index repeats an output time \(\[2, 2\]\)"):
        forecast(model, _u0(), [0.0, 0.1, 0.2], return_samples=True, sample_index=[2, 2])


def test_times_stored_in_float32_are_on_the_step_grid():
    """Data files may hold float32 times (the data layer admits their rounding): the forecast
    infers the step from the whole span and finds every output step, on CPU tensors."""
    t32 = torch.linspace(0, 1, 1001, dtype=torch.float32)
    assert float(t32[504]) != 0.504                                   # really rounded
    fc = forecast(OUModel(), _u0(), t32, n_samples=2, seed=0, decode=False)
    assert fc.info["n_steps"] == 1000 and fc.info["dt"] == pytest.approx(1e-3, rel=1e-7)
    assert fc.macro.shape == (2, 1001, 1, 2) and fc.t.device == _u0().device
    fc = forecast(OUModel(), _u0(), t32, n_samples=2, seed=0, decode=False, dt=1e-3)
    assert fc.info["n_steps"] == 1000
    assert output_steps(t32.numpy(), 0.0, 1e-3).tolist() == list(range(1001))
    with pytest.raises(ConfigError, match="not on the step grid"):        # a real offset still fails
        output_steps(np.array([0.0, 0.1 + 2e-6]), 0.0, 1e-3)


def test_decode_batch_bounds_every_decoder_call():
    """decode_batch rows per decoder call even when one output time has more members; the
    numbers do not depend on it."""
    model = OUModel()
    rows = []
    decode = model.decode
    model.decode = lambda z: rows.append(z.shape[0]) or decode(z)
    kw = dict(n_samples=10, seed=4, observation_noise=True, return_samples=True)
    small = forecast(model, _u0(), [0.0, 0.1, 0.2], decode_batch=4, **kw)
    assert max(rows) == 4 and sum(rows) == 30
    rows.clear()
    big = forecast(model, _u0(), [0.0, 0.1, 0.2], decode_batch=4096, **kw)
    assert rows == [30]
    for name in ("mean", "std", "samples"):
        assert torch.equal(getattr(small, name), getattr(big, name)), name


@pytest.mark.parametrize("case", ["1d_mu_f", "2d_dirichlet_closure", "tanh", "silu", "softplus", "one_layer"])
def test_drift_workspace_gives_the_same_numbers(case):
    """multiscale_drift with a DriftWorkspace (the rollout path: buffers reused, activations in
    place) gives the workspace=None (autograd) path's numbers to rounding in float64, on
    repeated calls with different states (no stale buffer leaks into a result), and its results
    stay valid after the next call (Heun/SRA1 keep two drift values alive)."""
    from pymsde.model.mlp import init_mlp
    from pymsde.model.drift import DriftParams, DriftWorkspace, multiscale_drift

    gen = torch.Generator().manual_seed(0)
    opts = dict(coarse_shape=(6,), boundary=("periodic",), channels=1, micro_dim=3, n_mu=1, n_f=2,
                activation="relu", hidden=(16, 16))
    if case == "2d_dirichlet_closure":
        opts.update(coarse_shape=(4, 5), boundary=("dirichlet", "periodic"), channels=2, micro_dim=0,
                    n_mu=0, n_f=0)
    elif case in ("tanh", "silu", "softplus"):
        opts.update(activation=case)
    elif case == "one_layer":
        opts.update(hidden=())
    nd = len(opts["coarse_shape"])
    n_cells = math.prod(opts["coarse_shape"])
    C, dm, r = opts["channels"], opts["micro_dim"], 1
    macro_in = C * (2 * r + 1) ** nd + dm + opts["n_mu"] + opts["n_f"]
    mw, mb = init_mlp([macro_in, *opts["hidden"], C], generator=gen, dtype=F64)
    mb = [b + 0.1 * torch.randn(b.shape, generator=gen, dtype=F64) for b in mb]
    uw, ub = init_mlp([dm + C * n_cells + 2 + opts["n_mu"] + opts["n_f"], 8, dm], generator=gen,
                      dtype=F64) if dm else ([], [])
    params = DriftParams(mw, mb, uw, ub, opts["activation"], r, opts["boundary"], opts["coarse_shape"],
                         C, dm, opts["n_mu"], opts["n_f"])
    B = 7
    ws = DriftWorkspace(params, B)
    mu = torch.randn(B, opts["n_mu"], generator=gen, dtype=F64) if opts["n_mu"] else None
    f = torch.randn(B, opts["n_f"], generator=gen, dtype=F64) if opts["n_f"] else None
    outs = []
    for k in range(3):
        z = torch.randn(B, params.latent_dim, generator=gen, dtype=F64)
        t = torch.tensor(0.3 * k, dtype=F64)
        want = multiscale_drift(params, t, z, mu, f)
        with torch.no_grad():
            got = multiscale_drift(params, t, z, mu, f, workspace=ws)
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
        assert got.abs().max() > 1e-3                      # a real comparison, not of zeros
        outs.append((got, want))
    for got, want in outs:
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="built for batch 7"):
        multiscale_drift(params, 0.0, torch.zeros(3, params.latent_dim, dtype=F64), mu, f, workspace=ws)


@pytest.mark.parametrize("t_out, every", [(np.arange(0, 21) * 0.01, 2), (np.array([0.0, 0.03, 0.04, 0.2]), 1)])
def test_backend_hook_uses_sde_rollout_with_the_same_noise(monkeypatch, t_out, every):
    """A non-torch backend gets the rollout through its sde_rollout kernel (here the torch
    reference kernel behind a fake 'julia' Backend): same seed -> the same latent paths as the
    torch path, for uniform output times (save_every) and irregular ones (every step, then
    picked); time-varying forcing is refused with a clear error."""
    from pymsde.data.grid import Grid
    from pymsde.backends.protocol import TORCH
    from pymsde.forecast import rollout as ro
    from pymsde.model.multiscale import MultiscaleModel

    torch.manual_seed(0)
    grid = Grid((32,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 4, micro_dim=2, drift_hidden=(16,), micro_hidden=(16,),
                                  encoder_channels=(2, 4), n_mu=1, n_f=1).double()
    calls = []

    def fake_rollout(*args, **kwargs):
        calls.append(kwargs["save_every"])
        return ro.sde_rollout(*args, **kwargs)

    fake = SimpleNamespace(name="julia", accelerated=True, sde_rollout=fake_rollout)
    monkeypatch.setattr(ro, "resolve_backend", lambda name: fake if name == "julia" else TORCH)
    u0 = torch.sin(2 * math.pi * torch.arange(32, dtype=F64) / 32)[None]
    f_const = np.full((len(t_out), 1), 0.3)
    kw = dict(mu=[0.5], f=f_const, n_samples=4, seed=2, decode=False, dt=0.005)
    ref = forecast(model, u0, t_out, backend="torch", **kw)
    got = forecast(model, u0, t_out, backend="julia", **kw)
    assert calls == [1]                  # every step saved, the output steps picked from them
    assert torch.allclose(got.macro, ref.macro, rtol=1e-10, atol=1e-12)
    assert torch.allclose(got.micro, ref.micro, rtol=1e-10, atol=1e-12)
    with pytest.raises(ConfigError, match="constant forcing only"):
        forecast(model, u0, t_out, backend="julia", **{**kw, "f": np.linspace(0, 1, len(t_out))[:, None]})


@pytest.mark.parametrize("scheme", ["em", "sra1"])
def test_backend_hook_in_several_calls_draws_the_torch_paths_noise(monkeypatch, scheme):
    """With the noise drawn in several pieces and split over several sde_rollout calls
    (forced: 7 steps per draw, 21 per call, 40 steps), a seed still gives the torch path's
    latent states: both paths draw the same pieces from the generator. 18 numbers per step
    (not a multiple of 16) and sra1 (dW and dZ drawn per piece) are the cases where another
    split of the draws would change the numbers."""
    from pymsde.data.grid import Grid
    from pymsde.forecast import rollout as ro
    from pymsde.sde import integrator as sde
    from pymsde.model.multiscale import MultiscaleModel

    torch.manual_seed(0)
    grid = Grid((32,), ((0.0, 1.0),), ("periodic",))
    model = MultiscaleModel.build(grid, 4, micro_dim=2, drift_hidden=(16,), micro_hidden=(16,),
                                  encoder_channels=(2, 4)).double()
    N, D = 3, model.latent_dim
    assert N * D == 18
    calls = []

    def fake_rollout(*args, **kwargs):
        calls.append(args[5])                                   # n_steps of this call
        return ro.sde_rollout(*args, **kwargs)

    monkeypatch.setattr(ro, "resolve_backend",
                        lambda name: SimpleNamespace(name=name, accelerated=name != "torch", sde_rollout=fake_rollout))
    monkeypatch.setattr(sde, "NOISE_NUMBERS_PER_DRAW", 7 * N * D + 5)
    monkeypatch.setattr(ro, "NOISE_NUMBERS_PER_CALL", 21 * N * D)
    params = model.drift_params().detach()
    sigma = model.diffusion(None).detach()
    z0 = torch.randn(N, D, dtype=F64)
    steps = np.arange(0, 41, 2)
    got = ro.rollout(params, sigma, z0, 0.1, 0.01, 40, scheme, steps, None, None,
                     torch.Generator().manual_seed(5), "julia")
    ref = ro.rollout(params, sigma, z0, 0.1, 0.01, 40, scheme, steps, None, None,
                     torch.Generator().manual_seed(5), "torch")
    assert calls == [21, 19]
    assert got.shape == (21, N, D)
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert (got[-1] - got[0]).abs().max() > 1e-2                  # the paths moved
