"""Training configuration: :class:`TrainConfig`, :class:`ModelOptions` and their TOML files.

A run is fully described by two tables, written to the run directory as ``config.toml``::

    [model]                 # how to build the model for the data's grid (ModelOptions)
    coarse = [20]
    micro = 5
    radius = 2

    [train]                 # how to train it (TrainConfig)
    epochs = 100
    window = 128
    ...

Every field can be set from such a file and from the command line (the command line wins).
TOML has no ``None``: optional fields are left out of a file to mean "default", and the
writer leaves out fields whose value is ``None``.

Reading uses :mod:`tomllib` (Python >= 3.11) or ``tomli``; writing uses the tiny writer
below (flat tables of numbers, strings, booleans and lists), so no extra dependency.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from pymsde.util.atomic import atomic_write_text
from pymsde.util.errors import ConfigError

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

RESIDUAL_SCALES = ("per_dataset", "elbo")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
QUADRATURES = ("stratified", "midpoint")


@dataclass
class ModelOptions:
    """How to build a :class:`pymsde.model.MultiscaleModel` for a data set's grid.

    Only ``coarse`` is required; the rest default to the model's own defaults (``None`` =
    "let the model decide"). ``extra`` passes further keyword arguments to
    ``MultiscaleModel.build`` unchanged (anything ``ModelConfig`` accepts).

    Attributes:
        coarse: coarse cells per spatial axis, e.g. ``(20,)`` or ``(8, 8)``; each must divide
            the fine grid.
        micro: microscale dimension ``d_m`` (0 = the closure model).
        radius: stencil radius of the macroscale drift (2 = 5-point stencil in 1-D).
        drift_hidden, micro_hidden: hidden widths of the macro / micro drift MLPs.
        encoder_channels: channels of the microscale encoder CNN.
        activation: activation name of the drift MLPs.
    """

    coarse: tuple[int, ...] = ()
    micro: int = 5
    radius: int = 2
    drift_hidden: tuple[int, ...] | None = None
    micro_hidden: tuple[int, ...] | None = None
    encoder_channels: tuple[int, ...] | None = None
    activation: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coarse = _int_tuple(self.coarse, "model.coarse")
        for name in ("drift_hidden", "micro_hidden", "encoder_channels"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, _int_tuple(v, f"model.{name}"))
        self.extra = dict(self.extra)

    def validate(self) -> None:
        """Refuse impossible sizes (ConfigError naming the field)."""
        if not self.coarse:
            raise ConfigError("model.coarse: no coarse grid given; expected e.g. coarse = [20] (--coarse 20)")
        for c in self.coarse:
            if c <= 0:
                raise ConfigError(f"model.coarse: {list(self.coarse)} has a non-positive size; expected positive cells per axis")
        _check_int(self.micro, "model.micro", lo=0)
        _check_int(self.radius, "model.radius", lo=0)
        for name in ("drift_hidden", "micro_hidden", "encoder_channels"):
            v = getattr(self, name)
            if v is not None and any(h <= 0 for h in v):
                raise ConfigError(f"model.{name}: {list(v)} has a non-positive width; expected positive sizes")

    def build_kwargs(self) -> dict:
        """Keyword arguments for ``MultiscaleModel.build(grid, coarse_shape, **kwargs)``."""
        kw: dict[str, Any] = {"micro_dim": self.micro, "stencil_radius": self.radius}
        for name in ("drift_hidden", "micro_hidden", "encoder_channels", "activation"):
            v = getattr(self, name)
            if v is not None:
                kw[name] = v
        kw.update(self.extra)
        return kw

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return _plain(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "model options") -> "ModelOptions":
        return _from_dict(cls, d, source, table="model")


@dataclass
class TrainConfig:
    """Everything about training except the model architecture (METHOD.md section 6).

    Sizes:
        epochs: passes over the training windows.
        max_steps: stop after this many optimiser steps in total (``None`` = epochs decide).
        max_minutes: stop once this much wall-clock time (minutes, validation included) has
            been spent on the run, resumed parts added up (``None`` = no time budget).
        window: observations per window ``M`` (consecutive windows overlap by one point).
        batch_windows: windows per optimiser step (their ELBO terms are averaged).
        n_quad: quadrature times per window for the drift-residual integral.
        n_samples: reparametrized samples per time (likelihood and residual).
        loglik_frames: decode only this many of a window's observations per step, drawn at
            random (an unbiased estimate of the likelihood term at a fraction of the decoder
            cost; the encoder still sees every observation); ``None`` = all of them.
        quadrature: ``"stratified"`` (one uniform random time in each of ``n_quad`` equal
            bins of the window, a fresh draw every step: unbiased, no aliasing with the
            observation grid) or ``"midpoint"`` (the bin centres, deterministic).

    Objective balance:
        residual_scale: the factor that multiplies the window's residual integral (and the
            weight KL) against the log-likelihood, which is a mean per fine-grid value and
            per observation. ``"per_dataset"`` (reference, METHOD.md section 6): divide by
            the number of observations in the training set. ``"elbo"``: divide by
            ``window * fine values``, which makes the loss the true ELBO per fine value of
            the window. A float: that factor, explicitly.

    Optimiser and schedules (step = optimiser step, counted from 0):
        lr: Adam learning rate at step 0.
        lr_decay, lr_decay_steps: ``lr(step) = lr * lr_decay ** (step / lr_decay_steps)``
            (a smooth per-step exponential decay; reference: 0.9 every 1000 steps).
        beta_warmup, beta_steps: KL annealing, ``beta = 0`` for ``beta_warmup`` steps, then
            rising linearly to 1 over ``beta_steps`` steps (reference: 0 and 5000).
        grad_clip: clip the global gradient norm to this value (``None`` = no clipping).
        weight_decay: Adam's L2 weight decay (0 = none).

    Bookkeeping:
        validate_every: validate every this many epochs (0 = never; always at the end when
            validation data are given).
        val_forecast_steps, val_forecast_samples: length (in data steps) and ensemble size of
            the short validation forecast.
        checkpoint_every: save a checkpoint every this many steps (0 = only at the end; the
            last one is always written).
        log_every: write the ELBO terms of every step to ``log.csv`` in blocks of this many
            steps (one host sync per block); also the stride of the non-finite check.
        seed: seeds the model initialisation, the window order and all noise.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"`` or ``"float64"``.
        progress: show a progress bar (also off when ``PYMSDE_NO_PROGRESS`` is set).
    """

    epochs: int = 100
    max_steps: int | None = None
    max_minutes: float | None = None
    window: int = 128
    batch_windows: int = 1
    n_quad: int = 10
    n_samples: int = 1
    loglik_frames: int | None = None
    quadrature: str = "stratified"
    residual_scale: str | float = "per_dataset"
    lr: float = 1e-3
    lr_decay: float = 0.9
    lr_decay_steps: int = 1000
    beta_warmup: int = 0
    beta_steps: int = 5000
    grad_clip: float | None = None
    weight_decay: float = 0.0
    validate_every: int = 10
    val_forecast_steps: int = 200
    val_forecast_samples: int = 8
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    progress: bool = True

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
        return _plain({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "train config") -> "TrainConfig":
        return _from_dict(cls, d, source, table="train")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------- TOML files

def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file; ConfigError naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _toml.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except _toml.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def read_config(path: str | os.PathLike) -> tuple[ModelOptions, TrainConfig]:
    """Read a ``[model]`` / ``[train]`` TOML file. Missing tables or keys mean defaults.

    Raises ConfigError for a file that does not parse, an unknown table or key (named with
    the file), or a value of the wrong type.
    """
    doc = read_toml(path)
    unknown = set(doc) - {"model", "train"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}; expected [model] and [train]")
    return (ModelOptions.from_dict(doc.get("model", {}), source=str(path)),
            TrainConfig.from_dict(doc.get("train", {}), source=str(path)))


def config_to_toml(model: ModelOptions | Mapping | None, train: TrainConfig | Mapping | None,
                   header: str = "") -> str:
    """The TOML text of a ``[model]`` / ``[train]`` pair (``None`` values left out)."""
    tables = {}
    if model is not None:
        tables["model"] = model.to_dict() if isinstance(model, ModelOptions) else dict(model)
    if train is not None:
        tables["train"] = train.to_dict() if isinstance(train, TrainConfig) else dict(train)
    return dumps_toml(tables, header=header)


def write_config(path: str | os.PathLike, model: ModelOptions | Mapping | None,
                 train: TrainConfig | Mapping | None, header: str = "") -> None:
    """Write :func:`config_to_toml` atomically to ``path``."""
    atomic_write_text(path, config_to_toml(model, train, header))


def dumps_toml(tables: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """A minimal TOML writer: top-level tables of scalars, strings, lists and sub-tables.

    ``None`` values are left out (TOML has no null). Floats keep full precision
    (``repr``), so ``tomllib`` reads back exactly the same numbers.
    """
    out = [f"# {line}" for line in header.splitlines()] if header else []
    for name, table in tables.items():
        if out:
            out.append("")
        _write_table(out, _key(name), table)
    return "\n".join(out) + "\n"


def _write_table(out: list[str], name: str, table: Mapping[str, Any]) -> None:
    out.append(f"[{name}]")
    subtables = []
    for k, v in table.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            if v:  # an empty sub-table says nothing
                subtables.append((k, v))
            continue
        out.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in subtables:
        out.append("")
        _write_table(out, f"{name}.{_key(k)}", v)


def _key(k: str) -> str:
    k = str(k)
    if k and all(c.isalnum() or c in "_-" for c in k):
        return k
    return json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(c in r for c in ".eE") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON escapes are valid TOML basic strings
    if isinstance(v, (list, tuple)):
        if any(x is None for x in v):
            raise ConfigError(f"TOML writer: list {v!r} contains None, which TOML cannot represent")
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"TOML writer: cannot write a value of type {type(v).__name__} ({v!r})")


# ----------------------------------------------------------------------------- helpers

def _plain(d: Mapping[str, Any]) -> dict:
    """Tuples -> lists, recursively (TOML/JSON/torch-weights_only friendly)."""
    def conv(v):
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        return v
    return {k: conv(v) for k, v in d.items()}


def _from_dict(cls, d: Mapping[str, Any], source: str, table: str):
    names = {f.name: f for f in fields(cls)}
    d = dict(d)
    unknown = set(d) - set(names)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} in [{table}]; "
                          f"expected some of {sorted(names)}")
    kwargs = {}
    for k, v in d.items():
        default = names[k].default if names[k].default is not dataclasses.MISSING else None
        kwargs[k] = _coerce(v, default, f"{source}: [{table}] {k}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: [{table}]: {err}") from None


def _coerce(v: Any, default: Any, where: str) -> Any:
    """Check a value read from TOML/CLI against the type of the field's default."""
    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise ConfigError(f"{where} = {v!r}; expected true or false")
        return v
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(v, float):
        if v != int(v):
            raise ConfigError(f"{where} = {v!r}; expected an integer")
        return int(v)
    if isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, list):
        return tuple(v)
    return v


def _int_tuple(v: Any, where: str) -> tuple[int, ...]:
    if isinstance(v, (int,)) and not isinstance(v, bool):
        v = (v,)
    try:
        out = tuple(int(x) for x in v)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} = {v!r}; expected a list of integers") from None
    if any(float(x) != o for x, o in zip(v, out)):
        raise ConfigError(f"{where} = {v!r}; expected integers")
    return out


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
