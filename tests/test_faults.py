"""Run-state integrity under faults: kill -9 at every write point of a training run, then
resume; a second trainer in the same run directory; SIGINT / SIGTERM; a full disk; damaged
derived files; stray temporary files.

The kill tests run one driver subprocess (``python tests/test_faults.py driver ...``; torch
imported once, one thread so that runs are bit-comparable) that forks a child per kill point.
The child sets :data:`pymsde.util.atomic.WRITE_HOOK` to SIGKILL itself at the N-th write point
of a fresh training run; the driver then resumes the run directory in-process and the test
compares it with an uninterrupted run: the final parameters, ``best.pt``, ``log.csv`` and
``val.csv`` (every column but the wall times) must be equal, and nothing stray may be left.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
TINY = dict(coarse_shape=(4,), micro_dim=2, drift_hidden=(16,), micro_hidden=(16,), encoder_channels=(2, 4),
            gp_hidden=(8,))
#: 3 trajectories x 4 windows / 2 per step: 6 steps per epoch; 3 epochs = 18 steps; a periodic
#: checkpoint every 4 steps, a validation (and maybe best.pt) every epoch
CFG = dict(epochs=3, window=11, batch_windows=2, n_quad=4, lr=3e-3, beta_steps=10, validate_every=1,
           val_forecast_steps=2, val_forecast_samples=1, checkpoint_every=4, log_every=1, progress=False,
           device="cpu")
FILES = ["best.pt", "checkpoint.pt", "config.toml", "log.csv", "metadata.json", "val.csv"]


# ----------------------------------------------------------------------------- the driver

def _setup():
    sys.path.insert(0, str(HERE))
    from test_checkpoint import tiny_data

    from pymsde.training import TrainConfig

    data = tiny_data()
    return data.subset([0, 1, 2]), data.subset([3]), TrainConfig(**CFG)


def _run(run_dir: Path, resume: bool):
    from pymsde.training import fit

    train, val, cfg = _setup()
    return fit(train, None if resume else TINY, cfg, val=val, run_dir=run_dir, resume=resume)


def _phase_of(seq: list[tuple[str, str]], i: int) -> str:
    """The commit write point ``i`` belongs to: open (the step-0 checkpoint, config, metadata),
    validation (a commit that writes best.pt), periodic (one that does not), final (the last
    commit), done (the final metadata). Every file write is three points in a row."""
    files = [name for _, name in seq[::3]]
    f = i // 3
    if f == len(files) - 1 and files[f] == "metadata.json":
        return "done"
    starts = [k for k, name in enumerate(files) if name == "checkpoint.pt"]
    commit = max(k for k in starts if k <= f)
    if commit == starts[0]:
        return "open"
    if commit == starts[-1]:
        return "final"
    end = next((k for k in starts if k > commit), len(files))
    return "validation" if "best.pt" in files[commit:end] else "periodic"


def _count_points(run_dir: Path) -> list[tuple[str, str]]:
    from pymsde.util import atomic

    seq: list[tuple[str, str]] = []
    atomic.WRITE_HOOK = lambda point, dest: seq.append((point, dest.name))
    try:
        _run(run_dir, resume=False)
    finally:
        atomic.WRITE_HOOK = None
    return seq


def _killed_child(run_dir: Path, kill_at: int, resume: bool) -> int:
    """Fork a child that trains (or resumes) ``run_dir`` and SIGKILLs itself at write point ``kill_at``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            from pymsde.util import atomic

            count = [0]

            def hook(point, dest):
                count[0] += 1
                if count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            atomic.WRITE_HOOK = hook
            _run(run_dir, resume=resume)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def _choose(seq: list[tuple[str, str]]) -> list[int]:
    """The write points killed at (1-based): every one of the opening (step-0 checkpoint, log,
    config, metadata), of the first validation's commit (checkpoint, best.pt, log.csv, val.csv:
    a training step's state) and of the final metadata; and the final checkpoint's and log's
    "replaced" points (a complete run whose derived files lag). Periodic commits run the same
    code as a validation's without best.pt."""
    seen, chosen = set(), []
    for i, (point, name) in enumerate(seq):
        phase = _phase_of(seq, i)
        kind = (phase, name, point)
        wanted = phase in ("open", "validation", "done") or (phase == "final" and point == "replaced"
                                                              and name in ("checkpoint.pt", "log.csv"))
        if wanted and kind not in seen:
            seen.add(kind)
            chosen.append(i + 1)
    return chosen


def driver(work: Path, limit: int | None) -> dict:
    torch.set_num_threads(1)
    work.mkdir(parents=True, exist_ok=True)
    seq = _count_points(work / "ref")
    chosen = _choose(seq)[:limit]
    out = {"points": len(seq), "sequence": seq, "cases": []}
    t0 = time.perf_counter()
    for n in chosen:
        run = work / f"k{n:03d}"
        sig = _killed_child(run, n, resume=False)
        case = {"kill_at": n, "point": seq[n - 1], "phase": _phase_of(seq, n - 1), "signal": sig,
                "left": sorted(os.listdir(run)) if run.is_dir() else []}
        resume = (run / "checkpoint.pt").is_file()
        if seq[n - 1][1] == "best.pt" and seq[n - 1][0] == "begin" and resume:
            # a second fault: the resume is killed too, at its first write point (rebuilding best.pt)
            case["second_signal"] = _killed_child(run, 1, resume=True)
        _run(run, resume=resume)
        case["resumed"] = resume
        out["cases"].append(case)
    out["seconds"] = time.perf_counter() - t0
    return out


# ----------------------------------------------------------------------------- comparisons

def _rows(path: Path, drop=("time_s",)):
    from pymsde.training.run import read_csv

    cols, rows = read_csv(path)
    keep = [i for i, c in enumerate(cols) if c not in drop]
    return [cols[i] for i in keep], [[r[i] for i in keep] for r in rows]


def _same_state(a: Path, b: Path) -> None:
    sa, sb = (torch.load(p, weights_only=True) for p in (a, b))
    assert sa["step"] == sb["step"], (a, b)
    assert sa["model_state"].keys() == sb["model_state"].keys()
    for k in sa["model_state"]:
        assert torch.equal(sa["model_state"][k], sb["model_state"][k]), (b, k)
    for i, st in sa["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg"], sb["optimizer"]["state"][i]["exp_avg"]), (b, i)


def assert_equal_runs(ref: Path, run: Path) -> None:
    assert sorted(os.listdir(run)) == FILES, f"{run}: {sorted(os.listdir(run))}"     # nothing stray
    _same_state(ref / "checkpoint.pt", run / "checkpoint.pt")
    _same_state(ref / "best.pt", run / "best.pt")
    assert _rows(ref / "log.csv") == _rows(run / "log.csv")
    assert _rows(ref / "val.csv") == _rows(run / "val.csv")
    assert json.loads((run / "metadata.json").read_text())["status"] == "done"


@pytest.fixture(scope="module")
def kill_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("faults")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYMSDE_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, __file__, "driver", str(work)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, json.loads(proc.stdout.strip().splitlines()[-1])


def test_kill_at_every_write_point_resumes_to_the_uninterrupted_run(kill_runs):
    work, out = kill_runs
    phases = {c["phase"] for c in out["cases"]}
    assert phases == {"open", "validation", "final", "done"}, phases
    kinds = {(c["phase"], *c["point"]) for c in out["cases"]}
    assert {("validation", p, "best.pt") for p in ("begin", "written", "replaced")} <= kinds
    assert {("validation", p, f) for p in ("begin", "written", "replaced") for f in ("checkpoint.pt", "log.csv")} <= kinds
    for case in out["cases"]:
        assert case["signal"] == signal.SIGKILL, case
        if case["point"][0] != "replaced":
            # killed inside an atomic write: its temporary file was left behind (and is gone now)
            assert any(n.startswith("." + case["point"][1] + ".tmp-") for n in case["left"]), case
        assert_equal_runs(work / "ref", work / f"k{case['kill_at']:03d}")
    assert any(c.get("second_signal") == signal.SIGKILL for c in out["cases"])
    # a kill between checkpoint.pt and best.pt: best.pt was rebuilt (the reported bug: it stayed behind)
    lag = [c for c in out["cases"] if c["phase"] == "validation" and c["point"] == ["begin", "best.pt"]]
    assert lag and lag[0]["resumed"]


# ----------------------------------------------------------------------------- in-process faults

@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train faster on one thread (no OpenMP hand-offs on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train_val():
    from test_checkpoint import tiny_data

    data = tiny_data()
    return data.subset([0, 1, 2]), data.subset([3])


def _cfg(**kw):
    from pymsde.training import TrainConfig

    return TrainConfig(**{**CFG, "epochs": 2, **kw})


def test_disk_full_is_one_line_naming_the_last_good_checkpoint_and_resumes(tmp_path, monkeypatch, capsys):
    from pymsde.training import fit
    from pymsde.util import atomic
    from pymsde.util.errors import RunWriteError

    train, val = _train_val()
    ref = fit(train, TINY, _cfg(), val=val, run_dir=tmp_path / "ref")
    writes = {"ckpt": 0}

    def full(point, dest):
        if dest.name == "checkpoint.pt" and point == "written":
            writes["ckpt"] += 1
            if writes["ckpt"] == 3:          # commits at steps 0, 4 (periodic), 6 (validation): the third fails
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))
    monkeypatch.setattr(atomic, "WRITE_HOOK", full)
    run = tmp_path / "run"
    with pytest.raises(RunWriteError) as info:
        fit(train, TINY, _cfg(), val=val, run_dir=run)
    msg = str(info.value)
    assert "\n" not in msg and "No space left on device" in msg and "ENOSPC" in msg
    assert f"training stopped at step 6; the last good checkpoint is {run / 'checkpoint.pt'} (step 4)" in msg
    assert not [n for n in os.listdir(run) if ".tmp-" in n] and not (run / ".pymsde.lock").exists()
    assert json.loads((run / "metadata.json").read_text())["status"].startswith("failed at step")
    monkeypatch.setattr(atomic, "WRITE_HOOK", None)
    res = fit(train, None, _cfg(), val=val, run_dir=run, resume=True)
    assert res.steps == ref.steps
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k])
    assert _rows(tmp_path / "ref" / "log.csv") == _rows(run / "log.csv")


def test_sigterm_saves_marks_interrupted_and_exits_143(tmp_path, monkeypatch, capsys):
    from pymsde.cli import main
    from pymsde.data.io import save
    from pymsde.training.run import read_csv, read_json
    from pymsde.util import atomic
    from test_checkpoint import tiny_data

    data = tiny_data(n_traj=5).split({"train": 3, "val": 1, "test": 1}, seed=0)
    save(data, tmp_path / "data.npz")
    sent = []

    def term(point, dest):                   # SIGTERM arrives while step 4's checkpoint is written
        if dest.name == "checkpoint.pt" and point == "begin" and len(sent) < 2:
            sent.append(point)
            if len(sent) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(atomic, "WRITE_HOOK", term)
    run = tmp_path / "run"
    argv = ["train", str(tmp_path / "data.npz"), "--coarse", "4", "--micro", "2", "--encoder-channels", "2", "4",
            "--drift-hidden", "16", "--micro-hidden", "16", "--window", "11", "--batch-windows", "2", "--n-quad", "4",
            "--val-forecast-steps", "2", "--checkpoint-every", "4", "--epochs", "3", "--no-progress", "--device",
            "cpu", "--out", str(run)]
    assert main(argv) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("pymsde:")]) == 1
    # the signal came while step 4's checkpoint was written: the loop stopped at that step boundary
    assert err[-1].startswith("pymsde: interrupted by SIGTERM at step 4 of 18; checkpoint saved")
    meta = read_json(run / "metadata.json")
    assert meta["status"] == "interrupted" and meta["interrupted_by"] == "SIGTERM" and meta["steps"] == 4
    assert len(read_csv(run / "log.csv")[1]) == 4 and not (run / ".pymsde.lock").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["status"] == "interrupted"
    monkeypatch.setattr(atomic, "WRITE_HOOK", None)
    assert main(["train", str(tmp_path / "data.npz"), "--out", str(run), "--resume", "--no-progress"]) == 0
    assert [r[0] for r in read_csv(run / "log.csv")[1]] == list(range(18))


def test_refused_resume_changes_nothing_on_disk(tmp_path):
    from pymsde.data.io import save
    from pymsde.training import fit
    from pymsde.util.errors import DataError
    from test_checkpoint import tiny_data

    train, val = _train_val()
    save(tiny_data(), tmp_path / "a.npz")
    save(tiny_data(seed=1), tmp_path / "b.npz")
    run = tmp_path / "run"
    fit(train, TINY, _cfg(epochs=1), val=val, run_dir=run, data_path=tmp_path / "a.npz")
    (run / ".pymsde.lock").write_text('{"pid": 999999999, "host": "gone", "started": "then"}\n')  # a stale lock

    def snapshot():   # every file's bytes; the run files' modification times too (the lock's is touched)
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns if p.suffix != ".lock" else 0) for p in run.iterdir()}
    before = snapshot()
    with pytest.raises(DataError, match="SHA-256"):
        fit(train, None, _cfg(epochs=2), val=val, run_dir=run, resume=True, data_path=tmp_path / "b.npz")
    assert snapshot() == before


def test_damaged_log_and_stray_temporaries_are_repaired_on_resume(tmp_path, caplog):
    from pymsde.training import fit

    train, val = _train_val()
    ref = fit(train, TINY, _cfg(), val=val, run_dir=tmp_path / "ref")
    run = tmp_path / "run"
    fit(train, TINY, _cfg(max_steps=7), val=val, run_dir=run)
    lines = (run / "log.csv").read_text().splitlines()
    (run / "log.csv").write_text("\n".join(lines[:3] + ["1.0,garbage,,\x00"] + lines[5:]) + "\n")
    (run / "metadata.json").write_text("{not json")
    for stray in (".checkpoint.pt.tmp-abcd1234.pt", ".checkpoint.pt.x7y8z9q0.pt", ".log.csv.tmp-zzzzzzzz.csv"):
        (run / stray).write_bytes(b"half")
    (run / "notes.txt").write_text("the user's own file stays")
    res = fit(train, None, _cfg(), val=val, run_dir=run, resume=True)
    assert sorted(os.listdir(run)) == sorted(FILES + ["notes.txt"])
    assert "stray temporary" in caplog.text
    assert _rows(tmp_path / "ref" / "log.csv") == _rows(run / "log.csv")
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k])


def test_a_second_trainer_is_refused_and_sigint_saves_exits_130_and_resumes(tmp_path, capsys):
    """A real `pymsde train` process, a second trainer refused while it runs, then Ctrl-C."""
    from pymsde.cli import main
    from pymsde.data.io import save
    from pymsde.training.run import read_csv, read_json
    from test_checkpoint import tiny_data

    data = tiny_data(n_traj=5).split({"train": 3, "val": 1, "test": 1}, seed=0)
    save(data, tmp_path / "data.npz")
    run = tmp_path / "run"
    small = ["--coarse", "4", "--micro", "2", "--encoder-channels", "2", "4", "--drift-hidden", "16",
             "--micro-hidden", "16", "--window", "11", "--batch-windows", "2", "--n-quad", "4", "--val-forecast-steps",
             "2", "--no-progress", "--device", "cpu"]
    env = {**os.environ, "PYMSDE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "pymsde", "train", str(tmp_path / "data.npz"), *small,
                              "--epochs", "100000", "--validate-every", "0", "--out", str(run),
                              "--recipe", "reference"],   # nothing derived: stderr holds one line
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "metadata.json").is_file():
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
            time.sleep(0.1)
        time.sleep(1.0)                                   # some steps, no periodic checkpoint yet (500)
        # the second trainer: refused at once, naming the first (pid, host, start time); nothing changes
        before = (run / "checkpoint.pt").read_bytes()
        for extra in ([], ["--resume"]):
            argv = ["train", str(tmp_path / "data.npz"), *small, "--epochs", "2", "--out", str(run), *extra]
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert "\n" not in err and f"is in use by another trainer (pid {child.pid} on host " in err, err
            assert "started 20" in err
        assert (run / "checkpoint.pt").read_bytes() == before
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pymsde: interrupted by SIGINT at step "), err
    meta = read_json(run / "metadata.json")
    step = meta["steps"]
    assert meta["status"] == "interrupted" and step > 0           # progress kept before the first checkpoint
    assert len(read_csv(run / "log.csv")[1]) == step and not (run / ".pymsde.lock").exists()
    assert main(["train", str(tmp_path / "data.npz"), "--out", str(run), "--resume", "--max-steps",
                 str(step + 3), "--no-progress"]) == 0
    assert [r[0] for r in read_csv(run / "log.csv")[1]] == list(range(step + 3))


def test_a_dead_trainers_lock_is_taken_over(tmp_path, caplog):
    from pymsde.training import fit

    train, _ = _train_val()
    run = tmp_path / "run"
    run.mkdir()
    (run / ".pymsde.lock").write_text('{"pid": 999999999, "host": "elsewhere", "started": "yesterday"}\n')
    fit(train, TINY, _cfg(epochs=1, validate_every=0), run_dir=run)
    assert "taking over the stale lock" in caplog.text and "999999999" in caplog.text
    assert not (run / ".pymsde.lock").exists() and (run / "checkpoint.pt").is_file()


if __name__ == "__main__":  # the kill driver, run by the kill_runs fixture
    if sys.argv[1] == "driver":
        result = driver(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
        print(json.dumps(result))
