"""Keyed random streams (pymsde.util.rng): the numbers of a window or an ensemble member depend on
its key only, not on the batch split or the chunking; the training objective and the forecasts
draw from them."""
import numpy as np
import pytest
import torch

from pymsde.forecast import forecast
from pymsde.model import ModelConfig, MultiscaleModel
from pymsde.training.device_data import DeviceData
from pymsde.training.elbo import WindowNoise, draw_noise, elbo_terms
from pymsde.util import rng
from pymsde.util.errors import ConfigError
from test_checkpoint import TINY_MODEL, tiny_data


def test_a_stream_is_a_pure_function_of_its_key_and_draws_in_any_pieces():
    a = rng.stream(7, "train.window", 3, 5).standard_normal(40, dtype=np.float32)
    g = rng.stream(7, "train.window", 3, 5)
    b = np.concatenate([g.standard_normal(n, dtype=np.float32) for n in (1, 16, 7, 16)])
    assert np.array_equal(a, b)
    # every word of the key changes the numbers; the kinds are disjoint
    others = [rng.stream(8, "train.window", 3, 5), rng.stream(7, "train.shared", 3, 5),
              rng.stream(7, "train.window", 4, 5), rng.stream(7, "train.window", 3, 6),
              rng.stream(7, "train.window", 5, 3)]
    for g in others:
        x = g.standard_normal(40, dtype=np.float32)
        assert not np.array_equal(a, x) and abs(np.corrcoef(a, x)[0, 1]) < 0.5
    # the full 64-bit range is used (torch's CPU generator would keep only 32 bits of a seed)
    assert not np.array_equal(rng.stream(1, 1).random(8), rng.stream(1 + 2 ** 32, 1).random(8))
    t = rng.normal(rng.stream(7, "train.window", 3, 5), (4, 10), torch.float32)
    assert t.dtype == torch.float32 and torch.equal(t.flatten(), torch.from_numpy(a))


@pytest.mark.parametrize("args, match", [((-1, 1), "seed = -1"), ((2 ** 64, 1), "seed"), ((0, "nope"), "kind 'nope'"),
                                         ((0, 1, 1.5), "index a = 1.5"), ((0, 1, 0, -3), "index b = -3")])
def test_bad_keys_are_refused_in_one_line(args, match):
    with pytest.raises(ConfigError, match=match):
        rng.stream(*args)


def test_a_windows_noise_does_not_depend_on_the_other_windows_of_its_batch():
    """The draws of window w in a batch of 4 are those of w alone (bit for bit); the shared numbers
    (frame subset, quadrature jitter) depend on the step only."""
    M, K, S, D, Q = 12, 5, 2, 3, 4
    t_rel = torch.linspace(0, 1, M)
    idx, eps, tau, eps_q = draw_noise(WindowNoise(3, 9, (0, 1, 2, 3)), None, M, K, S, 4, D, Q, True, t_rel)
    assert eps.shape == (S, K, 4 * D) and eps_q.shape == (S, Q, 4, D) and idx.shape == (K,)
    for w in range(4):
        i1, e1, tau1, q1 = draw_noise(WindowNoise(3, 9, (w,)), None, M, K, S, 1, D, Q, True, t_rel)
        assert torch.equal(i1, idx) and torch.equal(tau1, tau)
        assert torch.equal(e1, eps[:, :, w * D:(w + 1) * D]) and torch.equal(q1[:, :, 0], eps_q[:, :, w])
    # another step draws other numbers; tau is stratified: one time per bin
    i2, e2, tau2, _ = draw_noise(WindowNoise(3, 10, (0, 1, 2, 3)), None, M, K, S, 4, D, Q, True, t_rel)
    assert not torch.equal(e2, eps) and not torch.equal(tau2, tau)
    assert torch.equal(torch.floor(tau * Q).long(), torch.arange(Q))


def test_the_batch_objective_is_the_mean_of_its_split_halves():
    """What one process computes for 4 windows equals the mean over two 'ranks' of 2 windows each
    (float64: to rounding), the premise of the data-parallel equivalence."""
    data = tiny_data()
    cfg = ModelConfig.for_grid(data.grid, channels=1, **TINY_MODEL)
    torch.manual_seed(0)
    model = MultiscaleModel(cfg).double()
    dd = DeviceData.from_traj(data, "cpu", torch.float64)
    traj, start, off = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 10, 20, 30]), torch.arange(11)
    u, t, mu, f = dd.windows(traj, start, off)
    kw = dict(beta=0.5, res_factor=0.01, n_quad=4, n_samples=2, loglik_frames=6)
    whole = elbo_terms(model, u, t, mu, f, noise=WindowNoise(0, 5, (0, 1, 2, 3)), **kw)
    halves = [elbo_terms(model, u[a:b], t[a:b], None, None, noise=WindowNoise(0, 5, tuple(range(a, b))), **kw)
              for a, b in ((0, 2), (2, 4))]
    for k in ("loss", "loglik", "residual"):
        w, h = float(whole[k].detach()), 0.5 * float((halves[0][k] + halves[1][k]).detach())
        assert abs(w - h) <= 1e-12 * max(1.0, abs(w)) and abs(w) > 1e-3, (k, w, h)


def _model(micro_dim: int):
    data = tiny_data()
    cfg = ModelConfig.for_grid(data.grid, channels=1, **{**TINY_MODEL, "micro_dim": micro_dim})
    torch.manual_seed(1)
    return MultiscaleModel(cfg).eval(), torch.as_tensor(data.u[:2, 0], dtype=torch.float32), data.dt


@pytest.mark.parametrize("solver", ["em", "sra1"])
def test_an_ensemble_in_chunks_is_the_one_piece_ensemble(solver):
    model, u0, dt = _model(2)
    t_out = dt * np.arange(150)                       # 149 steps: three keyed pieces, the last partial
    kw = dict(seed=11, solver=solver, return_samples=True, sample_index=[0, 70, 149], quantiles=())
    whole = forecast(model, u0, t_out, n_samples=12, **kw)
    # chunks of 5, 2 and 5 members of 2 observations (10, 4, 10 rows; with fewer than 4 rows torch's
    # CPU matrix kernels take another path and the last bit of the drift may differ: docs/distributed.md)
    parts = [forecast(model, u0, t_out, n_samples=n, sample_offset=o, **kw) for o, n in ((0, 5), (5, 2), (7, 5))]
    # the same members to the last bits: on some CPUs the matrix kernels round 10 or 4 rows
    # differently from 24 (one float32 ulp measured, docs/distributed.md); other noise would differ by O(1)
    for name in ("macro", "micro", "samples"):
        got, want = torch.cat([getattr(p, name) for p in parts], dim=1), getattr(whole, name)
        ulp = torch.finfo(want.dtype).eps * float(want.abs().max())
        assert float((got - want).abs().max()) <= 4 * ulp, name
    assert whole.info["noise"] == rng.SCHEME and parts[2].info["sample_offset"] == 7
    # the members differ from each other, and another seed gives other members
    assert float((whole.micro[:, 0] - whole.micro[:, 1]).abs().max()) > 1e-3
    other = forecast(model, u0, t_out, n_samples=12, **{**kw, "seed": 12})
    assert not torch.equal(other.micro, whole.micro)


def test_an_ensemble_split_by_initial_observation_keeps_its_members():
    """batch_offset: the members of observation 1 computed alone are those of the batched call (the
    closure model, whose encoder is a fixed linear map: a CNN encoder's float32 result may differ
    in the last bit between batch sizes, the random numbers do not)."""
    model, u0, dt = _model(0)
    t_out = dt * np.arange(80)
    kw = dict(seed=3, return_samples=True, quantiles=(), n_samples=6)
    both = forecast(model, u0, t_out, **kw)
    second = forecast(model, u0[1], t_out, batch_offset=1, **kw)
    assert torch.equal(second.samples, both.samples[1]) and torch.equal(second.macro, both.macro[1])
    with pytest.raises(ConfigError, match="sample_offset = -1"):
        forecast(model, u0, t_out, sample_offset=-1, **kw)
