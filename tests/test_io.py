"""Trajectories files: bit-exact round trips, foreign files, clear errors, atomic writes."""
import json
import logging
import re
import sys

import numpy as np
import pytest

from pymsde.data import Trajectories, load, save
from pymsde.util.errors import BackendUnavailableError, ConfigError, DataError

h5py = pytest.importorskip("h5py")

SUFFIXES = [".npz", ".h5", ".hdf5"]


def make(dtype=np.float64, grid=(12,), boundary=None, mu=True, f=True):
    rng = np.random.default_rng(1)
    n_traj, n_t = 3, 9
    u = rng.standard_normal((n_traj, n_t, 2, *grid)).astype(dtype)
    t = 0.1 + 1e-3 * np.arange(n_t) + np.array([[0.0], [1.0], [2.5]])   # distinct offsets per trajectory
    return Trajectories(u=u, t=t, domain=[[0.0, 10.0], [-1.0, 1.0]][: len(grid)],
                        boundary=boundary or ("periodic",) * len(grid),
                        mu=rng.standard_normal((n_traj, 2)) if mu else None,
                        f=rng.standard_normal((n_traj, n_t, 3)) if f else None,
                        attrs={"case": "kdv1d", "nu": 5e-4, "seed": 0, "note": "δ = 0.02 — µ",
                               "nested": {"a": [1, 2.5, None], "b": True}, "split": {"train": [0, 2], "test": [1]}})


def assert_identical(a, b):
    for key in ("u", "t", "domain", "mu", "f"):
        x, y = getattr(a, key), getattr(b, key)
        if x is None:
            assert y is None, key
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert x.tobytes() == y.tobytes(), key                     # bit-exact, not just allclose
    assert a.boundary == b.boundary
    assert a.attrs == b.attrs
    assert json.dumps(a.attrs) == json.dumps(b.attrs)               # same key order too


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("kind", ["1d-f64", "2d-f32-dirichlet", "no-mu-f"])
def test_round_trip_is_bit_exact(tmp_path, suffix, kind):
    traj = {"1d-f64": lambda: make(),
            "2d-f32-dirichlet": lambda: make(np.float32, (6, 4), ("dirichlet", "periodic")),
            "no-mu-f": lambda: make(mu=False, f=False)}[kind]()
    path = save(traj, tmp_path / f"data{suffix}")
    back = load(path)
    assert_identical(traj, back)
    assert back.splits["test"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == [f"data{suffix}"]   # no temporary left behind


def test_npz_layout_is_the_documented_one(tmp_path):
    path = save(make(), tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["attrs", "boundary", "domain", "f", "mu", "t", "u"]
        assert z["boundary"].dtype.kind == "U" and z["boundary"].tolist() == ["periodic"]
        assert z["attrs"].shape == () and json.loads(z["attrs"].item())["case"] == "kdv1d"
        assert z["t"].shape == (3, 9) and z["domain"].shape == (1, 2)


def test_plain_numpy_file_loads(tmp_path):
    # written without pymsde: t as (n_t,), boundary as a list of str, extra unknown key
    x = np.linspace(0, 1, 32, endpoint=False)
    u = np.sin(2 * np.pi * x)[None, None, None, :] * np.ones((2, 5, 1, 1))
    np.savez(tmp_path / "plain.npz", u=u, t=np.linspace(0, 0.4, 5), domain=[[0.0, 1.0]],
             boundary=["periodic"], mu=[[1.0], [2.0]])
    traj = load(tmp_path / "plain.npz")
    assert traj.u.shape == (2, 5, 1, 32) and traj.t.shape == (2, 5)
    assert traj.dt == pytest.approx(0.1, rel=1e-14) and traj.mu[:, 0].tolist() == [1.0, 2.0]
    assert traj.attrs == {}
    np.testing.assert_array_equal(traj.grid.coordinates(0), x)
    assert traj.coarse_factors((8,)) == (4,)
    with pytest.raises(ConfigError, match="do not divide"):
        traj.coarse_factors((5,))


def test_plain_h5py_file_with_byte_strings_loads(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        h5["u"] = np.zeros((1, 3, 1, 4, 4))
        h5["t"] = np.arange(3.0)
        h5["domain"] = [[0.0, 1.0], [0.0, 2.0]]
        h5["boundary"] = np.array([b"dirichlet", b"dirichlet"])    # fixed-length bytes
        h5["attrs"] = json.dumps({"case": "burgers2d"})
    traj = load(path)
    assert traj.boundary == ("dirichlet", "dirichlet") and traj.attrs == {"case": "burgers2d"}
    assert traj.grid.spacing == (1 / 3, 2 / 3)


def test_defaults_for_absent_domain_and_boundary_are_logged(tmp_path, caplog):
    np.savez(tmp_path / "bare.npz", u=np.zeros((1, 4, 1, 6, 6)), t=np.arange(4.0))
    with caplog.at_level(logging.WARNING, logger="pymsde.data.io"):
        traj = load(tmp_path / "bare.npz")
    assert traj.domain.tolist() == [[0.0, 1.0], [0.0, 1.0]] and traj.boundary == ("periodic", "periodic")
    assert "bare.npz: no 'domain' key" in caplog.text and "no 'boundary' key" in caplog.text


class _Payload:
    """Unpickling this would flip a flag: proves that no object array is ever unpickled."""
    triggered = False

    def __reduce__(self):
        return (_set_flag, ())


def _set_flag():
    _Payload.triggered = True
    return "boom"


def _bad_files():
    good = dict(u=np.zeros((2, 5, 1, 8)), t=np.arange(5.0), domain=[[0.0, 1.0]], boundary=["periodic"])
    nan = good["u"].copy()
    nan[1, 3, 0, 2] = np.nan
    inf = good["u"].copy()
    inf[0, 4, 0, 0] = np.inf
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = _Payload(), _Payload()
    cases = {
        "missing key": ({k: v for k, v in good.items() if k != "t"}, r"missing key 't'"),
        "wrong rank": ({**good, "u": np.zeros((2, 5, 8))}, r"key u: rank 3"),
        "non-uniform t": ({**good, "t": np.array([0.0, 1.0, 2.0, 3.5, 4.5])}, r"non-uniform time step in trajectory 0"),
        "nan": ({**good, "u": nan}, r"u: non-finite value .* trajectory 1, time index 3"),
        "inf": ({**good, "u": inf}, r"trajectory 0, time index 4"),
        "mu length": ({**good, "mu": np.zeros((3, 1))}, r"mu: shape \(3, 1\)"),
        "f length": ({**good, "f": np.zeros((2, 4, 1))}, r"f: shape \(2, 4, 1\)"),
        "boundary": ({**good, "boundary": ["reflecting"]}, r"unknown type 'reflecting'"),
        "pickled": ({**good, "mu": obj}, r"key 'mu' holds an object \(pickled\) array"),
        "attrs json": ({**good, "attrs": np.array("{not json")}, r"key 'attrs' is not valid JSON"),
        "string u": ({**good, "u": np.full((2, 5, 1, 8), "x")}, r"u: dtype <U1"),
        "boundary 2-d": ({**good, "boundary": np.array([["periodic"]])}, r"key 'boundary' has shape \(1, 1\); "
                                                                          r"expected \(n_dims,\)"),
        "attrs 1-d": ({**good, "attrs": np.array(['{"case": "x"}'])}, r"key 'attrs' has shape \(1,\); expected \(\)"),
    }
    return cases


@pytest.mark.parametrize("case", list(_bad_files()))
def test_bad_npz_files_give_data_errors_naming_file_and_key(tmp_path, case):
    arrays, pattern = _bad_files()[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=pattern) as info:
        load(path)
    assert str(path) in str(info.value)
    assert _Payload.triggered is False


@pytest.mark.parametrize("case", ["missing key", "wrong rank", "non-uniform t", "nan", "mu length", "boundary"])
def test_bad_hdf5_files_give_data_errors(tmp_path, case):
    arrays, pattern = _bad_files()[case]
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as h5:
        for k, v in arrays.items():
            h5[k] = np.asarray(v, dtype="S") if k == "boundary" else v
    with pytest.raises(DataError, match=pattern) as info:
        load(path)
    assert str(path) in str(info.value)


def test_unreadable_and_unknown_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz file"):
        load(tmp_path / "junk.npz")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.h5: not a readable HDF5 file"):
        load(tmp_path / "junk.h5")
    with pytest.raises(DataError, match=r"unknown file type '.csv'"):
        load(tmp_path / "x.csv")
    with pytest.raises(DataError, match="missing.npz: no such file"):
        load(tmp_path / "missing.npz")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_save_leaves_no_file(tmp_path, suffix):
    traj = make()
    traj.u[1, 2, 0, 3] = np.nan                # corrupted in place after validation
    with pytest.raises(DataError, match=re.escape(f"data{suffix}: not saved: u: non-finite") + ".*trajectory 1, time index 2"):
        save(traj, tmp_path / f"data{suffix}")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="unknown file type"):
        save(make(), tmp_path / "data.txt")
    assert list(tmp_path.iterdir()) == []


def test_crash_during_write_leaves_old_file_untouched(tmp_path, monkeypatch):
    path = save(make(), tmp_path / "data.npz")
    before = path.read_bytes()

    def crashing_savez(fh, **arrays):
        fh.write(b"PK partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crashing_savez)
    other = make(mu=False)
    with pytest.raises(OSError, match="disk full"):
        save(other, path)
    with pytest.raises(OSError, match="disk full"):
        save(other, tmp_path / "new.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]
    assert path.read_bytes() == before


def test_missing_h5py_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)               # makes `import h5py` fail
    with pytest.raises(BackendUnavailableError, match=re.escape("pip install pymsde[hdf5]")):
        save(make(), tmp_path / "d.h5")
    assert list(tmp_path.iterdir()) == []
    save(make(), tmp_path / "d.npz")                             # npz needs no h5py


def test_atomic_write_accepts_the_longest_file_names(tmp_path):
    from pymsde.util.atomic import atomic_write_text

    name = "r" * 251 + ".txt"                                   # 255 bytes: the usual limit
    atomic_write_text(tmp_path / name, "ok")
    assert (tmp_path / name).read_text() == "ok" and len(list(tmp_path.iterdir())) == 1
