"""Named training recipes: the reference (the TrainConfig defaults) and the final paper's."""
import json
import math

import pytest

from pymsde.training.config import TrainConfig
from pymsde.training.recipes import FINAL_PAPER_CASES, RECIPES, describe, recipe
from pymsde.training.schedule import lr_at
from pymsde.util.errors import ConfigError


def test_reference_is_todays_defaults():
    assert recipe("reference") == TrainConfig()


def test_final_paper_values():
    c = recipe("final-paper")
    assert (c.window, c.batch_windows, c.n_samples, c.n_quad) == (64, 1, 1, 0)
    assert (c.lr, c.lr_decay, c.lr_decay_steps, c.beta_warmup, c.beta_steps) == (1e-3, 0.9, 2000, 0, 1600)
    assert c.epochs == 100 and c.residual_scale == pytest.approx(1 / 64)
    # the paper's ExponentialLR stepped every iteration: gamma = 0.9 ** (1 / 2000) per step
    gamma = math.exp(math.log(0.9) / 2000)
    assert lr_at(4321, c.lr, c.lr_decay, c.lr_decay_steps) == pytest.approx(1e-3 * gamma ** 4321, rel=1e-12)
    assert recipe("final-paper", warm=True).lr == 1e-4
    assert recipe("final-paper", warm=True).replace(lr=1e-3) == c


def test_cases_overrides_and_the_window_balance():
    assert recipe("final-paper", case="wave1d").epochs == 50
    assert recipe("final-paper", case="kdv1d").validate_every == FINAL_PAPER_CASES["kdv1d"]["validate_every"]
    c = recipe("final-paper", case="wave1d", epochs=3, window=32, warm=True)
    assert (c.epochs, c.window, c.lr) == (3, 32, 1e-4) and c.residual_scale == pytest.approx(1 / 32)
    assert recipe("final-paper", window=32, residual_scale="elbo").residual_scale == "elbo"


def test_the_two_dimensional_cases_of_the_final_paper():
    # FINAL_PAPER.md 4.3, 5.3, 6.3: epochs, validation period, KL ramp (n_transition)
    got = {c: (r.epochs, r.validate_every, r.beta_steps)
           for c, r in ((c, recipe("final-paper", case=c)) for c in ("burgers2d", "cylinder2d", "swe2d"))}
    assert got == {"burgers2d": (100, 20, 1600), "cylinder2d": (1000, 50, 1700), "swe2d": (20, 5, 1800)}
    assert recipe("final-paper", case="cylinder2d", warm=True).lr == 1e-4
    assert recipe("final-paper", case="swe2d", beta_steps=10).beta_steps == 10      # overrides still win


def test_unknown_names_and_bad_values_are_refused():
    with pytest.raises(ConfigError, match="recipe 'paper': unknown; expected one of reference, final-paper"):
        recipe("paper")
    with pytest.raises(ConfigError, match="no settings for case 'cylinder'"):
        recipe("final-paper", case="cylinder")
    with pytest.raises(ConfigError, match="no settings for case 'kdv1d'; expected one of: none"):
        recipe("reference", case="kdv1d")
    with pytest.raises(ConfigError, match="train.lr"):
        recipe("final-paper", lr=-1.0)
    with pytest.raises(ConfigError, match="nosuch"):
        recipe("reference", nosuch=1)


def test_every_final_paper_value_has_a_source():
    r = RECIPES["final-paper"]
    assert set(r.fields) <= set(r.sources)
    assert all("FINAL_PAPER.md" in r.sources[k] for k in r.fields)
    lines = describe("final-paper")
    assert any(line.startswith("- n_quad = 0: FINAL_PAPER.md 1.3") for line in lines)
    assert any(line.startswith("- warm-started stage: lr = 0.0001") for line in lines)


def test_for_data_sizes_the_unset_fields_to_the_data_and_keeps_the_given_ones():
    from pymsde.data.windows import window_starts
    from pymsde.training.recipes import MAX_STEPS, MIN_STEPS, for_data

    # the newcomer's set: 4 training trajectories of 200 times
    fields, notes = for_data(4, 200)
    per_epoch = 4 * len(window_starts(200, 128))                       # 2 windows each
    assert fields["window"] == 128 and fields["epochs"] == -(-MIN_STEPS // per_epoch) == 250
    steps = fields["epochs"] * per_epoch
    assert fields["beta_steps"] == steps // 4 == 500 and fields["lr_decay_steps"] == 500
    assert any(n.startswith("epochs = 250 (default 100)") for n in notes)
    # trajectories shorter than the default window; many of them: the step cap
    fields, _ = for_data(900, 101)
    assert fields["window"] == 101 and fields["epochs"] * 900 <= MAX_STEPS and fields["epochs"] == MAX_STEPS // 900
    # what the user set is kept as given, and a ramp that never finishes is said
    fields, notes = for_data(4, 200, {"epochs": 30, "beta_steps": 5000, "window": 64})
    assert (fields["epochs"], fields["beta_steps"], fields["window"]) == (30, 5000, 64)
    steps = 30 * 4 * len(window_starts(200, 64))
    assert fields["lr_decay_steps"] == round(steps / 4)
    assert notes[-1] == (f"the KL weight beta reaches only {steps / 5000:.2f} of 1 by the last of the {steps} steps "
                         f"(beta_warmup + beta_steps = 5000): the run ends before its objective is the ELBO")
    # a step or time budget given: the epochs are not touched
    assert "epochs" not in for_data(4, 200, {"max_steps": 100})[0]
    assert "epochs" not in for_data(4, 200, {"max_minutes": 1.0})[0]


def test_train_cli_derives_from_the_data_only_without_a_recipe(tmp_path, capsys):
    from pymsde.cli import main
    from pymsde.data.io import save
    from pymsde.systems import simulate
    from pymsde.training.config import read_config

    traj = simulate("burgers1d", n_traj=3, seed=0, n_grid=40, n_steps=15, t_end=0.1, progress=False)
    save(traj.split((2, 1, 0), seed=0), tmp_path / "d.npz")
    rc = main(["train", str(tmp_path / "d.npz"), "--coarse", "4", "--micro", "1", "--out", str(tmp_path / "r"),
               "--max-steps", "3", "--no-progress", "--device", "cpu", "--checkpoint-every", "0"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "pymsde train: window = 15 (default 128): the trajectories have 15 times" in err
    model_cfg, cfg = read_config(tmp_path / "r" / "config.toml")
    assert cfg.window == 15 and cfg.beta_steps == 1 and cfg.epochs == 100        # 3 steps: ramp over 1
    # the model side: the linear drift term, pre-fitted (recorded in the metadata), Heun forecasts
    assert model_cfg["drift_linear"] is True and cfg.drift_prefit and cfg.forecast_solver == "heun"
    assert "pymsde train: drift_linear = True (default False)" in err
    meta = json.loads((tmp_path / "r" / "metadata.json").read_text())
    assert 0 <= meta["drift_prefit"]["relative_error"] < 1 and meta["drift_prefit"]["rows"] == 2 * 13 * 4
    # a warm start grows from that run: it keeps the run's forecast scheme (no derivation)
    rc = main(["train", str(tmp_path / "d.npz"), "--init-from", str(tmp_path / "r"), "--micro", "2", "--out",
               str(tmp_path / "r3"), "--max-steps", "2", "--window", "8", "--no-progress", "--device", "cpu"])
    assert rc == 0 and read_config(tmp_path / "r3" / "config.toml")[1].forecast_solver == "heun"
    rc = main(["train", str(tmp_path / "d.npz"), "--coarse", "4", "--micro", "1", "--out", str(tmp_path / "r2"),
               "--max-steps", "3", "--no-progress", "--device", "cpu", "--recipe", "reference", "--window", "8"])
    assert rc == 0 and "pymsde train:" not in capsys.readouterr().err
    model_cfg, cfg = read_config(tmp_path / "r2" / "config.toml")
    assert cfg.beta_steps == 5000 and cfg.lr_decay_steps == 1000
    assert not model_cfg.get("drift_linear", False) and not cfg.drift_prefit and cfg.forecast_solver == "em"


def test_model_for_data_scales_the_initial_variances_and_keeps_the_given_fields():
    from pymsde.training.recipes import DIFFUSION_FRACTION, VAR_FRACTION, for_data, model_for_data

    fields, notes = model_for_data({"coarse_shape": [16]}, u_rms=2.0)
    assert fields["coarse_shape"] == [16] and fields["drift_linear"] is True
    assert fields["encoder_var_init"] == fields["decoder_var_init"] == pytest.approx(VAR_FRACTION * 4.0)
    assert fields["diffusion_init"] == pytest.approx(DIFFUSION_FRACTION * 2.0)
    assert notes[1] == "encoder_var_init = 0.0004 (default 0.0181): standard deviation 1 % of the data's rms 2"
    fields, notes = model_for_data({"drift_linear": False, "diffusion_init": 0.5}, u_rms=float("nan"))
    assert fields["drift_linear"] is False and fields["diffusion_init"] == 0.5 and len(notes) == 2
    assert fields["encoder_var_init"] == pytest.approx(VAR_FRACTION)            # no usable scale: unit
    # the training side pre-fits only a model with the linear term; the solver is Heun unless given
    assert for_data(4, 200, drift_linear=True)[0]["drift_prefit"] is True
    assert "drift_prefit" not in for_data(4, 200)[0]
    assert for_data(4, 200, {"forecast_solver": "em"})[0]["forecast_solver"] == "em"
