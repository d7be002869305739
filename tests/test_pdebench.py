"""``pymsde import pdebench``: PDEBench's 2-D HDF5 layouts converted to pymsde's format, on small
synthetic files written in those layouts (pymsde.data.pdebench)."""
import numpy as np
import pytest

from pymsde.cli import main
from pymsde.data import load
from pymsde.data.pdebench import convert_pdebench
from pymsde.util.errors import ConfigError, DataError

h5py = pytest.importorskip("h5py")


def rdb_file(path, n=20, n_t=6, nx=8, ny=8, radius=True):
    """The 2D_rdb layout as sim_radial_dam_break.py writes it: groups '0000'... with data (t, x, y, 1)
    float32, grid/x, grid/y (cell centres), grid/t, and the YAML config with sim.dam_radius."""
    rng = np.random.default_rng(5)
    x = (-2.5 + (np.arange(nx) + 0.5) * 5 / nx).astype(np.float32)
    y = (-2.5 + (np.arange(ny) + 0.5) * 5 / ny).astype(np.float32)
    data = (1 + rng.random((n, n_t, nx, ny, 1))).astype(np.float32)
    radii = rng.uniform(0.3, 0.7, n)
    with h5py.File(path, "w") as h5:
        for i in range(n):
            g = str(i).zfill(4)
            h5.create_dataset(f"{g}/data", data=data[i], dtype="f")
            h5.create_dataset(f"{g}/grid/x", data=x, dtype="f")
            h5.create_dataset(f"{g}/grid/y", data=y, dtype="f")
            h5.create_dataset(f"{g}/grid/t", data=np.linspace(0.0, 1.0, n_t), dtype="f")
            if radius:
                h5[g].attrs["config"] = f"sim:\n  gravity: 1.0\n  dam_radius: {float(radii[i])!r}\n  xdim: {nx}\n"
    return data, x, radii


def test_rdb_groups_become_u_minus_one_transposed_with_the_radius(tmp_path):
    data, x, radii = rdb_file(tmp_path / "2D_rdb_NA_NA.h5")
    s = convert_pdebench(tmp_path / "2D_rdb_NA_NA.h5", tmp_path / "swe.h5", subtract=1.0, case="swe2d",
                         show_progress=False)
    assert s["layout"] == "groups" and s["shape"] == (20, 6, 1, 8, 8) and s["splits"] == {"train": 18, "val": 1,
                                                                                          "test": 1}
    tr = load(tmp_path / "swe.h5")
    assert tr.u.dtype == np.float32
    expected = (np.moveaxis(data, -1, 2).astype(np.float64) - 1.0).astype(np.float32)   # (T, H, W, C) -> (T, C, H, W)
    assert np.array_equal(tr.u, expected)
    assert tr.u[3, 2, 0, 5, 1] == np.float32(np.float64(data[3, 2, 5, 1, 0]) - 1.0)      # x first, as PyClaw's q
    assert np.abs(tr.grid.coordinates(0) - x).max() < 1e-6 and tr.boundary == ("dirichlet", "dirichlet")
    assert tr.mu[:, 0].tolist() == pytest.approx(radii.tolist(), rel=1e-15)
    assert tr.t[0].tolist() == pytest.approx(np.linspace(0, 1, 6).tolist(), rel=1e-6)
    assert tr.attrs["case"] == "swe2d" and tr.attrs["samples"] == ["0000", "0019"]
    assert tr.splits["train"].tolist() == list(range(18)) and tr.splits["test"].tolist() == [19]


def test_noise_and_first_samples(tmp_path):
    data, _, _ = rdb_file(tmp_path / "r.h5", radius=False)
    s = convert_pdebench(tmp_path / "r.h5", tmp_path / "o.h5", noise=0.01, seed=3, n_traj=4, split=(2, 1, 1),
                         show_progress=False)
    tr = load(tmp_path / "o.h5")
    assert s["n_traj"] == 4 and tr.mu is None and tr.n_traj == 4
    resid = tr.u.astype(np.float64) - np.moveaxis(data[:4], -1, 2)
    assert resid.std() == pytest.approx(0.01, rel=0.1) and abs(resid.mean()) < 2e-3


def test_cfd_and_tensor_layouts(tmp_path):
    rng = np.random.default_rng(0)
    fields = {k: rng.standard_normal((3, 5, 8, 4)).astype(np.float32) for k in ("density", "Vx", "Vy")}
    coords = {"x-coordinate": np.linspace(0.0625, 0.9375, 8), "y-coordinate": np.linspace(0.125, 0.875, 4),
              "t-coordinate": np.linspace(0.0, 1.0, 6)}                      # n_t + 1 times, as PDEBench stores
    with h5py.File(tmp_path / "cfd.hdf5", "w") as h5:
        for k, v in {**fields, **coords}.items():
            h5[k] = v
    convert_pdebench(tmp_path / "cfd.hdf5", tmp_path / "c.h5", split=(1, 1, 1), boundary="periodic",
                     show_progress=False)
    tr = load(tmp_path / "c.h5")
    assert tr.u.shape == (3, 5, 3, 8, 4) and tr.attrs["fields"] == ["density", "Vx", "Vy"]
    assert np.array_equal(tr.u[:, :, 1], fields["Vx"]) and tr.t[0, -1] == pytest.approx(0.8)
    assert tr.domain[0].tolist() == pytest.approx([0.0625, 1.0625]) and tr.grid.spacing[1] == pytest.approx(0.25)
    convert_pdebench(tmp_path / "cfd.hdf5", tmp_path / "v.h5", fields=["Vy"], split=(1, 1, 1), show_progress=False)
    assert np.array_equal(load(tmp_path / "v.h5").u[:, :, 0], fields["Vy"])
    with h5py.File(tmp_path / "tensor.h5", "w") as h5:
        h5["tensor"] = fields["density"]
        for k, v in coords.items():
            h5[k] = v
    convert_pdebench(tmp_path / "tensor.h5", tmp_path / "t.h5", split=(1, 1, 1), show_progress=False)
    assert np.array_equal(load(tmp_path / "t.h5").u[:, :, 0], fields["density"])


def _damage(path, how):
    with h5py.File(path, "a") as h5:
        if how == "missing data":
            del h5["0003/data"]
        elif how == "wrong shape":
            del h5["0002/data"]
            h5["0002/data"] = np.ones((6, 8, 7, 1), dtype=np.float32)
        elif how == "1-D data":
            for g in list(h5):
                del h5[g]
            h5["0000/data"] = np.ones((6, 8, 1), dtype=np.float32)
        elif how == "gap in grid/t":
            del h5["0000/grid/t"]
            h5["0000/grid/t"] = np.array([0.0, 0.2, 0.4, 0.8, 0.9, 1.0], dtype=np.float32)
        elif how == "no layout":
            for g in list(h5):
                del h5[g]
            h5["foo"] = np.zeros(3)
        elif how == "nan":
            h5["0001/data"][2, 3, 3, 0] = np.nan


@pytest.mark.parametrize("how, fragment", [
    ("missing data", "r.h5: no field '0003/data'; expected the PDEBench dataset '0003/data'"),
    ("wrong shape", "r.h5: field '0002/data' has shape (6, 8, 7, 1); expected (6, 8, 8, 1) as '0000/data'"),
    ("1-D data", "r.h5: field '0000/data' has shape (6, 8, 1); expected (n_t, nx, ny, C)"),
    ("gap in grid/t", "r.h5: field 'grid/t': non-uniform time step"),
    ("no layout", "r.h5: no PDEBench layout found: expected groups '0000', '0001', ..."),
    ("nan", "non-finite value (NaN or inf) at trajectory 1, time index 2"),
])
def test_bad_files_give_one_line_data_errors_naming_file_and_field(tmp_path, capsys, how, fragment):
    rdb_file(tmp_path / "r.h5")
    _damage(tmp_path / "r.h5", how)
    with pytest.raises(DataError) as err:
        convert_pdebench(tmp_path / "r.h5", tmp_path / "o.h5", show_progress=False)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "o.h5").exists()                                    # nothing half-written
    assert main(["import", "pdebench", str(tmp_path / "r.h5"), "--out", str(tmp_path / "o.h5")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("pymsde: error: ") and fragment in line and "\n" not in line


def test_cli_import(tmp_path, capsys):
    rdb_file(tmp_path / "r.h5", n=6)
    assert main(["import", "pdebench", str(tmp_path / "r.h5"), "--out", str(tmp_path / "o.h5"), "--subtract", "1",
                 "--split", "4,1,1", "--case", "swe2d"]) == 0
    assert "PDEBench groups layout, fields ['data'], u (6, 6, 1, 8, 8) float32, split train 4, val 1, test 1" in \
        capsys.readouterr().out
    assert main(["info", str(tmp_path / "o.h5")]) == 0
    assert "mu        (6, 1)" in capsys.readouterr().out
    assert main(["import", "pdebench", str(tmp_path / "r.h5"), "--out", str(tmp_path / "o.npz")]) == 2
    assert "expected a name ending in .h5 or .hdf5" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="n_traj = 7; expected 1 to the file's 6 samples"):
        convert_pdebench(tmp_path / "r.h5", tmp_path / "p.h5", n_traj=7, show_progress=False)
