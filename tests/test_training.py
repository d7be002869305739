"""The training loop: schedules, logs, determinism, divergence handling, refused configurations."""
import math

import numpy as np
import pytest
import torch

from pymsde.training import TrainConfig, beta_at, fit, lr_at
from pymsde.training.run import CHECKPOINT_FILE, LOG_COLUMNS, read_csv, read_json
from pymsde.training.checkpoint import load_checkpoint
from pymsde.training.trainer import _diagnose
from pymsde.util.errors import ConfigError, DataError, TrainingDivergedError

from test_checkpoint import TINY_MODEL, tiny_config, tiny_data


def test_beta_schedule_linear_ramp_after_warmup():
    assert beta_at(0) == 0.0
    assert beta_at(2500) == pytest.approx(0.5)
    assert beta_at(5000) == 1.0 and beta_at(10 ** 6) == 1.0
    assert [beta_at(s, ramp=4, warmup=2) for s in range(8)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert beta_at(0, ramp=0) == 1.0


def test_lr_schedule_is_a_per_step_exponential_decay():
    assert lr_at(0) == 1e-3
    assert lr_at(1000) == pytest.approx(0.9e-3, rel=1e-12)
    assert lr_at(3000) == pytest.approx(1e-3 * 0.9 ** 3, rel=1e-12)
    assert lr_at(500) == pytest.approx(1e-3 * math.sqrt(0.9), rel=1e-12)   # smooth, not a staircase
    assert lr_at(10, lr0=2e-3, decay=0.5, decay_steps=10) == pytest.approx(1e-3)


def test_fit_lowers_the_loss_logs_every_term_and_follows_the_schedules(tmp_path):
    data = tiny_data()
    cfg = tiny_config(epochs=6, beta_steps=20, lr_decay=0.5, lr_decay_steps=10, log_every=4)
    res = fit(data.subset([0, 1, 2]), TINY_MODEL, cfg, val=data.subset([3]), run_dir=tmp_path / "run")
    assert res.steps == 36 and res.epochs == 6
    cols, rows = read_csv(tmp_path / "run" / "log.csv")
    assert tuple(cols) == LOG_COLUMNS and len(rows) == 36
    rows = np.asarray(rows)
    np.testing.assert_allclose(rows[:, cols.index("beta")], [beta_at(s, 20) for s in range(36)])
    np.testing.assert_allclose(rows[:, cols.index("lr")], [lr_at(s, 3e-3, 0.5, 10) for s in range(36)])
    loss = rows[:, cols.index("loss")]
    assert np.isfinite(rows).all()
    # loss = -(loglik - beta (residual + kl)) on every step
    ll, r, kl, b = (rows[:, cols.index(k)] for k in ("loglik", "residual", "kl", "beta"))
    np.testing.assert_allclose(loss, -(ll - b * (r + kl)), rtol=1e-5, atol=1e-6)
    assert loss[-6:].mean() < loss[:6].mean() - 0.1
    # validation every epoch: terms, forecast and reconstruction errors
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4, 5, 6]
    for h in res.history:
        assert all(math.isfinite(h[k]) for k in ("val_loss", "val_loglik", "val_residual", "val_nrmse",
                                                  "val_recon_nrmse"))
    assert res.history[-1]["val_loss"] < res.history[0]["val_loss"]
    meta = read_json(tmp_path / "run" / "metadata.json")
    assert meta["status"] == "done" and meta["steps"] == 36 and meta["n_obs_train"] == 3 * 41
    assert meta["residual_factor"] == pytest.approx(1 / (3 * 41))
    _, vrows = read_csv(tmp_path / "run" / "val.csv")
    assert len(vrows) == 6


def test_fit_is_deterministic_for_a_seed():
    data = tiny_data()
    cfg = tiny_config(max_steps=5, validate_every=0)
    a = fit(data, TINY_MODEL, cfg).model.state_dict()
    b = fit(data, TINY_MODEL, cfg).model.state_dict()
    c = fit(data, TINY_MODEL, cfg.replace(seed=1)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    # encode_stride reaches the objective: another variational family, another path
    e = fit(data, TINY_MODEL, cfg.replace(encode_stride=4)).model.state_dict()
    assert any(not torch.equal(a[k], e[k]) for k in a)
    # the seed is the run's own: the caller's global RNG state does not matter and is not touched
    torch.manual_seed(12345)
    before = torch.get_rng_state()
    d = fit(data, TINY_MODEL, cfg).model.state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a[k], d[k]) for k in a)


def test_fit_accepts_a_built_model_and_the_design_doc_argument_order():
    from pymsde.model import MultiscaleModel

    data = tiny_data()
    torch.manual_seed(0)
    model = MultiscaleModel.build(data.grid, (4,), micro_dim=1, encoder_channels=(2,), drift_hidden=(8,),
                                  micro_hidden=(8,))
    res = fit(model, data, tiny_config(max_steps=3, validate_every=0))     # fit(model, data, config)
    assert res.model is model and res.steps == 3
    assert res.model.config.coarse_shape == (4,) and res.model.config.micro_dim == 1


def _count_calls(fn, after, bad):
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        out = fn(*args, **kwargs)
        return bad(out) if calls["n"] > after else out
    return wrapped


def _fresh_model(data):
    from pymsde.model import MultiscaleModel

    torch.manual_seed(0)
    return MultiscaleModel.build(data.grid, (4,), micro_dim=2, encoder_channels=(2, 4), drift_hidden=(16,),
                                 micro_hidden=(16,))


def test_non_finite_residual_is_named_and_the_last_good_checkpoint_kept(tmp_path):
    data = tiny_data()
    model = _fresh_model(data)
    # the drift returns NaN from the 4th step on (one drift call per step without validation)
    model.drift = _count_calls(model.drift, 3, lambda g: g * float("nan"))
    cfg = tiny_config(epochs=5, checkpoint_every=2, validate_every=0)
    with pytest.raises(TrainingDivergedError, match=r"residual became non-finite at step 3") as info:
        fit(data, model, cfg, run_dir=tmp_path / "run")
    msg = str(info.value)
    assert "likely cause" in msg and "train.lr" in msg and "checkpoint" in msg
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)
    assert state["step"] == 2
    assert all(bool(torch.isfinite(v).all()) for v in state["model_state"].values())
    _, rows = read_csv(tmp_path / "run" / "log.csv")
    assert len(rows) == 4 and math.isnan(rows[-1][LOG_COLUMNS.index("residual")])
    assert read_json(tmp_path / "run" / "metadata.json")["status"] == "diverged at step 3"


def test_non_finite_loglik_is_named():
    data = tiny_data()
    model = _fresh_model(data)
    model.decode = _count_calls(model.decode, 2, lambda out: (out[0], out[1] * 0.0))   # zero variance
    with pytest.raises(TrainingDivergedError, match=r"loglik became non-finite at step 2"):
        fit(data, model, tiny_config(epochs=5, validate_every=0))


def test_non_finite_gradient_is_named_with_the_parameter():
    data = tiny_data()
    model = _fresh_model(data)
    steps = {"n": 0}

    def poison(grad):
        steps["n"] += 1
        return grad * float("nan") if steps["n"] > 1 else grad
    model.diffusion_net.raw.register_hook(poison)
    with pytest.raises(TrainingDivergedError, match=r"a parameter gradient .*diffusion_net\.raw.* step 1"):
        fit(data, model, tiny_config(epochs=5, validate_every=0))


def test_diagnosis_points_at_a_constant_field_and_the_data_scale():
    assert "constant" in _diagnose("loglik", 7, 0.0, 1e-3, [])
    assert "rescale" in _diagnose("residual", 7, 5e3, 1e-3, [])


@pytest.mark.parametrize("options, config, match", [
    (dict(coarse_shape=(7,)), {}, "do not divide"),
    (dict(coarse_shape=(4, 4)), {}, "coarse_shape has 2 entries; expected one per axis"),
    (dict(coarse_shape=(4,), micro_dim=-1), {}, "micro_dim = -1; expected >= 0"),
    (dict(coarse_shape=(0,)), {}, "axis 0 has size 0; expected a positive size"),
    (dict(coarse_shape=()), {}, "no coarse grid"),
    (dict(coarse_shape=(4,), drift_hidden=(8, -2)), {}, "drift_hidden"),
    (dict(coarse_shape=(4,)), {"window": 42}, "longer than the training trajectories"),
    (dict(coarse_shape=(4,)), {"window": 1}, "train.window"),
    (dict(coarse_shape=(4,)), {"epochs": -1}, "train.epochs"),
    (dict(coarse_shape=(4,)), {"batch_windows": 0}, "train.batch_windows"),
    (dict(coarse_shape=(4,)), {"n_quad": -1}, "train.n_quad"),
    (dict(coarse_shape=(4,)), {"encode_stride": 0}, "train.encode_stride"),
    (dict(coarse_shape=(4,)), {"lr": -1e-3}, "train.lr"),
    (dict(coarse_shape=(4,)), {"lr_decay": 1.5}, "train.lr_decay"),
    (dict(coarse_shape=(4,)), {"residual_scale": "per_window"}, "train.residual_scale"),
    (dict(coarse_shape=(4,)), {"device": "tpu"}, "train.device"),
    (dict(coarse_shape=(4,)), {"dtype": "float16"}, "train.dtype"),
])
def test_impossible_configurations_are_refused_before_any_work(tmp_path, options, config, match):
    data = tiny_data()
    with pytest.raises(ConfigError, match=match):
        fit(data, options, tiny_config(**config), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_model_that_does_not_fit_the_data_leaves_no_run_directory(tmp_path):
    """The built model's grid (20 points) is checked against the data's (40) before the run
    directory is created: the refusal leaves nothing behind."""
    from pymsde.model import MultiscaleModel

    data = tiny_data()
    small = tiny_data(n=20)
    model = MultiscaleModel.build(small.grid, (4,), micro_dim=1, encoder_channels=(2,), drift_hidden=(8,),
                                  micro_hidden=(8,))
    with pytest.raises(DataError, match=r"training data: grid \(40,\) differs from the training grid \(20,\) of the model"):
        fit(data, model, tiny_config(max_steps=1, validate_every=0), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cuda_without_cuda_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="cuda"):
        fit(tiny_data(), TINY_MODEL, tiny_config(device="cuda"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_validation_data_must_match_the_training_data():
    data = tiny_data()
    other = tiny_data(n=20)
    with pytest.raises(DataError, match="validation data"):
        fit(data, TINY_MODEL, tiny_config(), val=other)


@pytest.mark.slow
def test_short_burgers_run_multiscale_beats_closure():
    """A short training run on a small Burgers 1-D data set: the validation loss falls at every
    validation, and the multiscale model (d_m = 3) forecasts the validation trajectory better
    than the closure model (d_m = 0) trained with the same budget."""
    from pymsde.systems import simulate

    data = simulate("burgers1d", n_traj=5, seed=0, n_grid=200, n_steps=201, progress=False)
    train, val = data.get_split("train"), data.get_split("val")
    cfg = TrainConfig(epochs=8, window=32, lr=3e-3, lr_decay_steps=300, beta_steps=300, validate_every=2,
                      val_forecast_steps=200, progress=False, device="cpu")
    scores = {}
    for micro in (3, 0):
        res = fit(train, dict(coarse_shape=(10,), micro_dim=micro, encoder_channels=(4, 8)), cfg, val=val)
        losses = [h["val_loss"] for h in res.history]
        scores[micro] = res.final["val_nrmse"]
        if micro:
            assert len(losses) == 4 and all(b < a for a, b in zip(losses, losses[1:])), losses
    # measured (seed 0): multiscale ~25 %, closure ~88 % validation forecast nRMSE
    assert scores[3] < 0.6 * scores[0], scores


def test_max_minutes_stops_training_on_the_wall_clock_budget(tmp_path):
    data = tiny_data()
    budget_min = 3.0 / 60                                  # three seconds, setup included
    cfg = tiny_config(epochs=10_000, validate_every=0, checkpoint_every=0, max_minutes=budget_min)
    res = fit(data.subset([0, 1, 2]), TINY_MODEL, cfg, run_dir=tmp_path / "run")
    assert 0 < res.steps < 10_000 * 6                      # the budget, not the epochs, ended it
    # it stops at the first step boundary past the budget (one step of the tiny model is ~ms)
    assert budget_min * 60 <= res.train_time_s < budget_min * 60 + 5.0
    with pytest.raises(ConfigError, match="max_minutes"):
        tiny_config(max_minutes=0).validate()
