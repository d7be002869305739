"""Named training recipes: the reference (the TrainConfig defaults) and the final paper's."""
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
