"""Named training recipes: :data:`RECIPES` and :func:`recipe` (a :class:`TrainConfig` per name).

- ``"reference"``: the earlier recipe pymsde was built to (docs/method.md
  section 6), i.e. the :class:`TrainConfig` defaults, pinned here so that the name keeps its
  meaning if a default changes: windows of 128, 10 stratified quadrature times, one sample,
  Adam 1e-3 decayed smoothly by 0.9 per 1000 steps, a 5000-step KL ramp, the
  ``"per_dataset"`` balance, 100 epochs. Every model trains from scratch.
- ``"final-paper"``: the final paper's recipe (FINAL_PAPER.md sections 1.1-1.4, read from
  ``ailersic/multiscale-visde`` at c45b02b); each value's source is in
  ``RECIPES["final-paper"].sources``. The implicit-scale model (``micro_dim = 0``) trains from
  scratch at lr 1e-3; a warm-started model (:mod:`pymsde.model.warm_start`) trains at 1e-4
  (``recipe("final-paper", warm=True)``), its schedules restarting at step 0.

Per-case settings of the final paper (epochs, validation period) are in
:data:`FINAL_PAPER_CASES` and applied with ``recipe("final-paper", case="kdv1d")``.
Keyword overrides win over everything (``recipe("final-paper", epochs=3)``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from pymsde.training.config import TrainConfig
from pymsde.util.errors import ConfigError

_FP = "FINAL_PAPER.md"


@dataclass(frozen=True)
class Recipe:
    """One named recipe.

    Attributes:
        name: the key in :data:`RECIPES`.
        summary: one line.
        fields: :class:`TrainConfig` fields the recipe sets (the rest keep their defaults).
        warm_fields: further changes for a warm-started stage (``recipe(..., warm=True)``).
        sources: field name -> where its value comes from.
        residual_per_window: the residual balance is ``1 / window`` (it follows an overridden
            ``window`` unless ``residual_scale`` is overridden too).
        cases: case name -> per-case fields (``recipe(..., case=...)``).
    """

    name: str
    summary: str
    fields: Mapping[str, Any]
    warm_fields: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    residual_per_window: bool = False
    cases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


#: Per-case training settings of the final paper: epochs, validation period and, where it is not
#: the recipe's 1600, the KL ramp (n_transition). Keys are the simulate cases (swe2d is the paper's
#: shallow_water_2d).
FINAL_PAPER_CASES: dict[str, dict[str, int]] = {
    "kdv1d": {"epochs": 100, "validate_every": 10},      # ER/kdv_1d/utils.py, ER/kdv_1d/train_visde.py
    "wave1d": {"epochs": 50, "validate_every": 5},       # ER/wave_1d/utils.py, ER/wave_1d/train_visde.py
    "burgers2d": {"epochs": 100, "validate_every": 20},  # ER/burgers_2d/utils.py, ER/burgers_2d/train_visde.py
    # FINAL_PAPER.md 5.3: max_epochs 1000 in the config and the run names (the README's prose says
    # 2000), check_val_every_n_epoch 50, n_transition 1700 [ER/cylinder_2d/utils.py, train_visde.py,
    # def_model.py create_latent_sde]
    "cylinder2d": {"epochs": 1000, "validate_every": 50, "beta_steps": 1700},
    # FINAL_PAPER.md 6.3: 20 epochs, validation every 5, n_transition 1800
    # [ER/shallow_water_2d/utils.py, train_visde.py, def_model.py create_latent_sde]
    "swe2d": {"epochs": 20, "validate_every": 5, "beta_steps": 1800},
}

_REFERENCE = Recipe(
    name="reference",
    summary="the earlier reference recipe (the TrainConfig defaults): windows of 128, 10 quadrature times, "
            "5000-step KL ramp, lr 1e-3 x 0.9 per 1000 steps, every model from scratch",
    fields={"epochs": 100, "window": 128, "batch_windows": 1, "n_quad": 10, "n_samples": 1,
            "quadrature": "stratified", "residual_scale": "per_dataset", "lr": 1e-3, "lr_decay": 0.9,
            "lr_decay_steps": 1000, "beta_warmup": 0, "beta_steps": 5000},
    sources={k: "docs/method.md section 6 (the TrainConfig defaults)"
             for k in ("epochs", "window", "batch_windows", "n_quad", "n_samples", "quadrature",
                       "residual_scale", "lr", "lr_decay", "lr_decay_steps", "beta_warmup", "beta_steps")},
)

_FINAL_PAPER = Recipe(
    name="final-paper",
    summary="the final paper's recipe: windows of 64 sharing one point, residual at the observation times, "
            "one sample, lr 1e-3 x 0.9^(step/2000), 1600-step KL ramp; warm-started stages at lr 1e-4",
    fields={"epochs": 100, "window": 64, "batch_windows": 1, "n_quad": 0, "n_samples": 1, "lr": 1e-3,
            "lr_decay": 0.9, "lr_decay_steps": 2000, "beta_warmup": 0, "beta_steps": 1600,
            "residual_scale": 1.0 / 64, "validate_every": 10},
    warm_fields={"lr": 1e-4},
    sources={
        "epochs": f"{_FP} 1.1 and 2.3 (kdv and burgers_2d: 100; wave_1d: 50, see FINAL_PAPER_CASES) "
                  "[ER/*/utils.py max_epochs]",
        "window": f"{_FP} 1.1, 1.3: n_batch = 64, contiguous windows sharing one point with the next "
                  "[ER/*/utils.py CaseConfig; VI/data.py MultiTemporalSampler]",
        "batch_windows": f"{_FP} 1.3: one minibatch is one window of one trajectory [VI/data.py]",
        "n_quad": f"{_FP} 1.3: n_tquad = 0, the residual at the window's own time stamps "
                  "[ER/*/def_model.py create_latent_sde; VI/sde.py _residual_norm]",
        "n_samples": f"{_FP} 1.3: n_samples = 1 [ER/*/def_model.py create_latent_sde]",
        "lr": f"{_FP} 1.1, 1.4: lr = 1e-3 from scratch; 1e-4 for warm-started n_eta >= 1 "
              "[ER/*/utils.py CaseConfig; ER/*/run_visde.py]",
        "lr_decay": f"{_FP} 1.3: ExponentialLR stepped every iteration, gamma = 0.9^(1/lr_sched_freq) "
                    "[VI/sde.py configure_optimizers]",
        "lr_decay_steps": f"{_FP} 1.1, 1.3: lr_sched_freq = 2000 [ER/*/utils.py CaseConfig]",
        "beta_warmup": f"{_FP} 1.3: n_warmup = 0 [ER/*/def_model.py create_latent_sde]",
        "beta_steps": f"{_FP} 1.3: n_transition = 1600 for kdv, wave and burgers_2d (1700 cylinder, "
                      "1800 shallow water) [ER/*/def_model.py create_latent_sde]",
        "residual_scale": f"derived from {_FP} 1.3: the paper divides the likelihood (already a mean over the "
                          "dim_x fine values, visde-lib likelihood.py) and the residual T * mean_k r(t_k) both by "
                          "n_batch * dim_x; with pymsde's likelihood a mean per fine value this is c = 1 / window "
                          "(the loss times dim_x, which Adam does not see). The vendored likelihood.py was not "
                          "found: without its division by dim_x the factor would be 'elbo'",
        "validate_every": f"{_FP} 1.3: check_val_every_n_epoch (kdv 10, wave 5, burgers_2d 20) "
                          "[ER/*/train_visde.py]",
    },
    residual_per_window=True,
    cases=FINAL_PAPER_CASES,
)

#: The recipes by name.
RECIPES: dict[str, Recipe] = {r.name: r for r in (_REFERENCE, _FINAL_PAPER)}


def get_recipe(name: str) -> Recipe:
    """The :class:`Recipe` called ``name``; ConfigError listing the names for an unknown one."""
    try:
        return RECIPES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"recipe {name!r}: unknown; expected one of {', '.join(RECIPES)}") from None


def recipe_fields(name: str, *, case: str | None = None, warm: bool = False, **overrides: Any) -> dict[str, Any]:
    """The TrainConfig fields a recipe sets (its fields < the case's < the warm stage's < ``overrides``).

    Raises:
        ConfigError: unknown recipe, or a case the recipe has no settings for.
    """
    r = get_recipe(name)
    out = dict(r.fields)
    if case is not None:
        if case not in r.cases:
            have = ", ".join(r.cases) if r.cases else "none"
            raise ConfigError(f"recipe {name!r}: no settings for case {case!r}; expected one of: {have}")
        out.update(r.cases[case])
    if warm:
        out.update(r.warm_fields)
    out.update(overrides)
    if r.residual_per_window and "residual_scale" not in overrides:
        out["residual_scale"] = 1.0 / int(out["window"])
    return out


def recipe(name: str, *, case: str | None = None, warm: bool = False, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of recipe ``name`` (see the module docstring), validated.

    Args:
        name: a key of :data:`RECIPES` (``"reference"``, ``"final-paper"``).
        case: apply the recipe's per-case settings (final paper: epochs, validation period).
        warm: the settings of a warm-started stage (final paper: lr 1e-4).
        **overrides: any TrainConfig field; wins over the recipe.

    Raises:
        ConfigError: unknown recipe or case (one line listing the names), an unknown field or
            an impossible value (named).
    """
    fields = recipe_fields(name, case=case, warm=warm, **overrides)
    config = TrainConfig.from_dict(fields, source=f"recipe {name!r}")
    config.validate()
    return config


def describe(name: str) -> list[str]:
    """Markdown lines ``- field = value: source`` for the recipe's values (docs, the benchmark JSON)."""
    r = get_recipe(name)
    lines = [f"- {k} = {r.fields[k]!r}: {r.sources.get(k, 'pymsde')}" for k in r.fields]
    lines += [f"- warm-started stage: {k} = {v!r}: {r.sources.get(k, 'pymsde')}" for k, v in r.warm_fields.items()]
    return lines


#: Step budget of :func:`for_data` when epochs are not given: at least / at most this many steps.
MIN_STEPS, MAX_STEPS = 2000, 20000
#: :func:`for_data`: the KL ramp ends by this fraction of the run; the learning rate decays by
#: ``lr_decay`` this many times over the run (the reference: 0.9 per 1000 of the demo's 4000 steps).
BETA_FRACTION, LR_DECAYS_PER_RUN = 0.25, 4


def _windows_per_epoch(n_traj: int, n_t: int, window: int, batch_windows: int) -> int:
    from pymsde.data.windows import window_starts

    return max(1, math.ceil(n_traj * len(window_starts(n_t, window)) / batch_windows))


def for_data(n_traj: int, n_t: int, given: Mapping[str, Any] | None = None, *,
             drift_linear: bool = False) -> tuple[dict[str, Any], list[str]]:
    """TrainConfig fields for a training set of ``n_traj`` trajectories of ``n_t`` times.

    The defaults of :class:`TrainConfig` are the reference recipe, sized for the demo's data
    (8 trajectories x 1001 times: 4000 steps). On other data they can be useless: a window
    longer than the trajectories, a 5000-step KL ramp in a 400-step run. Every field not in
    ``given`` (what the user set: command line, config file, checkpoint) is derived instead:

    - ``window``: the default 128, or ``n_t`` when the trajectories are shorter;
    - ``epochs``: 100, raised or lowered so that the run has between :data:`MIN_STEPS` and
      :data:`MAX_STEPS` optimiser steps (unless ``max_steps`` or ``max_minutes`` is given);
    - ``beta_steps``: the KL ramp ends after :data:`BETA_FRACTION` of the run (at most 5000);
    - ``lr_decay_steps``: ``lr`` decays by ``lr_decay`` :data:`LR_DECAYS_PER_RUN` times over the run;
    - ``drift_prefit``: on when the model has the linear drift term (``drift_linear``, which
      :func:`model_for_data` turns on): it starts from the least-squares fit;
    - ``forecast_solver``: ``"heun"``: Euler-Maruyama at the data step amplifies every undamped
      oscillation of a learned drift (by ``(1 + (omega dt)^2)^(1/2)`` a step, ``omega`` its
      frequency), which no stability analysis chose; Heun's amplification there is ``1 + (omega dt)^4 / 8``.

    Returns:
        ``(fields, notes)``: the fields (``given`` included, unchanged) and one line per derived
        or suspicious value (e.g. a given KL ramp that the run never finishes).
    """
    given = dict(given or {})
    base = TrainConfig()
    out = dict(given)
    notes: list[str] = []

    def derive(name: str, value: Any, why: str) -> None:
        out[name] = value
        if value != getattr(base, name):
            notes.append(f"{name} = {value} (default {getattr(base, name)}): {why}")

    if "window" not in given:
        derive("window", min(base.window, int(n_t)), f"the trajectories have {n_t} times")
    window = int(out.get("window", base.window))
    per_epoch = _windows_per_epoch(n_traj, n_t, min(window, n_t), int(out.get("batch_windows", base.batch_windows)))
    if "epochs" not in given and given.get("max_steps") is None and given.get("max_minutes") is None:
        epochs = min(max(base.epochs, math.ceil(MIN_STEPS / per_epoch)), max(1, MAX_STEPS // per_epoch))
        derive("epochs", epochs, f"{per_epoch} steps per epoch; {epochs * per_epoch} steps in all")
    steps = per_epoch * int(out.get("epochs", base.epochs))
    if given.get("max_steps") is not None:
        steps = min(steps, int(given["max_steps"]))
    if "beta_steps" not in given:
        derive("beta_steps", max(1, min(base.beta_steps, round(BETA_FRACTION * steps))),
               f"the KL ramp ends after {BETA_FRACTION:.0%} of the {steps} steps")
    if "lr_decay_steps" not in given:
        derive("lr_decay_steps", max(1, round(steps / LR_DECAYS_PER_RUN)),
               f"lr decays by lr_decay {LR_DECAYS_PER_RUN} times over the {steps} steps")
    if "drift_prefit" not in given and drift_linear:
        derive("drift_prefit", True, "the drift's linear term starts from its least-squares fit to the "
               "coarse-grained data")
    if "forecast_solver" not in given:
        derive("forecast_solver", "heun", "Euler-Maruyama at the data step amplifies the learned drift's "
               "undamped oscillations")
    ramp_end = int(out.get("beta_warmup", base.beta_warmup)) + int(out.get("beta_steps", base.beta_steps))
    if ramp_end > steps and given.get("max_minutes") is None:
        warmup = int(out.get("beta_warmup", base.beta_warmup))
        reached = max(0.0, steps - warmup) / int(out.get("beta_steps", base.beta_steps))
        notes.append(f"the KL weight beta reaches only {reached:.2f} of 1 by the last of the {steps} steps "
                     f"(beta_warmup + beta_steps = {ramp_end}): the run ends before its objective is the ELBO")
    return out, notes


#: :func:`model_for_data`: the initial encoder / decoder variances as a fraction of the data's
#: mean square, and the initial diffusion as a fraction of its rms (per unit time). The
#: reference values (0.018 and 1.31, whatever the data) make the posterior samples the residual
#: is fitted on so noisy on data of unit scale that the drift is attenuated (docs/own_data.md).
VAR_FRACTION, DIFFUSION_FRACTION = 1e-4, 0.05


def model_for_data(given: Mapping[str, Any] | None, u_rms: float) -> tuple[dict[str, Any], list[str]]:
    """ModelConfig architecture fields for your own data, next to :func:`for_data`'s training fields.

    Every field not in ``given`` (what the user set) is derived:

    - ``drift_linear``: on (a linear stencil term, coefficients affine in ``mu``, that the MLP
      corrects): a per-cell MLP fitted on a few trajectories does not carry a linear operator
      beyond their span, the linear term does;
    - ``encoder_var_init``, ``decoder_var_init``: :data:`VAR_FRACTION` times the mean square of
      the data (initial standard deviations of 1 % of its rms);
    - ``diffusion_init``: :data:`DIFFUSION_FRACTION` times the data's rms (sigma is per square root
      of the data's time unit: this assumes trajectories of order one time unit, as the set it was
      measured on, docs/own_data.md; it is an initial value, learned from there).

    Args:
        given: the architecture fields set by the user (command line, config file).
        u_rms: root mean square of the training field (all channels).

    Returns:
        ``(fields, notes)`` as :func:`for_data`.
    """
    from pymsde.model.config import ModelConfig

    given = dict(given or {})
    out = dict(given)
    notes: list[str] = []
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}

    def derive(name: str, value: Any, why: str) -> None:
        if name in given:
            return
        out[name] = value
        notes.append(f"{name} = {value:.3g} (default {defaults[name]:.3g}): {why}" if isinstance(value, float)
                     else f"{name} = {value} (default {defaults[name]}): {why}")

    scale = float(u_rms) if math.isfinite(u_rms) and u_rms > 0 else 1.0
    derive("drift_linear", True, "a linear stencil term the drift MLP corrects (it carries a linear operator "
           "beyond the training trajectories)")
    for name in ("encoder_var_init", "decoder_var_init"):
        derive(name, VAR_FRACTION * scale ** 2, f"standard deviation 1 % of the data's rms {scale:.3g}")
    derive("diffusion_init", DIFFUSION_FRACTION * scale, f"{DIFFUSION_FRACTION:g} x the data's rms per unit time")
    return out, notes


__all__ = ["Recipe", "RECIPES", "FINAL_PAPER_CASES", "get_recipe", "recipe", "recipe_fields", "describe",
           "for_data", "model_for_data", "MIN_STEPS", "MAX_STEPS", "VAR_FRACTION", "DIFFUSION_FRACTION"]
