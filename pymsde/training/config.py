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

import codecs
import dataclasses
import math
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

import tomli_w

from pymsde.util.atomic import atomic_write_text
from pymsde.util.errors import ConfigError, check_readable_file, check_seed
from pymsde.util.options import coerce, from_mapping, option

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

RESIDUAL_SCALES = ("per_dataset", "elbo")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
QUADRATURES = ("stratified", "midpoint")
#: SDE schemes of a run's forecasts (:mod:`pymsde.sde.solvers`)
FORECAST_SOLVERS = ("em", "heun", "sra1")


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
    n_quad: int = option(10, "quadrature times per window for the drift-residual integral (0: at the "
                                 "window's own observation times, as the final paper)")
    n_samples: int = option(1, "reparametrized samples per time (likelihood and residual)", flag="--samples")
    loglik_frames: int | None = option(None, "decode only N random observations per window and step (an "
                                       "unbiased likelihood estimate); default: all", type=int)
    encode_stride: int = option(1, "condition the GP posterior on every s-th observation of a window and "
                                "its last (1: all; a cheaper variational family, docs/cost_2d.md)")
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
    seed: int = option(0, "seed of initialisation, window order and noise (0 to 2^63 - 1)")
    device: str = option("auto", "auto (CUDA when available), cpu or cuda", choices=DEVICES)
    dtype: str = option("float32", "floating-point type of the model and data", choices=DTYPES)
    drift_prefit: bool = option(False, "before the first step, fit the drift's linear stencil term by least "
                                "squares on the coarse-grained training data (needs drift_linear in [model])",
                                cli=False)
    forecast_solver: str = option("em", "SDE scheme of the run's forecasts (validation and pymsde evaluate): "
                                  "em (Euler-Maruyama at the data step, the paper's), heun or sra1",
                                  choices=FORECAST_SOLVERS)
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
        _check_int(self.n_quad, "train.n_quad", lo=0)
        _check_int(self.n_samples, "train.n_samples", lo=1)
        if self.loglik_frames is not None:
            _check_int(self.loglik_frames, "train.loglik_frames", lo=1)
        _check_int(self.encode_stride, "train.encode_stride", lo=1)
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
        check_seed(self.seed, "train.seed")
        _check_choice(self.device, "train.device", DEVICES)
        _check_choice(self.dtype, "train.dtype", DTYPES)
        _check_choice(self.forecast_solver, "train.forecast_solver", FORECAST_SOLVERS)

    def to_dict(self) -> dict:
        return plain({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "train config") -> "TrainConfig":
        """From a ``[train]`` table (checked key by key: ConfigError naming ``source``)."""
        d = dict(d) if isinstance(d, Mapping) else d
        names = {f.name: f for f in fields(cls)}
        for k, v in (d.items() if isinstance(d, dict) else ()):
            if k in names:
                checked_value(names[k], v, f"{source}: [train] {k}")
        return from_mapping(cls, d, source, "train")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def resolve_device(name: str):
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA -> ConfigError."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"train.device = {name!r}; expected 'auto', 'cpu' or 'cuda'")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but torch.cuda.is_available() is False (no CUDA device or a "
                          "CPU-only torch); use 'auto' or 'cpu'")
    return torch.device(name)


# ----------------------------------------------------------------------------- memory

def parameters_lower_bound(model_config) -> int:
    """A lower bound of the parameter count of a ``MultiscaleModel`` of ``model_config`` (its
    drift MLPs, encoder CNN and GP MLP: the weight matrices only), from the sizes alone, so
    that an absurd architecture is refused before anything is allocated."""
    c = model_config
    n_cells = math.prod(c.coarse_shape)
    extra = c.n_mu + c.n_f

    def mlp(n_in: int, hidden, n_out: int) -> int:
        widths = [n_in, *hidden, n_out]
        return sum(a * b for a, b in zip(widths[:-1], widths[1:]))

    stencil = c.channels * (2 * c.stencil_radius + 1) ** c.ndim
    total = mlp(stencil + c.micro_dim + extra, c.drift_hidden, c.channels)
    if getattr(c, "drift_linear", False):
        total += c.channels * stencil * (1 + c.n_mu)
    if c.micro_dim:
        total += mlp(c.micro_dim + c.channels * n_cells + 2 + extra, c.micro_hidden, c.micro_dim)
        chans = [c.channels, *c.encoder_channels]
        total += sum(a * b for a, b in zip(chans[:-1], chans[1:])) * c.encoder_kernel ** c.ndim
    return total + mlp(1, c.gp_hidden, 1)


def kernel_bytes_lower_bound(model_config) -> float:
    """A lower bound of the bytes the coarse-graining kernel's index tables take (int64 tap and
    position of every (cell, tap) pair, for the coarse map and its transpose, per axis): a
    huge ``kernel_n_sigma`` or ``kernel_std`` is refused before they are built."""
    c = model_config
    std = c.kernel_std or tuple(float(s) for s in c.factors)
    total = 0.0
    for n, s, sd in zip(c.fine_shape, c.factors, std):
        taps = s + 2 * max(0.0, math.floor(c.kernel_n_sigma * sd - (s - 1) / 2))
        total += 4 * 8.0 * (n // s) * taps
    return total


def memory_needs(config: TrainConfig, model_config, n_params: int, itemsize: int, n_train_values: int,
                 n_val_traj: int = 0, val_steps: int = 0, n_windows: int | None = None) -> list[tuple[float, str, str]]:
    """Lower bounds of the memory a training run needs, as ``(bytes, what, hint)``: the model with
    its gradients and Adam's moments, the training data on the device, one optimiser step
    (the encoded windows, the decoded samples, the residual's quadrature points) and the
    validation forecast. Each is checked against the available memory before any work.
    ``n_windows``: windows per epoch (a batch holds at most that many)."""
    B = config.batch_windows if n_windows is None else min(config.batch_windows, n_windows)
    M, S, Q = config.window, config.n_samples, config.n_quad or config.window
    K = M if config.loglik_frames is None else min(M, config.loglik_frames)
    n_fine = model_config.channels * math.prod(model_config.fine_shape)
    D = model_config.channels * math.prod(model_config.coarse_shape) + model_config.micro_dim
    needs = [(4.0 * n_params * itemsize, f"the model ({n_params:,} parameters or more, with gradients and "
                                         f"Adam's moments)", "lower the hidden widths or encoder channels"),
             (kernel_bytes_lower_bound(model_config), f"the coarse-graining kernel's index tables (kernel_n_sigma "
              f"{model_config.kernel_n_sigma:g}, kernel_std {list(model_config.kernel_std) or 'default'})",
              "lower kernel_n_sigma or kernel_std"),
             (float(n_train_values) * itemsize, f"the training data on the device ({n_train_values:,} values)",
              "train on fewer trajectories"),
             (float(itemsize) * (B * M * n_fine + 3 * S * B * K * n_fine + 4 * S * (K + Q) * B * D),
              f"one training step (train.batch_windows {B} x window {M} (loglik_frames {K}) x n_samples {S} x "
              f"{n_fine:,} fine values; n_quad {Q})", "lower train.n_samples, batch_windows, n_quad or loglik_frames")]
    if n_val_traj and val_steps:
        V = config.val_forecast_samples
        needs.append((float(itemsize) * n_val_traj * (val_steps + 1) * (V * D + 2 * n_fine),
                      f"the validation forecast (train.val_forecast_samples {V} x {n_val_traj} trajectories x "
                      f"{val_steps + 1} times)", "lower train.val_forecast_samples or val_forecast_steps"))
    return needs


# ----------------------------------------------------------------------------- TOML files

#: [model] keys of config files written before the model options were ModelConfig fields
_LEGACY_MODEL_KEYS = {"coarse": "coarse_shape", "micro": "micro_dim", "radius": "stencil_radius"}


#: The largest config file read (a [model] / [train] file is a few hundred bytes; anything this
#: large is not one, e.g. ``--config /dev/zero`` or a data file given by mistake).
MAX_CONFIG_BYTES = 1 << 20


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file; ConfigError naming the file when it is missing, not a regular file,
    too large, not UTF-8 text (Latin-1, UTF-16) or malformed. A UTF-8 byte-order mark is skipped."""
    path = check_readable_file(path, "a TOML config file", ConfigError, max_bytes=MAX_CONFIG_BYTES)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror}); expected a TOML config file") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:2]:
        raise ConfigError(f"{path}: UTF-16 text; a TOML config file is UTF-8: save it as UTF-8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}: Latin-1 "
                          f"or another encoding?); a TOML config file is UTF-8: save it as UTF-8") from None
    try:
        return _toml.loads(text)
    except _toml.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({' '.join(str(err).split())})") from None


def checked_value(f: dataclasses.Field, value: Any, where: str) -> Any:
    """:func:`pymsde.util.options.coerce`, with the values it cannot convert (``inf`` or ``nan``
    for an integer, TOML has both) refused as ConfigError naming ``where`` too."""
    try:
        return coerce(f, value, where)
    except ConfigError:
        raise
    except (OverflowError, ValueError, TypeError):
        raise ConfigError(f"{where} = {value!r}; expected {'integers' if isinstance(value, list) else 'an integer'}"
                          f" (a finite whole number)") from None


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
    return {k: checked_value(arch[k], v, f"{source}: [model] {k}") for k, v in flat.items()}


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
