"""Training configuration: :class:`TrainConfig` and the ``config.toml`` of a run.

A run is fully described by two tables, written to the run directory as ``config.toml``::

    [model]                 # the architecture: ModelConfig fields (pymsde.model.config)
    coarse_shape = [20]
    micro_dim = 5
    stencil_radius = 2

    [train]                 # how to train it: TrainConfig fields
    epochs = 100
    window = 128
    ...

Every field can be set from such a file and from the command line (the command line wins);
the flags, help texts and defaults are the fields' own (:func:`pymsde.util.options.option`).
TOML has no ``None``: optional fields are left out of a file to mean "default", and the
writer leaves out fields whose value is ``None``. Reading uses :mod:`tomllib` (or ``tomli``
on Python 3.10), writing ``tomli_w``.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import tomli_w

from pymsde.util.atomic import atomic_write_text
from pymsde.util.errors import ConfigError
from pymsde.util.options import coerce, from_mapping, option

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

RESIDUAL_SCALES = ("per_dataset", "elbo")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
QUADRATURES = ("stratified", "midpoint")


def _residual_scale(v: Any) -> str | float:
    """A command-line ``--residual-scale``: a number when it reads as a finite one, else the name."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return v
    return x if math.isfinite(x) else v


def plain(v: Any) -> Any:
    """Tuples -> lists, recursively (TOML/JSON/torch ``weights_only`` friendly)."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    return v


@dataclass
class TrainConfig:
    """Everything about training except the model architecture (docs/method.md section 6).

    Every field documents itself (its help text, default and command-line flag are the
    field's :func:`~pymsde.util.options.option`; ``pymsde train --help`` lists them). Steps are
    optimiser steps counted from 0. The learning rate follows
    ``lr(step) = lr * lr_decay ** (step / lr_decay_steps)``; the KL weight is 0 for
    ``beta_warmup`` steps, then rises linearly to 1 over ``beta_steps`` steps
    (:mod:`pymsde.training.schedule`).

    ``residual_scale`` balances the window's residual integral (and the weight KL) against
    the log-likelihood, which is a mean per fine-grid value and per observation:
    ``"per_dataset"`` (the reference) divides by the number of observations in the training
    set; ``"elbo"`` by ``window * fine values``, which makes the loss the true ELBO per fine
    value of the window; a float is that factor, explicitly.
    """

    epochs: int = option(100, "passes over the training windows")
    max_steps: int | None = option(None, "stop after this many optimiser steps in total", type=int)
    max_minutes: float | None = option(None, "stop after this many minutes of training (wall clock, resumed "
                                       "parts added up)", type=float)
    window: int = option(128, "observations per window M (consecutive windows share one point)")
    batch_windows: int = option(1, "windows per optimiser step (their ELBO terms are averaged)")
    n_quad: int = option(10, "quadrature times per window for the drift-residual integral")
    n_samples: int = option(1, "reparametrized samples per time (likelihood and residual)", flag="--samples")
    loglik_frames: int | None = option(None, "decode only N random observations per window and step (an "
                                       "unbiased likelihood estimate); default: all", type=int)
    quadrature: str = option("stratified", "quadrature of the residual: a random time per bin, or the bin "
                             "centres", choices=("stratified", "midpoint"))
    residual_scale: str | float = option("per_dataset", "balance of the residual against the likelihood: "
                                         "per_dataset, elbo, or a number", type=_residual_scale)
    lr: float = option(1e-3, "Adam learning rate at step 0")
    lr_decay: float = option(0.9, "learning-rate factor per --lr-decay-steps steps (smooth, per step)")
    lr_decay_steps: int = option(1000, "steps per --lr-decay factor")
    beta_warmup: int = option(0, "steps with KL weight 0 before the ramp")
    beta_steps: int = option(5000, "steps of the linear KL ramp 0 -> 1")
    grad_clip: float | None = option(None, "clip the global gradient norm to this value", type=float)
    weight_decay: float = option(0.0, "Adam's L2 weight decay")
    validate_every: int = option(10, "validate every N epochs (0: only at the end)")
    val_forecast_steps: int = option(200, "length of the validation forecast, in data steps")
    val_forecast_samples: int = option(8, "ensemble size of the validation forecast")
    checkpoint_every: int = option(500, "checkpoint every N steps (0: only at the end)")
    log_every: int = option(10, "read the ELBO terms every N steps (log.csv, divergence check)")
    seed: int = option(0, "seed of initialisation, window order and noise")
    device: str = option("auto", "auto (CUDA when available), cpu or cuda", choices=DEVICES)
    dtype: str = option("float32", "floating-point type of the model and data", choices=DTYPES)
    progress: bool = option(True, "show a progress bar (also off when PYMSDE_NO_PROGRESS is set)", cli=False)

    def validate(self) -> None:
        """Refuse impossible values before any work starts (ConfigError naming the field)."""
        _check_int(self.epochs, "train.epochs", lo=0)
        if self.max_steps is not None:
            _check_int(self.max_steps, "train.max_steps", lo=0)
        if self.max_minutes is not None:
            _check_float(self.max_minutes, "train.max_minutes", positive=True)
        _check_int(self.window, "train.window", lo=2)
        _check_int(self.batch_windows, "train.batch_windows", lo=1)
        _check_int(self.n_quad, "train.n_quad", lo=1)
        _check_int(self.n_samples, "train.n_samples", lo=1)
        if self.loglik_frames is not None:
            _check_int(self.loglik_frames, "train.loglik_frames", lo=1)
        _check_choice(self.quadrature, "train.quadrature", QUADRATURES)
        if isinstance(self.residual_scale, str):
            _check_choice(self.residual_scale, "train.residual_scale", RESIDUAL_SCALES)
        elif not (isinstance(self.residual_scale, (int, float)) and math.isfinite(self.residual_scale)
                  and self.residual_scale >= 0):
            raise ConfigError(f"train.residual_scale: {self.residual_scale!r}; expected "
                              f"{' or '.join(map(repr, RESIDUAL_SCALES))} or a finite number >= 0")
        _check_float(self.lr, "train.lr", positive=True)
        _check_float(self.lr_decay, "train.lr_decay", positive=True)
        if self.lr_decay > 1:
            raise ConfigError(f"train.lr_decay: {self.lr_decay}; expected a factor in (0, 1]")
        _check_int(self.lr_decay_steps, "train.lr_decay_steps", lo=1)
        _check_int(self.beta_warmup, "train.beta_warmup", lo=0)
        _check_int(self.beta_steps, "train.beta_steps", lo=0)
        if self.grad_clip is not None:
            _check_float(self.grad_clip, "train.grad_clip", positive=True)
        _check_float(self.weight_decay, "train.weight_decay", positive=False)
        _check_int(self.validate_every, "train.validate_every", lo=0)
        _check_int(self.val_forecast_steps, "train.val_forecast_steps", lo=0)
        _check_int(self.val_forecast_samples, "train.val_forecast_samples", lo=1)
        _check_int(self.checkpoint_every, "train.checkpoint_every", lo=0)
        _check_int(self.log_every, "train.log_every", lo=1)
        _check_int(self.seed, "train.seed", lo=0)
        _check_choice(self.device, "train.device", DEVICES)
        _check_choice(self.dtype, "train.dtype", DTYPES)

    def to_dict(self) -> dict:
        return plain({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "train config") -> "TrainConfig":
        """From a ``[train]`` table (checked key by key: ConfigError naming ``source``)."""
        return from_mapping(cls, dict(d), source, "train")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------- TOML files

#: [model] keys of config files written before the model options were ModelConfig fields
_LEGACY_MODEL_KEYS = {"coarse": "coarse_shape", "micro": "micro_dim", "radius": "stencil_radius"}


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file; ConfigError naming the file when it is missing, unreadable or malformed."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a TOML config file")
    try:
        with open(path, "rb") as fh:
            return _toml.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except _toml.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None


def model_table(table: Mapping[str, Any], source: str) -> dict:
    """A ``[model]`` table as checked ModelConfig architecture fields (keys of older files renamed).

    Raises:
        ConfigError: a key that is no architecture field, or a value of the wrong type,
            named with ``source``.
    """
    from pymsde.model.config import DATA_FIELDS, ModelConfig

    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [model] is a {type(table).__name__}; expected a table")
    flat = {}
    for k, v in table.items():
        if k == "extra":          # older files: further ModelConfig fields in [model.extra]
            if not isinstance(v, Mapping):
                raise ConfigError(f"{source}: [model.extra] is a {type(v).__name__}; expected a table")
            flat.update(v)
        else:
            flat[_LEGACY_MODEL_KEYS.get(k, k)] = v
    arch = {f.name: f for f in fields(ModelConfig) if f.name not in DATA_FIELDS}
    unknown = sorted(set(flat) - set(arch))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} in [model]; expected some of {sorted(arch)}")
    return {k: coerce(arch[k], v, f"{source}: [model] {k}") for k, v in flat.items()}


def read_config(path: str | os.PathLike) -> tuple[dict, TrainConfig]:
    """Read a ``[model]`` / ``[train]`` TOML file: (ModelConfig architecture fields, TrainConfig).

    Missing tables or keys mean defaults. Raises ConfigError for a file that does not
    parse, an unknown table or key (named with the file), or a value of the wrong type.
    """
    doc = read_toml(path)
    unknown = set(doc) - {"model", "train"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}; expected [model] and [train]")
    return model_table(doc.get("model", {}), str(path)), TrainConfig.from_dict(doc.get("train", {}), source=str(path))


def config_to_toml(model: Mapping | None, train: TrainConfig | Mapping | None, header: str = "") -> str:
    """The TOML text of a ``[model]`` (architecture fields) / ``[train]`` pair; ``None`` values are
    left out (TOML has none: a missing key means the default)."""
    tables = {}
    if model is not None:
        tables["model"] = _drop_none(plain(dict(model)))
    if train is not None:
        tables["train"] = _drop_none(train.to_dict() if isinstance(train, TrainConfig) else plain(dict(train)))
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    return "\n".join(lines) + ("\n" if lines else "") + tomli_w.dumps(tables)


def write_config(path: str | os.PathLike, model: Mapping | None, train: TrainConfig | Mapping | None,
                 header: str = "") -> None:
    """Write :func:`config_to_toml` atomically to ``path``."""
    atomic_write_text(path, config_to_toml(model, train, header))


# ----------------------------------------------------------------------------- helpers

def _drop_none(d: Mapping[str, Any]) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _check_int(v: Any, where: str, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where} = {v!r}; expected an integer >= {lo}")
    if v < lo:
        raise ConfigError(f"{where} = {v}; expected an integer >= {lo}")


def _check_float(v: Any, where: str, positive: bool) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where} = {v!r}; expected a finite number")
    if positive and v <= 0:
        raise ConfigError(f"{where} = {v}; expected a number > 0")
    if not positive and v < 0:
        raise ConfigError(f"{where} = {v}; expected a number >= 0")


def _check_choice(v: Any, where: str, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise ConfigError(f"{where} = {v!r}; expected one of {', '.join(map(repr, choices))}")
