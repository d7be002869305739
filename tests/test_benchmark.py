"""``pymsde benchmark``: one row of the paper's table on a tiny case, and the table generated from it."""
import functools
import importlib.util
import json
from pathlib import Path

import pytest

from pymsde.cli import main
from pymsde.util.errors import ConfigError
from pymsde.workflows import benchmark as bm

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(sizes=dict(n_traj=6, n_grid=64, n_steps=41, split=(3, 1, 2)),
            model_overrides=dict(coarse_shape=(4,), drift_hidden=(8,), micro_hidden=(8,), encoder_channels=(2,),
                                 encoder_kernel=5, gp_hidden=(8,)),
            train_overrides=dict(max_steps=3, window=8, val_forecast_steps=5, val_forecast_samples=2,
                                 checkpoint_every=0),
            n_samples=2, progress=False, device="cpu")


def _paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "benchmarks" / "paper_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_benchmark_command_writes_the_row_and_the_table_renders_it(tmp_path, monkeypatch, capsys):
    """The whole command on a tiny kdv1d (sizes passed through the workflow function): two
    trainings (the implicit-scale model with half of --minutes, then the warm-started n_eta = 5
    model at lr 1e-4 with what is left), the five methods evaluated, the markdown row and the JSON written,
    and benchmarks/paper_table.py renders the published and the measured row."""
    monkeypatch.setattr(bm, "run_benchmark", functools.partial(bm.run_benchmark, **TINY))
    out = tmp_path / "bench" / "kdv1d"
    assert main(["benchmark", "kdv1d", "--out", str(out), "--minutes", "4", "--json", "--no-plots"]) == 0
    printed = json.loads(capsys.readouterr().out)
    row = json.loads((out / "benchmark.json").read_text())
    assert printed["case"] == row["case"] == "kdv1d"
    for m in ("multiscale", "closure", "dns", "dmd", "sindy"):
        rel = row["relative_error"][m]
        assert rel["mean"] is not None and rel["mean"] > 0 and rel["std"] >= 0, m
        assert row["measured"][m]["mean"] == pytest.approx(rel["mean"] / 100)
        assert row["published"][m]["mean"] == bm.PUBLISHED["kdv1d"][m][0]
    stages = row["stages"]
    assert [(s["run"], s["micro_dim"], s["warm_start_from"]) for s in stages] == \
        [("closure", 0, None), ("multiscale", 5, "closure")]
    assert [s["lr"] for s in stages] == [1e-3, 1e-4] and stages[0]["max_minutes"] == pytest.approx(2.0, abs=1e-3)
    # the second stage gets the budget the first one left: 4 minutes minus its wall time
    left = 4.0 - stages[0]["wall_time_s"] / 60.0
    assert left - 0.05 <= stages[1]["max_minutes"] <= left + 0.05
    assert row["score_steps"] is None and row["recipe"] == "final-paper"
    meta = json.loads((out / "multiscale" / "metadata.json").read_text())
    assert meta["init_from"]["run"] == str(out / "closure") and meta["init_from"]["micro_dim"] == 0
    md = (out / "benchmark.md").read_text()
    assert "| kdv_1d (published) | 0.523 ± 0.196 |" in md and "| kdv_1d (pymsde) |" in md

    table = tmp_path / "paper_table.md"
    assert _paper_table().main([str(tmp_path / "bench"), "--out", str(table)]) == 0
    text = table.read_text()
    assert "| kdv_1d (published) | 0.523 ± 0.196 | 0.163 ± 0.046 |" in text
    measured = [line for line in text.splitlines() if line.startswith("| kdv_1d (pymsde")]
    assert len(measured) == 1 and measured[0].count("±") == 5
    assert measured[0].startswith("| kdv_1d (pymsde, warm start 0 -> 5) |")     # the variant is named
    assert "| wave_1d (published; not run here) | 1.381 ± 0.382 |" in text


def test_unknown_and_published_only_cases_are_refused_on_one_line(tmp_path, capsys, monkeypatch):
    assert main(["benchmark", "nosuch", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown case 'nosuch'; expected one of kdv1d, wave1d, burgers2d, cylinder2d, swe2d" in err
    assert "\n" not in err and "published rows only" not in err          # every published row is runnable
    monkeypatch.setitem(bm.PUBLISHED, "other2d", dict(bm.PUBLISHED["burgers2d"]))
    assert main(["benchmark", "other2d", "--out", str(tmp_path / "x")]) == 2
    assert "only its published row" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="--minutes 0; expected a positive number"):
        bm.run_benchmark("kdv1d", tmp_path / "y", minutes=0)
    assert not (tmp_path / "y").exists()


def test_stages_and_scored_times():
    assert bm.stage_names(False) == [(0, "closure"), (5, "multiscale")]
    assert [k for k, _ in bm.stage_names(True)] == [0, 1, 2, 3, 4, 5]
    from pymsde.systems import simulate

    wave = simulate("wave1d", n_traj=3, n_grid=16, n_steps=41, progress=False)
    assert bm.score_steps(wave, "wave1d") == 9                   # t <= 0.2 of t in [0, 1], 41 times
    kdv = simulate("kdv1d", n_traj=3, n_grid=32, n_steps=5, t_end=0.004, progress=False)
    assert bm.score_steps(kdv, "kdv1d") is None


def test_published_keys_and_benchmark_cases_map_one_to_one():
    # the published rows keep their JSON keys (shallow_water2d); the cases are the simulator's (swe2d)
    assert set(bm.PUBLISHED) == {"kdv1d", "wave1d", "burgers2d", "cylinder2d", "shallow_water2d"}
    assert set(bm.BENCHMARK_CASES) == {"kdv1d", "wave1d", "burgers2d", "cylinder2d", "swe2d"}
    assert bm.published_key("swe2d") == "shallow_water2d" and bm.benchmark_case("shallow_water2d") == "swe2d"
    assert {bm.published_key(c) for c in bm.BENCHMARK_CASES} == set(bm.PUBLISHED) == set(bm.PAPER_NAMES)
    assert all(bm.benchmark_case(bm.published_key(c)) == c for c in bm.BENCHMARK_CASES)
    assert bm.get_case("shallow_water2d") is bm.get_case("swe2d") is bm.BENCHMARK_CASES["swe2d"]
    row = bm._row("swe2d", {}, [], [], {})
    assert (row["case"], row["published_key"], row["paper_case"]) == ("swe2d", "shallow_water2d", "shallow_water_2d")
    assert row["published"]["multiscale"] == {"mean": 0.152, "std": 0.047}
    # benchmarks/paper_table.py puts a swe2d row on the shallow_water_2d line
    pt = _paper_table()
    rows = {("shallow_water2d", pt.variant(row)): (dict(row, measured={m: {"mean": 0.5, "std": 0.1} for m in bm.METHODS},
                                                        date="2026-01-01"), Path("swe2d/benchmark.json"))}
    text = pt.render(rows)
    assert "| shallow_water_2d (pymsde, warm start 0 -> 5) | 0.500 ± 0.100 |" in text
    assert "(published; not run here) | 0.861" not in text
    assert "| burgers_2d (published; not run here) | 0.560 ± 0.273 |" in text


def test_two_dimensional_cases_carry_the_papers_architecture():
    import torch

    from pymsde.model import ModelConfig, MultiscaleModel
    from pymsde.systems import CASES
    from pymsde.training.recipes import recipe

    channels, n_mu = {"burgers2d": 1, "cylinder2d": 2, "swe2d": 1}, {"swe2d": 1}
    # FINAL_PAPER.md 4.2, 5.2; burgers2d and swe2d: pymsde's micro CNN 4-16-64 (the 2-D step lever of their rows)
    flat = {"burgers2d": 64 * 16 * 16, "cylinder2d": 16 * 40 * 10, "swe2d": 64 * 16 * 16}
    assert bm.BENCHMARK_CASES["swe2d"].train == bm.BENCHMARK_CASES["burgers2d"].train == {"loglik_frames": 32,
                                                                                         "encode_stride": 4}
    for case, c in channels.items():
        spec = bm.BENCHMARK_CASES[case]
        assert spec.model["coarse_shape"] == CASES[case].coarse and spec.n_samples == (64 if case == "cylinder2d"
                                                                                      else 16)
        cfg = ModelConfig.for_grid(CASES[case].grid(), channels=c, n_mu=n_mu.get(case, 0),
                                   **{**spec.model, "micro_dim": 5})
        assert cfg.positional_inputs == (case == "cylinder2d")
        with torch.random.fork_rng():
            model = MultiscaleModel(cfg)
        p = model.drift_params()
        # the paper's macro-drift input: C x 25 neighbours (+ 4 positional features) + n_eta (+ mu here)
        assert p.macro_in == c * 25 + (4 if case == "cylinder2d" else 0) + 5 + n_mu.get(case, 0), case
        assert [w.shape[0] for w in p.macro_weights] == [128, 256, 128, c]
        assert model.encoder.micro.linear.in_features == flat[case], case
        assert recipe("final-paper", case=case).epochs == {"burgers2d": 100, "cylinder2d": 1000, "swe2d": 20}[case]


def test_swe2d_starts_in_the_papers_latent_units():
    """The paper's 2-D kernel exp(-r^2/2s^2)/sqrt(K K) (K = 65 taps for s = 16, n_sigma = 2) is not
    sum-normalised: its coarse value of a constant field c is 22.7 c where pymsde's is c, so its
    initial encoder variance softplus(-4) and diffusion softplus(0) are 22.7^2 and 22.7 times
    smaller in pymsde's units (swe2d; burgers2d keeps the units its measured row was trained in)."""
    import math

    import numpy as np
    from pymsde.model import ModelConfig

    r = np.arange(65) - 32.0
    kernel = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 16.0 ** 2)) / math.sqrt(65 * 65)
    assert bm.paper_kernel_sum_2d(16, 2.0) == pytest.approx(kernel.sum(), rel=1e-12)
    assert kernel.sum() == pytest.approx(22.70, abs=0.005)
    spec = bm.BENCHMARK_CASES["swe2d"].model
    assert spec["encoder_var_init"] * kernel.sum() ** 2 == pytest.approx(math.log1p(math.exp(-4.0)), rel=1e-12)
    assert spec["diffusion_init"] * kernel.sum() == pytest.approx(math.log(2.0), rel=1e-12)
    assert "encoder_var_init" not in bm.BENCHMARK_CASES["burgers2d"].model
    assert ModelConfig.encoder_var_init == pytest.approx(math.log1p(math.exp(-4.0)), rel=1e-12)


def test_a_tiny_two_dimensional_row_runs_end_to_end(tmp_path):
    """burgers2d at toy sizes through run_benchmark: data stored as float32, two trainings, the
    five methods scored, the row keyed as the paper's burgers_2d."""
    import numpy as np

    from pymsde.data.io import load

    res = bm.run_benchmark(
        "burgers2d", tmp_path / "b2d", sizes=dict(n_traj=4, n_grid=16, n_steps=21, split=(2, 1, 1)),
        model_overrides=dict(coarse_shape=(4, 4), drift_hidden=(8,), micro_hidden=(8,), encoder_channels=(2,),
                             encoder_kernel=3, gp_hidden=()),
        train_overrides=dict(max_steps=2, window=8, val_forecast_steps=4, val_forecast_samples=2,
                             checkpoint_every=0),
        n_samples=2, plots=False, progress=False, device="cpu")
    row = res.row
    assert (row["case"], row["paper_case"], row["published_key"]) == ("burgers2d", "burgers_2d", "burgers2d")
    assert [(s["micro_dim"], s["lr"]) for s in row["stages"]] == [(0, 1e-3), (5, 1e-4)]
    for m in bm.METHODS:
        assert row["relative_error"][m]["mean"] is not None and row["relative_error"][m]["mean"] > 0, m
    assert row["model"]["encoder_channels"] == [2] and row["model"]["drift_hidden"] == [8]
    assert load(row["data"]).u.dtype == np.float32
    # the 2-D step levers are the case's training settings, recorded in the row and in each run
    assert (row["train_overrides"]["loglik_frames"], row["train_overrides"]["encode_stride"]) == (32, 4)
    assert row["train_overrides"]["max_steps"] == 2 and row["model"]["conv_memory_format"] == "channels_last"
    toml = (tmp_path / "b2d" / "multiscale" / "config.toml").read_text()
    assert "loglik_frames = 32" in toml and "encode_stride = 4" in toml and 'conv_memory_format = "channels_last"' in toml
    assert "| burgers_2d (published) | 0.560 ± 0.273 |" in res.markdown_path.read_text()


def test_from_scratch_trains_the_multiscale_model_without_a_warm_start(tmp_path):
    row = bm.run_benchmark("kdv1d", tmp_path / "b", from_scratch=True, plots=False, **TINY).row
    assert [(s["run"], s["micro_dim"], s["warm_start_from"], s["lr"]) for s in row["stages"]] == \
        [("closure", 0, None, 1e-3), ("multiscale", 5, None, 1e-3)]
    assert row["from_scratch"] is True
    meta = json.loads((tmp_path / "b" / "multiscale" / "metadata.json").read_text())
    assert "init_from" not in meta
    with pytest.raises(ConfigError, match="--chain and --from-scratch exclude each other"):
        bm.run_benchmark("kdv1d", tmp_path / "c", from_scratch=True, chain=True, **TINY)


def _training_curves():
    spec = importlib.util.spec_from_file_location("training_curves", ROOT / "benchmarks" / "training_curves.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_training_curves_reads_val_csv_and_offsets_sequential_runs(tmp_path, capsys):
    from pymsde.training.run import write_csv

    tc = _training_curves()
    for name, rows, total in (("closure", [[100, 10.0, 30.0], [200, 20.0, 20.0]], 25.0),
                              ("multiscale", [[100, 5.0, 9.0]], 8.0)):
        run = tmp_path / name
        run.mkdir()
        write_csv(run / "val.csv", ["step", "val_loss", "val_nrmse", "time_s"],
                  [[r[0], -1.0, r[2], r[1]] for r in rows])
        (run / "metadata.json").write_text(json.dumps({"train_time_s": total}))
    assert tc.main([str(tmp_path / "closure"), str(tmp_path / "multiscale"), "--after",
                    "--out", str(tmp_path / "c.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    # the second stage starts where the first one's training time (metadata, not its last record) ends
    assert out["offset_s"] == {"closure": 0.0, "multiscale": 25.0}
    assert out["curves"]["closure"] == [{"step": 100, "time_s": 10.0, "val_nrmse": 30.0},
                                        {"step": 200, "time_s": 20.0, "val_nrmse": 20.0}]
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert tc.main([str(tmp_path / "nothing")]) == 2
    assert "nothing/val.csv: no validation records" in capsys.readouterr().err


def test_resume_keeps_the_done_trainings_and_trains_the_rest(tmp_path):
    out = tmp_path / "b"
    first = bm.run_benchmark("kdv1d", out, from_scratch=True, plots=False, **TINY).row
    closure_bytes = (out / "closure" / "checkpoint.pt").read_bytes()
    import shutil

    shutil.rmtree(out / "multiscale")                         # as if the second training never ran
    with pytest.raises(ConfigError, match="--overwrite and --resume exclude each other"):
        bm.run_benchmark("kdv1d", out, from_scratch=True, resume=True, overwrite=True, plots=False, **TINY)
    with pytest.raises(ConfigError, match="pass --resume to keep and continue the runs there"):
        bm.run_benchmark("kdv1d", out, from_scratch=True, plots=False, **TINY)
    again = bm.run_benchmark("kdv1d", out, from_scratch=True, resume=True, plots=False, **TINY).row
    closure, multiscale = again["stages"]
    assert closure["kept"] is True and multiscale["kept"] is False
    assert closure["steps"] == first["stages"][0]["steps"] == 3
    assert closure["train_time_s"] == pytest.approx(first["stages"][0]["train_time_s"], abs=1e-3)
    assert (out / "closure" / "checkpoint.pt").read_bytes() == closure_bytes      # not trained again
    # the same seed, the same data and the same closure: the same row
    assert again["relative_error"] == first["relative_error"]
    # a kept run of another micro_dim (here: the chain's stage names over a from-scratch folder) is refused
    shutil.copytree(out / "multiscale", out / "micro1")
    with pytest.raises(ConfigError, match="micro1 holds a model of micro_dim 5; expected 1"):
        bm.run_benchmark("kdv1d", out, chain=True, resume=True, plots=False, **TINY)


def test_multiscale_epochs_replace_the_recipes_for_the_multiscale_training_only(tmp_path):
    """--multiscale-epochs N: the multiscale run is configured with N epochs, the implicit-scale
    run with the recipe's; the row records N; --resume refuses a kept run of another N; a bad N is a
    one-line error first."""
    from pymsde.training.recipes import recipe

    row = bm.run_benchmark("kdv1d", tmp_path / "e", from_scratch=True, plots=False, multiscale_epochs=7, **TINY).row
    assert row["multiscale_epochs"] == 7
    assert "\nepochs = 7\n" in (tmp_path / "e" / "multiscale" / "config.toml").read_text()
    recipe_epochs = recipe("final-paper", case="kdv1d", warm=False).epochs
    assert recipe_epochs != 7
    assert f"\nepochs = {recipe_epochs}\n" in (tmp_path / "e" / "closure" / "config.toml").read_text()
    with pytest.raises(ConfigError, match=r"multiscale was trained for 7 epochs; this stage trains 9"):
        bm.run_benchmark("kdv1d", tmp_path / "e", from_scratch=True, resume=True, plots=False, multiscale_epochs=9,
                         **TINY)
    with pytest.raises(ConfigError, match=r"--multiscale-epochs 0; expected an integer >= 1"):
        bm.run_benchmark("kdv1d", tmp_path / "f", multiscale_epochs=0, **TINY)
    assert not (tmp_path / "f").exists()
