"""``pymsde train``: options, TOML files, splits, resume and one-line errors."""
import pytest

from pymsde.cli import main
from pymsde.data.io import save
from pymsde.training.config import read_toml
from pymsde.training.run import read_csv, read_json

from test_checkpoint import tiny_data

SMALL = ["--encoder-channels", "2", "4", "--drift-hidden", "16", "--micro-hidden", "16", "--window", "11",
         "--batch-windows", "2", "--n-quad", "4", "--val-forecast-steps", "10", "--no-progress", "--device", "cpu"]


@pytest.fixture
def data_file(tmp_path):
    data = tiny_data(n_traj=5).split({"train": 3, "val": 1, "test": 1}, seed=0)
    path = tmp_path / "data.npz"
    save(data, path)
    return path


def test_train_writes_a_complete_run_directory(tmp_path, data_file, capsys):
    run = tmp_path / "run"
    rc = main(["train", str(data_file), "--coarse", "4", "--micro", "2", "--epochs", "2", "--out", str(run), *SMALL])
    assert rc == 0
    out = capsys.readouterr().out
    assert "trained 12 steps (2 epochs)" in out and "forecast nRMSE" in out
    for name in ("config.toml", "metadata.json", "log.csv", "val.csv", "checkpoint.pt"):
        assert (run / name).is_file()
    cfg = read_toml(run / "config.toml")
    assert cfg["model"]["coarse_shape"] == [4] and cfg["model"]["micro_dim"] == 2
    assert cfg["model"]["encoder_channels"] == [2, 4] and cfg["train"]["epochs"] == 2
    meta = read_json(run / "metadata.json")
    # trained on the train split (3 trajectories), validated on val (1)
    assert meta["n_traj_train"] == 3 and meta["n_traj_val"] == 1
    assert len(meta["data"]["sha256"]) == 64
    assert len(read_csv(run / "log.csv")[1]) == 12


def test_command_line_overrides_the_toml_file_and_resume_continues(tmp_path, data_file):
    conf = tmp_path / "run.toml"
    conf.write_text("[model]\ncoarse = [4]\nmicro = 1\n\n[model.extra]\ngp_hidden = [8]\n\n"
                    "[train]\nepochs = 5\nlr = 0.002\nvalidate_every = 0\n")
    run = tmp_path / "run"
    assert main(["train", str(data_file), "--config", str(conf), "--epochs", "1", "--out", str(run), *SMALL]) == 0
    cfg = read_toml(run / "config.toml")
    assert cfg["train"]["epochs"] == 1 and cfg["train"]["lr"] == 0.002 and cfg["model"]["micro_dim"] == 1
    assert cfg["model"]["gp_hidden"] == [8]           # an older file's [model.extra] is read as [model]
    assert read_json(run / "metadata.json")["model_config"]["gp_hidden"] == [8]
    assert main(["train", str(data_file), "--out", str(run), "--resume", "--epochs", "3", "--no-progress"]) == 0
    meta = read_json(run / "metadata.json")
    assert meta["steps"] == 18 and meta["epochs"] == 3
    assert [r[0] for r in read_csv(run / "log.csv")[1]] == list(range(18))


@pytest.mark.parametrize("args, match", [
    (["--coarse", "7", "--epochs", "1"], "do not divide"),
    (["--coarse", "4", "--micro", "-2"], "micro_dim = -2; expected >= 0"),
    (["--coarse", "4", "--window", "500"], "longer than the training trajectories"),
    (["--coarse", "4", "--residual-scale", "huge"], "residual_scale"),
    (["--coarse", "4", "--resume"], "nothing to resume"),
    (["--coarse", "4", "--val-split", "nope"], "no split named 'nope'; recorded splits: ['test', 'train', "
                                                "'val'] for --val-split"),
])
def test_bad_options_give_a_one_line_error(tmp_path, data_file, capsys, args, match):
    argv = ["train", str(data_file), "--out", str(tmp_path / "run"), *SMALL]
    # SMALL sets --window 11; a later --window wins in argparse
    assert main(argv + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pymsde: error:") and match in err and "\n" not in err
    # refused before anything was written: no (empty or half-written) run directory
    assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten(tmp_path, data_file, capsys):
    run = tmp_path / "run"
    base = ["train", str(data_file), "--coarse", "4", "--micro", "1", "--epochs", "1", "--validate-every", "0",
            "--out", str(run), *SMALL]
    assert main(base) == 0
    assert main(base) == 2
    assert "--resume" in capsys.readouterr().err


def test_missing_data_file_is_reported(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.npz"), "--coarse", "4", "--out", str(tmp_path / "run")]) == 2
    assert "nope.npz" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_refusal_after_loading_the_data_leaves_no_run_directory(tmp_path, data_file, capsys):
    """A window longer than the trajectories is only known once the data are loaded; the
    refusal must still come before the run directory is created, here and in a nested --out."""
    for out in (tmp_path / "run", tmp_path / "runs" / "a"):
        argv = ["train", str(data_file), "--coarse", "4", "--out", str(out), *SMALL, "--window", "500"]
        assert main(argv) == 2
        assert "longer than the training trajectories" in capsys.readouterr().err
        assert not out.exists()
    assert not (tmp_path / "runs").exists()
    # the same options with a valid window then train into that directory
    out = tmp_path / "run"
    assert main(["train", str(data_file), "--coarse", "4", "--micro", "1", "--epochs", "1",
                 "--validate-every", "0", "--out", str(out), *SMALL]) == 0
    assert (out / "checkpoint.pt").is_file()


def test_init_from_warm_starts_with_more_micro_dims_and_the_recipe_warm_stage(tmp_path, data_file, capsys):
    """--init-from builds the model from a trained run (micro 0 -> 2) and --recipe final-paper with it
    trains at the warm stage's learning rate; the metadata names the run it came from."""
    base = tmp_path / "closure"
    assert main(["train", str(data_file), "--coarse", "4", "--micro", "0", "--epochs", "1", "--out", str(base),
                 *SMALL]) == 0
    warm = tmp_path / "warm"
    assert main(["train", str(data_file), "--init-from", str(base), "--micro", "2", "--recipe", "final-paper",
                 "--epochs", "1", "--out", str(warm), "--window", "11", "--no-progress"]) == 0
    cfg = read_toml(warm / "config.toml")
    assert cfg["model"]["micro_dim"] == 2 and cfg["model"]["coarse_shape"] == [4]
    assert cfg["train"]["lr"] == pytest.approx(1e-4) and cfg["train"]["n_quad"] == 0
    assert cfg["model"]["drift_hidden"] == [16]                # the trained run's architecture is kept
    meta = read_json(warm / "metadata.json")
    assert meta["init_from"]["micro_dim"] == 0 and meta["init_from"]["run"].endswith("closure")
    capsys.readouterr()
    assert main(["train", str(data_file), "--init-from", str(base), "--micro", "0", "--out",
                 str(tmp_path / "same")]) == 2
    assert "not larger than the run's micro_dim = 0" in capsys.readouterr().err
    assert not (tmp_path / "same").exists()
    assert main(["train", str(data_file), "--init-from", str(base), "--resume", "--out", str(warm)]) == 2
    assert "exclude each other" in capsys.readouterr().err
