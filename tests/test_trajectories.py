"""The Trajectories container: validation on construction, properties, subsets and splits."""
import dataclasses

import numpy as np
import pytest

from pymsde.data import Grid, Trajectories
from pymsde.util.errors import ConfigError, DataError


def make(n_traj=4, n_t=11, channels=1, grid=(16,), dt=0.1, **kw):
    rng = np.random.default_rng(0)
    u = rng.standard_normal((n_traj, n_t, channels, *grid))
    t = dt * np.arange(n_t)
    fields = dict(u=u, t=t, domain=[[0.0, 1.0]] * len(grid), boundary=("periodic",) * len(grid))
    fields.update(kw)
    return Trajectories(**fields)


def test_shapes_and_properties_1d():
    tr = make(n_traj=3, n_t=11, channels=2, grid=(16,), dt=0.25,
              mu=np.arange(6.0).reshape(3, 2), f=np.zeros((3, 11, 4)))
    assert tr.t.shape == (3, 11) and tr.t.dtype == np.float64     # (n_t,) broadcast per trajectory
    assert (tr.n_traj, tr.n_t, tr.channels, tr.n_dims, tr.n_mu, tr.n_f) == (3, 11, 2, 1, 2, 4)
    assert tr.dt == pytest.approx(0.25, rel=1e-15)
    assert tr.grid == Grid((16,), ((0.0, 1.0),), ("periodic",))
    assert tr.grid.spacing == (1 / 16,)


def test_2d_and_3d_grids_and_float32_kept():
    tr = make(grid=(8, 6), u=np.zeros((2, 5, 1, 8, 6), dtype=np.float32), t=np.linspace(0, 1, 5),
              boundary=("dirichlet", "periodic"))
    assert tr.u.dtype == np.float32 and tr.grid_shape == (8, 6) and tr.n_dims == 2
    assert tr.grid.spacing == (1 / 7, 1 / 6)                     # Dirichlet: both ends are nodes
    tr3 = make(grid=(4, 4, 4))
    assert tr3.n_dims == 3 and tr3.n_mu == 0 and tr3.n_f == 0


def test_float32_rounded_times_pass_the_uniform_step_check():
    # 1001 times over [0, 1] rounded to float32: relative step jitter ~1e-4 of dt at most
    t = np.linspace(0, 1, 1001).astype(np.float32)
    tr = make(n_t=1001, grid=(4,), t=t)
    assert tr.dt == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("u, message", [
    (np.zeros((4, 11, 16)), "rank 3"),
    (np.zeros((4, 11, 1, 2, 2, 2, 2)), "rank 7"),
    (np.zeros((4, 11, 1, 16), dtype=np.int64), "dtype int64"),
    (np.zeros((4, 11, 1, 16), dtype=np.complex128), "dtype complex128"),
    (np.empty((4, 11, 1, 16), dtype=object), "object array"),
])
def test_bad_u_rank_or_dtype(u, message):
    with pytest.raises(DataError, match=message):
        make(u=u)


def test_nan_and_inf_are_located():
    u = np.zeros((4, 11, 1, 16))
    u[2, 7, 0, 3] = np.nan
    with pytest.raises(DataError, match=r"u: non-finite .* trajectory 2, time index 7"):
        make(u=u)
    u[2, 7, 0, 3] = 0.0
    u[1, 0, 0, 15] = -np.inf
    with pytest.raises(DataError, match=r"trajectory 1, time index 0"):
        make(u=u)
    with pytest.raises(DataError, match=r"t: non-finite"):
        make(t=np.r_[np.arange(10.0), np.inf])


def test_time_checks():
    t = 0.1 * np.arange(11)
    t_gap = t.copy()
    t_gap[6:] += 0.1                                                 # a missing frame
    with pytest.raises(DataError, match=r"non-uniform time step in trajectory 0: t\[6\] - t\[5\]"):
        make(t=t_gap)
    with pytest.raises(DataError, match="not strictly increasing"):
        make(t=t[::-1])
    with pytest.raises(DataError, match=r"t: shape \(12,\); expected \(4, 11\) or \(11,\)"):
        make(t=0.1 * np.arange(12))
    per_traj = np.stack([t, 2 * t, t, t])                            # different steps per trajectory
    tr = make(t=per_traj)
    np.testing.assert_allclose(tr.dts, [0.1, 0.2, 0.1, 0.1], rtol=1e-14)
    with pytest.raises(DataError, match="different time steps"):
        tr.dt


def test_mu_f_lengths_boundary_domain_attrs():
    with pytest.raises(DataError, match=r"mu: shape \(3, 2\).*n_traj = 4"):
        make(mu=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"mu: shape \(4,\)"):
        make(mu=np.zeros(4))
    with pytest.raises(DataError, match=r"f: shape \(4, 10, 1\).*\(4, 11\)"):
        make(f=np.zeros((4, 10, 1)))
    with pytest.raises(DataError, match="boundary: unknown type 'neumann' on axis 0"):
        make(boundary=("neumann",))
    with pytest.raises(DataError, match="boundary: 2 entries"):
        make(boundary=("periodic", "periodic"))
    with pytest.raises(DataError, match=r"domain: shape \(2, 2\); expected \(1, 2\)"):
        make(domain=[[0, 1], [0, 1]])
    with pytest.raises(DataError, match="lo < hi"):
        make(domain=[[1.0, 0.0]])
    with pytest.raises(DataError, match=r"attrs\['bad'\]: not JSON"):
        make(attrs={"bad": object()})
    tr = make(attrs={"nu": np.float64(5e-4), "seed": np.int64(3), "shape": (1, 2)})
    assert tr.attrs == {"nu": 5e-4, "seed": 3, "shape": [1, 2]}
    assert type(tr.attrs["seed"]) is int


def test_frozen_and_replace_revalidates():
    tr = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        tr.u = tr.u * 2
    bad = tr.u.copy()
    bad[0, 3, 0, 0] = np.nan
    with pytest.raises(DataError, match="trajectory 0, time index 3"):
        dataclasses.replace(tr, u=bad)


def test_coarse_factors():
    assert make(grid=(1000,), n_traj=1, n_t=2).coarse_factors((20,)) == (50,)
    assert make(grid=(128, 128), n_traj=1, n_t=2).coarse_factors((8, 8)) == (16, 16)
    with pytest.raises(ConfigError, match="30 cells on axis 0 do not divide the fine grid's 1000"):
        make(grid=(1000,), n_traj=1, n_t=2).coarse_factors((30,))
    with pytest.raises(ConfigError, match="2 axes"):
        make(grid=(16,)).coarse_factors((4, 4))


def test_subset_selects_and_carries_splits():
    tr = make(n_traj=5, mu=np.arange(5.0)[:, None], f=np.arange(55.0).reshape(5, 11, 1))
    sub = tr.subset([3, 1])
    np.testing.assert_array_equal(sub.u, tr.u[[3, 1]])
    np.testing.assert_array_equal(sub.mu[:, 0], [3.0, 1.0])
    np.testing.assert_array_equal(sub.f, tr.f[[3, 1]])
    mask = np.array([True, False, False, True, False])
    np.testing.assert_array_equal(tr.subset(mask).u, tr.u[[0, 3]])
    np.testing.assert_array_equal(tr.subset(slice(1, 3)).u, tr.u[1:3])
    view = tr.subset([1, 2, 3])
    assert np.shares_memory(view.u, tr.u) and view.u.shape == (3, 11, 1, 16)   # no copy of the field
    np.testing.assert_array_equal(view.f, tr.f[1:4])
    assert not np.shares_memory(sub.u, tr.u)
    with pytest.raises(ConfigError, match="out of range"):
        tr.subset([5])
    with pytest.raises(ConfigError, match="no trajectories"):
        tr.subset([])
    sp = tr.split({"train": 3, "test": 2}, seed=1)
    sub = sp.subset(np.r_[sp.splits["test"], sp.splits["train"][:1]])
    assert sub.splits["test"].tolist() == [0, 1] and sub.splits["train"].tolist() == [2]


def test_split_fractions_counts_seed():
    tr = make(n_traj=10)
    sp = tr.split((0.8, 0.1, 0.1), seed=0)
    sizes = {k: len(v) for k, v in sp.splits.items()}
    assert sizes == {"train": 8, "val": 1, "test": 1}
    everything = np.sort(np.concatenate(list(sp.splits.values())))
    np.testing.assert_array_equal(everything, np.arange(10))       # disjoint and complete
    assert sp.attrs["split"] == {k: v.tolist() for k, v in sp.splits.items()}
    assert sp.u is tr.u                                              # shared, not copied
    # deterministic in the seed, different for another seed
    assert tr.split((0.8, 0.1, 0.1), seed=0).attrs == sp.attrs
    others = [tr.split((0.8, 0.1, 0.1), seed=s).attrs["split"]["train"] for s in range(1, 6)]
    assert any(o != sp.attrs["split"]["train"] for o in others)
    test = sp.get_split("test")
    np.testing.assert_array_equal(test.u, tr.u[sp.splits["test"]])
    assert test.n_traj == 1
    with pytest.raises(DataError, match="no split named 'validation'"):
        sp.get_split("validation")
    # counts; a part asked for that would be empty; too many
    assert {k: len(v) for k, v in tr.split({"a": 7, "b": 3}).splits.items()} == {"a": 7, "b": 3}
    with pytest.raises(ConfigError, match="'val' .* would receive 0 of 3"):
        make(n_traj=3).split((0.9, 0.05, 0.05))
    with pytest.raises(ConfigError, match="sum to 11"):
        tr.split((8, 2, 1))
    with pytest.raises(ConfigError, match="sum to 1.1"):
        tr.split((0.8, 0.2, 0.1))


def test_split_in_attrs_is_validated():
    with pytest.raises(DataError, match=r"attrs\['split'\]\['test'\]: index 4 out of range"):
        make(attrs={"split": {"train": [0, 1], "test": [4]}})
    with pytest.raises(DataError, match="trajectory 1 is in both 'train' and 'test'"):
        make(attrs={"split": {"train": [0, 1], "test": [1]}})
    assert make(attrs={"split": {"train": [0, 1, 2], "test": [3]}}).splits["test"].tolist() == [3]


def test_time_split_selects_frame_windows_of_every_trajectory():
    tr = make(n_traj=2, n_t=11, f=np.arange(2 * 11 * 3.0).reshape(2, 11, 3),
              attrs={"time_split": {"train": [0, 7], "val": [7, 9], "test": [9, 11]}})
    assert tr.time_splits == {"train": (0, 7), "val": (7, 9), "test": (9, 11)}
    assert {k: v.tolist() for k, v in tr.splits.items()} == {"train": [0, 1], "val": [0, 1], "test": [0, 1]}
    val = tr.get_split("val", source="d.npz")
    assert val.u.shape == (2, 2, 1, 16) and np.shares_memory(val.u, tr.u)
    assert np.array_equal(val.u, tr.u[:, 7:9]) and val.t[0].tolist() == pytest.approx([0.7, 0.8])
    assert val.f[0, :, 0].tolist() == [21.0, 24.0]
    assert val.attrs["time_window"] == [7, 9] and "time_split" not in val.attrs
    assert tr.get_split("all") is tr
    assert tr.subset([1]).time_splits == tr.time_splits             # a subset keeps the frames' split
    with pytest.raises(DataError, match=r"d.npz: no time split named 'holdout'; recorded time splits: \['test'"):
        tr.get_split("holdout", source="d.npz")
    with pytest.raises(ConfigError, match="split in time"):
        tr.split((0.5, 0.5))


@pytest.mark.parametrize("value, fragment", [
    ({"train": [0, 7], "val": [6, 9]}, "'train' [0, 7] and 'val' [6, 9] overlap"),
    ({"train": [0, 12]}, "[0, 12] out of range; expected 0 <= first < stop <= n_t = 11"),
    ({"train": [3, 4]}, "[3, 4] holds 1 frame(s); expected at least 2"),
    ({"train": [0, 5.0]}, "expected [first, stop], two integer frame indices"),
    ({"train": 5}, "expected [first, stop]"),
    ({}, "expected a non-empty dict"),
    ([0, 5], "expected a non-empty dict"),
])
def test_bad_time_splits_are_one_line_data_errors(value, fragment):
    with pytest.raises(DataError) as err:
        make(attrs={"time_split": value})
    assert fragment in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="both 'split'"):
        make(attrs={"time_split": {"train": [0, 5]}, "split": {"train": [0]}})
