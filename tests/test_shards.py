"""Generating a data set in shards (``pymsde simulate --shard K/N``, ``pymsde merge-shards``, and
``torchrun ... -m pymsde simulate``): the merged file is the single-process file, bit for bit."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import pymsde.systems as systems
from pymsde.systems import CASES, swe
from pymsde.cli import main
from pymsde.data.stream import merge_shards, shard_attrs, shard_path, shard_slice
from pymsde.training.distributed import rank_slice
from pymsde.util.errors import ConfigError, DataError

h5py = pytest.importorskip("h5py")

#: small sizes whose internal step has several substeps (the automatic step matters) and whose
#: largest |u0| lies in one shard only, so a shard that chose its own step would differ
SIZES = {"burgers1d": ["--n-traj", "5", "--n-grid", "128", "--n-steps", "6", "--t-end", "0.5"],
         "kdv1d": ["--n-traj", "5", "--n-grid", "128", "--n-steps", "6", "--t-end", "0.5"],
         "burgers2d": ["--n-traj", "5", "--n-grid", "24", "--n-steps", "4", "--t-end", "0.3"],
         "wave1d": ["--n-traj", "5", "--n-grid", "100", "--n-steps", "11", "--t-end", "0.1"],
         "swe2d": ["--n-traj", "5", "--n-grid", "16", "--n-steps", "4"]}


def _file(path):
    """Every dataset of an HDF5 file, attrs parsed (key order kept)."""
    with h5py.File(path, "r") as h5:
        out = {k: h5[k][()] for k in h5}
    out["attrs"] = json.loads(out["attrs"])
    return out


def _assert_same_file(one, merged, n_shards):
    a, b = _file(one), _file(merged)
    assert sorted(a) == sorted(b)
    for key in a:
        if key != "attrs":
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key    # bit for bit
    attrs = dict(b["attrs"])
    assert attrs.pop("shards") == n_shards                         # the one record of the sharding
    assert list(attrs.items()) == list(a["attrs"].items())         # equal, in the same order


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("case", sorted(SIZES))
def test_merged_shards_equal_the_single_process_file(tmp_path, capsys, case):
    args = ["--seed", "3", *SIZES[case]]
    assert main(["simulate", case, "--out", str(tmp_path / "one.h5"), *args]) == 0
    n = 3 if case == "kdv1d" else 2
    for k in range(n, 0, -1):                                      # any order
        assert main(["simulate", case, "--out", str(tmp_path / "d.h5"), *args, "--shard", f"{k}/{n}"]) == 0
    assert _listing(tmp_path) == sorted(["one.h5", *(f"d.shard-{k}-of-{n}.h5" for k in range(1, n + 1))])
    assert main(["merge-shards", str(tmp_path / "d.h5")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith(f"wrote {tmp_path / 'd.h5'}: merged {n} shards, 5 trajectories")
    assert f"shard 1 of {n} of {case}, trajectories [0, " in lines[-2]     # written last
    assert _listing(tmp_path) == ["d.h5", "one.h5"]                # the shards are removed
    _assert_same_file(tmp_path / "one.h5", tmp_path / "d.h5", n)
    substeps = _file(tmp_path / "one.h5")["attrs"].get("substeps")
    assert case in ("wave1d", "swe2d") or substeps > 1


def test_a_shard_takes_the_whole_sets_internal_step():
    """Without the whole set's step, the shard without the largest |u0| would step differently."""
    spec = CASES["burgers2d"]
    kw = dict(n_traj=5, shape=(24, 24), n_steps=4, t_end=0.3, noise=1e-3, seed=3, overrides={}, be=None,
              progress=False)
    be = systems._backend_for(spec, "torch", {})
    kw["be"] = be
    u, _, _, attrs = systems._simulate_pde(spec, **kw)
    lo, hi = shard_slice(5, 2, 2)
    part, _, _, part_attrs = systems._simulate_pde(spec, **kw, part=(lo, hi))
    assert np.array_equal(part, u[lo:hi]) and part_attrs == attrs
    grid = spec.grid((24, 24))
    u0, _ = spec.sample_ic(np.random.default_rng(3), 5, grid)
    big = int(np.argmax(np.abs(u0).reshape(5, -1).max(axis=1)))
    assert not lo <= big < hi                                       # the largest |u0| is in the other shard
    t = np.linspace(0.0, 0.3, 4)
    _, _, own = systems._solve_fine(spec, u0[lo:hi], {}, t, grid, {}, be, False)
    assert own["substeps"] != attrs["substeps"]                     # what a shard alone would have chosen


def test_the_replayed_noise_is_the_drawn_noise():
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(3):
        a.standard_normal((7, 1, 13))
    systems._skip_normals(b, 3 * 7 * 13, block=10)
    assert np.array_equal(a.standard_normal((2, 5)), b.standard_normal((2, 5)))


def test_slices_are_the_ranks_and_the_swe_part_is_the_generator():
    for n, r in ((10, 3), (1000, 8), (5, 5), (7, 2)):
        assert [shard_slice(n, k, r) for k in range(1, r + 1)] == [rank_slice(n, k, r) for k in range(r)]
    kw = dict(seed=4, chunk=2, noise=0.01, show_progress=False, n_grid=16, n_steps=3)
    whole = list(swe.iter_swe_chunks(5, **kw))
    part = list(swe.iter_swe_chunks(5, lo=1, hi=4, **kw))
    assert [p["index"].tolist() for p in part] == [[1, 2], [3]]
    u = np.concatenate([p["u"] for p in whole])
    assert np.array_equal(np.concatenate([p["u"] for p in part]), u[1:4])
    assert all(np.array_equal(p["radii"], whole[0]["radii"]) for p in part)
    with pytest.raises(ConfigError, match=r"trajectories \[4, 4\)"):
        next(swe.iter_swe_chunks(5, lo=4, hi=4, **kw))
    assert shard_path("/d/swe.h5", 3, 12) == shard_path("/d/swe.h5", 3, 12).with_name("swe.shard-03-of-12.h5")


def test_the_python_api_and_kept_shards(tmp_path):
    kw = dict(n_traj=4, n_grid=64, n_steps=6, t_end=0.05, seed=1, progress=False)
    systems.simulate_to_file("wave1d", tmp_path / "one.h5", **kw)
    s = [systems.simulate_to_file("wave1d", tmp_path / "w.h5", shard=(k, 3), **kw) for k in (1, 2, 3)]
    assert [x["trajectories"] for x in s] == [(0, 2), (2, 3), (3, 4)] and s[0]["n_traj_total"] == 4
    m = merge_shards(tmp_path / "w.h5", keep=True)
    assert m["shards"] == 3 and m["n_traj"] == 4
    _assert_same_file(tmp_path / "one.h5", tmp_path / "w.h5", 3)
    assert (tmp_path / "w.shard-1-of-3.h5").exists()
    with pytest.raises(DataError, match="one per trajectory"):
        shard_attrs({"steps": [1, 2, 3]}, 1, 2, 4, per_trajectory=("steps",))


def _run(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def test_bad_shards_give_one_line_errors_and_write_nothing(tmp_path, capsys):
    case, args = "swe2d", ["--seed", "3", *SIZES["swe2d"]]
    out = str(tmp_path / "d.h5")
    for k in (1, 2, 3):
        assert main(["simulate", case, "--out", out, *args, "--shard", f"{k}/3"]) == 0
    capsys.readouterr()
    spare = tmp_path / "spare"
    spare.mkdir()
    shutil.move(tmp_path / "d.shard-2-of-3.h5", spare / "two.h5")
    before = _listing(tmp_path)
    checks = []
    # a missing shard
    checks.append(([], "d.shard-2-of-3.h5: shard 2 of 3 is missing"))
    # a duplicated shard (a copy of shard 1 under another spelling of its name)
    checks.append(([(tmp_path / "d.shard-1-of-3.h5", tmp_path / "d.shard-01-of-3.h5")],
                   "d.shard-1-of-3.h5: shard 1 of 3 again (also d.shard-01-of-3.h5)"))
    # shard 1 copied in the place of shard 2
    checks.append(([(tmp_path / "d.shard-1-of-3.h5", tmp_path / "d.shard-2-of-3.h5")],
                   "d.shard-2-of-3.h5: named shard 2 of 3 but holds shard 1 of 3"))
    for (copies, fragment) in checks:
        for src, dst in copies:
            shutil.copy(src, dst)
        rc, err = _run(capsys, ["merge-shards", out])
        assert rc == 2 and "\n" not in err and fragment in err, err
        for _, dst in copies:
            dst.unlink()
        assert _listing(tmp_path) == before                        # no d.h5, no temporary file, shards kept
    # shard 2 of another seed, then of another size
    for other, fragment in ((["--seed", "4"], "attrs['seed'] = 4 but d.shard-1-of-3.h5 has 3"),
                            (["--n-traj", "6"], "n_traj = 6 but d.shard-1-of-3.h5 has 5")):
        argv = ["simulate", case, "--out", str(spare / "d.h5"), *args, *other, "--shard", "2/3"]
        assert main(argv) == 0
        shutil.move(spare / "d.shard-2-of-3.h5", tmp_path / "d.shard-2-of-3.h5")
        rc, err = _run(capsys, ["merge-shards", out])
        assert rc == 2 and "\n" not in err and "d.shard-2-of-3.h5" in err and fragment in err, err
        assert "expected shards of one run" in err
        (tmp_path / "d.shard-2-of-3.h5").unlink()
    # a renamed shard, shards of two counts, and a damaged file
    shutil.copy(tmp_path / "d.shard-1-of-3.h5", tmp_path / "d.shard-1-of-2.h5")
    rc, err = _run(capsys, ["merge-shards", out])
    assert rc == 2 and "d.shard-1-of-2.h5: named shard 1 of 2 but holds shard 1 of 3" in err, err
    assert main(["simulate", case, "--out", str(spare / "d.h5"), *args, "--shard", "1/2"]) == 0
    shutil.move(spare / "d.shard-1-of-2.h5", tmp_path / "d.shard-1-of-2.h5")
    rc, err = _run(capsys, ["merge-shards", out])
    assert rc == 2 and "number of shards = 3 but d.shard-1-of-2.h5 has 2" in err, err
    (tmp_path / "d.shard-1-of-2.h5").write_bytes(b"not hdf5")
    rc, err = _run(capsys, ["merge-shards", out])
    assert rc == 2 and "d.shard-1-of-2.h5: not a readable shard file" in err, err
    assert main(["simulate", case, "--out", str(spare / "whole.h5"), *args]) == 0
    shutil.move(spare / "whole.h5", tmp_path / "d.shard-1-of-2.h5")          # a whole file, not a shard
    rc, err = _run(capsys, ["merge-shards", out])
    assert rc == 2 and "d.shard-1-of-2.h5: attrs['shard'] is missing or not a shard record" in err, err
    (tmp_path / "d.shard-1-of-2.h5").unlink()
    assert _listing(tmp_path) == before
    # bad requests, refused before any work
    for argv, fragment in ((["--shard", "3/2"], "--shard 3/2: expected K/N with 1 <= K <= N"),
                           (["--shard", "0/2"], "--shard 0/2: expected K/N"),
                           (["--shard", "2"], "--shard 2: expected K/N"),
                           (["--shard", "1/6"], "6 shards of 5 trajectories: a shard would be empty"),
                           (["--shard", "1/2", "--plot", str(tmp_path / "p.png")], "--plot with --shard 1/2")):
        rc, err = _run(capsys, ["simulate", case, "--out", str(tmp_path / "e.h5"), *args, *argv])
        assert rc == 2 and "\n" not in err and fragment in err, err
    rc, err = _run(capsys, ["simulate", case, "--out", str(tmp_path / "e.npz"), *args, "--shard", "1/2"])
    assert rc == 2 and "shards are HDF5 files" in err
    rc, err = _run(capsys, ["simulate", "cylinder2d", "--out", str(tmp_path / "e.h5"), "--shard", "1/2"])
    assert rc == 2 and "cylinder2d is one trajectory (split in time); it cannot be generated in shards" in err
    rc, err = _run(capsys, ["merge-shards", str(tmp_path / "nothing.h5")])
    assert rc == 2 and "nothing.h5: no shard files nothing.shard-K-of-N.h5 found" in err
    with pytest.raises(ConfigError, match="safety = 1.5 with shards"):
        systems.simulate_to_file("kdv1d", tmp_path / "k.h5", n_traj=2, n_grid=32, n_steps=3, t_end=0.1,
                                 safety=1.5, shard=(1, 2), progress=False)
    assert _listing(tmp_path) == before


# ----------------------------------------------------------------------------- 2 gloo ranks

def test_two_torchrun_ranks_write_the_single_process_file(tmp_path, capsys):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available in this torch build")
    args = ["--seed", "5", *SIZES["swe2d"]]
    assert main(["simulate", "swe2d", "--out", str(tmp_path / "one.h5"), *args]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYMSDE_NO_PROGRESS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "pymsde",
           "simulate", "swe2d", "--out", str(tmp_path / "two.h5"), *args]
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    text = p.stdout + p.stderr
    if "cannot form the gloo process group" in text:
        pytest.skip(f"gloo cannot initialise here: {text.strip().splitlines()[-1]}")
    assert p.returncode == 0, text
    assert "shard 1 of 2 of swe2d, trajectories [0, 3) of 5" in p.stdout
    assert "shard 2 of 2 of swe2d, trajectories [3, 5) of 5" in p.stdout
    assert f"wrote {tmp_path / 'two.h5'}: merged 2 shards, 5 trajectories" in p.stdout
    assert _listing(tmp_path) == ["one.h5", "two.h5"]
    _assert_same_file(tmp_path / "one.h5", tmp_path / "two.h5", 2)
