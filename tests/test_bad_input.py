"""Every bad input gets a one-line error naming the input, before any work (docs/robustness.md).

``CASES`` is the table of docs/robustness.md: one row per input tried, grouped in classes
(sizes that cannot fit, data files, TOML files, command-line numbers, checkpoints, run
directories). Each runs ``pymsde ...`` in-process and must exit 2 with exactly one line on
stderr that names the input, and leave no run directory behind. The absurd sizes are also
run in a subprocess that measures each refusal's time and peak memory. Valid inputs that
used to be refused (big-endian arrays, float32 time stamps, a UTF-8 byte-order mark) must pass.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pymsde.cli import main
from pymsde.data.io import load, save
from pymsde.training.checkpoint import load_checkpoint

from test_checkpoint import tiny_data

SMALL = ["--encoder-channels", "2", "4", "--drift-hidden", "16", "--micro-hidden", "16", "--window", "11",
         "--batch-windows", "2", "--n-quad", "4", "--val-forecast-steps", "3", "--no-progress", "--device", "cpu"]
HUGE = (2 ** 20, 2 ** 20, 1, 2 ** 12)          # float64: 32 PiB
HAS_CUDA = torch.cuda.is_available()


def _huge_npz(path: Path) -> None:
    """An .npz whose u.npy header declares HUGE (a few bytes of data follow)."""
    from numpy.lib import format as npformat

    head = io.BytesIO()
    npformat.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": HUGE})
    t = io.BytesIO()
    np.save(t, np.linspace(0.0, 1.0, HUGE[1]))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("u.npy", head.getvalue() + b"\0" * 64)
        z.writestr("t.npy", t.getvalue())


def _huge_h5(path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("u", shape=HUGE, dtype="f8", chunks=(1, 1, 1, 64))
        f.create_dataset("t", data=np.linspace(0.0, 1.0, HUGE[1]))


def _files(d: Path) -> None:
    """Every file the cases read, in ``d``."""
    data = tiny_data(n_traj=5).split({"train": 3, "val": 1, "test": 1}, seed=0)
    save(data, d / "data.npz")
    _huge_npz(d / "huge.npz")
    _huge_h5(d / "huge.h5")
    os.symlink("/dev/zero", d / "zero.npz")
    os.symlink("/dev/zero", d / "zero.toml")
    os.symlink(d / "gone.npz", d / "dangling.npz")
    os.mkfifo(d / "fifo.npz")
    os.mkfifo(d / "fifo.toml")
    (d / "dir.npz").mkdir()
    (d / "random.npz").write_bytes(os.urandom(3000))
    (d / "random.h5").write_bytes(os.urandom(3000))
    (d / "truncated.npz").write_bytes((d / "data.npz").read_bytes()[:2000])
    np.savez(d / "pickled.npz", u=np.array([{"a": 1}], dtype=object), t=np.arange(3.0))
    np.savez(d / "int_u.npz", u=np.zeros((2, 5, 1, 8), dtype=np.int32), t=np.arange(5.0))
    np.savez(d / "f16_u.npz", u=np.zeros((2, 5, 1, 8), dtype=np.float16), t=np.arange(5.0))
    np.savez(d / "nan_u.npz", u=np.full((2, 5, 1, 8), np.nan), t=np.arange(5.0))
    np.savez(d / "gap_t.npz", u=np.zeros((2, 5, 1, 8)), t=np.array([0.0, 1.0, 2.0, 4.0, 5.0]))
    toml = {"latin1": "[train]\n# caf\xe9\nepochs = 2\n".encode("latin-1"),
            "utf16": "[train]\nepochs = 2\n".encode("utf-16"),
            "utf16be": "[train]\nepochs = 2\n".encode("utf-16-be"),
            "syntax": b"[train\nepochs = 2\n", "inf": b"[train]\nepochs = inf\n", "nan": b"[model]\nmicro_dim = nan\n",
            "str_int": b'[train]\nepochs = "2"\n', "float_int": b"[train]\nbatch_windows = 2.5\n",
            "int_bool": b"[train]\nprogress = 1\n", "list_scalar": b"[train]\nlr = [0.1]\n",
            "scalar_list": b'[model]\ndrift_hidden = "wide"\n', "table": b"[train]\nlr = {a = 1}\n",
            "unknown_key": b"[train]\nepochz = 3\n", "unknown_table": b"[trian]\nepochs = 3\n",
            "model_not_table": b"model = 3\n", "seed_big": b"[train]\nseed = 18446744073709551615\n",
            "device": b'[train]\ndevice = "tpu"\n', "huge_samples": b"[train]\nn_samples = 1000000000\n",
            "huge_kernel": b"[model]\nkernel_n_sigma = 1e9\n", "null": b"[train]\x00\n"}
    for name, text in toml.items():
        (d / f"{name}.toml").write_bytes(text)
    (d / "big.toml").write_bytes(b"# " + b"x" * (2 << 20) + b"\n")


def _checkpoints(d: Path) -> None:
    """A trained run (``good``) and crafted copies of it, one damaged field each."""
    assert main(["train", str(d / "data.npz"), "--coarse", "4", "--micro", "2", "--epochs", "1", "--out",
                 str(d / "good"), *SMALL]) == 0
    good = load_checkpoint(d / "good" / "checkpoint.pt", for_resume=True)
    base = {k: v for k, v in good.items() if k not in ("format", "format_version")}
    fmt = {"format": "pymsde-checkpoint", "format_version": 1}
    ms = dict(base["model_state"])
    ms[next(iter(ms))] = torch.zeros(3, 7)
    opt = {"state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(5), "exp_avg_sq": torch.zeros(5)}},
           "param_groups": base["optimizer"]["param_groups"]}
    crafted = {
        "weights": {**fmt, **base, "model_state": ms},
        "version_str": {**base, "format": "pymsde-checkpoint", "format_version": "1"},
        "version_float": {**base, "format": "pymsde-checkpoint", "format_version": 1.5},
        "version_new": {**base, "format": "pymsde-checkpoint", "format_version": 99},
        "foreign": {"weights": torch.zeros(3)},
        "lacks_rng": {**fmt, **{k: v for k, v in base.items() if k != "rng"}},
        "step": {**fmt, **base, "step": -3},
        "epoch": {**fmt, **base, "epoch": "one"},
        "optimizer": {**fmt, **base, "optimizer": opt},
        "rng": {**fmt, **base, "rng": {"torch": torch.zeros(3, dtype=torch.uint8), "noise": base["rng"]["noise"]}},
        "model_config": {**fmt, **base, "model_config": {**base["model_config"], "bogus": 1}},
        "huge_model": {**fmt, **base, "model_config": {**base["model_config"], "drift_hidden": [10 ** 9]}},
        "train_config": {**fmt, **base, "train_config": {**base["train_config"], "epochs": "many"}},
        "history": {**fmt, **base, "history": [{"step": "x"}]},
        "log": {**fmt, **base, "log": torch.zeros(3, 4)},
        "frozen": {**fmt, **base, "frozen": [1, 2]},
    }
    raw = {"random": os.urandom(4000), "pickle": pickle.dumps({"a": 1}), "empty": b"",
           "truncated": (d / "good" / "checkpoint.pt").read_bytes()[:5000]}
    for name in [*crafted, *raw, "devzero", "directory"]:
        run = d / f"ck_{name}"
        shutil.copytree(d / "good", run)
        path = run / "checkpoint.pt"
        path.unlink()
        if name in crafted:
            torch.save(crafted[name], path)
        elif name in raw:
            path.write_bytes(raw[name])
        elif name == "devzero":
            os.symlink("/dev/zero", path)
        else:
            path.mkdir()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    _files(d)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _checkpoints(d)
    finally:
        torch.set_num_threads(n)
    return d


def _train(data="data.npz", *extra, out="run"):
    return ["train", data, "--coarse", "4", "--micro", "2", "--epochs", "1", "--out", out, *SMALL, *extra]


def _resume(name):
    return ["train", "data.npz", "--out", f"ck_{name}", "--resume", "--epochs", "2", "--no-progress"]


#: (class, input, argv relative to the files folder, a fragment the one-line error must hold)
CASES = [
    # sizes that cannot fit: refused with the size they need, before allocating
    ("size", "HDF5 u declaring 32 PiB (info)", ["info", "huge.h5"], "huge.h5: key 'u' declares shape (1048576, 1048576, 1, 4096) float64, which would need 32 PiB"),
    ("size", "HDF5 u declaring 32 PiB (train)", _train("huge.h5"), "huge.h5: key 'u' declares shape"),
    ("size", ".npz header declaring 32 PiB", ["info", "huge.npz"], "huge.npz: key 'u' declares shape (1048576, 1048576, 1, 4096) float64"),
    ("size", "simulate --n-grid 1000000000", ["simulate", "burgers1d", "--out", "s.npz", "--n-grid", "1000000000"], "n_grid (1000000000,) float64 values would need"),
    ("size", "simulate --n-steps 1000000000", ["simulate", "kdv1d", "--out", "s.npz", "--n-steps", "1000000000"], "n_steps 1000000000"),
    ("size", "simulate --n-traj 1000000000", ["simulate", "wave1d", "--out", "s.npz", "--n-traj", "1000000000"], "n_traj 1000000000"),
    ("size", "train --samples 1e9", _train("data.npz", "--samples", "1000000000"), "n_samples 1000000000"),
    ("size", "train --n-quad 1e9", _train("data.npz", "--n-quad", "1000000000"), "n_quad 1000000000) would need"),
    ("size", "train --val-forecast-samples 1e9", _train("data.npz", "--val-forecast-samples", "1000000000"), "val_forecast_samples 1000000000"),
    ("size", "train --drift-hidden 1e9", _train("data.npz", "--drift-hidden", "1000000000"), "the model (8,000,001,343 parameters or more"),
    ("size", "train --micro-hidden 1e9", _train("data.npz", "--micro-hidden", "1000000000"), "parameters or more"),
    ("size", "train --micro 1e9", _train("data.npz", "--micro", "1000000000"), "would need"),
    ("size", "[model] kernel_n_sigma = 1e9", _train("data.npz", "--config", "huge_kernel.toml"), "kernel_n_sigma 1e+09"),
    ("size", "[train] n_samples = 1e9", _train("data.npz", "--config", "huge_samples.toml"), "n_samples 1000000000"),
    ("size", "--config /dev/zero", _train("data.npz", "--config", "zero.toml"), "zero.toml: a character device (a symbolic link to /dev/zero), not a regular file"),
    ("size", "--config a 2 MiB file", _train("data.npz", "--config", "big.toml"), "big.toml: 2 MiB; expected a TOML config file (at most 1 MiB)"),
    ("size", "checkpoint model_config drift_hidden 1e9", _resume("huge_model"), "ck_huge_model/checkpoint.pt: the model (8,000,001,343"),
    # data files: every reader
    ("data file", "missing file", ["info", "gone.npz"], "gone.npz: no such file"),
    ("data file", "dangling symlink", ["info", "dangling.npz"], "dangling.npz: no such file"),
    ("data file", "symlink to /dev/zero", ["info", "zero.npz"], "zero.npz: a character device (a symbolic link to /dev/zero)"),
    ("data file", "named pipe", ["info", "fifo.npz"], "fifo.npz: a named pipe (FIFO), not a regular file"),
    ("data file", "directory", ["info", "dir.npz"], "dir.npz: a directory"),
    ("data file", "random bytes .npz", ["info", "random.npz"], "random.npz: not a readable .npz file"),
    ("data file", "random bytes .h5", ["info", "random.h5"], "random.h5: not a readable HDF5 file"),
    ("data file", "truncated .npz", _train("truncated.npz"), "truncated.npz"),
    ("data file", "pickled object array", ["info", "pickled.npz"], "key 'u' holds an object (pickled) array"),
    ("data file", "integer u", ["info", "int_u.npz"], "key u: dtype int32; expected a real floating-point dtype"),
    ("data file", "float16 u", ["info", "f16_u.npz"], "key u: dtype float16"),
    ("data file", "NaN in u", ["info", "nan_u.npz"], "non-finite value (NaN or inf) at trajectory 0"),
    ("data file", "a missing frame in t", ["info", "gap_t.npz"], "non-uniform time step in trajectory 0"),
    ("data file", "unknown suffix", ["info", "data.csv"], "unknown file type '.csv'"),
    # TOML files: every key is type-checked, every encoding problem named
    ("toml", "Latin-1 file", _train("data.npz", "--config", "latin1.toml"), "latin1.toml: not UTF-8 text (byte 0xe9 at offset 13"),
    ("toml", "UTF-16 file (BOM)", _train("data.npz", "--config", "utf16.toml"), "utf16.toml: UTF-16 text"),
    ("toml", "UTF-16 file (no BOM)", _train("data.npz", "--config", "utf16be.toml"), "utf16be.toml: UTF-16 text"),
    ("toml", "a NUL byte", _train("data.npz", "--config", "null.toml"), "null.toml: not valid TOML"),
    ("toml", "syntax error", _train("data.npz", "--config", "syntax.toml"), "syntax.toml: not valid TOML"),
    ("toml", "missing file", _train("data.npz", "--config", "gone.toml"), "gone.toml: no such file"),
    ("toml", "named pipe", _train("data.npz", "--config", "fifo.toml"), "fifo.toml: a named pipe"),
    ("toml", "epochs = inf", _train("data.npz", "--config", "inf.toml"), "inf.toml: [train] epochs = inf; expected an integer"),
    ("toml", "micro_dim = nan", _train("data.npz", "--config", "nan.toml"), "nan.toml: [model] micro_dim = nan"),
    ("toml", 'epochs = "2"', _train("data.npz", "--config", "str_int.toml"), "str_int.toml: [train] epochs = '2'; expected an integer"),
    ("toml", "batch_windows = 2.5", _train("data.npz", "--config", "float_int.toml"), "[train] batch_windows = 2.5; expected an integer"),
    ("toml", "progress = 1", _train("data.npz", "--config", "int_bool.toml"), "[train] progress = 1; expected true or false"),
    ("toml", "lr = [0.1]", _train("data.npz", "--config", "list_scalar.toml"), "[train] lr = [0.1]; expected a number"),
    ("toml", 'drift_hidden = "wide"', _train("data.npz", "--config", "scalar_list.toml"), "[model] drift_hidden[0] = 'wide'"),
    ("toml", "lr = {a = 1}", _train("data.npz", "--config", "table.toml"), "[train] lr = {'a': 1}; expected a number"),
    ("toml", "unknown key", _train("data.npz", "--config", "unknown_key.toml"), "unknown key(s) ['epochz'] in [train]"),
    ("toml", "unknown table", _train("data.npz", "--config", "unknown_table.toml"), "unknown table(s) ['trian']"),
    ("toml", "model = 3", _train("data.npz", "--config", "model_not_table.toml"), "[model] is a int; expected a table"),
    ("toml", "seed = 2^64 - 1", _train("data.npz", "--config", "seed_big.toml"), "train.seed = 18446744073709551615; expected an integer seed in [0, 2^63 - 1"),
    ("toml", 'device = "tpu"', _train("data.npz", "--config", "device.toml"), "[train] device = 'tpu'; expected one of"),
    # command-line numbers
    ("cli", "train --seed 2^64", _train("data.npz", "--seed", str(2 ** 64)), "train.seed = 18446744073709551616"),
    ("cli", "train --seed 2^64 - 1", _train("data.npz", "--seed", str(2 ** 64 - 1)), "train.seed = 18446744073709551615"),
    ("cli", "train --seed -1", _train("data.npz", "--seed", "-1"), "train.seed = -1"),
    ("cli", "train --lr inf", _train("data.npz", "--lr", "inf"), "train.lr = inf; expected a finite number"),
    ("cli", "train --lr nan", _train("data.npz", "--lr", "nan"), "train.lr = nan"),
    ("cli", "train --max-minutes inf", _train("data.npz", "--max-minutes", "inf"), "train.max_minutes = inf"),
    ("cli", "train --grad-clip -1", _train("data.npz", "--grad-clip", "-1"), "train.grad_clip = -1.0"),
    ("cli", "train --epochs 1e9 (not an int)", _train("data.npz", "--epochs", "1e9"), "argument --epochs: invalid int value: '1e9'"),
    ("cli", "train --window 1", _train("data.npz", "--window", "1"), "train.window = 1"),
    ("cli", "train --log-every 0", _train("data.npz", "--log-every", "0"), "train.log_every = 0"),
    ("cli", "simulate --seed 2^64", ["simulate", "kdv1d", "--out", "s.npz", "--seed", str(2 ** 64)], "--seed 18446744073709551616: expected an integer seed in [0, 2^63 - 1"),
    ("cli", "simulate --t-end inf", ["simulate", "kdv1d", "--out", "s.npz", "--t-end", "inf"], "--t-end inf: expected a finite positive final time"),
    ("cli", "simulate --t-end nan", ["simulate", "kdv1d", "--out", "s.npz", "--t-end", "nan"], "--t-end nan"),
    ("cli", "simulate --t-end 0", ["simulate", "kdv1d", "--out", "s.npz", "--t-end", "0"], "--t-end 0.0"),
    ("cli", "simulate --noise inf", ["simulate", "kdv1d", "--out", "s.npz", "--noise", "inf"], "--noise inf: expected a non-negative"),
    ("cli", "simulate --n-traj 0", ["simulate", "kdv1d", "--out", "s.npz", "--n-traj", "0"], "--n-traj 0: expected an integer >= 1"),
    ("cli", "simulate --n-grid 1", ["simulate", "kdv1d", "--out", "s.npz", "--n-grid", "1"], "--n-grid 1: expected an integer >= 2"),
    ("cli", "simulate --n-steps 1", ["simulate", "kdv1d", "--out", "s.npz", "--n-steps", "1"], "--n-steps 1: expected an integer >= 2"),
    ("cli", "demo --seed 2^64", ["demo", "--out", "demo", "--seed", str(2 ** 64)], "--seed = 18446744073709551616"),
    # checkpoints: every field
    ("checkpoint", "weights that do not fit the architecture", _resume("weights"), "the weights do not fit the recorded architecture (model_config): 'kernel.bias' is (3, 7)"),
    ("checkpoint", "format_version '1' (a string)", _resume("version_str"), "checkpoint format_version '1'; expected an integer"),
    ("checkpoint", "format_version 1.5", _resume("version_float"), "checkpoint format_version 1.5"),
    ("checkpoint", "format_version 99", _resume("version_new"), "format version 99; this pymsde reads versions <= 1"),
    ("checkpoint", "another program's torch file", _resume("foreign"), "not a pymsde checkpoint (format None"),
    ("checkpoint", "random bytes", _resume("random"), "ck_random/checkpoint.pt: not a pymsde checkpoint (not a torch zip archive)"),
    ("checkpoint", "a pickle", _resume("pickle"), "ck_pickle/checkpoint.pt: not a pymsde checkpoint"),
    ("checkpoint", "an empty file", _resume("empty"), "ck_empty/checkpoint.pt: not a pymsde checkpoint"),
    ("checkpoint", "a truncated file", _resume("truncated"), "ck_truncated/checkpoint.pt: not a pymsde checkpoint"),
    ("checkpoint", "a symlink to /dev/zero", _resume("devzero"), "ck_devzero/checkpoint.pt: a character device (a symbolic link to /dev/zero)"),
    ("checkpoint", "a directory", _resume("directory"), "ck_directory/checkpoint.pt: a directory"),
    ("checkpoint", "no rng", _resume("lacks_rng"), "checkpoint lacks ['rng']"),
    ("checkpoint", "step -3", _resume("step"), "damaged checkpoint: step = -3"),
    ("checkpoint", "epoch 'one'", _resume("epoch"), "damaged checkpoint: epoch = 'one'"),
    ("checkpoint", "optimizer state of other shapes", _resume("optimizer"), "the optimizer's exp_avg of parameter 0 is (5,)"),
    ("checkpoint", "a foreign RNG state", _resume("rng"), "rng['torch'] is not a CPU generator state"),
    ("checkpoint", "model_config with an unknown field", _resume("model_config"), "model_config cannot be read (model config: unknown field(s) ['bogus']"),
    ("checkpoint", "train_config with a wrong type", _resume("train_config"), "train_config cannot be read (train_config: [train] epochs = 'many'"),
    ("checkpoint", "history of strings", _resume("history"), "damaged checkpoint: history is not a list"),
    ("checkpoint", "log of the wrong width", _resume("log"), "damaged checkpoint: log is not a (rows, 10) float tensor"),
    ("checkpoint", "frozen of ints", _resume("frozen"), "damaged checkpoint: frozen is not a list of parameter names"),
    # run directories
    ("run dir", "--out is a file", _train("data.npz", out="data.npz"), "run directory data.npz: a file, not a directory"),
    ("run dir", "--resume without a checkpoint", ["train", "data.npz", "--out", "empty_run", "--resume"], "no checkpoint.pt in empty_run; nothing to resume"),
    ("run dir", "a new run into an existing run", _train("data.npz", out="good"), "run directory good already holds a run"),
    ("run dir", "--resume with another architecture", ["train", "data.npz", "--out", "good", "--resume", "--micro", "3"], "a resumed run keeps its architecture"),
    ("run dir", "--resume with another learning rate", ["train", "data.npz", "--out", "good", "--resume", "--lr", "0.5", "--epochs", "2"], "differs from the checkpoint's"),
]
if not HAS_CUDA:
    CASES.append(("cli", "demo --device cuda without CUDA", ["demo", "--out", "demo", "--device", "cuda"],
                  "--device cuda: train.device = 'cuda' but torch.cuda.is_available() is False"))


@pytest.mark.parametrize("cls, what, argv, fragment", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_bad_input_is_one_line_naming_it(files, monkeypatch, capsys, cls, what, argv, fragment):
    monkeypatch.chdir(files)
    before = sorted(os.listdir(files))
    target = argv[argv.index("--out") + 1] if "--out" in argv else None
    snapshot = _snapshot(files / target) if target and (files / target).is_dir() else None
    try:
        rc = main(list(argv))
    except SystemExit as exit_:          # argparse's own refusals (a value that is not a number)
        rc = exit_.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("pymsde") and ": error: " in err and "\n" not in err, err
    assert "Traceback" not in err and fragment in err, err
    assert sorted(os.listdir(files)) == before              # nothing created (no run directory, no output)
    if snapshot is not None:
        assert _snapshot(files / target) == snapshot          # a refused command changes nothing


def _snapshot(run: Path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() else None, p.lstat().st_mtime_ns) for p in run.iterdir()}


def test_the_table_of_docs_robustness_counts_these_cases():
    """docs/robustness.md states how many inputs of each class were tried: keep it true."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "robustness.md").read_text()
    counts = {}
    for cls, *_ in CASES:
        counts[cls] = counts.get(cls, 0) + 1
    if HAS_CUDA:                             # the demo --device cuda case exists only without CUDA
        counts["cli"] += 1
    for cls, n in counts.items():
        assert f"| {cls} | {n} |" in text, (cls, n)


# ----------------------------------------------------------------------------- the memory guard

_GUARD = r"""
import json, os, resource, sys, time, io, contextlib
from pymsde.cli import main
import pymsde.training, pymsde.systems, pymsde.data.io, h5py   # every import before the measurements


def status(key):                     # kB of /proc/self/status, in MB
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(key)) / 1024


def reset_peak():                    # VmHWM := VmRSS (Linux >= 4.0); else ru_maxrss, a running maximum
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return status("VmRSS"), lambda: status("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, \
            lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


os.chdir(sys.argv[1])
out = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    before, peak = reset_peak()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    out.append({"argv": argv, "rc": rc, "s": time.perf_counter() - t0, "err": err.getvalue(),
                "peak_mb": peak() - before})
import numpy as np
before, peak = reset_peak()
control = np.ones(40_000_000)        # 320 MB: the measurement sees a real allocation
out.append({"control_mb": peak() - before})
print(json.dumps(out))
"""


def test_absurd_sizes_are_refused_in_under_a_second_and_200_mb(files):
    """Each size that cannot fit, in one subprocess: the refusal's wall time and the growth of the
    process's peak resident memory over the case (``VmHWM`` reset before each case)."""
    sizes = [argv for cls, _, argv, _ in CASES if cls == "size"]
    env = {**os.environ, "PYMSDE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _GUARD, str(files), json.dumps(sizes)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    *results, control = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(sizes) >= 15
    assert control["control_mb"] > 250
    for r in results:
        print(f"{r['s']:.3f} s {r['peak_mb']:.1f} MB {' '.join(r['argv'][:2])} ... {r['err'].strip()[-60:]}")
        assert r["rc"] == 2 and any(w in r["err"] for w in ("would need", "not a regular file", "at most")), r
        assert r["s"] < 1.0, r
        assert r["peak_mb"] < 200, r


# ----------------------------------------------------------------------------- valid data accepted

def test_big_endian_arrays_are_accepted(tmp_path):
    data = tiny_data()
    np.savez(tmp_path / "be.npz", u=data.u.astype(">f8"), t=data.t.astype(">f8"), domain=data.domain.astype(">f8"))
    got = load(tmp_path / "be.npz")
    assert got.u.dtype == np.float64 and got.u.dtype.isnative and np.array_equal(got.u, data.u)
    np.savez(tmp_path / "be32.npz", u=data.u.astype(">f4"), t=data.t.astype(">f4"))
    assert load(tmp_path / "be32.npz").u.dtype == np.float32
    import h5py

    with h5py.File(tmp_path / "be.h5", "w") as f:
        f.create_dataset("u", data=data.u.astype(">f8"))
        f.create_dataset("t", data=data.t.astype(">f8"))
    assert np.array_equal(load(tmp_path / "be.h5").u, data.u)


def test_float32_time_stamps_pass_the_data_layer_and_the_coarse_solver():
    """One tolerance for uniform steps: times written by torch.linspace in float32 are accepted
    by Trajectories and by the coarse solver alike (it used to refuse them)."""
    from pymsde.data.trajectories import Trajectories
    from pymsde.systems import simulate, solve_coarse

    t32 = torch.linspace(0.0, 0.2, 201, dtype=torch.float32).numpy()
    ref = simulate("wave1d", n_traj=2, n_steps=201, t_end=0.2, progress=False)
    traj = Trajectories(u=ref.u, t=t32, domain=ref.domain, boundary=ref.boundary, attrs={"case": "wave1d"})
    fine = solve_coarse("wave1d", traj.u[:, 0], traj.t[0], show_progress=False)
    assert fine.shape == traj.u.shape


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    from pymsde.training.config import read_config

    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf[train]\nepochs = 3\n")
    assert read_config(tmp_path / "bom.toml")[1].epochs == 3


def test_non_utf8_paths_print_on_a_strict_utf8_stdout(tmp_path, monkeypatch):
    name = os.fsdecode(b"caf\xe9.npz")
    save(tiny_data(), tmp_path / name)
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", strict)
    assert main(["info", str(tmp_path / name)]) == 0
    strict.flush()
    assert b"caf\\udce9.npz: valid trajectories file" in raw.getvalue()
