"""Training windows: M consecutive steps, overlap of one point, seeded shuffles, resumable."""
import numpy as np
import pytest

from pymsde.data import Trajectories, WindowSampler, window_starts
from pymsde.util.errors import ConfigError


def make(n_traj=3, n_t=1001, grid=(4,)):
    # u encodes (trajectory, step) so a fetched window can be checked against its indices
    i, k = np.meshgrid(np.arange(n_traj), np.arange(n_t), indexing="ij")
    u = (1000.0 * i + k).reshape(n_traj, n_t, 1, *(1,) * len(grid)) * np.ones(grid)
    return Trajectories(u=u, t=1e-3 * np.arange(n_t), domain=[[0, 1]] * len(grid),
                        boundary=("periodic",) * len(grid), mu=np.arange(n_traj, dtype=float)[:, None] * 10,
                        f=(1000.0 * i + k)[:, :, None])


def test_starts_overlap_one_point():
    assert window_starts(10, 4).tolist() == [0, 3, 6]                # exact fit: 3 windows, stride 3
    assert window_starts(11, 4).tolist() == [0, 3, 6, 7]             # last window shifted to end at 10
    assert window_starts(11, 4, last="drop").tolist() == [0, 3, 6]
    assert window_starts(5, 5).tolist() == [0]
    assert window_starts(10, 4, overlap=0).tolist() == [0, 4, 6]
    starts = window_starts(1001, 128)
    assert starts.tolist() == [0, 127, 254, 381, 508, 635, 762, 873]
    # consecutive (non-final) windows share exactly one point: end of one == start of the next
    assert all(s + 128 - 1 == s_next for s, s_next in zip(starts[:-2], starts[1:-1]))


@pytest.mark.parametrize("n_t, window", [(1001, 128), (11, 4), (10, 4), (7, 2), (50, 50), (30, 17)])
def test_every_step_and_every_interval_covered(n_t, window):
    starts = window_starts(n_t, window)
    covered = np.zeros(n_t, dtype=int)
    intervals = np.zeros(n_t - 1, dtype=int)
    for s in starts:
        covered[s:s + window] += 1
        intervals[s:s + window - 1] += 1
    assert covered.min() >= 1 and covered[0] == 1 and covered[-1] == 1
    assert intervals.min() >= 1
    # only the shifted final window may cover an interval twice
    assert intervals.sum() - (n_t - 1) == (starts[-2] + window - 1 - starts[-1] if len(starts) > 1 else 0)


def test_refuses_bad_windows():
    tr = make(n_t=20)
    with pytest.raises(ConfigError, match="longer than the trajectories"):
        WindowSampler(tr, 21, seed=0)
    with pytest.raises(ConfigError, match="expected an integer >= 2"):
        WindowSampler(tr, 1, seed=0)
    with pytest.raises(ConfigError, match="overlap"):
        WindowSampler(tr, 5, seed=0, overlap=5)
    with pytest.raises(ConfigError, match="'shift' or 'drop'"):
        WindowSampler(tr, 5, seed=0, last="clip")


def test_epoch_is_a_seeded_permutation_of_all_windows():
    tr = make()
    sampler = WindowSampler(tr, 128, seed=7)
    assert len(sampler) == 3 * 8 and sampler.windows_per_trajectory == 8
    order = sampler.epoch_order(0)
    assert order.shape == (24, 2) and order.dtype == np.int64
    assert sorted(map(tuple, order.tolist())) == sorted(map(tuple, sampler.pairs.tolist()))
    assert not np.array_equal(order, sampler.pairs)                  # shuffled
    # pure function of (seed, epoch): a fresh sampler reproduces it; other epoch / seed differ
    np.testing.assert_array_equal(WindowSampler(tr, 128, seed=7).epoch_order(0), order)
    assert not np.array_equal(sampler.epoch_order(1), order)
    assert not np.array_equal(WindowSampler(tr, 128, seed=8).epoch_order(0), order)


def test_iteration_advances_epochs_and_batches_resume():
    sampler = WindowSampler(make(), 128, seed=3)
    first = list(sampler)
    second = list(sampler)
    assert sampler.epoch == 2
    assert first == [tuple(r) for r in sampler.epoch_order(0).tolist()]
    assert second == [tuple(r) for r in sampler.epoch_order(1).tolist()]
    batches = list(sampler.batches(5, epoch=4))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 4]
    np.testing.assert_array_equal(np.concatenate(batches), sampler.epoch_order(4))
    # resuming after two batches of epoch 4 yields the rest of the same epoch
    resumed = list(WindowSampler(make(), 128, seed=3).batches(5, epoch=4, start_at=10))
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(batches[2:]))
    assert [len(b) for b in sampler.batches(5, epoch=4, drop_last=True)] == [5, 5, 5, 5]


def test_device_windows_gather_what_the_sampler_names():
    """The one window gather (training and validation): DeviceData.windows on the sampler's pairs."""
    import torch

    from pymsde.training.device_data import DeviceData

    tr = make(grid=(3, 2))
    sampler = WindowSampler(tr, 128, seed=0)
    data = DeviceData.from_traj(tr, "cpu", torch.float64)
    pairs = torch.as_tensor(sampler.epoch_order(0)[:6])
    u, t, mu, f = data.windows(pairs[:, 0], pairs[:, 1], torch.arange(128))
    assert u.shape == (6, 128, 1, 3, 2) and t.shape == (6, 128) and mu.shape == (6, 1) and f.shape == (6, 128, 1)
    for j, (i, s) in enumerate(pairs.tolist()):
        np.testing.assert_array_equal(u[j].numpy(), tr.u[i, s:s + 128])
        np.testing.assert_array_equal(f[j].numpy(), tr.f[i, s:s + 128])
        np.testing.assert_array_equal(t[j].numpy(), tr.t[i, s:s + 128])     # times stay float64
        assert mu[j].tolist() == tr.mu[i].tolist()
    one = data.windows(torch.tensor([2]), torch.tensor([127]), torch.arange(128))[0][0]
    np.testing.assert_array_equal(one[:, 0, 0, 0].numpy(), 2000.0 + np.arange(127, 255))
