"""Out-of-core HDF5: the streaming writer (data/stream.py), the lazy reader (data/lazy.py), the
streamed swe2d simulation and ``pymsde info`` without loading u."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pymsde.cli import main
from pymsde.data import load
from pymsde.data.lazy import open_lazy
from pymsde.data.stream import chunk_shape, stream_writer
from pymsde.systems import simulate, simulate_to_file
from pymsde.util.errors import DataError

h5py = pytest.importorskip("h5py")

GRID = dict(domain=[[0.0, 1.0], [0.0, 2.0]], boundary=["dirichlet", "periodic"])


def _field(n=3, n_t=6, c=2, grid=(4, 5), seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_t, c, *grid))


def _write(path, u, attrs=None, **kw):
    with stream_writer(path, u.shape, np.linspace(0.0, 0.5, u.shape[1]), **GRID, n_mu=1, **kw) as w:
        for i in range(u.shape[0]):
            w.write(i, u[i:i + 1], mu=[[0.1 * i]])
        w.attrs = attrs or {}
    return path


def test_chunks_hold_whole_frames_of_one_trajectory():
    assert chunk_shape((1000, 101, 1, 128, 128), 4) == (1, 101, 1, 128, 128)     # 6.6 MB: one trajectory
    assert chunk_shape((1, 1501, 2, 320, 80), 4) == (1, 40, 2, 320, 80)          # 8.2 MB: 40 frames
    assert chunk_shape((1, 3, 1, 4096, 4096), 8) == (1, 1, 1, 4096, 4096)        # a frame above 8 MiB: one frame


def test_streamed_file_round_trips_and_reads_lazily(tmp_path):
    u = _field()
    path = _write(tmp_path / "s.h5", u, {"case": "x", "split": {"train": [0, 2], "test": [1]}})
    with h5py.File(path) as h5:
        assert h5["u"].chunks == (1, 6, 2, 4, 5) and h5["u"].dtype == np.float32
    full = load(path)                                         # the same keys as save(): the eager loader reads it
    assert np.array_equal(full.u, u.astype(np.float32)) and full.mu[:, 0].tolist() == pytest.approx([0, 0.1, 0.2])
    with open_lazy(path) as data:
        assert data.u.shape == (3, 6, 2, 4, 5) and data.u.dtype == np.float32 and data.n_mu == 1
        assert np.array_equal(data.read_window(1, 2, 5), u[1, 2:5].astype(np.float32))
        assert np.array_equal(data.u[2, -1, 1], u[2, -1, 1].astype(np.float32))
        assert data.u[:, 3].shape == (3, 2, 4, 5) and data.u[0:2, 1:6:2, 0].shape == (2, 3, 4, 5)
        train = data.get_split("train")
        assert train.n_traj == 2 and np.array_equal(train.u[1], u[2].astype(np.float32))
        assert train.mu[:, 0].tolist() == pytest.approx([0.0, 0.2])
        assert np.array_equal(data.subset([2, 0]).get_split("train").u[0], u[0].astype(np.float32))   # as Trajectories.subset
        assert np.array_equal(train.to_trajectories().u, full.u[[0, 2]])
        with pytest.raises(DataError, match="no split named 'val'"):
            data.get_split("val")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]           # no temporary left behind


def test_time_split_view_reads_only_its_frames(tmp_path):
    u = _field(n=1, n_t=10, c=2)
    path = _write(tmp_path / "c.h5", u, {"time_split": {"train": [0, 6], "val": [6, 8], "test": [8, 10]}})
    with open_lazy(path) as data:
        test = data.get_split("test")
        assert (test.n_traj, test.n_t) == (1, 2) and test.t[0].tolist() == pytest.approx([8 / 18, 9 / 18])
        assert np.array_equal(test.read_window(0, 0, 2), u[0, 8:10].astype(np.float32))
        assert test.attrs["time_window"] == [8, 10] and data.time_splits["val"] == (6, 8)
        with pytest.raises(IndexError):
            test.read_window(0, 0, 3)


def test_open_does_not_read_u_and_a_nan_is_named_when_read(tmp_path):
    path = tmp_path / "nan.h5"
    u = _field(n=3).astype(np.float32)
    u[2, 4, 1, 0, 0] = np.nan
    with h5py.File(path, "w") as h5:
        h5["u"], h5["t"] = u, np.linspace(0.0, 0.5, 6)
    data = open_lazy(path)                                    # metadata only: the NaN is not seen yet
    assert data.read_window(1, 0, 6).shape == (6, 2, 4, 5)
    with pytest.raises(DataError, match=r"nan.h5: key u: non-finite value \(NaN or inf\) at trajectory 2, time index 4"):
        data.read_window(2, 3, 6)
    data.close()
    assert main(["info", str(path), "--metadata-only"]) == 0
    assert main(["info", str(path)]) == 2                      # the scan finds it


def test_writer_is_atomic_and_refuses_bad_blocks(tmp_path):
    u = _field()
    old = _write(tmp_path / "d.h5", u)
    before = old.read_bytes()
    with pytest.raises(RuntimeError):
        with stream_writer(old, u.shape, np.arange(6.0), **GRID) as w:
            w.write(0, u[:1])
            raise RuntimeError("killed mid-run")
    assert old.read_bytes() == before                          # an existing file untouched
    with pytest.raises(DataError, match=r"trajectory 1, frame 0 was never written \(12 of 18 frames missing\)"):
        with stream_writer(tmp_path / "e.h5", u.shape, np.arange(6.0), **GRID) as w:
            w.write(0, u[:1])
    bad = u[:1].copy()
    bad[0, 3, 0, 1, 1] = np.inf
    with pytest.raises(DataError, match="non-finite value .* at trajectory 2, time index 3; nothing written"):
        with stream_writer(tmp_path / "f.h5", u.shape, np.arange(6.0), **GRID) as w:
            w.write(2, bad)
    with pytest.raises(DataError, match=r"block of trajectories \[2, 4\)"):
        with stream_writer(tmp_path / "g.h5", u.shape, np.arange(6.0), **GRID) as w:
            w.write(2, u[:2])
    with pytest.raises(DataError, match="g.h5: not written: key t: non-uniform time step"):
        with stream_writer(tmp_path / "g.h5", u.shape, [0, 1, 2, 4, 5, 6], **GRID):
            pass
    with pytest.raises(DataError, match="streamed files are HDF5"):
        with stream_writer(tmp_path / "g.npz", u.shape, np.arange(6.0), **GRID):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_streamed_swe2d_equals_the_in_memory_run_in_float32(tmp_path):
    kw = dict(n_traj=5, n_grid=32, n_steps=11, seed=2)
    s = simulate_to_file("swe2d", tmp_path / "swe.h5", progress=False, chunk=2, **kw)
    ref = simulate("swe2d", progress=False, **kw)
    assert s["n_traj"] == 5 and s["dtype"] == "float32" and s["splits"] == {"train": 3, "val": 1, "test": 1}
    back = load(tmp_path / "swe.h5")
    assert back.u.dtype == np.float32 and np.array_equal(back.u, ref.u.astype(np.float32))
    assert np.array_equal(back.mu, ref.mu) and back.attrs == ref.attrs
    assert s["max"] == float(ref.u.astype(np.float32).max())


def test_info_reports_metadata_without_scanning_large_u(tmp_path, capsys, monkeypatch):
    import pymsde.cli.info as info

    path = _write(tmp_path / "i.h5", _field(), {"time_split": {"train": [0, 4], "test": [4, 6]}})
    assert main(["info", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["values_scanned"] and out["time_splits"] == {"train": [0, 4], "test": [4, 6]} and out["splits"] == {}
    ref = _field().astype(np.float32)
    assert out["values"][1]["max"] == float(ref[:, :, 1].max())
    assert out["values"][0]["std"] == pytest.approx(float(ref[:, :, 0].astype(np.float64).std()), rel=1e-12)
    monkeypatch.setattr(info, "SCAN_LIMIT", 100)              # u (2880 bytes) counts as large now
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "valid metadata, values not scanned (u holds 2.81 KiB; pass --values" in text
    assert "(3, 6, 2, 4, 5) float32" in text and "by time: train: frames [0, 4), test: frames [4, 6)" in text
    assert main(["info", str(path), "--values"]) == 0
    assert "valid trajectories file" in capsys.readouterr().out


_PEAK = r"""
import json, sys
import numpy as np
from pymsde.data.stream import stream_writer
from pymsde.data.lazy import open_lazy
from pymsde.cli.info import channel_stats


def hwm():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024


def reset():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


n, shape = 200, (51, 1, 64, 64)                      # 200 trajectories: 319 MiB in float64
block = np.random.default_rng(0).standard_normal((1, *shape))
reset(); base = hwm()
with stream_writer(sys.argv[1] + "/big.h5", (n, *shape), np.linspace(0, 1, 51), [[0, 1], [0, 1]],
                   ["dirichlet"] * 2) as w:
    for i in range(n):
        w.write(i, block + i)
write_mb = hwm() - base
reset(); base = hwm()
with open_lazy(sys.argv[1] + "/big.h5") as data:
    for i in range(0, n, 7):
        data.read_window(i, 10, 30)
    stats = channel_stats(data)
read_mb = hwm() - base
print(json.dumps({"write_mb": write_mb, "read_mb": read_mb, "max": stats[0]["max"],
                  "expected_max": float(np.float32(block.max() + n - 1))}))
"""


def test_streaming_and_lazy_reading_stay_within_a_block_and_the_cache(tmp_path):
    """200 trajectories of 51 x 64^2 (319 MiB in float64, 159 MiB in the float32 file), written one
    trajectory at a time, then read by windows and by a full scan: each grows the peak resident
    memory by about one block (1.6 MiB) plus HDF5's chunk cache (one 0.8 MiB chunk writing, up to
    16 MiB reading), not by the data (measured: 18 MB writing, 13 to 20 MB reading)."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak")
    env = {**os.environ, "PYMSDE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(r)
    assert r["write_mb"] < 30 and r["read_mb"] < 30            # vs 319 MiB of data
    assert r["max"] == r["expected_max"]


def test_streamed_simulation_holds_one_chunk(tmp_path):
    """The swe2d stream never builds the whole data set: numpy's peak allocation (tracemalloc)
    during a 40-trajectory run in chunks of 2 stays near one chunk (0.7 MiB, a few copies), far
    below the 13.8 MiB of u in float64."""
    import tracemalloc

    kw = dict(n_grid=64, n_steps=11, t_end=0.1, progress=False)
    simulate_to_file("swe2d", tmp_path / "warm.h5", n_traj=1, **kw)
    tracemalloc.start()
    simulate_to_file("swe2d", tmp_path / "s.h5", n_traj=40, chunk=2, **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full = 40 * 11 * 64 * 64 * 8
    print(peak, full)
    assert peak < 0.3 * full
