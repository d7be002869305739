"""Warm start ("augment"): a model with more microscale dimensions built from a trained one.

The final paper trains the implicit-scale model (``micro_dim = 0``) from scratch and builds
each ``micro_dim = k`` model from the trained ``k - 1`` one (FINAL_PAPER.md section 1.4,
``augment_latent_sde`` in ``experiments_refac/*/def_model.py``): every old tensor is copied
into the leading slice of its enlarged tensor, new weights are Xavier-normal, new biases 0,
new encoder log-variances start at the constructor's value (-4 before the softplus), new
micro diffusion entries at -4 (1-D) or one Xavier-normal draw, i.e. N(0, 1), each (2-D);
modules that did not exist (the micro encoder / decoder CNNs and the micro drift at 0 -> k)
get their constructor's initialisation (Xavier-normal weights, zero biases).

What grows, in pymsde's layout (``z = [zM flat, zm]``, ``a`` old and ``b`` new micro dims):

- ``encoder.raw_var`` and ``diffusion_net.raw`` (and ``diffusion_net.mu_map``'s rows): the new
  latent entries are appended;
- ``encoder.micro.linear``: ``b`` output rows (the micro head);
- ``decoder.micro.linear``: ``b`` input columns (the micro part of the decoder);
- ``drift_net.macro_weights[0]``: its input is ``[stencil, pos, zm, mu, f]`` (``pos``: the
  ``2d`` positional inputs with ``positional_inputs``, else none), so ``b - a`` zero-input
  columns are inserted after the old ``zm`` columns (``mu``/``f`` columns move along);
- ``drift_net.micro_weights[0]``: input ``[zm, zM, sin t, cos t, mu, f]``, new ``zm`` columns
  likewise; ``micro_weights[-1]`` / ``micro_biases[-1]``: ``b`` output rows.

Hence, before any training, the new model with its new ``zm`` entries held at 0 has the old
model's macro drift, old micro drift components, decoder mean and encoder means exactly
(new input columns multiply zeros; a micro decoder built new maps ``zm = 0`` to 0 since its
biases are 0 and ``act(0) = 0``).

Every random number comes from an explicit ``torch.Generator``; the global RNG is left as it
was (the new model is constructed inside ``torch.random.fork_rng`` and every tensor that is
not copied whole is then set from the generator).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from pymsde.model.config import ModelConfig, check_data_fits
from pymsde.model.encoder import inverse_softplus
from pymsde.model.multiscale import MultiscaleModel
from pymsde.util.errors import ConfigError, DataError

#: raw (pre-softplus) value of a new micro diffusion entry in 1-D (FINAL_PAPER.md section 1.4)
NEW_DIFFUSION_RAW_1D = -4.0


def _index_maps(name: str, old_shape: torch.Size, cfg: ModelConfig, a: int, b: int) -> list[torch.Tensor | None]:
    """Per axis of parameter ``name``: the new positions of the old entries (None: same axis).

    Returns the maps for the tensors whose shape changes from ``a`` to ``b`` micro dims; an
    empty list for a tensor kept whole (or new).
    """
    d = b - a
    lead = lambda n: torch.arange(n)                                          # noqa: E731
    insert = lambda n, at: torch.cat([torch.arange(at), torch.arange(at, n) + d])  # noqa: E731
    before_zm = cfg.channels * (2 * cfg.stencil_radius + 1) ** cfg.ndim + (2 * cfg.ndim if cfg.positional_inputs else 0)
    n_micro_layers = len(cfg.micro_hidden) + 1
    if name in ("encoder.raw_var", "diffusion_net.raw"):
        return [lead(old_shape[0])]
    if name == "diffusion_net.mu_map":
        return [lead(old_shape[0]), None]
    if name in ("encoder.micro.linear.weight", "encoder.micro.linear.bias"):
        return [lead(old_shape[0])] + [None] * (len(old_shape) - 1)
    if name == "decoder.micro.linear.weight":
        return [None, lead(old_shape[1])]
    if name == "drift_net.macro_weights.0":
        return [None, insert(old_shape[1], before_zm + a)]
    if name.startswith("drift_net.micro_"):
        layer = int(name.rsplit(".", 1)[1])
        last = layer == n_micro_layers - 1
        rows = lead(old_shape[0]) if last else None
        if name.startswith("drift_net.micro_biases"):
            return [rows] if last else []
        cols = insert(old_shape[1], a) if layer == 0 else None
        return [rows, cols] if (rows is not None or cols is not None) else []
    return []


def _fresh_value(name: str, p: torch.Tensor, cfg: ModelConfig, generator: torch.Generator) -> torch.Tensor:
    """The initial value of new entries of parameter ``name`` (shape of ``p``, on the CPU)."""
    out = torch.empty(p.shape, dtype=p.dtype)
    if name == "encoder.raw_var":
        return out.fill_(inverse_softplus(cfg.encoder_var_init))            # -4 at the defaults
    if name == "decoder.raw_var_micro":
        return out.fill_(inverse_softplus(cfg.decoder_var_init))
    if name == "diffusion_net.raw":
        if cfg.ndim == 1:
            return out.fill_(NEW_DIFFUSION_RAW_1D)
        return out.normal_(0.0, 1.0, generator=generator)     # Xavier-normal of a 1 x 1 slice
    if name == "diffusion_net.mu_map" or name.endswith("bias") or ".macro_biases." in name \
            or ".micro_biases." in name:
        return out.zero_()
    if p.dim() >= 2:
        return torch.nn.init.xavier_normal_(out, generator=generator)
    raise ConfigError(f"warm start: no initialisation rule for the new parameter {name!r} of shape "
                      f"{tuple(p.shape)}")


def warm_start(model: MultiscaleModel, micro_dim: int, *, generator: torch.Generator | None = None,
               seed: int = 0) -> MultiscaleModel:
    """A model with ``micro_dim`` microscale dimensions built from the trained ``model``.

    Args:
        model: the trained model (``micro_dim = a``), any device and dtype; left unchanged.
        micro_dim: the new microscale dimension ``b > a``.
        generator: the source of every random number (a CPU generator); default
            ``torch.Generator().manual_seed(seed)``.
        seed: used when no generator is given.

    Returns:
        a new :class:`MultiscaleModel` (config ``model.config`` with ``micro_dim = b``) on
        ``model``'s device and dtype, in train mode (see the module docstring for which
        tensors grow and how the new entries start).

    Raises:
        ConfigError: ``micro_dim`` not an integer larger than ``a`` (one line).
    """
    old_cfg = model.config
    a = int(old_cfg.micro_dim)
    if isinstance(micro_dim, bool) or not isinstance(micro_dim, int) or micro_dim <= a:
        raise ConfigError(f"warm start: micro_dim = {micro_dim!r} is not larger than the trained model's "
                          f"micro_dim = {a}; expected an integer > {a}")
    gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    ref = next(model.parameters())
    cfg = dataclasses.replace(old_cfg, micro_dim=int(micro_dim))
    with torch.random.fork_rng(devices=[]):
        new = MultiscaleModel(cfg).to(dtype=ref.dtype)
    old = {k: v.detach().to("cpu") for k, v in model.named_parameters()}
    with torch.no_grad():
        for name, p in new.named_parameters():
            src = old.get(name)
            maps = _index_maps(name, src.shape, cfg, a, int(micro_dim)) if src is not None else []
            if src is not None and not maps:
                if src.shape != p.shape:
                    raise ConfigError(f"warm start: parameter {name!r} has shape {tuple(src.shape)} in the trained "
                                      f"model and {tuple(p.shape)} in the new one, with no rule to embed it")
                p.copy_(src)
                continue
            value = _fresh_value(name, p, cfg, gen)
            if src is not None:
                index = tuple(torch.arange(n) if m is None else m for n, m in zip(src.shape, maps))
                value[torch.meshgrid(*index, indexing="ij")] = src.to(value.dtype)
            p.copy_(value)
    return new.to(device=ref.device).train()


def check_warm_start_compatible(old_config: ModelConfig | Mapping[str, Any], data, *,
                                coarse_shape=None, source: str = "--init-from run") -> None:
    """Refuse to warm-start from a run whose model does not fit ``data`` (or the coarse grid asked for).

    Args:
        old_config: the trained run's :class:`ModelConfig` (or its ``to_dict()``, as in a checkpoint).
        data: the :class:`~pymsde.data.trajectories.Trajectories` the new model will train on.
        coarse_shape: the coarse grid asked for (an int per axis, or one int); None: not checked.
        source: names the trained run in the message.

    Raises:
        DataError: the data's grid, channels, boundary, domain, mu or f differ from the run's
            (one line naming both).
        ConfigError: the coarse grid asked for differs from the run's (one line naming both).
    """
    cfg = old_config if isinstance(old_config, ModelConfig) else ModelConfig.from_dict(dict(old_config))
    grid = tuple(int(n) for n in data.grid_shape)
    if grid != tuple(cfg.fine_shape):
        raise DataError(f"{source}: trained on the fine grid {tuple(cfg.fine_shape)}, but the data have the grid "
                        f"{grid}; warm-start from a run trained on this grid")
    if int(data.channels) != int(cfg.channels):
        raise DataError(f"{source}: trained on {cfg.channels} channel(s), but the data have {data.channels}")
    if coarse_shape is not None:
        want = (int(coarse_shape),) * cfg.ndim if isinstance(coarse_shape, int) else tuple(int(c) for c in coarse_shape)
        if want != tuple(cfg.coarse_shape):
            raise ConfigError(f"{source}: its coarse grid is {tuple(cfg.coarse_shape)}, but {want} was asked for; "
                              f"a warm start keeps the coarse grid (drop --coarse or pass "
                              f"{' '.join(map(str, cfg.coarse_shape))})")
    check_data_fits(cfg, data, "the data", source)


def init_from_record(run, micro_dim: int) -> dict:
    """``metadata.json``'s ``"init_from"`` of a warm-started run: the run whose final
    checkpoint gave the initial weights, its micro dimension, and the rule that copied them."""
    from pathlib import Path

    return {"run": str(Path(run).resolve()), "micro_dim": int(micro_dim), "checkpoint": "last",
            "rule": "pymsde.model.warm_start"}


__all__ = ["warm_start", "check_warm_start_compatible", "init_from_record", "NEW_DIFFUSION_RAW_1D"]
