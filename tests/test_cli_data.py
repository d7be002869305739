"""The data commands: ``pymsde info``, ``pymsde plot`` and ``pymsde simulate``."""
import json

import numpy as np
import pytest

import pymsde.systems
from pymsde.cli import main
from pymsde.data import Grid, Trajectories, load, save

pytest.importorskip("matplotlib")


def burgers_like(n_traj=3, n_t=21, n_x=32, **attrs):
    x = Grid((n_x,), ((0.0, 1.0),), ("periodic",)).coordinates(0)
    t = np.linspace(0.0, 1.0, n_t)
    amp = 0.25 + 0.05 * np.arange(n_traj)
    u = amp[:, None, None] * np.exp(-(x[None, None, :] - 0.5 - 0.1 * t[None, :, None]) ** 2 / 0.01)
    return Trajectories(u=u[:, :, None, :], t=t, domain=[[0.0, 1.0]], boundary=("periodic",),
                        mu=amp[:, None], attrs={"case": "burgers1d", "nu": 5e-4, **attrs})


def test_info_on_a_good_file(tmp_path, capsys):
    path = save(burgers_like().split({"train": 2, "test": 1}, seed=0), tmp_path / "d.npz")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid trajectories file" in out
    assert "(3, 21, 1, 32) float64" in out and "dt = 0.05" in out
    assert "periodic on [0, 1)" in out and "train: 2" in out and "test: 1" in out
    assert "max 0.35" in out                                            # largest amplitude 0.25 + 2 * 0.05
    assert '"case": "burgers1d"' in out


def test_info_json(tmp_path, capsys):
    path = save(burgers_like(), tmp_path / "d.h5")
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["u"]["shape"] == [3, 21, 1, 32] and info["format"] == "hdf5"
    assert info["dt"] == pytest.approx(0.05, rel=1e-12)
    assert info["grid"]["boundary"] == ["periodic"] and info["grid"]["spacing"] == [1 / 32]
    assert info["values"][0]["max"] == pytest.approx(0.35, rel=1e-12)
    assert info["mu"]["min"] == [0.25] and info["attrs"]["nu"] == 5e-4


@pytest.mark.parametrize("arrays, fragment", [
    (dict(u=np.zeros((2, 5, 8)), t=np.arange(5.0)), "key u: rank 3"),
    (dict(u=np.zeros((2, 5, 1, 8))), "missing key 't'"),
    (dict(u=np.full((2, 5, 1, 8), np.nan), t=np.arange(5.0)), "non-finite value"),
    (dict(u=np.zeros((2, 5, 1, 0)), t=np.arange(5.0)), "at least 2 grid points on every spatial axis, found (0,)"),
    (dict(u=np.zeros((2, 5, 1, 8), dtype=np.float16), t=np.arange(5.0)), "dtype float16; expected a real"),
    (dict(u=np.zeros((2, 5, 1, 8)), t=np.arange(5).astype("timedelta64[ms]")), "key t: dtype timedelta64[ms]"),
    (dict(u=np.zeros((2, 5, 1, 8)), t=np.arange(5.0), boundary=np.array([b"p\xe9riodic"])),
     "key 'boundary' holds bytes that are not UTF-8 text"),
])
def test_info_on_a_bad_file_exits_2_with_one_line(tmp_path, capsys, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and "\n" not in err
    assert err.startswith("pymsde: error: ") and str(path) in err and fragment in err


def test_info_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz: no such file" in capsys.readouterr().err


def test_plot_1d_and_2d(tmp_path, capsys):
    path = save(burgers_like(), tmp_path / "d.npz")
    assert main(["plot", str(path), "--out", str(tmp_path / "st.png"), "--traj", "2"]) == 0
    assert (tmp_path / "st.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    g = Grid((12, 10), ((0, 1), (0, 1)), ("dirichlet", "dirichlet"))
    u = np.random.default_rng(0).random((1, 7, 1, 12, 10))
    save(Trajectories(u=u, t=np.arange(7.0), domain=g.domain, boundary=g.boundary), tmp_path / "d2.npz")
    assert main(["plot", str(tmp_path / "d2.npz"), "--out", str(tmp_path / "sn.png"), "--snapshots", "3"]) == 0
    assert (tmp_path / "sn.png").stat().st_size > 5000
    assert main(["plot", str(path), "--out", str(tmp_path / "x.png"), "--channel", "1"]) == 2
    assert "--channel: 1; expected 0 <= C < 1" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["plot", str(tmp_path / "d2.npz"), "--out", str(tmp_path / "v.png"), "--vorticity"]) == 2
    assert "--vorticity: the file has 1 channel(s)" in capsys.readouterr().err
    uv = np.random.default_rng(1).random((1, 7, 2, 12, 10))
    save(Trajectories(u=uv, t=np.arange(7.0), domain=g.domain, boundary=g.boundary), tmp_path / "uv.npz")
    assert main(["plot", str(tmp_path / "uv.npz"), "--out", str(tmp_path / "v.png"), "--vorticity"]) == 0
    assert (tmp_path / "v.png").stat().st_size > 5000


def test_simulate_wiring_with_a_stand_in_simulator(tmp_path, capsys, monkeypatch):
    calls = {}

    def fake_simulate(case, **kw):
        calls.update(case=case, **kw)
        return burgers_like(n_traj=kw["n_traj"]).split((0.5, 0.5), seed=kw["seed"])

    monkeypatch.setattr(pymsde.systems, "simulate", fake_simulate, raising=False)
    out = tmp_path / "sim.npz"
    png = tmp_path / "sim.png"
    rc = main(["simulate", "burgers1d", "--out", str(out), "--n-traj", "4", "--seed", "3", "--n-grid", "32",
               "--n-steps", "20", "--t-end", "1", "--plot", str(png)])
    assert rc == 0
    assert calls == dict(case="burgers1d", n_traj=4, seed=3, n_grid=32, n_steps=20, t_end=1.0,
                         backend="torch", progress=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"wrote {out}: burgers1d, 4 trajectories x 21 times, grid (32,)")
    assert "split train 2, val 2" in lines[0]
    assert load(out).n_traj == 4 and png.stat().st_size > 5000


def test_simulate_passes_noise_and_split(tmp_path, capsys, monkeypatch):
    calls = {}

    def fake_simulate(case, **kw):
        calls.clear()
        calls.update(case=case, **kw)
        return burgers_like(n_traj=kw["n_traj"] or 10).split((8, 1, 1), seed=kw["seed"])

    monkeypatch.setattr(pymsde.systems, "simulate", fake_simulate, raising=False)
    out = str(tmp_path / "k.npz")
    # docs/method.md's older KdV draw through the command line
    assert main(["simulate", "kdv1d", "--out", out, "--n-traj", "10", "--split", "8,1,1", "--noise", "0.01"]) == 0
    assert (calls["case"], calls["n_traj"], calls["split"], calls["noise"]) == ("kdv1d", 10, (8, 1, 1), 0.01)
    assert isinstance(calls["split"][0], int)
    assert main(["simulate", "wave1d", "--out", out, "--split", "0.5,0.25,0.25", "--noise", "0"]) == 0
    assert (calls["case"], calls["split"], calls["noise"]) == ("wave1d", (0.5, 0.25, 0.25), 0.0)
    capsys.readouterr()
    for args, fragment in ((["--split", "8,1"], "--split 8,1: expected three counts"),
                           (["--split", "a,b,c"], "--split a,b,c: expected three counts"),
                           (["--split", "8,-1,1"], "--split 8,-1,1: expected three counts"),
                           (["--noise", "-0.1"], "--noise -0.1: expected a non-negative")):
        calls.clear()
        assert main(["simulate", "kdv1d", "--out", out, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and fragment in err and not calls, err


@pytest.mark.skipif(not hasattr(pymsde.systems, "simulate"), reason="pymsde.systems.simulate not available yet")
def test_simulate_end_to_end_tiny_wave(tmp_path, capsys):
    out = tmp_path / "w.npz"
    rc = main(["simulate", "wave1d", "--out", str(out), "--n-traj", "6", "--split", "4,1,1", "--n-steps", "11",
               "--t-end", "0.01", "--noise", "0"])
    assert rc == 0, capsys.readouterr().err
    assert "wave1d, 6 trajectories x 11 times, grid (1000,)" in capsys.readouterr().out
    traj = load(out)
    assert {k: len(v) for k, v in traj.splits.items()} == {"train": 4, "val": 1, "test": 1}
    assert traj.attrs["case"] == "wave1d" and traj.attrs["noise"] == 0.0 and traj.attrs["score_steps"] == 11
    width = np.array(traj.attrs["ic"]["width"])
    x, t = traj.grid.coordinates(0), traj.t[0]
    d = (x[None] - t[:, None] + 0.5) % 1.0 - 0.5
    assert np.abs(traj.u[:, :, 0] - np.exp(-(d[None] / width[:, None, None]) ** 2)).max() < 1e-12


def test_simulate_refuses_unknown_case(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "navier-stokes", "--out", "x.npz"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()                      # argparse errors on one line too
    assert "\n" not in err and err.startswith("pymsde simulate: error: argument case: invalid choice")
    assert err.endswith("(see pymsde simulate --help)") and "invalid choice: 'navier-stokes'" in err


@pytest.mark.skipif(not hasattr(pymsde.systems, "simulate"), reason="pymsde.systems.simulate not available yet")
def test_simulate_end_to_end_tiny_burgers(tmp_path, capsys):
    out = tmp_path / "b.npz"
    rc = main(["simulate", "burgers1d", "--out", str(out), "--n-traj", "2", "--seed", "1", "--n-grid", "64",
               "--n-steps", "21", "--t-end", "0.02"])
    assert rc == 0, capsys.readouterr().err
    traj = load(out)
    assert traj.n_traj == 2 and traj.grid_shape == (64,) and traj.boundary == ("periodic",)
    assert traj.n_t == 21 and traj.dt == pytest.approx(1e-3, rel=1e-9)
    assert np.isfinite(traj.u).all() and 0.1 < traj.u.max() < 0.5       # A ~ N(0.25, 0.05^2)
    assert traj.attrs["case"] == "burgers1d"
    assert main(["info", str(out)]) == 0
    assert "(2, 21, 1, 64) float64" in capsys.readouterr().out


def test_simulate_refuses_bad_output_names_before_simulating(tmp_path, capsys, monkeypatch):
    def must_not_run(case, **kw):
        raise AssertionError("simulate called despite a bad output name")

    monkeypatch.setattr(pymsde.systems, "simulate", must_not_run, raising=False)
    assert main(["simulate", "kdv1d", "--out", str(tmp_path / "data.csv")]) == 2
    assert "unknown file type '.csv'" in capsys.readouterr().err
    assert main(["simulate", "kdv1d", "--out", str(tmp_path / "d.npz"), "--plot", str(tmp_path / "p.pdf")]) == 2
    assert "expected a file name ending in .png" in capsys.readouterr().err
    (tmp_path / "adir.npz").mkdir()
    (tmp_path / "afile").write_text("")
    for args, fragment in ((["--out", str(tmp_path / "adir.npz")], "adir.npz: a directory; expected a file name"),
                           (["--out", str(tmp_path / "afile" / "x.npz")], "a parent of this path is a file"),
                           (["--out", str(tmp_path / "d.npz"), "--plot", str(tmp_path / "adir.npz")],
                            "--plot"),
                           (["--out", str(tmp_path / "d.npz"), "--seed", "-1"], "--seed -1: expected an integer seed in [0, 2^63 - 1")):
        assert main(["simulate", "kdv1d", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and fragment in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.npz", "afile"]


def test_damaged_files_give_one_line_errors(tmp_path, capsys):
    import zipfile

    good = save(burgers_like(), tmp_path / "good.npz")
    np.savez_compressed(tmp_path / "z.npz", **{k: v for k, v in np.load(good).items()})
    raw = bytearray((tmp_path / "z.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "z.npz") as zf:                 # damage u's deflate stream
        info = zf.getinfo("u.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 10:start + 40] = b"\xff" * 30
    (tmp_path / "z.npz").write_bytes(bytes(raw))
    (tmp_path / "dir.npz").mkdir()
    for name, fragment in (("z.npz", "key 'u' cannot be read"), ("dir.npz", "dir.npz: a directory")):
        assert main(["info", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and fragment in err, err


def test_every_subcommand_help_is_plain_text():
    """--help shows no reST markup of the docstrings it is made from (``...``, :func:`...`) and
    starts its description with a capital letter (issue 17: the markup leaked)."""
    import argparse

    from pymsde.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    pending = list(subparsers.choices.items())
    seen = 0
    while pending:
        name, sub = pending.pop()
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for a in nested:
            pending += [(f"{name} {k}", v) for k, v in a.choices.items()]
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text and ":class:" not in text, name
        if sub.description:
            assert sub.description[0].isupper(), (name, sub.description[:40])
        seen += 1
    assert seen >= 9                     # simulate, train, evaluate, demo, benchmark, info, plot, ...
