"""Data-parallel training (pymsde.training.distributed): ``torchrun ... -m pymsde train`` on 2 gloo
ranks trains the model one process trains, rank 0 alone writes, refusals reach every rank.

The 2-rank runs are real ``torchrun --standalone --nproc-per-node 2 -m pymsde train`` subprocesses
(CPU, gloo); they are skipped, with the reason, only when gloo cannot form a process group here.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pymsde.cli import main
from pymsde.data.io import load, save
from pymsde.data.lazy import LazyTrajectories, open_lazy
from pymsde.data.windows import WindowSampler
from pymsde.training import TrainConfig, fit
from pymsde.training import device_data
from pymsde.training.checkpoint import load_checkpoint
from pymsde.training.distributed import Dist, check_batch, from_environment, rank_slice
from pymsde.training.run import RunLock, read_csv
from pymsde.util.errors import ConfigError, DataError, PymsdeError
from test_checkpoint import tiny_data

MODEL_TOML = """[model]
coarse_shape = [4]
micro_dim = 2
drift_hidden = [16]
micro_hidden = [16]
encoder_channels = [2, 4]
gp_hidden = [8]
"""
# 3 training trajectories x 5 windows of 9 = 15 windows per epoch: 8 steps of 2 windows, the last
# of one window (rank 1 then evaluates a window with weight 0); validation every epoch, float64
TRAIN_ARGS = ["--window", "9", "--batch-windows", "2", "--epochs", "10", "--n-quad", "4", "--lr", "3e-3",
              "--lr-decay-steps", "1000", "--beta-steps", "10", "--validate-every", "1", "--val-forecast-steps", "10",
              "--val-forecast-samples", "2", "--checkpoint-every", "0", "--log-every", "1", "--no-progress",
              "--device", "cpu", "--dtype", "float64"]


def test_rank_slices_cover_the_batch_and_the_loss_scales_give_its_mean():
    for n, world in ((2, 2), (8, 4), (1, 2), (5, 2), (7, 3)):
        parts = [rank_slice(n, r, world) for r in range(world)]
        assert parts[0][0] == 0 and parts[-1][1] == n and all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        sizes = [hi - lo for lo, hi in parts]
        assert max(sizes) - min(sizes) <= 1
        # DDP averages: sum over ranks of scale_r / world = sum of n_r / n = 1 (each window's weight 1/n)
        scales = [Dist(r, world).loss_scale(s, n) for r, s in enumerate(sizes)]
        assert abs(sum(scales) / world - 1.0) < 1e-15
    assert rank_slice(1, 1, 2) == (1, 1) and Dist().loss_scale(3, 3) == 1.0


def test_batch_windows_must_be_a_multiple_of_the_world_size():
    check_batch(4, 2)
    check_batch(3, 1)
    with pytest.raises(ConfigError, match=r"^train.batch_windows = 3 is not a multiple of the world size 2; "
                                          r"expected e.g. --batch-windows 2$"):
        check_batch(3, 2)


def test_the_launchers_environment_is_read_and_checked(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert from_environment() == Dist()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    d = from_environment()
    assert (d.rank, d.world_size, d.local_rank, d.main, d.active) == (3, 4, 1, False, True)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK = 4, WORLD_SIZE = 4"):
        from_environment()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE = 'two'"):
        from_environment()


def test_alone_every_collective_is_the_identity():
    d = Dist()
    assert d.broadcast({"a": 1}) == {"a": 1} and d.max([0, 3]) == [0, 3]
    x = torch.ones(3)
    assert d.sum(x) is x and d.run_agreed(lambda v: v + 1, 1) == 2
    with pytest.raises(DataError, match="bad"):
        d.run_agreed(lambda: (_ for _ in ()).throw(DataError("bad")))


# ----------------------------------------------------------------------------- 2 gloo ranks

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The data file, the model TOML and the single-process reference run (20 steps)."""
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available in this torch build")
    root = tmp_path_factory.mktemp("dist")
    save(tiny_data(n_traj=4).split({"train": 3, "val": 1}), root / "tiny.npz")
    (root / "model.toml").write_text(MODEL_TOML)
    assert main(_argv(root, "single", "--max-steps", "20")) == 0
    return root


def _argv(root, out, *extra):
    return ["train", str(root / "tiny.npz"), "--out", str(root / out), "--config", str(root / "model.toml"),
            *TRAIN_ARGS, *extra]


def _torchrun(root, argv, nproc=2, module=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYMSDE_NO_PROGRESS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           *(["-m", "pymsde"] if module else []), *argv]
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    if "cannot form the gloo process group" in out:
        pytest.skip(f"gloo cannot initialise here: {out.strip().splitlines()[-1]}")
    return p.returncode, out


def _worst(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_ranks_with_one_window_each_train_the_single_process_model(setup):
    """Must show: same seed, 2 gloo ranks x 1 window vs 1 process x 2 windows per step: after 20 steps
    every model tensor agrees within 1e-5 (measured: ~1e-10 in float64; see docs/distributed.md for
    float32), and so do the logged terms, the validations and the best model; rank 0 alone wrote."""
    rc, out = _torchrun(setup, _argv(setup, "two", "--max-steps", "20"))
    assert rc == 0, out
    assert out.count("trained 20 steps") == 1                     # rank 0 reports
    one, two = (load_checkpoint(setup / r / "checkpoint.pt") for r in ("single", "two"))
    assert one["step"] == two["step"] == 20 and (one["world_size"], two["world_size"]) == (1, 2)
    assert _worst(one["model_state"], two["model_state"]) <= 1e-5
    assert _worst(one["optimizer"]["state"][0], two["optimizer"]["state"][0]) <= 1e-5
    # every term of every step (the 2-rank log sums the ranks' shares of the batch)
    la, lb = one["log"], two["log"]
    assert la.shape == lb.shape == (20, 10)
    # relative to the terms' size: the derived defaults' small initial variances (1e-4 of the
    # data's mean square) make the first steps' log-likelihood and gradient norm of order 1e2 to 1e4
    scale = la[:, 4:9].abs().max().item()
    assert (la[:, 4:9] - lb[:, 4:9]).abs().max().item() <= 1e-7 * max(1.0, scale), scale
    cols, va = read_csv(setup / "single" / "val.csv")
    _, vb = read_csv(setup / "two" / "val.csv")
    assert len(va) == len(vb) == 3                                # epochs 1, 2 and the end
    for c in ("val_loss", "val_nrmse"):
        i = cols.index(c)
        assert all(abs(x[i] - y[i]) <= 1e-6 * max(1.0, abs(x[i])) for x, y in zip(va, vb))
    assert load_checkpoint(setup / "two" / "best.pt")["step"] == load_checkpoint(setup / "single" / "best.pt")["step"]
    assert sorted(p.name for p in (setup / "two").iterdir()) == sorted(p.name for p in (setup / "single").iterdir())


def test_a_two_rank_run_resumes_on_one_process_on_the_same_path(setup, caplog):
    """A different world size is allowed (the batches and the noise do not depend on it), with a
    one-line warning; the resumed run ends where the single-process run ends."""
    rc, out = _torchrun(setup, _argv(setup, "resumed", "--max-steps", "10"))
    assert rc == 0, out
    assert load_checkpoint(setup / "resumed" / "checkpoint.pt")["world_size"] == 2
    with caplog.at_level("WARNING"):
        assert main(["train", str(setup / "tiny.npz"), "--out", str(setup / "resumed"), "--resume",
                     "--max-steps", "20", "--no-progress"]) == 0
    assert "trained on 2 process(es) and continues on 1" in caplog.text
    one, resumed = (load_checkpoint(setup / r / "checkpoint.pt") for r in ("single", "resumed"))
    assert resumed["step"] == 20 and resumed["world_size"] == 1
    assert _worst(one["model_state"], resumed["model_state"]) <= 1e-5


def test_a_refusal_on_rank_0_is_raised_on_every_rank_in_one_line(setup):
    """Another trainer holds the run directory's lock: rank 0 refuses, rank 1 raises the same error
    naming rank 0, each as one line; nothing is written."""
    run = setup / "busy"
    run.mkdir()
    lock = RunLock(run)
    lock.acquire()
    try:
        rc, out = _torchrun(setup, _argv(setup, "busy", "--max-steps", "2"))
    finally:
        lock.release()
    assert rc != 0
    # the two ranks write to one pipe at the same moment, so their lines can arrive glued together:
    # count the messages, not the lines
    import re

    errors = re.findall(r"pymsde: error:.*?(?=pymsde: error:|\n|$)", out)
    assert len(errors) == 2 and all("in use" in e for e in errors), out
    assert sum("(on rank 0 of 2)" in e for e in errors) == 1
    assert sorted(p.name for p in run.iterdir()) == []


def test_an_error_class_crosses_ranks_by_name():
    from pymsde.util import errors

    assert issubclass(errors.RunInUseError, PymsdeError)


# ----------------------------------------------------------------------------- data on disk

LAZY_CONFIG = dict(window=9, batch_windows=2, epochs=10, max_steps=20, n_quad=4, lr=3e-3, beta_steps=10,
                   validate_every=1, val_forecast_steps=10, val_forecast_samples=2, checkpoint_every=0, log_every=5,
                   progress=False, device="cpu", dtype="float64")
LAZY_MODEL = dict(coarse_shape=(4,), micro_dim=2, drift_hidden=(16,), micro_hidden=(16,), encoder_channels=(2, 4),
                  gp_hidden=(8,))
RANK_SCRIPT = """
import json, sys, torch
from pymsde.data.lazy import LazyTrajectories, open_lazy
from pymsde.training import TrainConfig, fit
from pymsde.training.distributed import session

reads, original = [], LazyTrajectories.read_window
def counted(self, i, t0, t1):
    reads.append([int(i), int(t0), int(t1)])
    return original(self, i, t0, t1)
LazyTrajectories.read_window = counted
config, model, h5, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
with session() as dist:
    data = open_lazy(h5)
    res = fit(data.get_split("train"), model, TrainConfig(**config), val=data.get_split("val"))
    json.dump(reads, open(f"{out}.reads{dist.rank}.json", "w"))
    if dist.main:
        torch.save(res.model.state_dict(), f"{out}.pt")
"""


def _h5(root):
    path = root / "tiny.h5"
    if not path.exists():
        save(load(root / "tiny.npz"), path)
    return path


def test_a_file_on_disk_trains_as_the_same_data_in_memory(setup, monkeypatch, caplog):
    """fit on an HDF5 file opened lazily (every step reads its windows) = fit on the loaded data, bit
    for bit; open_training_data keeps a file on disk only when the ranks could not hold it."""
    h5 = _h5(setup)
    cfg = TrainConfig(**{**LAZY_CONFIG, "dtype": "float32", "max_steps": 12})
    mem, disk = load(h5), open_lazy(h5)
    a = fit(mem.get_split("train"), LAZY_MODEL, cfg, val=mem.get_split("val"))
    b = fit(disk.get_split("train"), LAZY_MODEL, cfg, val=disk.get_split("val"))
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert np.array_equal(a.log["loss"], b.log["loss"]) and a.history == [{**h, "time_s": g["time_s"]}
                                                                         for h, g in zip(b.history, a.history)]
    assert isinstance(device_data.open_training_data(h5), type(mem))
    monkeypatch.setattr(device_data, "available_memory", lambda device: (1000.0, "1000 B available"))
    with caplog.at_level("WARNING"):
        assert isinstance(device_data.open_training_data(h5, local_ranks=2), LazyTrajectories)
    assert "x 2 rank(s) on this machine exceeds 50 % of the memory (1000 B available): the data stay on disk" \
        in caplog.text


def test_each_rank_reads_only_its_windows_of_a_file_on_disk(setup):
    """2 ranks on an HDF5 file opened lazily: rank r reads exactly its slice of every global batch
    (rank 1, without a window in a short last batch, reads the batch's first one), and the model is
    the single-process model of the data in memory."""
    script = setup / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    out = setup / "lazy2"
    rc, text = _torchrun(setup, [str(script), json.dumps(LAZY_CONFIG), json.dumps(LAZY_MODEL), str(_h5(setup)),
                                 str(out)], module=False)
    assert rc == 0, text
    mem = load(setup / "tiny.npz")
    train = mem.get_split("train")
    single = fit(train, LAZY_MODEL, TrainConfig(**LAZY_CONFIG), val=mem.get_split("val"))
    two = torch.load(f"{out}.pt", weights_only=True)
    assert max((v - two[k]).abs().max().item() for k, v in single.model.state_dict().items()) <= 1e-5
    sampler, M, want, short = WindowSampler(train, LAZY_CONFIG["window"], seed=0), LAZY_CONFIG["window"], [[], []], 0
    step, epoch = 0, 0
    while step < LAZY_CONFIG["max_steps"]:
        for batch in sampler.batches(2, epoch=epoch):
            if step == LAZY_CONFIG["max_steps"]:
                break
            short += len(batch) == 1
            for r in range(2):
                rows = batch[r:r + 1] if len(batch) > r else batch[:1]   # disjoint slices; the weight-0 window
                want[r] += [[int(i), int(s), int(s) + M] for i, s in rows]
            step += 1
        epoch += 1
    assert short == 2 and sum(a != b for a, b in zip(*want)) == 18
    for r in range(2):
        got = [x for x in json.loads(open(f"{out}.reads{r}.json").read()) if x[2] - x[1] == M]
        assert got == want[r], r
