"""The whole journey on a tiny Burgers 1-D case: simulate, train multiscale + closure, forecast,
evaluate against both baselines, write the report; then `pymsde evaluate` on the same runs
(finding the closure run as the sibling folder) reproduces the demo's numbers exactly, and
bad input (a data file on another grid) is refused with a clear error.

The tiny case trains for a few seconds only, so it checks structure and reproducibility, not
that the multiscale model wins: that is the demo's job at its own (larger) size, recorded in
docs/evaluation.md and checked on the README command's output by tests/test_demo_outcome.py.
"""
import dataclasses
import json

import numpy as np
import pytest

from pymsde.cli import main
from pymsde.training.config import TrainConfig

pytestmark = pytest.mark.slow

#: the tiny demo's training: 2 epochs of windows of 11, validated every epoch
TINY_TRAIN = TrainConfig(window=11, epochs=2, max_steps=4000, validate_every=1, val_forecast_steps=10,
                         checkpoint_every=0, progress=False, device="cpu")


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    from pymsde.workflows.demo import DemoConfig, run_demo

    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(n_grid=60, coarse=6, n_traj=3, split=(1, 1, 1), n_steps=21, t_end=0.2, n_samples=4, seed=3,
                     train=TINY_TRAIN)
    result = run_demo(out, cfg)
    return out, result


def test_tiny_demo_writes_everything(tiny_demo):
    out, result = tiny_demo
    m = json.loads(result.to_json())
    assert set(m["nrmse"]) == {"multiscale", "closure", "dns"}
    for method in ("multiscale", "closure", "dns"):
        assert np.isfinite(m["nrmse"][method]) and m["nrmse"][method] > 0
        assert np.isfinite(m["crps"][method]) and m["crps"][method] > 0
    assert m["spread_skill"]["dns"] is None                       # deterministic baseline
    assert m["spread_skill"]["multiscale"] > 0 and m["spread_skill"]["closure"] > 0
    assert m["training_time_s"]["multiscale"] > 0 and m["training_time_s"]["closure"] > 0
    assert m["n_traj"] == 1 and m["split"] == "test" and m["backend"] == "torch"
    for name in ("data.npz", "multiscale/checkpoint.pt", "closure/checkpoint.pt", "report/report.md",
                 "report/error_vs_time.png", "report/spacetime.png", "report/profiles_multiscale.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name


def test_tiny_demo_report_stands_alone(tiny_demo):
    out, result = tiny_demo
    m = result.metrics()
    text = (out / "report" / "report.md").read_text()
    verdict = text.splitlines()[2]
    assert verdict.startswith("**Verdict:** the multiscale model forecasts the `test` split with a relative error of")
    rel = {k: v["mean"] for k, v in m["relative_error"].items()}
    assert f"relative error of {rel['multiscale']:.2f} % (pooled mean)" in verdict
    best = min(("closure", "dns"), key=rel.get)
    ms, y = rel["multiscale"], rel[best]
    if ms < y:
        assert f"{y / ms:.1f} times lower than the best baseline" in verdict and f"(`{best}`, {y:.2f} %)" in verdict
    else:                                                               # said honestly when a baseline wins
        assert "a baseline does better" in verdict and f"(`{best}`) reaches {y:.2f} %, {ms / y:.1f} times lower" in verdict
    for method in ("multiscale", "closure", "dns"):
        assert f"- **{method}**: " in text
    assert "- **dmd**" not in text and "- **sindy**" not in text
    assert "micro_dim 0" in text and "coarse DNS, an under-resolved simulation" in text
    steps = m["training"]["multiscale"]["steps"]
    assert steps == m["training"]["closure"]["steps"] and f"{steps} optimiser steps each" in text
    assert "METHOD.md" not in text and "../shared" not in text
    assert "burgers1d" in text and "21 output times" in text and "standard deviation 0.001" in text


def test_evaluate_cli_reproduces_demo(tiny_demo, tmp_path, capsys):
    out, result = tiny_demo
    rc = main(["evaluate", str(out / "multiscale"), "--data", str(out / "data.npz"), "--n-samples", "4",
               "--seed", "3", "--out", str(tmp_path / "again"), "--json", "--no-plots"])
    assert rc == 0
    again = json.loads(capsys.readouterr().out)
    assert again["closure_run"].endswith("closure")                # found as the sibling folder
    for key in ("nrmse", "crps", "spread_skill"):
        for method, value in result.metrics()[key].items():
            if value is None:
                assert again[key][method] is None
            else:
                assert again[key][method] == pytest.approx(value, rel=1e-6), (key, method)
    from pymsde.evaluate.report import parse_metrics_table

    table = parse_metrics_table((tmp_path / "again" / "report.md").read_text())
    assert table["dns"]["nrmse"] == pytest.approx(again["nrmse"]["dns"], abs=0.006)


def test_evaluate_refuses_data_on_another_grid(tiny_demo, tmp_path, capsys):
    import dataclasses

    from pymsde.data.io import load, save

    out, _ = tiny_demo
    traj = load(out / "data.npz")

    half = traj.u.reshape(*traj.u.shape[:3], 30, 2).mean(-1)       # 60 -> 30 points
    save(dataclasses.replace(traj, u=half), tmp_path / "coarse.npz")
    rc = main(["evaluate", str(out / "multiscale"), "--data", str(tmp_path / "coarse.npz"), "--no-plots"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "grid (30,) differs from the training grid (60,)" in err


def test_demo_refuses_to_overwrite_runs(tiny_demo, capsys):
    out, _ = tiny_demo
    before = (out / "data.npz").stat().st_mtime_ns
    rc = main(["demo", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "already holds a trained run" in err and "--overwrite" in err
    assert (out / "data.npz").stat().st_mtime_ns == before          # refused before any work


def test_evaluate_without_closure_run_skips_it_with_a_note(tiny_demo, tmp_path, capsys):
    import shutil

    out, _ = tiny_demo
    lone = tmp_path / "lone" / "run"
    shutil.copytree(out / "multiscale", lone)                         # no sibling 'closure' here
    rc = main(["evaluate", str(lone), "--data", str(out / "data.npz"), "--n-samples", "4", "--json",
               "--no-plots"])
    captured = capsys.readouterr()
    assert rc == 0
    m = json.loads(captured.out)
    import importlib.util

    dmd = {"dmd"} if importlib.util.find_spec("pydmd") is not None else set()    # --baselines auto
    assert set(m["nrmse"]) == {"multiscale", "dns"} | dmd
    assert "closure baseline skipped" in captured.err
    rc = main(["evaluate", str(lone), "--data", str(out / "data.npz"), "--closure-run", str(out / "multiscale"),
               "--no-plots"])
    assert rc == 2 and "micro_dim = 5" in capsys.readouterr().err    # a 'closure' run must have micro 0


def test_pipeline_resume_finishes_an_interrupted_run_exactly(tiny_demo, tmp_path):
    """An interrupted run (multiscale stopped after 1 of 2 epochs, closure never started),
    continued with resume=True, ends with the uninterrupted demo's numbers to round-off."""
    import shutil

    from pymsde.data.io import load
    from pymsde.workflows.demo import DemoConfig, run_pipeline, train_configs
    from pymsde.util.errors import ConfigError

    out, result = tiny_demo
    cfg = DemoConfig(n_grid=60, coarse=6, n_traj=3, split=(1, 1, 1), n_steps=21, t_end=0.2, n_samples=4, seed=3,
                     train=TINY_TRAIN)
    shutil.copy(out / "data.npz", tmp_path / "data.npz")
    traj = load(tmp_path / "data.npz")
    model, train = train_configs(cfg, cfg.micro)
    half = dict(train.to_dict(), epochs=1)
    run_pipeline(tmp_path, traj, tmp_path / "data.npz", model, type(train).from_dict(half), n_samples=4,
                 seed=3, plots=False)
    shutil.rmtree(tmp_path / "closure")                      # as if stopped before the closure model
    with pytest.raises(ConfigError, match="exclude each other"):
        run_pipeline(tmp_path, traj, tmp_path / "data.npz", model, train, resume=True, overwrite=True)
    again = run_pipeline(tmp_path, traj, tmp_path / "data.npz", model, train, n_samples=4, seed=3,
                         plots=False, resume=True)
    meta = json.loads(again.to_json())
    assert meta["resumed"] == ["multiscale"]
    for method, value in result.metrics()["nrmse"].items():
        assert again.metrics()["nrmse"][method] == pytest.approx(value, rel=1e-6), method


def test_evaluation_says_whether_the_test_trajectory_is_inside_the_training_range(tiny_demo):
    from pymsde.data.io import load

    out, result = tiny_demo
    m = result.metrics()
    traj = load(out / "data.npz")
    u0 = np.asarray(traj.u, dtype=np.float64)[:, 0]
    rms = np.sqrt(np.mean(u0 ** 2, axis=(1, 2)))
    train, test = traj.splits["train"], traj.splits["test"]
    cov = m["coverage"]["statistics"]["rms"]
    assert cov["train_min"] == pytest.approx(rms[train].min(), rel=1e-12)
    assert cov["train_max"] == pytest.approx(rms[train].max(), rel=1e-12)
    assert cov["evaluated"] == pytest.approx(rms[test].tolist(), rel=1e-12)
    inside = rms[train].min() <= rms[test[0]] <= rms[train].max()
    assert cov["outside"] == [not inside]
    flagged = any("starts outside the training data's range" in n for n in m["notes"])
    assert flagged == m["coverage"]["outside"][0]
    assert flagged == ("starts outside the training data's range" in (out / "report" / "report.md").read_text())


def test_evaluate_refuses_a_closure_run_on_another_coarse_grid(tiny_demo, tmp_path, capsys):
    from pymsde.data.io import load
    from pymsde.workflows.demo import DemoConfig, train_configs, train_one

    out, _ = tiny_demo
    traj = load(out / "data.npz")
    cfg = DemoConfig(coarse=3, seed=3, train=dataclasses.replace(TINY_TRAIN, epochs=1, validate_every=0))
    opts, train_cfg = train_configs(cfg, micro=0)
    train_one(traj, opts, train_cfg, tmp_path / "closure3")
    rc = main(["evaluate", str(out / "multiscale"), "--data", str(out / "data.npz"), "--closure-run",
               str(tmp_path / "closure3"), "--no-plots"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "coarse_shape = (3,), but the run evaluated has coarse_shape = (6,)" in err
