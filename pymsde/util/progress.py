"""Progress bars for long work (simulation, training, rollouts).

A thin wrapper over tqdm so every long loop in pymsde shows the same bar: count, rate and
ETA, written to stderr. ``enabled=False`` (or the environment variable ``PYMSDE_NO_PROGRESS``)
turns it off, e.g. in tests.
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
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, **kwargs)
