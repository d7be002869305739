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
    measured = [line for line in text.splitlines() if line.startswith("| kdv_1d (pymsde) |")]
    assert len(measured) == 1 and measured[0].count("±") == 5
    assert "| wave_1d (published; not run here) | 1.381 ± 0.382 |" in text


def test_unknown_and_published_only_cases_are_refused_on_one_line(tmp_path, capsys):
    assert main(["benchmark", "nosuch", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown case 'nosuch'; expected one of kdv1d, wave1d" in err and "\n" not in err
    assert main(["benchmark", "burgers2d", "--out", str(tmp_path / "x")]) == 2
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
