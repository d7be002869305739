"""Checkpoints, resume, run directories and TOML configuration files."""
import hashlib

import numpy as np
import pytest
import torch

from pymsde.data.io import save
from pymsde.data.trajectories import Trajectories
from pymsde.training import fit, load_run
from pymsde.training.checkpoint import load_checkpoint, save_checkpoint
from pymsde.training.config import TrainConfig, config_to_toml, read_config, write_config
from pymsde.training.run import CHECKPOINT_FILE, read_csv
from pymsde.util.errors import ConfigError, DataError

TINY_MODEL = dict(coarse_shape=(4,), micro_dim=2, drift_hidden=(16,), micro_hidden=(16,), encoder_channels=(2, 4),
                  gp_hidden=(8,))


def tiny_data(n_traj=4, n_t=41, n=40, seed=0):
    """Travelling Gaussian bumps on a periodic grid of ``n`` points, with a little noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    t = np.linspace(0.0, 0.4, n_t)
    c = rng.uniform(0.2, 0.6, n_traj)
    u = 0.5 * np.exp(-((x[None, None] - c[:, None, None] - 0.5 * t[None, :, None]) ** 2) / 0.01)
    u = u + 0.01 * rng.standard_normal(u.shape)
    return Trajectories(u=u[:, :, None], t=t, domain=[[0.0, 1.0]], boundary=("periodic",),
                        attrs={"case": "tiny"})


def tiny_config(**kw):
    base = dict(epochs=2, window=11, batch_windows=2, n_quad=4, lr=3e-3, beta_steps=10, validate_every=1,
                val_forecast_steps=10, val_forecast_samples=2, checkpoint_every=5, log_every=1, progress=False,
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_equals_uninterrupted_run(tmp_path):
    data = tiny_data()
    train, val = data.subset([0, 1, 2]), data.subset([3])
    # 3 trajectories x 4 windows = 12 windows, 2 per step: 6 steps per epoch; stop mid-epoch 2
    cfg = tiny_config(epochs=3)
    full = fit(train, TINY_MODEL, cfg, val=val, run_dir=tmp_path / "full")
    assert full.steps == 18
    part = fit(train, TINY_MODEL, cfg.replace(max_steps=8), val=val, run_dir=tmp_path / "resumed")
    assert part.steps == 8
    resumed = fit(train, None, cfg, val=val, run_dir=tmp_path / "resumed", resume=True)
    assert resumed.steps == 18 and resumed.epochs == 3
    a, b = _params(full.model), _params(resumed.model)
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-6
    # the logs agree too (every term of every step), and the resumed log has no duplicate steps
    cols, rows_a = read_csv(tmp_path / "full" / "log.csv")
    _, rows_b = read_csv(tmp_path / "resumed" / "log.csv")
    assert [r[0] for r in rows_b] == list(range(18))
    ia = cols.index("loss")
    np.testing.assert_allclose([r[ia] for r in rows_a], [r[ia] for r in rows_b], rtol=1e-6)
    # a model that has trained differs from its initialisation (the comparison is not vacuous)
    init = fit(train, TINY_MODEL, cfg.replace(max_steps=0), val=None)
    assert max((_params(init.model)[k] - a[k]).abs().max().item() for k in a) > 1e-3


def test_checkpoint_loads_with_weights_only_and_rebuilds_model(tmp_path):
    data = tiny_data()
    path = tmp_path / "data.npz"
    save(data, path)
    res = fit(data.subset([0, 1, 2]), TINY_MODEL, tiny_config(epochs=1), val=data.subset([3]),
              run_dir=tmp_path / "run", data_path=path)
    state = torch.load(tmp_path / "run" / CHECKPOINT_FILE, weights_only=True)
    for key in ("model_state", "model_config", "train_config", "optimizer", "step", "rng", "epoch", "epoch_pos"):
        assert key in state
    model, configs, meta = load_run(tmp_path / "run")
    assert not model.training
    assert configs["model_config"] == res.model.config
    assert configs["train"] == res.config
    assert configs["model_config"].coarse_shape == (4,) and configs["model_config"].micro_dim == 2
    assert meta["data"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["pymsde_version"] and meta["torch_version"] == torch.__version__
    assert meta["train_time_s"] > 0 and meta["step"] == res.steps
    u = torch.as_tensor(data.u[3, :5], dtype=torch.float32)
    with torch.no_grad():
        m1, _ = res.model.encode(u)
        m2, _ = model.encode(u)
        assert torch.equal(m1, m2)
        assert torch.equal(res.model.decode(m1)[0], model.decode(m2)[0])
        assert torch.equal(res.model.drift(0.1, m1), model.drift(0.1, m2))
    # the best-validation checkpoint loads as well
    best, _, meta_best = load_run(tmp_path / "run", which="best")
    assert meta_best["checkpoint"].endswith("best.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled an arbitrary object",))


def test_load_checkpoint_refuses_pickles_and_foreign_files(tmp_path):
    torch.save({"format": "pymsde-checkpoint", "payload": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(DataError, match="format"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    save_checkpoint(tmp_path / "partial.pt", {"step": 3})
    with pytest.raises(DataError, match="model_state"):
        load_checkpoint(tmp_path / "partial.pt")


def test_run_directory_is_not_overwritten_and_resume_needs_a_checkpoint(tmp_path):
    data = tiny_data()
    cfg = tiny_config(epochs=1, validate_every=0)
    fit(data, TINY_MODEL, cfg, run_dir=tmp_path / "run")
    before = (tmp_path / "run" / CHECKPOINT_FILE).read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(data, TINY_MODEL, cfg, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / CHECKPOINT_FILE).read_bytes() == before
    with pytest.raises(ConfigError, match="nothing to resume"):
        fit(data, None, cfg, run_dir=tmp_path / "empty", resume=True)
    # resuming with a different learning rate would not continue the same run
    with pytest.raises(ConfigError, match="lr"):
        fit(data, None, cfg.replace(lr=1e-2, epochs=2), run_dir=tmp_path / "run", resume=True)


def test_toml_round_trip_is_exact(tmp_path):
    opts = dict(coarse_shape=(8, 8), micro_dim=3, stencil_radius=1, drift_hidden=(64, 32), activation="tanh",
                gp_hidden=(16,), kernel_n_sigma=2.5)
    cfg = TrainConfig(epochs=7, lr=3.3e-4, lr_decay=0.95, residual_scale=0.125, grad_clip=1.5, beta_warmup=10,
                      device="cpu", dtype="float64", progress=False, max_steps=123)
    write_config(tmp_path / "c.toml", opts, cfg)
    o2, c2 = read_config(tmp_path / "c.toml")
    assert o2 == opts and c2 == cfg
    assert c2.lr == 3.3e-4 and c2.residual_scale == 0.125
    # None fields are left out of the file and come back as None
    text = config_to_toml(dict(coarse_shape=(20,)), TrainConfig())
    assert "max_steps" not in text and "grad_clip" not in text
    assert read_config_text(tmp_path, text)[1] == TrainConfig()


def read_config_text(tmp_path, text):
    p = tmp_path / "x.toml"
    p.write_text(text)
    return read_config(p)


@pytest.mark.parametrize("text, match", [
    ("[train]\nepochz = 3\n", "epochz"),
    ("[trian]\nepochs = 3\n", "trian"),
    ("[train]\nepochs = 2.5\n", "integer"),
    ("[train]\nprogress = 1\n", "true or false"),
    ("[model]\ncoarse = [\"a\"]\n", "coarse"),
    ("[train\n", "not valid TOML"),
])
def test_bad_toml_is_refused_with_the_file_and_key(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match) as info:
        read_config_text(tmp_path, text)
    assert "x.toml" in str(info.value) or match == "coarse"


def test_frozen_parameters_stay_frozen_after_resume(tmp_path):
    from pymsde.model import MultiscaleModel

    data = tiny_data()
    torch.manual_seed(0)
    model = MultiscaleModel.build(data.grid, (4,), micro_dim=1, encoder_channels=(2,), drift_hidden=(8,),
                                  micro_hidden=(8,))
    model.kernel.requires_grad_(False)
    k0 = [p.detach().clone() for p in model.kernel.parameters()]
    cfg = tiny_config(epochs=2, validate_every=0)
    fit(data, model, cfg.replace(max_steps=3), run_dir=tmp_path / "run")
    res = fit(data, None, cfg, run_dir=tmp_path / "run", resume=True)
    assert res.steps == 16      # 4 trajectories x 4 windows / 2 per step x 2 epochs
    assert all(torch.equal(a, b) for a, b in zip(k0, res.model.kernel.parameters()))
    assert not any(p.requires_grad for p in res.model.kernel.parameters())
    assert res.model.drift_net.macro_weights[0].requires_grad


def test_resume_refuses_other_data(tmp_path):
    data = tiny_data()
    save(data, tmp_path / "a.npz")
    other = tiny_data(seed=1)
    save(other, tmp_path / "b.npz")
    cfg = tiny_config(epochs=1, validate_every=0)
    fit(data, TINY_MODEL, cfg, run_dir=tmp_path / "run", data_path=tmp_path / "a.npz")
    with pytest.raises(DataError, match="SHA-256"):
        fit(other, None, cfg.replace(epochs=2), run_dir=tmp_path / "run", resume=True, data_path=tmp_path / "b.npz")


def test_resume_refuses_incomplete_checkpoints_and_warns_on_an_old_generator_state(tmp_path, caplog):
    data = tiny_data()
    cfg = tiny_config(epochs=1, validate_every=0)
    fit(data, TINY_MODEL, cfg, run_dir=tmp_path / "run")
    path = tmp_path / "run" / CHECKPOINT_FILE
    good = load_checkpoint(path, for_resume=True)
    assert bytes(good["rng"]["noise"].tolist()) == b"pymsde-keyed-philox4x64-v1" and good["world_size"] == 1
    # an older version's sequential generator state (here a CUDA one, 16 bytes): nothing is restored
    # from it any more (the noise is keyed by step and window), so the run resumes, with a warning
    save_checkpoint(path, {k: v for k, v in good.items() if k not in ("format", "format_version")}
                    | {"rng": {**good["rng"], "noise": torch.zeros(16, dtype=torch.uint8)}})
    with caplog.at_level("WARNING"):
        again = fit(data, None, cfg, run_dir=tmp_path / "run", resume=True)
    assert again.epochs == 1 and "sequential noise generator" in caplog.text
    save_checkpoint(path, {k: v for k, v in good.items() if k not in ("format", "format_version", "rng")})
    load_checkpoint(path)                                   # still a loadable model checkpoint
    with pytest.raises(DataError, match=r"checkpoint.pt: checkpoint lacks \['rng'\].*to resume training"):
        fit(data, None, cfg.replace(epochs=2), run_dir=tmp_path / "run", resume=True)
    # the good checkpoint resumes
    save_checkpoint(path, {k: v for k, v in good.items() if k not in ("format", "format_version")})
    assert fit(data, None, cfg.replace(epochs=2), run_dir=tmp_path / "run", resume=True).epochs == 2


def test_positional_inputs_round_trip_and_older_checkpoints_read_as_off(tmp_path):
    data = tiny_data()
    res = fit(data.subset([0, 1, 2]), dict(TINY_MODEL, positional_inputs=True), tiny_config(epochs=1), val=None,
              run_dir=tmp_path / "pos")
    model, configs, _ = load_run(tmp_path / "pos")
    assert configs["model_config"].positional_inputs and model.drift_params().positional
    z = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        assert torch.equal(res.model.drift(0.1, z), model.drift(0.1, z))
    # a checkpoint written before the field existed: its model_config has no such key
    fit(data.subset([0, 1, 2]), TINY_MODEL, tiny_config(epochs=1), val=None, run_dir=tmp_path / "old")
    path = tmp_path / "old" / CHECKPOINT_FILE
    state = load_checkpoint(path)
    new, _, _ = load_run(tmp_path / "old")
    del state["model_config"]["positional_inputs"]
    state = {k: v for k, v in state.items() if k not in ("format", "format_version")}
    save_checkpoint(path, state)
    old, configs, _ = load_run(tmp_path / "old")
    assert not configs["model_config"].positional_inputs and not old.drift_params().positional
    with torch.no_grad():
        assert torch.equal(old.drift(0.1, z), new.drift(0.1, z))
