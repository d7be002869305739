"""Counter-based random streams: the same numbers however the work is split.

A training step draws its random numbers per window, a forecast per ensemble member. If they
came from one sequential generator, the numbers a window gets would depend on how many windows
were drawn before it in the same process -- on the batch split, the world size of a
data-parallel run, or the chunking of an ensemble. Here every such unit has its own stream,
addressed by integers that name it, not by the history of a generator:

    stream(seed, kind, a, b)  =  Philox4x64-10 with  key     = (seed, kind)
                                                     counter = (0, 0, a, b)

numpy's :class:`numpy.random.Philox` (Salmon, Moraes, Dror, Shaw 2011, "Parallel random
numbers: as easy as 1, 2, 3") is a counter-based generator: its output is a bijective
function of (key, counter), and successive draws increment the counter's low 128 bits. With
``a`` and ``b`` in the counter's high words, two streams that differ in any of ``(seed, kind,
a, b)`` never share a block unless one of them draws more than 2^128 numbers: no hashing, no
collisions. (A ``torch.Generator`` seeded with a hash would not do: torch's CPU generator
keeps only the low 32 bits of its seed, so 2^16 keyed streams would already share seeds with
probability 1/2.)

The kinds (:data:`STREAMS`) used by pymsde:

==============  ===========================================  ================================
kind            a, b                                          draws
==============  ===========================================  ================================
train.window    optimiser step, window's position in the      the window's reparametrisation
                *global* batch                                noise (likelihood, then residual)
train.shared    optimiser step, 0                             what a batch shares: the frame
                                                              subset, the quadrature jitter
val.window      0, validation window index                    as train.window
val.shared      0, 0                                          as train.shared
forecast        initial observation index, member index      the member's z0 noise, then its
                                                              Brownian increments step by step
==============  ===========================================  ================================

So a training step's numbers depend only on ``(seed, step, window position)``: the same on one
process with ``batch_windows = 4`` as on four ranks with one window each; a forecast member's
only on ``(seed, observation, member)``: an ensemble computed in chunks is the one-piece
ensemble. A stream draws sequentially (numpy fills arrays element by element), so drawing
``n`` numbers in pieces gives the same numbers as drawing them at once.

The numbers are made on the CPU (numpy) and copied to the device: the same values on CPU and
GPU for one dtype (float32 and float64 draws differ; other dtypes draw float32 and round).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pymsde.util.errors import ConfigError

#: the stream kinds (the second key word); the numbers are a contract: changing one changes results
STREAMS: dict[str, int] = {"train.window": 1, "train.shared": 2, "val.window": 3, "val.shared": 4, "forecast": 5}
#: the name of this keying, recorded in checkpoints (``rng["noise"]``)
SCHEME = "pymsde-keyed-philox4x64-v1"
_U64 = 1 << 64


def _word(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < _U64:
        raise ConfigError(f"random stream: {what} = {value!r}; expected an integer in [0, 2^64)")
    return int(value)


def stream(seed: int, kind: str | int, a: int = 0, b: int = 0) -> np.random.Generator:
    """The generator of stream ``(seed, kind, a, b)`` (module docstring), at its first number.

    Args:
        seed: the run's seed (``0 <= seed < 2^64``).
        kind: a name of :data:`STREAMS` or its number.
        a, b: the stream's indices (e.g. step and window position), each in ``[0, 2^64)``.
    """
    k = STREAMS.get(kind) if isinstance(kind, str) else kind
    if k is None:
        raise ConfigError(f"random stream: kind {kind!r}; expected one of {sorted(STREAMS)}")
    key = np.array([_word(seed, "seed"), _word(k, "kind")], dtype=np.uint64)
    counter = np.array([0, 0, _word(a, "index a"), _word(b, "index b")], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(counter=counter, key=key))


def _np_dtype(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32


def normal(gen: np.random.Generator, shape: Sequence[int], dtype: torch.dtype = torch.float32,
           device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal numbers of ``shape`` from ``gen``, as a tensor of ``dtype`` on ``device``."""
    x = gen.standard_normal(tuple(int(s) for s in shape), dtype=_np_dtype(dtype))
    return torch.from_numpy(x).to(device=device, dtype=dtype)


def uniform(gen: np.random.Generator, shape: Sequence[int], dtype: torch.dtype = torch.float32,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform numbers in ``[0, 1)`` of ``shape`` from ``gen``, as a tensor of ``dtype`` on ``device``."""
    x = gen.random(tuple(int(s) for s in shape), dtype=_np_dtype(dtype))
    return torch.from_numpy(x).to(device=device, dtype=dtype)


def subset(gen: np.random.Generator, n: int, k: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``k`` distinct indices of ``range(n)``, uniformly drawn without replacement (int64 tensor)."""
    return torch.from_numpy(gen.permutation(int(n))[:int(k)].astype(np.int64)).to(device)


def normal_rows(gens: Sequence[np.random.Generator], shape: Sequence[int], dim: int = 0,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """One draw of ``shape`` per generator, stacked along ``dim`` (one host-to-device copy)."""
    x = np.stack([g.standard_normal(tuple(int(s) for s in shape), dtype=_np_dtype(dtype)) for g in gens], axis=dim)
    return torch.from_numpy(x).to(device=device, dtype=dtype)


__all__ = ["STREAMS", "SCHEME", "stream", "normal", "uniform", "subset", "normal_rows"]
