"""Evaluation report: exact scores of known forecasts (nRMSE, the paper's pooled relative error,
CRPS, spread-skill), the report/JSON/plots it writes, evaluate_run with the DMD and POD-SINDy
baselines on a tiny trained run, and clear errors for bad input (grid mismatch, incomplete run
directory, unknown baseline, missing split, missing optional package)."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pymsde.cli import main
from pymsde.data.trajectories import Trajectories
from pymsde.evaluate.baselines import Prediction, score_indices
from pymsde.evaluate.report import EvaluationResult, parse_baselines, parse_metrics_table, score_prediction
from pymsde.evaluate.writer import write_report
from pymsde.model.config import check_data_fits as check_grid_matches
from pymsde.training.run import check_run_dir
from pymsde.util.errors import ConfigError, DataError


def _truth(n_traj=2, n_t=21, n_x=32, seed=0):
    """A smooth travelling wave plus an offset (never zero norm), float64."""
    rng = np.random.default_rng(seed)
    x = np.arange(n_x) / n_x
    t = np.linspace(0.0, 1.0, n_t)
    phase = rng.uniform(0, 1, size=(n_traj, 1, 1))
    u = 1.0 + 0.5 * np.sin(2 * np.pi * (x[None, None, :] - 0.3 * t[None, :, None] - phase))
    return Trajectories(u=u[:, :, None, :], t=t, domain=[[0.0, 1.0]], boundary=("periodic",),
                        attrs={"case": "burgers1d", "split": {"test": list(range(n_traj))}})


def _predictions(traj, d=0.05, n_score=5):
    """Known forecasts: a 10 % scaled 'multiscale' ensemble (members at mean +- d), an exactly
    biased deterministic 'dns' (+0.2 everywhere)."""
    u = traj.u
    idx = score_indices(traj.n_t, n_score)
    mean = 1.1 * u
    members = np.stack([mean[:, idx] - d, mean[:, idx] + d], axis=1)   # (n_traj, 2, n_score, C, x)
    ms = Prediction("multiscale", mean=mean, std=np.full_like(u, d), samples=members, score_index=idx,
                    wall_time_s=1.0)
    dns = Prediction("dns", mean=u + 0.2, std=None, samples=None, score_index=idx, wall_time_s=0.5)
    return {"multiscale": ms, "dns": dns}


def test_score_indices_skip_t0_and_keep_last():
    idx = score_indices(1001, 50)
    assert idx[0] == 1 and idx[-1] == 1000 and len(idx) == 50
    assert np.all(np.diff(idx) > 0)
    assert score_indices(3, 50).tolist() == [1, 2]


def test_scores_of_known_forecasts_are_exact():
    traj = _truth()
    preds = _predictions(traj)
    ms = score_prediction(preds["multiscale"], traj.u)
    # nRMSE of 1.1 * truth is exactly 10 % at every time and overall.
    assert ms.nrmse == pytest.approx(10.0, rel=1e-12)
    assert np.allclose(ms.nrmse_per_time, 10.0, rtol=1e-12)
    assert ms.nrmse_per_traj == pytest.approx([10.0, 10.0], rel=1e-12)
    dns = score_prediction(preds["dns"], traj.u)
    # a point forecast: CRPS = MAE = 0.2 exactly, spread-skill undefined
    assert dns.crps == pytest.approx(0.2, rel=1e-12)
    assert np.isnan(dns.spread_skill)
    # nRMSE of a constant offset c: c * sqrt(n_x) / ||u_k||, per time, RMS over time
    norms = np.linalg.norm(traj.u[0, :, 0], axis=-1)
    want = 100 * np.sqrt(np.mean((0.2 * np.sqrt(32) / norms) ** 2))
    assert dns.nrmse_per_traj[0] == pytest.approx(want, rel=1e-12)


def test_ensemble_scores_against_closed_forms():
    """Two-member ensemble {m - d, m + d} around a mean m = 1.1 u, error e = 0.1 u with |e| >= d:
    standard CRPS = E|X - y| - 1/2 E|X - X'| = |e| - d/2 per point; spread-skill =
    sqrt(3/2) * (sqrt(2) d) / rms(e) = sqrt(3) d / rms(e)."""
    traj = _truth(n_traj=1)
    d = 0.05
    preds = _predictions(traj, d=d)
    s = score_prediction(preds["multiscale"], traj.u)
    e = np.abs(0.1 * traj.u[0, preds["multiscale"].score_index])
    assert np.all(e >= d)
    assert s.crps == pytest.approx(np.mean(e - 0.5 * d), rel=1e-12)
    assert s.spread_skill == pytest.approx(np.sqrt(3) * d / np.sqrt(np.mean(e ** 2)), rel=1e-12)


def test_metrics_json_and_report_table_round_trip(tmp_path):
    pytest.importorskip("matplotlib")
    traj = _truth()
    preds = _predictions(traj)
    scores = {m: score_prediction(p, traj.u) for m, p in preds.items()}
    result = EvaluationResult(scores=scores, meta={"backend": "torch", "split": "test", "data": "x.npz",
                                                   "n_traj": 2, "n_t": 21, "n_score": 5, "notes": [],
                                                   "training_time_s": {"multiscale": 12.5},
                                                   "forecast_time_s": {"multiscale": 1.0, "dns": 0.5}})
    path = write_report(result, preds, traj, tmp_path / "rep")
    assert path == tmp_path / "rep" / "report.md" and result.report_path == path
    metrics = json.loads(result.to_json())          # strict JSON: NaN became null
    assert metrics["nrmse"]["multiscale"] == pytest.approx(10.0)
    # the paper's pooled relative error: 10 % at every (trajectory, time) pair for 1.1 * truth
    assert metrics["relative_error"]["multiscale"]["mean"] == pytest.approx(10.0, rel=1e-12)
    assert metrics["relative_error"]["multiscale"]["std"] == pytest.approx(0.0, abs=1e-12)
    eps = 100 * 0.2 * np.sqrt(32) / np.linalg.norm(traj.u[:, :, 0], axis=-1)     # offset 0.2: per frame
    assert metrics["relative_error"]["dns"]["mean"] == pytest.approx(eps.mean(), rel=1e-12)
    assert metrics["relative_error"]["dns"]["std"] == pytest.approx(eps.std(), rel=1e-12)
    assert metrics["spread_skill"]["dns"] is None
    assert metrics["crps"]["dns"] == pytest.approx(0.2)
    assert metrics["backend"] == "torch" and metrics["report"] == str(path)
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text()) == metrics   # the file is the JSON
    table = parse_metrics_table(path.read_text())
    assert list(table) == ["multiscale", "dns"]
    assert table["multiscale"]["nrmse"] == pytest.approx(10.0, abs=0.005)
    assert table["dns"]["spread_skill"] is None and table["dns"]["training_time_s"] is None
    assert table["multiscale"]["training_time_s"] == pytest.approx(12.5)
    for m in ("multiscale", "dns"):
        assert table[m]["relative_error"] == pytest.approx(metrics["relative_error"][m]["mean"], abs=0.005)
        assert table[m]["relative_error_std"] == pytest.approx(metrics["relative_error"][m]["std"], abs=0.005)
    assert list(table["dns"]) == ["nrmse", "relative_error", "relative_error_std", "crps", "spread_skill",
                                  "forecast_time_s", "training_time_s"]
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert {"error_vs_time.png", "spacetime.png", "spacetime_error.png", "profiles_multiscale.png"} <= set(pngs)
    for name in pngs:
        data = (tmp_path / "rep" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    text = path.read_text()
    for name in pngs:        # every figure is linked from the report
        assert f"]({name})" in text


def test_report_2d_snapshots(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    u = 1.0 + 0.1 * rng.standard_normal((1, 6, 1, 8, 8))
    traj = Trajectories(u=u, t=np.linspace(0, 1, 6), domain=[[0, 1], [0, 1]], boundary=("dirichlet", "dirichlet"))
    idx = score_indices(6, 3)
    preds = {"multiscale": Prediction("multiscale", mean=u * 0.9, std=np.zeros_like(u),
                                      samples=np.stack([u[:, idx] * 0.9] * 2, axis=1), score_index=idx,
                                      wall_time_s=0.1),
             "dns": Prediction("dns", mean=u * 1.2, std=None, samples=None, score_index=idx, wall_time_s=0.1)}
    scores = {m: score_prediction(p, u) for m, p in preds.items()}
    assert scores["multiscale"].nrmse == pytest.approx(10.0, rel=1e-12)
    assert scores["dns"].nrmse == pytest.approx(20.0, rel=1e-12)
    result = EvaluationResult(scores=scores, meta={"notes": ["closure baseline skipped: test"]})
    from pymsde.evaluate import plots
    figs = []
    build = plots.snapshots_figure
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "snapshots_figure", lambda *a, **k: figs.append(build(*a, **k)) or figs[-1])
        path = write_report(result, preds, traj, tmp_path)
    assert (tmp_path / "snapshots.png").stat().st_size > 2000
    text = path.read_text()
    assert "closure baseline skipped" in text and "## Notes" in text
    assert len(figs) == 1 and len(figs[0].axes) == 3 * 4 + 1             # truth + 2 methods x 4 times, one colourbar
    assert figs[0].axes[0].get_ylabel() == "y (nondimensional)"
    assert "8 x 8 points on [0, 1] x [0, 1] (dirichlet, dirichlet)" in text
    assert "observation noise: not recorded" in text and "case: not recorded" in text



def test_report_2d_velocity_draws_every_channel_and_the_vorticity(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = np.linspace(0.0, 2.0, 16), np.linspace(0.0, 1.0, 8)
    X, Y = np.meshgrid(x, y, indexing="ij")
    vel = np.stack([-(Y - 0.5), X - 1.0])                                  # solid-body rotation: vorticity 2
    u = np.stack([vel * (1 + 0.1 * k) for k in range(6)])[None]          # (1, 6, 2, 16, 8)
    traj = Trajectories(u=u, t=np.linspace(0, 1, 6), domain=[[0, 2], [0, 1]], boundary=("dirichlet", "dirichlet"),
                        attrs={"field": "velocity (u, v)"})
    idx = score_indices(6, 3)
    preds = {"dns": Prediction("dns", mean=u * 1.1, std=None, samples=None, score_index=idx, wall_time_s=0.1)}
    result = EvaluationResult(scores={m: score_prediction(p, u) for m, p in preds.items()}, meta={})
    from pymsde.evaluate import plots
    figs = []
    build = plots.vorticity_figure
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "vorticity_figure", lambda *a, **k: figs.append(build(*a, **k)) or figs[-1])
        path = write_report(result, preds, traj, tmp_path)
    for name in ("snapshots_c0.png", "snapshots_c1.png", "vorticity.png"):
        assert (tmp_path / name).stat().st_size > 2000
        assert f"]({name})" in path.read_text()
    assert len(figs) == 1 and len(figs[0].axes) == 2 * 4 + 1              # truth + DNS at 4 times, one colourbar
    np.testing.assert_allclose(np.asarray(figs[0].axes[0].images[0].get_array()), 2.0, atol=1e-12)
    # a 2-channel field that is not a velocity gets no vorticity
    other = Trajectories(u=u, t=traj.t, domain=[[0, 2], [0, 1]], boundary=("dirichlet", "dirichlet"),
                         attrs={"field": "two species"})
    write_report(result, preds, other, tmp_path / "species")
    assert not (tmp_path / "species" / "vorticity.png").exists()
    assert (tmp_path / "species" / "snapshots_c1.png").exists()

def _verdict(text):
    """The report's verdict line (the first line after the title) and the numbers in it."""
    import re

    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "# pymsde evaluation report" and lines[1].startswith("**Verdict:**")
    return lines[1], [float(v) for v in re.findall(r"(\d+\.\d+)", lines[1])]


def _noisy(traj, noise=0.01):
    import dataclasses

    return dataclasses.replace(traj, attrs={**traj.attrs, "noise": noise, "pde": "burgers", "nu": 5e-4})


def test_report_stands_alone_verdict_data_methods_and_no_outside_references(tmp_path):
    pytest.importorskip("matplotlib")
    traj = _noisy(_truth())
    preds = _predictions(traj)
    scores = {m: score_prediction(p, traj.u) for m, p in preds.items()}
    meta = {"split": "test", "data": "x.npz", "n_traj": 2, "n_t": 21, "n_score": 5, "notes": [], "n_samples": 2,
            "coarse_shape": [8], "micro_dim": 3, "split_sizes": {"train": 6, "val": 1, "test": 2}}
    result = EvaluationResult(scores=scores, meta=meta)
    text = write_report(result, preds, traj, tmp_path).read_text()
    m = json.loads(result.to_json())
    line, numbers = _verdict(text)
    ms, dns = m["relative_error"]["multiscale"]["mean"], m["relative_error"]["dns"]["mean"]
    assert ms < dns and "times lower than the best baseline, the coarse DNS (`dns`" in line
    assert numbers == [round(ms, 2), round(dns / ms, 1), round(dns, 2)]          # computed, from the JSON
    # the data: case, equation, split sizes, grid, coarse mesh, times, noise, units
    for want in ("`burgers1d`", "nu = 0.0005", "the `test` split, 2 trajectories", "train 6, val 1, test 2",
                 "32 points on [0, 1] (periodic)", "coarse mesh: 8 cells, 4 fine points per cell",
                 "21 output times per trajectory, t = 0 to 1 in steps of 0.05",
                 "Gaussian, standard deviation 0.01", "every quantity is nondimensional"):
        assert want in text, want
    # methods: a definition for each one present, none for an absent one
    assert "- **multiscale**: the model evaluated" in text and "micro_dim 3" in text
    assert "- **dns**: coarse DNS, an under-resolved simulation" in text and "not a fully resolved" in text
    for absent in ("- **closure**", "- **dmd**", "- **sindy**", "closure", "DMD", "POD-SINDy"):
        assert absent not in text, absent
    # the metrics' formulas, the conclusions, and nothing cited outside the repository
    assert "eps_i(t_k) = 100 ||u_i(t_k) - u_hat_i(t_k)||_2 / ||u_i(t_k)||_2" in text
    assert "nRMSE_i = sqrt(mean_k eps_i(t_k)^2)" in text and "E|X - u| - 1/2 E|X - X'|" in text
    assert "docs/method.md section 7" in text and "METHOD.md" not in text.replace("docs/method.md", "")
    assert "../shared" not in text and "METHOD.md" not in text
    assert "error at t0, before any time step: multiscale 10.00 %" in text        # 1.1 * truth: 10 % at t0
    rms = np.sqrt(np.mean(traj.u[:, :, 0] ** 2, axis=-1))
    assert f"about {100 * 0.01 / rms[:, 0].mean():.2f} % at t0" in text                # the noise floor
    assert "reconstruction floor" in text and "block average on the coarse mesh" in text
    assert "## Notes" not in text                                                # no note applies
    assert list(parse_metrics_table(text)) == ["multiscale", "dns"]


def test_verdict_says_when_a_baseline_wins_or_none_was_run(tmp_path):
    from pymsde.evaluate.render import verdict

    traj = _truth()
    preds = _predictions(traj)
    preds["multiscale"].mean = 1.5 * traj.u                                       # 50 %: worse than the DNS
    scores = {m: score_prediction(p, traj.u) for m, p in preds.items()}
    result = EvaluationResult(scores=scores, meta={"split": "test"})
    m = json.loads(result.to_json())
    ms, dns = m["relative_error"]["multiscale"]["mean"], m["relative_error"]["dns"]["mean"]
    line = verdict(result)
    assert ms > dns and "a baseline does better: the coarse DNS (`dns`) reaches" in line
    assert f"relative error of {ms:.2f} %" in line and f"reaches {dns:.2f} %, {ms / dns:.1f} times lower" in line
    alone = verdict(EvaluationResult(scores={"multiscale": scores["multiscale"]}, meta={"split": "test"}))
    assert alone.endswith("no baseline was run, so there is nothing to compare it with.")


def test_report_plots_share_one_colourbar_label_units_and_call_the_dns_coarse(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import dataclasses

    from pymsde.evaluate import plots

    saved = {}
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.setdefault(Path(path).name, fig) and real_save(fig, path))
    traj = _truth()
    traj = dataclasses.replace(traj, attrs={**traj.attrs, "units": "m/s", "x_units": "m"})
    preds = _predictions(traj)
    scores = {m: score_prediction(p, traj.u) for m, p in preds.items()}
    write_report(EvaluationResult(scores=scores, meta={"notes": []}), preds, traj, tmp_path)
    n = len(preds)
    assert len(saved["spacetime.png"].axes) == (n + 1) + 1           # truth + each method, one shared colourbar
    assert len(saved["spacetime_error.png"].axes) == n + 1           # each method's error, one colourbar
    legend = [tx.get_text() for tx in saved["profiles_dns.png"].axes[0].get_legend().get_texts()]
    assert "coarse DNS" in legend and "forecast mean" not in legend
    legend = [tx.get_text() for tx in saved["profiles_multiscale.png"].axes[0].get_legend().get_texts()]
    assert "multiscale (ensemble mean)" in legend and "mean ± 2σ" in legend
    ax = saved["spacetime.png"].axes[0]
    assert ax.get_xlabel() == "x (m)" and ax.get_ylabel() == "t (nondimensional)"
    assert saved["spacetime.png"].axes[-1].get_ylabel() == "u (m/s)"   # the colourbar's label
    assert saved["error_vs_time.png"].axes[0].get_xlabel() == "t (nondimensional)"
    assert "units: u (m/s), x (m), t (nondimensional)" in (tmp_path / "report.md").read_text()


def test_grid_mismatch_is_a_clear_data_error():
    traj = _truth(n_x=32)
    cfg = SimpleNamespace(fine_shape=(64,), channels=1, boundary=("periodic",), domain=((0.0, 1.0),),
                          n_mu=0, n_f=0, coarse_shape=(8,), micro_dim=5)
    with pytest.raises(DataError, match=r"grid \(32,\) differs from the training grid \(64,\)"):
        check_grid_matches(cfg, traj, "eval.npz", "run runs/a")
    with pytest.raises(DataError, match="boundary"):
        check_grid_matches(SimpleNamespace(**{**vars(cfg), "fine_shape": (32,), "boundary": ("dirichlet",)}), traj)
    with pytest.raises(DataError, match="domain"):
        check_grid_matches(SimpleNamespace(**{**vars(cfg), "fine_shape": (32,), "domain": ((0.0, 2.0),)}), traj)
    with pytest.raises(DataError, match="channels"):
        check_grid_matches(SimpleNamespace(**{**vars(cfg), "fine_shape": (32,), "channels": 2}), traj)
    check_grid_matches(SimpleNamespace(**{**vars(cfg), "fine_shape": (32,)}), traj)   # matches: no error


def test_incomplete_run_dir_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        check_run_dir(tmp_path / "nope")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("[model]\ncoarse = [8]\n")
    with pytest.raises(ConfigError, match=r"incomplete: missing checkpoint\.pt"):
        check_run_dir(run)
    (run / "config.toml").unlink()
    (run / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"missing config\.toml"):
        check_run_dir(run)


def test_parse_baselines():
    assert parse_baselines("closure,dns") == ("closure", "dns")
    assert parse_baselines(" DNS ") == ("dns",)
    assert parse_baselines("none") == () and parse_baselines("") == ()
    assert parse_baselines(None) == "auto" == parse_baselines(" Auto ")     # resolved against run and data
    assert parse_baselines("sindy, dmd,closure,dns,dmd") == ("sindy", "dmd", "closure", "dns")
    with pytest.raises(ConfigError, match="unknown baseline 'dsn'") as err:
        parse_baselines("closure,dsn")
    msg = str(err.value)
    assert "closure,dns,dmd,sindy" in msg and "'auto' (the default: closure,dns,dmd" in msg and "\n" not in msg


def test_cli_help_lists_the_four_baselines_and_the_default():
    import argparse

    from pymsde.cli import evaluate as cli_evaluate
    from pymsde.evaluate.report import AUTO_BASELINES, BASELINES, DEFAULT_BASELINES, METHOD_ORDER

    assert BASELINES == ("closure", "dns", "dmd", "sindy") and DEFAULT_BASELINES == "auto"
    assert AUTO_BASELINES == ("closure", "dns", "dmd")
    assert METHOD_ORDER == ("multiscale", "closure", "dns", "dmd", "sindy")
    parser = argparse.ArgumentParser(prog="pymsde")
    cli_evaluate.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "RUN", "--data", "d.npz"])
    assert args.baselines is None and parse_baselines(args.baselines) == DEFAULT_BASELINES
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["evaluate"]
    text = " ".join(sub.format_help().split())
    assert f"subset of {','.join(BASELINES)}" in text and "(default: auto = closure, dns and dmd where" in text
    assert "pip install pymsde[baselines]" in text


def test_scores_need_two_output_times_and_call_a_diverged_forecast_infinite(tmp_path):
    traj = _truth(n_traj=2, n_t=5)
    idx = score_indices(5, 3)
    one = Prediction("dmd", mean=traj.u[:, :1], std=None, samples=None, score_index=idx, wall_time_s=0.0)
    with pytest.raises(DataError, match=r"1 output time\(s\) per trajectory; expected .* n_t >= 2") as err:
        score_prediction(one, traj.u[:, :1])
    assert "\n" not in str(err.value)
    mean = 1.1 * traj.u
    mean[1, 3:] = np.nan                                   # an integrator that stopped at frame 3
    sindy = Prediction("sindy", mean=mean, std=None, samples=None, score_index=idx, wall_time_s=0.0)
    s = score_prediction(sindy, traj.u)
    assert s.relative_error == np.inf and s.relative_error_std == np.inf and s.relative_error_n_inf == 2
    assert s.nrmse_per_traj[0] == pytest.approx(10.0, rel=1e-12) and s.nrmse_per_traj[1] == np.inf
    assert np.allclose(s.relative_error_per_time[:3], 10.0, rtol=1e-12) and np.all(np.isinf(s.relative_error_per_time[3:]))
    assert s.crps == np.inf and np.isnan(s.spread_skill)
    from pymsde.evaluate.report import divergence_notes
    notes = divergence_notes({"sindy": s})
    assert len(notes) == 1 and notes[0].startswith("sindy: the forecast diverged (2 (trajectory, time) frames")
    result = EvaluationResult(scores={"sindy": s}, meta={"notes": notes})
    m = json.loads(result.to_json())                       # strict JSON: inf became null
    assert m["relative_error"]["sindy"] == {"mean": None, "std": None} and m["nrmse"]["sindy"] is None
    plots = pytest.importorskip("matplotlib") is not None
    dmd_inf = Prediction("dmd", mean=np.where(np.arange(5)[None, :, None, None] >= 2, np.inf, 0.9 * traj.u),
                         std=None, samples=None, score_index=idx, wall_time_s=0.0)
    path = write_report(result, {"sindy": sindy, "dmd": dmd_inf}, traj, tmp_path, plots=plots)
    assert (tmp_path / "error_vs_time.png").stat().st_size > 2000 and (tmp_path / "spacetime.png").is_file()
    row = parse_metrics_table(path.read_text())["sindy"]
    assert row["nrmse"] == row["relative_error"] == row["relative_error_std"] == row["crps"] == np.inf
    assert row["spread_skill"] is None


def test_cli_incomplete_run_dir_exits_2_with_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("")
    rc = main(["evaluate", str(run), "--data", str(tmp_path / "d.npz"), "--json"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("pymsde: error: run directory") and "checkpoint.pt" in err and "\n" not in err


def test_cli_unknown_baseline_exits_2(tmp_path, capsys):
    rc = main(["evaluate", str(tmp_path), "--data", "d.npz", "--baselines", "closure,foo"])
    assert rc == 2 and "unknown baseline 'foo'" in capsys.readouterr().err


def test_initial_coverage_flags_trajectories_outside_the_training_range():
    from pymsde.evaluate.coverage import coverage_notes, initial_coverage

    n_x = 16
    train = np.stack([np.full((1, n_x), a) for a in (1.0, 2.0, 3.0)])   # constant fields: rms = max = a
    spike = np.full((1, n_x), 2.0)
    spike[0, 0] = 5.0                        # rms sqrt((15*4 + 25)/16) = 2.305 inside, max 5 outside
    evaluated = np.stack([np.full((1, n_x), 2.5), np.full((1, n_x), 0.5), np.full((1, n_x), 4.0), spike])
    cov = initial_coverage(train, evaluated)
    rms, mx = cov["statistics"]["rms"], cov["statistics"]["max_abs"]
    assert (rms["train_min"], rms["train_max"]) == (1.0, 3.0)
    assert rms["evaluated"] == pytest.approx([2.5, 0.5, 4.0, np.sqrt(85 / 16)], rel=1e-15)
    assert rms["outside"] == [False, True, True, False]
    assert mx["outside"] == [False, True, True, True]
    assert cov["outside"] == [False, True, True, True]
    notes = coverage_notes(cov)
    assert len(notes) == 3 and notes[0].startswith("evaluated trajectory 1 starts outside")
    assert "rms 0.5 (training 1 to 3)" in notes[0] and "max_abs 0.5 (training 1 to 3)" in notes[0]
    assert "initial max_abs 5 (training 1 to 3)." in notes[2] and "rms" not in notes[2]   # spike: max only
    assert json.loads(json.dumps(cov)) == cov                           # plain JSON types
    with pytest.raises(ValueError, match=r"training fields \(1, 16\) but evaluated fields \(1, 8\)"):
        initial_coverage(train, np.ones((1, 1, 8)))
    # just beyond the range (within 2 % of the training maximum 3): not an extrapolation worth a note
    near = initial_coverage(train, np.stack([np.full((1, n_x), 0.95), np.full((1, n_x), 3.05),
                                             np.full((1, n_x), 3.07)]))
    assert near["outside"] == [False, False, True] and near["tolerance"] == 0.02


def test_bad_dns_attributes_and_an_empty_split_are_data_errors():
    import dataclasses

    from pymsde.evaluate.baselines import dns_prediction
    traj = _truth()
    bad_nu = dataclasses.replace(traj, attrs={**traj.attrs, "nu": "abc"})
    with pytest.raises(DataError, match=r"attrs\['nu'\] = 'abc' \(a coefficient of burgers1d\); expected a number"):
        dns_prediction(bad_nu, (8,))
    listed = dataclasses.replace(traj, attrs={**traj.attrs, "case": ["burgers1d"]})
    with pytest.raises(DataError, match=r"attrs\['case'\] = \['burgers1d'\] has no coarse solver"):
        dns_prediction(listed, (8,))
    assert dns_prediction(traj, (8,)).mean.shape == traj.u.shape          # the good file still runs
    empty = dataclasses.replace(traj, attrs={**traj.attrs, "split": {"test": [0, 1], "val": []}})
    with pytest.raises(DataError, match=r"d.npz: split 'val' is empty"):
        empty.get_split("val", "d.npz")
    assert empty.get_split("test", "d.npz").n_traj == 2


def test_parse_metrics_table_reads_an_older_table_without_the_relative_error_column():
    old = ("| method | nRMSE (%) | CRPS | spread-skill | forecast time (s) | training time (s) |\n"
           "|---|---|---|---|---|---|\n| dns | 16.81 | 0.0061 | n/a | 0.3 | n/a |\n")
    assert parse_metrics_table(old) == {"dns": {"nrmse": 16.81, "crps": 0.0061, "spread_skill": None,
                                                "forecast_time_s": 0.3, "training_time_s": None}}
    with pytest.raises(DataError, match="malformed cell"):
        parse_metrics_table(old.replace("16.81", "abc"))


# ----------------------------------------------------------------------------- evaluate_run, DMD, POD-SINDy

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny Burgers 1-D file (4 trajectories split 2/1/1, 60 points, 21 times) and a model
    trained for one epoch on it (coarse 6, micro 2): structure, not accuracy."""
    from pymsde.data.io import save
    from pymsde.systems import simulate
    from pymsde.training import fit

    out = tmp_path_factory.mktemp("tiny_eval")
    traj = simulate("burgers1d", n_traj=4, seed=0, n_grid=60, n_steps=21, t_end=0.2, progress=False)
    traj = traj.split((2, 1, 1), seed=0)
    save(traj, out / "data.npz")
    fit(traj.get_split("train"), {"coarse_shape": [6], "micro_dim": 2},
        {"epochs": 1, "window": 11, "seed": 0, "progress": False, "checkpoint_every": 0, "validate_every": 0,
         "device": "cpu"}, run_dir=out / "run", data_path=out / "data.npz")
    return out


def test_evaluate_run_on_hdf5_reads_only_what_it_scores(tiny_run, tmp_path, monkeypatch):
    """An HDF5 file stays on disk (the dam break's 6.6 GB): the same scores as the .npz of the same
    data, and no value of the val split (which nothing here fits on) is read; of the training
    split only DMD's trajectory 0 in full and the initial frames (the coverage check)."""
    pytest.importorskip("h5py")
    pytest.importorskip("pydmd")
    from pymsde.data import lazy
    from pymsde.data.io import load, save
    from pymsde.workflows.evaluation import evaluate_run

    data = load(tiny_run / "data.npz")
    save(data, tmp_path / "data.h5")
    reads = []
    original = lazy.LazyTrajectories._read
    monkeypatch.setattr(lazy.LazyTrajectories, "_read",
                        lambda self, i, start, stop, step=1: reads.append((int(self._index[i]), start, stop))
                        or original(self, i, start, stop, step))
    kw = dict(baselines="dmd", n_samples=2, seed=3, plots=False, show_progress=False)
    got = evaluate_run(tiny_run / "run", tmp_path / "data.h5", out=tmp_path / "h5", **kw).metrics()
    want = evaluate_run(tiny_run / "run", tiny_run / "data.npz", out=tmp_path / "npz", **kw).metrics()
    assert got["relative_error"] == want["relative_error"] and got["nrmse"] == want["nrmse"]
    assert got["coverage"] == want["coverage"] and got["split_sizes"] == want["split_sizes"]
    splits = data.splits
    (val,), (test,), train = splits["val"], splits["test"], list(splits["train"])
    assert val not in {i for i, _, _ in reads}
    assert (test, 0, data.n_t) in reads and (train[0], 0, data.n_t) in reads
    assert all(stop - start == 1 for i, start, stop in reads if i == train[1])   # its first frame only


@pytest.mark.slow
def test_evaluate_run_with_dmd_and_sindy(tiny_run, tmp_path):
    for module in ("pydmd", "pysindy", "sklearn"):
        pytest.importorskip(module)
    from pymsde.data.io import load
    from pymsde.evaluate.baselines import dmd_prediction, model_prediction, sindy_prediction
    from pymsde.evaluate.metrics import relative_error_summary
    from pymsde.training.run import load_run
    from pymsde.workflows.evaluation import evaluate_run

    result = evaluate_run(tiny_run / "run", tiny_run / "data.npz", baselines="dmd,sindy", n_samples=4, seed=1,
                          out=tmp_path / "rep", plots=False, show_progress=False)
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m == json.loads(result.to_json())
    assert list(m["relative_error"]) == ["multiscale", "dmd", "sindy"] == list(m["nrmse"])
    for key in ("nrmse", "crps", "spread_skill", "nrmse_per_traj", "forecast_time_s", "training_time_s"):
        assert key in m                                                  # the existing keys stay
    # recompute the predictions (deterministic given the seed) and their pooled relative error
    data = load(tiny_run / "data.npz")
    test, train, val = (data.get_split(s) for s in ("test", "train", "val"))
    model = load_run(tiny_run / "run", which="best").model.eval()
    import torch
    with torch.no_grad():
        preds = {"multiscale": model_prediction(model, test, n_samples=4, seed=1, show_progress=False)}
    preds["dmd"] = dmd_prediction(test, train, 6)
    preds["sindy"] = sindy_prediction(test, train, val, 6)
    for name, pred in preds.items():
        want = relative_error_summary(pred.mean, test.u)               # against the stored observations
        assert want["n"] == 21 and want["n_inf"] == 0
        got = m["relative_error"][name]
        assert np.isfinite(got["mean"]) and got["mean"] > 0 and np.isfinite(got["std"]), name
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-9) and got["std"] == pytest.approx(want["std"], rel=1e-9)
    # the paper's set-up: DMD rank and POD size n_coarse + 5 = 11, SINDy chosen from the 5 x 2 grid
    dmd, sindy = m["baseline_settings"]["dmd"], m["baseline_settings"]["sindy"]
    assert dmd["rank_requested"] == 11 and dmd["tikhonov"] == 0.01
    assert sindy["n_pod"] == 11 and len(sindy["val_scores"]) == 10 and (sindy["n_train"], sindy["n_val"]) == (2, 1)
    val = [np.inf if v["val_relative_error"] is None else v["val_relative_error"] for v in sindy["val_scores"]]
    best = min((v, i) for i, v in enumerate(val))                     # None: a setting that diverged
    assert np.isfinite(best[0])
    assert (sindy["threshold"], sindy["degree"]) == (sindy["val_scores"][best[1]]["threshold"],
                                                   sindy["val_scores"][best[1]]["degree"])
    assert m["spread_skill"]["dmd"] is None and m["spread_skill"]["sindy"] is None
    assert m["training_time_s"]["sindy"] >= 0 and m["crps"]["dmd"] > 0
    table = parse_metrics_table((tmp_path / "rep" / "report.md").read_text())
    assert list(table) == ["multiscale", "dmd", "sindy"]
    for name in table:
        assert table[name]["nrmse"] == pytest.approx(m["nrmse"][name], abs=0.005)
        assert table[name]["relative_error"] == pytest.approx(m["relative_error"][name]["mean"], abs=0.005)
        assert table[name]["relative_error_std"] == pytest.approx(m["relative_error"][name]["std"], abs=0.005)
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "stored, noisy observations" in text and "STLSQ threshold" in text
    assert "- **dmd**: dynamic mode decomposition (pydmd): a linear map of rank 11" in text
    assert "- **sindy**: POD-SINDy (pysindy): 11 POD modes" in text and "DMD starts from the observation" in text
    assert "- **closure**" not in text and "- **dns**" not in text and "METHOD.md" not in text
    assert m["split_sizes"] == {"train": 2, "val": 1, "test": 1} and m["training"]["multiscale"]["steps"] > 0


@pytest.mark.slow
def test_library_baselines_refuse_a_missing_split_before_any_forecast(tiny_run, tmp_path, monkeypatch):
    import dataclasses

    from pymsde.data.io import load, save
    from pymsde.workflows import evaluation

    def no_forecast(*args, **kwargs):
        raise AssertionError("a forecast was made before the input check")

    monkeypatch.setattr(evaluation, "model_prediction", no_forecast)
    data = load(tiny_run / "data.npz")
    splits = data.attrs["split"]
    no_val = dataclasses.replace(data, attrs={**data.attrs, "split": {"train": splits["train"], "test": splits["test"]}})
    save(no_val, tmp_path / "no_val.npz")
    with pytest.raises(DataError) as err:
        evaluation.evaluate_run(tiny_run / "run", tmp_path / "no_val.npz", baselines="dmd,sindy", plots=False)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'no_val.npz'}: no split named 'val'") and "sindy" in msg and "\n" not in msg
    no_train = dataclasses.replace(data, attrs={**data.attrs, "split": {"test": splits["test"]}})
    save(no_train, tmp_path / "no_train.npz")
    with pytest.raises(DataError, match=r"no_train.npz: no split named 'train'.*the dmd baseline fits on the train"):
        evaluation.evaluate_run(tiny_run / "run", tmp_path / "no_train.npz", baselines="dmd", plots=False)


def test_missing_baseline_package_is_one_line_before_any_work(tmp_path, monkeypatch):
    import sys

    from pymsde.workflows.evaluation import evaluate_run

    monkeypatch.setitem(sys.modules, "pydmd", None)
    # the run directory does not even exist: the package check comes first
    with pytest.raises(ConfigError, match=r"DMD baseline \(dmd\) needs the optional package 'pydmd'") as err:
        evaluate_run(tmp_path / "no_run", tmp_path / "no.npz", baselines="closure,dmd")
    assert "pip install pymsde[baselines]" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "pysindy", None)
    with pytest.raises(ConfigError, match=r"POD-SINDy baseline \(sindy\) needs the optional package 'pysindy'"):
        evaluate_run(tmp_path / "no_run", tmp_path / "no.npz", baselines="sindy")
    with pytest.raises(ConfigError, match="not found"):                  # default baselines: no such check
        evaluate_run(tmp_path / "no_run", tmp_path / "no.npz")


def test_cli_missing_split_and_package_exit_2_with_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    import dataclasses
    import sys

    from pymsde.data.io import load, save

    data = load(tiny_run / "data.npz")
    only_test = dataclasses.replace(data, attrs={**data.attrs, "split": {"test": data.attrs["split"]["test"]}})
    save(only_test, tmp_path / "only_test.npz")
    rc = main(["evaluate", str(tiny_run / "run"), "--data", str(tmp_path / "only_test.npz"), "--baselines",
               "sindy", "--no-plots", "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("pymsde: error: ") and "no split named 'train'" in err and "\n" not in err
    monkeypatch.setitem(sys.modules, "pydmd", None)
    rc = main(["evaluate", str(tiny_run / "run"), "--data", str(tiny_run / "data.npz"), "--baselines", "dmd"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "pip install pymsde[baselines]" in err and "\n" not in err


def test_an_ensemble_that_cannot_fit_is_refused_before_forecasting(tiny_run, tmp_path, capsys):
    """evaluate --n-samples 1e8: one line with the memory it would need, in well under a second."""
    import time

    from pymsde.cli import main

    start = time.perf_counter()
    rc = main(["evaluate", str(tiny_run / "run"), "--data", str(tiny_run / "data.npz"), "--n-samples",
               "100000000", "--baselines", "none", "--no-plots", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "forecast ensembles of 100000000 members" in err and "would need" in err and "lower --n-samples" in err
    assert time.perf_counter() - start < 5.0
    assert not (tmp_path / "ev").exists()


def _no_case(traj):
    import dataclasses

    return dataclasses.replace(traj, attrs={k: v for k, v in traj.attrs.items() if k != "case"})


def test_auto_baselines_skip_what_cannot_run_and_name_why(tiny_run, tmp_path, monkeypatch):
    """The default (auto): own data without a PDE get no DNS (a note says why), DMD when pydmd is
    installed, closure only from a matching run; nothing of this is an error."""
    from pymsde.data.io import load
    from pymsde.workflows.evaluation import auto_baselines

    data = load(tiny_run / "data.npz")
    notes: list[str] = []
    names = auto_baselines(_no_case(data), notes)
    assert "dns" not in names and any(n.startswith("dns baseline skipped: the data do not name their PDE")
                                      for n in notes)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "pydmd" else object())
    notes = []
    assert auto_baselines(data, notes) == ("closure", "dns")
    assert notes == ["dmd baseline skipped: pydmd is not installed (pip install pymsde[baselines])"]


def test_a_sibling_closure_run_of_other_data_is_skipped_by_default_and_refused_when_asked(tiny_run, tmp_path):
    """A folder 'closure' next to the run that was trained on another data file is not this run's
    baseline: left out (with a note naming it) by default, refused when --closure-run names it."""
    from pymsde.data.io import load, save
    from pymsde.training import fit
    from pymsde.workflows.evaluation import evaluate_run

    data = load(tiny_run / "data.npz")
    other = tmp_path / "other.npz"
    save(data.split((2, 1, 1), seed=5), other)              # same grid, other file (another SHA-256)
    exp = tmp_path / "exp"
    for name, micro, path in (("multiscale", 1, tiny_run / "data.npz"), ("closure", 0, other)):
        fit(data.get_split("train"), {"coarse_shape": [6], "micro_dim": micro},
            {"epochs": 1, "window": 11, "seed": 0, "progress": False, "checkpoint_every": 0, "validate_every": 0,
             "device": "cpu"}, run_dir=exp / name, data_path=path)
    result = evaluate_run(exp / "multiscale", tiny_run / "data.npz", baselines=None, n_samples=2, plots=False,
                          show_progress=False, out=tmp_path / "rep")
    notes = result.meta["notes"]
    assert "closure" not in result.scores and result.meta["closure_run"] is None
    assert any(n.startswith(f"closure baseline skipped: the run {exp / 'closure'}") and "another data file" in n
               for n in notes)
    with pytest.raises(ConfigError, match=r"closure run .*closure: it was trained on another data file") as err:
        evaluate_run(exp / "multiscale", tiny_run / "data.npz", baselines="closure", n_samples=2, plots=False,
                     show_progress=False, out=tmp_path / "rep2")
    assert "\n" not in str(err.value)
    # the matching closure run is used, and named
    fit(data.get_split("train"), {"coarse_shape": [6], "micro_dim": 0},
        {"epochs": 1, "window": 11, "seed": 0, "progress": False, "checkpoint_every": 0, "validate_every": 0,
         "device": "cpu"}, run_dir=tmp_path / "ok_closure", data_path=tiny_run / "data.npz")
    result = evaluate_run(exp / "multiscale", tiny_run / "data.npz", closure_run=tmp_path / "ok_closure",
                          baselines="closure", n_samples=2, plots=False, show_progress=False, out=tmp_path / "rep3")
    assert "closure" in result.scores
    assert f"closure baseline: the run {tmp_path / 'ok_closure'}" in result.meta["notes"]


def test_score_steps_cuts_the_evaluated_split_only(tiny_run, tmp_path):
    """evaluate_run(score_steps=n): the forecasts and scores cover the first n times of the test
    trajectories; DMD is fitted on the whole training trajectory (the paper's wave 1-D rule)."""
    pytest.importorskip("pydmd")
    from pymsde.data.io import load
    from pymsde.evaluate.baselines import dmd_prediction
    from pymsde.evaluate.metrics import relative_error_summary
    from pymsde.workflows.evaluation import evaluate_run

    result = evaluate_run(tiny_run / "run", tiny_run / "data.npz", baselines="dmd", n_samples=2, plots=False,
                          show_progress=False, out=tmp_path / "rep", score_steps=7)
    assert result.meta["n_t"] == 7 and result.meta["score_steps"] == 7
    data = load(tiny_run / "data.npz")
    test, train = data.get_split("test"), data.get_split("train")
    n_coarse = 6
    cut = test.subset(slice(None))
    import dataclasses
    cut = dataclasses.replace(cut, u=cut.u[:, :7], t=cut.t[:, :7])
    pred = dmd_prediction(cut, train, n_coarse)                      # fitted on all 21 training times
    want = relative_error_summary(pred.mean, cut.u)
    got = result.metrics()["relative_error"]["dmd"]
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)
    with pytest.raises(ConfigError, match=r"score_steps = 1; expected an integer >= 2"):
        evaluate_run(tiny_run / "run", tiny_run / "data.npz", baselines="none", score_steps=1, plots=False)


def test_coverage_of_data_split_in_time_compares_with_every_training_frame():
    """One trajectory split in time (the cylinder): the test interval starts at a state the
    training windows cover (its amplitude lies between the train frames' amplitudes) although
    it differs from the trajectory's first frame, so there is no extrapolation note; a state
    outside every train frame still gets one."""
    from pymsde.data.trajectories import Trajectories
    from pymsde.evaluate.coverage import coverage_notes
    from pymsde.workflows.evaluation import _initial_coverage

    n_t, n_x = 40, 16
    amp = np.linspace(1.0, 2.0, n_t)                    # grows in time: frame 0 is the smallest
    u = (amp[:, None, None] * np.sin(2 * np.pi * np.arange(n_x) / n_x))[None]   # (1, n_t, 1, n_x)
    def make(u):
        return Trajectories(u=u, t=np.linspace(0, 1, n_t)[None], domain=[[0.0, 1.0]], boundary=["periodic"],
                            attrs={"time_split": {"train": [0, 30], "val": [30, 35], "test": [35, 40]}})
    inside = u.copy()
    inside[0, 35] = inside[0, 10]                      # the test start equals a train frame, not frame 0
    traj = make(inside)
    cov = _initial_coverage(traj, traj.get_split("test"), "test")
    rms = cov["statistics"]["rms"]
    assert rms["train_max"] / rms["train_min"] == pytest.approx(amp[29] / amp[0])   # frames 0-29, not frame 0
    assert coverage_notes(cov) == []
    outside = u.copy()
    outside[0, 35] *= 3.0                              # 3x larger than any train frame
    traj = make(outside)
    assert len(coverage_notes(_initial_coverage(traj, traj.get_split("test"), "test"))) == 1
