"""A functional multilayer perceptron: weights are plain tensors, not modules.

The learned SDE's drift is evaluated by torch (training, rollouts) and by the Julia kernel
package (rollouts); both evaluate exactly this function so that one set of weights means
the same thing everywhere:

    y_0 = x
    y_{k+1} = act(y_k @ W_k.T + b_k)   for every layer but the last
    y_out   = y_{L-1} @ W_{L-1}.T + b_{L-1}   (no activation after the last layer)

``W_k`` has shape ``(out_k, in_k)`` (the ``torch.nn.Linear`` layout), ``b_k`` has ``(out_k,)``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from pymsde.util.errors import ConfigError

#: Activation names understood by :func:`mlp_forward` (and by the Julia port).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "silu": F.silu,
    "softplus": F.softplus,   # log(1 + exp(x)), beta = 1, no threshold switch in the maths
    "relu": torch.relu,
}


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise function for an activation name; ValueError naming the choices."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


#: in-place versions of the activations (softplus has none: it runs out of place)
INPLACE_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "silu": lambda x: F.silu(x, inplace=True),
}


def dense(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """One layer ``x @ w.T + b``: one fused BLAS call on 2-D input (into ``out`` when given),
    ``F.linear`` for other ranks."""
    if x.dim() != 2:
        return F.linear(x, w, b)
    return torch.addmm(b, x, w.t()) if out is None else torch.addmm(b, x, w.t(), out=out)


def mlp_layers(h: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
               act: Callable[[torch.Tensor], torch.Tensor], act_inplace=None,
               buffers: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """The layers after the first: activate ``h``, apply the next layer, and so on.

    Layer ``k``'s output goes to ``buffers[k]`` when there is one (the last layer's output
    is always fresh). ``act_inplace`` (None: out of place) may only be given when ``h`` and
    the buffers are not needed by autograd.
    """
    n = len(weights)
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = act(h) if act_inplace is None else act_inplace(h)
        h = dense(h, w, b, buffers[k] if k < n - 1 and k < len(buffers) else None)
    return h


def mlp_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                activation: str) -> torch.Tensor:
    """Evaluate the MLP on a batch of rows: :func:`dense` then :func:`mlp_layers`.

    Args:
        x: ``(..., in_0)`` inputs.
        weights: ``L`` matrices, ``weights[k]`` of shape ``(out_k, in_k)``.
        biases: ``L`` vectors, ``biases[k]`` of shape ``(out_k,)``.
        activation: one of :data:`ACTIVATIONS`, applied between layers only.

    Returns:
        ``(..., out_{L-1})``.
    """
    return mlp_layers(dense(x, weights[0], biases[0]), weights[1:], biases[1:], activation_fn(activation))


def init_mlp(sizes: Sequence[int], generator: torch.Generator | None = None,
             dtype: torch.dtype | None = None, zero_last: bool = False
             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights and biases for an MLP with layer widths ``sizes`` (input first, output last).

    Xavier-normal weights and zero biases (the reference implementation's initialisation);
    ``zero_last`` zeroes the last layer's weights too, so the network starts as the zero map.
    """
    weights, biases = [], []
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = torch.empty(o, i, dtype=dtype)
        if zero_last and k == len(sizes) - 2:
            w.zero_()
        else:
            std = (2.0 / (i + o)) ** 0.5
            w.normal_(0.0, std, generator=generator)
        weights.append(w)
        biases.append(torch.zeros(o, dtype=dtype))
    return weights, biases
