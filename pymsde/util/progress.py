"""Progress for long work (simulation, training, rollouts): labelled stages and bars.

:func:`progress` is a thin wrapper over tqdm so every long loop in pymsde shows the same
bar: label, count, rate and ETA, written to stderr. It appears after two seconds (so the
ETA is not the guess of the first, slowest step) and ``enabled=False`` (or the environment
variable ``PYMSDE_NO_PROGRESS``) turns it off, e.g. in tests. :class:`Stages` numbers the
steps of a multi-stage job (``[2/5] training the multiscale model: 4000 steps``).
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", enabled: bool = True, **kwargs) -> "tqdm[T]":
    """Return a tqdm bar (rate and ETA included) over ``iterable`` or of size ``total``."""
    disable = (not enabled) or bool(os.environ.get("PYMSDE_NO_PROGRESS"))
    kwargs.setdefault("delay", 2.0)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, **kwargs)


class Stages:
    """Numbered stage lines on stderr: ``Stages(5)("simulating ...")`` prints ``[1/5] simulating ...``.

    Printed whether or not progress bars are on: they are a handful of lines a job writes.
    """

    def __init__(self, n: int, enabled: bool = True):
        self.n, self.i, self.enabled = int(n), 0, enabled

    def __call__(self, text: str) -> None:
        self.i += 1
        if self.enabled:
            print(f"[{self.i}/{self.n}] {text}", file=sys.stderr, flush=True)
