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
        raise ValueError(f"activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


def mlp_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                activation: str) -> torch.Tensor:
    """Evaluate the MLP on a batch of rows.

    Args:
        x: ``(..., in_0)`` inputs.
        weights: ``L`` matrices, ``weights[k]`` of shape ``(out_k, in_k)``.
        biases: ``L`` vectors, ``biases[k]`` of shape ``(out_k,)``.
        activation: one of :data:`ACTIVATIONS`, applied between layers only.

    Returns:
        ``(..., out_{L-1})``.
    """
    act = activation_fn(activation)
    n = len(weights)
    for k, (w, b) in enumerate(zip(weights, biases)):
        # addmm on 2-D input is one fused BLAS call; fall back to linear for other ranks
        x = torch.addmm(b, x, w.t()) if x.dim() == 2 else F.linear(x, w, b)
        if k < n - 1:
            x = act(x)
    return x


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
