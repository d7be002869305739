"""Named splits of a data set: by trajectory (``attrs["split"]``) or by time (``attrs["time_split"]``).

Two ways to split, one selector (:func:`select_split`, behind ``Trajectories.get_split`` and
``LazyTrajectories.get_split``):

- ``attrs["split"] = {name: [trajectory indices]}``: disjoint lists of 0-based trajectory
  indices (burgers1d, swe2d, ...). A split holds whole trajectories.
- ``attrs["time_split"] = {name: [first, stop]}``: disjoint half-open frame intervals
  ``first <= k < stop`` of every trajectory (cylinder2d: one trajectory, train ``[0, 1301]``,
  val ``[1301, 1401]``, test ``[1401, 1501]``, i.e. t in [0, 13], (13, 14], (14, 15]). A split
  holds the same time window of every trajectory, at least 2 frames.

A data set records one of the two, not both. Every check raises a one-line
:class:`~pymsde.util.errors.DataError` naming the key, the expected and the found value.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from pymsde.util.errors import ConfigError, DataError

#: The reserved attrs key holding the named trajectory splits.
SPLIT_KEY = "split"
#: The reserved attrs key holding the named time splits (frame intervals).
TIME_SPLIT_KEY = "time_split"


def check_splits(value: Any, n_traj: int) -> dict[str, list[int]]:
    """Validate ``attrs["split"]``: names -> disjoint lists of trajectory indices in range."""
    if not isinstance(value, Mapping):
        raise DataError(f"attrs['split']: {type(value).__name__}; expected a dict name -> list of indices")
    seen: dict[int, str] = {}
    out = {}
    for name, members in value.items():
        if not isinstance(members, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in members):
            raise DataError(f"attrs['split'][{name!r}]: {members!r}; expected a list of trajectory indices")
        for i in members:
            if not 0 <= i < n_traj:
                raise DataError(f"attrs['split'][{name!r}]: index {i} out of range; expected 0 <= i < {n_traj}")
            if i in seen:
                raise DataError(f"attrs['split']: trajectory {i} is in both {seen[i]!r} and {name!r}; "
                                f"expected disjoint splits")
            seen[i] = name
        out[str(name)] = list(members)
    return out


def check_time_splits(value: Any, n_t: int) -> dict[str, list[int]]:
    """Validate ``attrs["time_split"]``: names -> disjoint ``[first, stop]`` frame intervals
    (stop exclusive) with ``0 <= first``, ``first + 2 <= stop <= n_t``."""
    if not isinstance(value, Mapping) or not value:
        raise DataError(f"attrs['time_split']: {value!r}; expected a non-empty dict name -> [first, stop] "
                        f"frame indices (stop exclusive)")
    out = {}
    for name, iv in value.items():
        if not (isinstance(iv, list) and len(iv) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) for i in iv)):
            raise DataError(f"attrs['time_split'][{name!r}]: {iv!r}; expected [first, stop], two integer frame "
                            f"indices (stop exclusive)")
        first, stop = iv
        if not (0 <= first and stop <= n_t):
            raise DataError(f"attrs['time_split'][{name!r}]: [{first}, {stop}] out of range; expected "
                            f"0 <= first < stop <= n_t = {n_t}")
        if stop - first < 2:
            raise DataError(f"attrs['time_split'][{name!r}]: [{first}, {stop}] holds {max(0, stop - first)} "
                            f"frame(s); expected at least 2")
        out[str(name)] = [first, stop]
    ordered = sorted(out.items(), key=lambda kv: kv[1][0])
    for (n1, (a1, b1)), (n2, (a2, _)) in zip(ordered, ordered[1:]):
        if a2 < b1:
            raise DataError(f"attrs['time_split']: {n1!r} [{a1}, {b1}] and {n2!r} [{a2}, {out[n2][1]}] overlap; "
                            f"expected disjoint frame intervals")
    return out


def check_split_attrs(attrs: dict, n_traj: int, n_t: int) -> dict:
    """``attrs`` with its ``split`` / ``time_split`` validated (in place; returned); both at once is refused."""
    if SPLIT_KEY in attrs and TIME_SPLIT_KEY in attrs:
        raise DataError("attrs: both 'split' (trajectories) and 'time_split' (frame intervals) are recorded; "
                        "expected one of them")
    if SPLIT_KEY in attrs:
        attrs[SPLIT_KEY] = check_splits(attrs[SPLIT_KEY], n_traj)
    if TIME_SPLIT_KEY in attrs:
        attrs[TIME_SPLIT_KEY] = check_time_splits(attrs[TIME_SPLIT_KEY], n_t)
    return attrs


def split_names(attrs: Mapping, n_traj: int) -> dict[str, np.ndarray]:
    """``{name: trajectory indices (int64)}`` of the recorded splits. A time split holds a
    window of every trajectory, so each of its names maps to all ``n_traj`` indices."""
    if TIME_SPLIT_KEY in attrs:
        return {k: np.arange(n_traj, dtype=np.int64) for k in attrs[TIME_SPLIT_KEY]}
    return {k: np.asarray(v, dtype=np.int64) for k, v in attrs.get(SPLIT_KEY, {}).items()}


def select_split(attrs: Mapping, name: str, source: str = "attrs['split']",
                 purpose: str = "") -> tuple[list[int] | None, tuple[int, int] | None]:
    """The one split selector: ``(trajectory indices or None, (first, stop) frames or None)``
    of split ``name``; ``(None, None)`` for ``"all"`` / ``"*"`` (everything).

    Raises:
        DataError: naming ``source`` (e.g. the file) when the split is not recorded or is
            empty; ``purpose`` is appended (e.g. the flag that asked for it).
    """
    if name in ("all", "*"):
        return None, None
    if TIME_SPLIT_KEY in attrs:
        windows = attrs[TIME_SPLIT_KEY]
        if name not in windows:
            raise DataError(f"{source}: no time split named {name!r}; recorded time splits: {sorted(windows)}"
                            f"{purpose}")
        first, stop = windows[name]
        return None, (int(first), int(stop))
    splits = attrs.get(SPLIT_KEY, {})
    if name not in splits:
        raise DataError(f"{source}: no split named {name!r}; recorded splits: {sorted(splits) or 'none'}{purpose}")
    if len(splits[name]) == 0:
        raise DataError(f"{source}: split {name!r} is empty (attrs['split'][{name!r}] = []); expected at "
                        f"least one trajectory{purpose}")
    return [int(i) for i in splits[name]], None


def time_split_counts(n_t: int, counts) -> dict[str, list[int]]:
    """``{"train": [0, a], "val": [a, a + b], "test": [a + b, n_t]}`` from three consecutive
    frame counts ``(a, b, c)`` summing to ``n_t``; ConfigError otherwise."""
    counts = tuple(counts)
    if (len(counts) != 3 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in counts)
            or sum(counts) != n_t or min(counts) < 2):
        raise ConfigError(f"time split {counts!r}; expected three frame counts (train, val, test), each >= 2, "
                          f"summing to n_t = {n_t}")
    a, b, _ = (int(c) for c in counts)
    return {"train": [0, a], "val": [a, a + b], "test": [a + b, int(n_t)]}


def split_counts(sizes: dict[str, float], n: int) -> dict[str, int]:
    """Trajectory counts per named part from counts or fractions (largest-remainder rounding)."""
    if not sizes:
        raise ConfigError("split: no sizes given")
    values = np.asarray([float(v) for v in sizes.values()])
    if (values < 0).any() or not np.isfinite(values).all():
        raise ConfigError(f"split: sizes {sizes}; expected non-negative numbers")
    all_int = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in sizes.values())
    if all_int:
        counts = values.astype(np.int64)
        if counts.sum() > n:
            raise ConfigError(f"split: counts {sizes} sum to {int(counts.sum())}; the data has {n} trajectories")
    else:
        if (values > 1).any() or values.sum() > 1 + 1e-9:
            raise ConfigError(f"split: fractions {sizes} sum to {values.sum():g}; expected fractions in [0, 1] "
                              f"summing to at most 1 (or integer counts)")
        exact = values * n
        counts = np.floor(exact + 1e-9).astype(np.int64)
        target = min(n, int(round(values.sum() * n)))
        order = np.argsort(-(exact - counts), kind="stable")
        for j in order[: max(0, target - int(counts.sum()))]:
            counts[j] += 1
    for (name, v), c in zip(sizes.items(), counts):
        if float(v) > 0 and c == 0:
            raise ConfigError(f"split: part {name!r} (size {v}) would receive 0 of {n} trajectories")
    return {name: int(c) for name, c in zip(sizes, counts)}


__all__ = ["SPLIT_KEY", "TIME_SPLIT_KEY", "check_splits", "check_time_splits", "check_split_attrs", "split_names",
           "select_split", "time_split_counts", "split_counts"]
