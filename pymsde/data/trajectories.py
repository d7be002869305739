"""The trajectories container: fields sampled on a fine grid at evenly spaced times.

A :class:`Trajectories` holds ``n_traj`` trajectories of a ``C``-channel field on one grid:

- ``u``  ``(n_traj, n_t, C, *grid)``: the field, real floating point (float32 or float64 kept
  as given; simulators write float64), in the units of the data;
- ``t``  ``(n_traj, n_t)`` float64: observation times, strictly increasing with a uniform step
  within each trajectory (a ``(n_t,)`` vector is accepted and shared by every trajectory);
- ``domain`` ``(n_dims, 2)`` float64: ``(lo, hi)`` per spatial axis;
- ``boundary``: ``"periodic"``, ``"dirichlet"``, ``"outflow"`` or ``"slip"`` per spatial axis
  (:data:`pymsde.data.grid.BOUNDARY_TYPES`);
- ``mu`` ``(n_traj, n_mu)`` or ``None``: parameters, one row per trajectory;
- ``f``  ``(n_traj, n_t, n_f)`` or ``None``: forcing values at the observation times;
- ``attrs``: free JSON-serialisable metadata (case name, viscosity, seed, ...). Two keys are
  reserved, one of them at most: ``"split"`` = ``{name: [trajectory indices]}`` (e.g.
  train/val/test trajectories) and ``"time_split"`` = ``{name: [first, stop]}`` (frame
  intervals of every trajectory; the cylinder's one trajectory). See ``pymsde.data.splits``.

Everything is validated on construction (ranks, dtypes, finiteness, time steps, lengths,
boundary names); a bad field raises :class:`~pymsde.util.errors.DataError` naming the field,
the expected and the found value. The point placement of the grid is that of
:class:`~pymsde.data.grid.Grid`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from pymsde.data.grid import BOUNDARY_TYPES, DT_RTOL, Grid, uniform_step
from pymsde.data.splits import (SPLIT_KEY, TIME_SPLIT_KEY, check_split_attrs, select_split, split_counts,
                                split_names)
from pymsde.util.errors import ConfigError, DataError


def _describe(a: np.ndarray) -> str:
    return f"shape {tuple(a.shape)} dtype {a.dtype}"


def _as_real_array(value: Any, name: str, allow_int: bool = False) -> np.ndarray:
    """``value`` as a numpy array of a real floating dtype (kept as given), else DataError.

    With ``allow_int`` integer arrays (times ``np.arange(n)``, a domain ``[[0, 1]]``) become
    float64; the field ``u`` itself must already be floating point. Arrays in the other byte
    order (``>f8`` written on a big-endian machine, or by h5py / numpy on request) are
    converted to the native order, keeping their precision.
    """
    a = np.asarray(value)
    if a.dtype == object:
        raise DataError(f"{name}: object array (dtype object); expected a real floating-point array")
    if allow_int and a.dtype.kind in "iu":           # not timedelta64 (kind "m"), a subtype of integer
        return a.astype(np.float64)
    if a.dtype.kind == "f" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    check_real_dtype(a.dtype, name)
    return a


def check_real_dtype(dtype: np.dtype, name: str) -> None:
    """DataError unless ``dtype`` is float32 or float64 (either byte order)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):   # float16 loses the data; torch has no longdouble
        raise DataError(f"{name}: dtype {dtype}; expected a real floating-point dtype (float32 or float64)")


def _first_nonfinite(a: np.ndarray, lead: int) -> tuple[int, ...] | None:
    """Index over the first ``lead`` axes of the first non-finite entry of ``a``, or None.

    Scans one trajectory at a time so the boolean mask never exceeds one trajectory's size
    (a Burgers 2-D data set is ~2.6 GB in float64).
    """
    for i in range(a.shape[0]):
        ok = np.isfinite(a[i])
        if not ok.all():
            bad = np.argwhere(~ok)[0]
            return (i, *(int(j) for j in bad[: lead - 1]))
    return None


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays are common in metadata (a seed from an rng, a viscosity);
    # they become plain JSON numbers/lists so attrs survive a file round trip exactly.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def normalise_attrs(attrs: Mapping[str, Any] | None, name: str = "attrs") -> dict:
    """A JSON round trip of ``attrs`` (numpy scalars -> numbers, tuples -> lists).

    Raises DataError naming the offending top-level key when a value is not serialisable.
    """
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise DataError(f"{name}: expected a dict, found {type(attrs).__name__}")
    out = {}
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise DataError(f"{name}: key {key!r} is a {type(key).__name__}; expected str keys (JSON)")
        try:
            out[key] = json.loads(json.dumps(value, default=_json_default, allow_nan=True))
        except (TypeError, ValueError) as err:
            raise DataError(f"{name}[{key!r}]: not JSON-serialisable ({err})") from None
    return out


def _u_shape(shape: tuple[int, ...], dtype) -> None:
    """DataError unless ``u``'s ``shape`` / ``dtype`` is a valid ``(n_traj, n_t, C, *grid)`` field."""
    desc = f"shape {tuple(shape)} dtype {np.dtype(dtype)}"
    if not 4 <= len(shape) <= 6:
        raise DataError(f"u: rank {len(shape)} ({desc}); expected (n_traj, n_t, C, *grid) "
                        f"with 1 to 3 spatial axes, i.e. rank 4 to 6")
    check_real_dtype(dtype, "u")
    n_traj, n_t, n_c = shape[:3]
    if n_traj < 1 or n_t < 2 or n_c < 1:
        raise DataError(f"u: shape {tuple(shape)}; expected at least 1 trajectory, 2 times "
                        f"and 1 channel (n_traj, n_t, C) = ({n_traj}, {n_t}, {n_c})")
    if min(shape[3:]) < 2:
        raise DataError(f"u: shape {tuple(shape)}; expected at least 2 grid points on every spatial "
                        f"axis, found {tuple(shape[3:])}")


def validate_fields(shape: tuple[int, ...], dtype, t, domain, boundary, mu=None, f=None, attrs=None):
    """Every check of :class:`Trajectories` except the scan of ``u``'s values, from ``u``'s
    ``shape`` and ``dtype`` alone (a lazily read file validates its metadata with it).

    Returns ``(t (n_traj, n_t) float64, domain float64, boundary tuple, mu, f, attrs)``
    normalised; raises DataError naming the field, the expected and the found value.
    """
    shape = tuple(int(n) for n in shape)
    _u_shape(shape, dtype)
    n_traj, n_t = shape[:2]
    n_dims = len(shape) - 3
    t = _as_real_array(t, "t", allow_int=True).astype(np.float64, copy=False)
    t_shape = tuple(t.shape)
    if t.ndim == 1 and t.shape[0] == n_t:
        t = np.repeat(t[None, :], n_traj, axis=0)
    if t.shape != (n_traj, n_t):
        raise DataError(f"t: shape {t_shape}; expected ({n_traj}, {n_t}) or ({n_t},) to match u {shape}")
    uniform_step(t, "t")

    domain = _as_real_array(domain, "domain", allow_int=True).astype(np.float64, copy=False)
    if domain.shape != (n_dims, 2):
        raise DataError(f"domain: shape {tuple(domain.shape)}; expected ({n_dims}, 2), one (lo, hi) "
                        f"per spatial axis of u {shape}")
    if not (np.isfinite(domain).all() and (domain[:, 1] > domain[:, 0]).all()):
        raise DataError(f"domain: {domain.tolist()}; expected finite (lo, hi) with lo < hi per axis")

    if isinstance(boundary, str):
        boundary = (boundary,)
    boundary = tuple(str(b) for b in np.asarray(boundary).reshape(-1).tolist())
    if len(boundary) != n_dims:
        raise DataError(f"boundary: {len(boundary)} entries {boundary}; expected {n_dims}, one per "
                        f"spatial axis of u {shape}")
    for axis, b in enumerate(boundary):
        if b not in BOUNDARY_TYPES:
            raise DataError(f"boundary: unknown type {b!r} on axis {axis}; expected one of {BOUNDARY_TYPES}")

    if mu is not None:
        mu = _as_real_array(mu, "mu", allow_int=True)
        if mu.ndim != 2 or mu.shape[0] != n_traj:
            raise DataError(f"mu: {_describe(mu)}; expected (n_traj, n_mu) with n_traj = {n_traj}")
        if not np.isfinite(mu).all():
            i, j = np.argwhere(~np.isfinite(mu))[0]
            raise DataError(f"mu: non-finite value {mu[i, j]} at trajectory {i}, parameter {j}")
    if f is not None:
        f = _as_real_array(f, "f", allow_int=True)
        if f.ndim != 3 or f.shape[:2] != (n_traj, n_t):
            raise DataError(f"f: {_describe(f)}; expected (n_traj, n_t, n_f) with (n_traj, n_t) = ({n_traj}, {n_t})")
        bad = _first_nonfinite(f, 2)
        if bad is not None:
            raise DataError(f"f: non-finite value at trajectory {bad[0]}, time index {bad[1]}")
    attrs = check_split_attrs(normalise_attrs(attrs), n_traj, n_t)
    return t, domain, boundary, mu, f, attrs


class TrajectoryShape:
    """What follows from the arrays' shapes and the metadata alone: sizes, the grid, the time
    step, the recorded splits. Shared by :class:`Trajectories` (arrays in memory) and
    :class:`pymsde.data.lazy.LazyTrajectories` (``u`` on disk); both have ``u`` with
    ``shape``/``ndim``, ``t``, ``mu``, ``f``, ``domain``, ``boundary`` and ``attrs``."""

    @property
    def n_traj(self) -> int:
        """Number of trajectories."""
        return int(self.u.shape[0])

    @property
    def n_t(self) -> int:
        """Number of observation times per trajectory."""
        return int(self.u.shape[1])

    @property
    def channels(self) -> int:
        """Number of field channels ``C``."""
        return int(self.u.shape[2])

    @property
    def n_dims(self) -> int:
        """Number of spatial axes (1 to 3)."""
        return self.u.ndim - 3

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Points per spatial axis."""
        return tuple(int(n) for n in self.u.shape[3:])

    @property
    def n_mu(self) -> int:
        """Parameters per trajectory (0 without ``mu``)."""
        return 0 if self.mu is None else int(self.mu.shape[1])

    @property
    def n_f(self) -> int:
        """Forcing values per time (0 without ``f``)."""
        return 0 if self.f is None else int(self.f.shape[2])

    @property
    def grid(self) -> Grid:
        """The spatial :class:`Grid` (shape, domain, boundary types)."""
        return Grid(self.grid_shape, tuple(map(tuple, self.domain.tolist())), self.boundary)

    @property
    def dts(self) -> np.ndarray:
        """Time step of each trajectory, ``(n_traj,)`` float64 (mean step, uniform to ``DT_RTOL``)."""
        return (self.t[:, -1] - self.t[:, 0]) / (self.n_t - 1)

    @property
    def dt(self) -> float:
        """The common time step of all trajectories.

        Raises DataError when trajectories have different steps (beyond ``DT_RTOL``); use
        :attr:`dts` for per-trajectory steps.
        """
        dts = self.dts
        if np.abs(dts - dts[0]).max() > DT_RTOL * dts[0]:
            i = int(np.argmax(np.abs(dts - dts[0])))
            where = f"{self.source}: " if getattr(self, "source", None) else ""     # a lazy file names itself
            raise DataError(f"{where}t: trajectories have different time steps (trajectory 0: {dts[0]!r}, "
                            f"trajectory {i}: {dts[i]!r}); expected one common dt")
        return float(dts.mean())

    @property
    def splits(self) -> dict[str, np.ndarray]:
        """The named splits: name -> trajectory indices (int64) from ``attrs["split"]``; for data
        split in time (``attrs["time_split"]``) every name maps to all trajectories (see
        :attr:`time_splits` for the frames)."""
        return split_names(self.attrs, self.n_traj)

    @property
    def time_splits(self) -> dict[str, tuple[int, int]]:
        """The frame intervals ``name -> (first, stop)`` of ``attrs["time_split"]`` (empty when
        the data are split by trajectory or not at all)."""
        return {k: (int(a), int(b)) for k, (a, b) in self.attrs.get(TIME_SPLIT_KEY, {}).items()}



@dataclass(frozen=True, eq=False)
class Trajectories(TrajectoryShape):
    """Trajectories of a field on a fine grid (see the module docstring for the fields).

    Construct with keywords: ``Trajectories(u=u, t=t, domain=[[0, 1]], boundary=("periodic",))``.
    Arrays are not copied unless a conversion is needed (``t`` and ``domain`` become float64).
    The dataclass is frozen; use :func:`dataclasses.replace` to change a field (re-validated).
    """

    u: np.ndarray
    t: np.ndarray
    domain: np.ndarray
    boundary: tuple[str, ...]
    mu: np.ndarray | None = None
    f: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        u = _as_real_array(self.u, "u")
        t, domain, boundary, mu, f, attrs = validate_fields(u.shape, u.dtype, self.t, self.domain, self.boundary,
                                                            self.mu, self.f, self.attrs)
        bad = _first_nonfinite(u, 2)
        if bad is not None:
            raise DataError(f"u: non-finite value (NaN or inf) at trajectory {bad[0]}, time index {bad[1]} "
                            f"(t = {t[bad]!r})")
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "boundary", boundary)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "attrs", attrs)

    @classmethod
    def _trusted(cls, u, t, domain, boundary, mu, f, attrs) -> "Trajectories":
        # Build from parts of an already validated instance (subset, split) without rescanning
        # gigabytes of field values for finiteness.
        obj = object.__new__(cls)
        for name, value in (("u", u), ("t", t), ("domain", domain), ("boundary", boundary),
                            ("mu", mu), ("f", f), ("attrs", attrs)):
            object.__setattr__(obj, name, value)
        return obj

    def coarse_factors(self, coarse_shape: Sequence[int]) -> tuple[int, ...]:
        """Integer factor ``s`` per axis with ``grid_shape = s * coarse_shape``.

        Raises ConfigError when the coarse grid does not divide the fine grid.
        """
        return self.grid.coarsening_factors(coarse_shape)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)}" for k in ("n_mu", "n_f") if getattr(self, k))
        return (f"Trajectories(n_traj={self.n_traj}, n_t={self.n_t}, channels={self.channels}, "
                f"grid={self.grid_shape}, boundary={self.boundary}, dtype={self.u.dtype}{extra})")

    # ------------------------------------------------------------------ selection
    def subset(self, indices: Sequence[int] | np.ndarray | slice) -> "Trajectories":
        """The trajectories ``indices`` (ints, a boolean mask of length n_traj, or a slice), in that order.

        Recorded splits are carried over: each keeps the selected trajectories under their new
        positions; splits left empty are dropped. A time split applies to every trajectory and
        is kept as it is. Consecutive increasing indices give views of
        the arrays (no copy); any other selection copies.
        """
        idx = np.arange(self.n_traj)[indices] if isinstance(indices, slice) else np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (self.n_traj,):
                raise ConfigError(f"subset: boolean mask of shape {idx.shape}; expected ({self.n_traj},)")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ConfigError(f"subset: indices {_describe(idx)}; expected a 1-D sequence of integers")
        idx = idx.astype(np.int64)
        if idx.size == 0:
            raise ConfigError("subset: no trajectories selected; expected at least one index")
        if idx.min() < -self.n_traj or idx.max() >= self.n_traj:
            raise ConfigError(f"subset: index out of range [{-self.n_traj}, {self.n_traj}) in {idx.tolist()}")
        idx = idx % self.n_traj
        attrs = {k: v for k, v in self.attrs.items() if k != SPLIT_KEY}
        if self.attrs.get(SPLIT_KEY):
            new_pos = {int(old): new for new, old in enumerate(idx)}
            carried = {name: [new_pos[int(i)] for i in members if int(i) in new_pos]
                       for name, members in self.attrs[SPLIT_KEY].items()}
            carried = {k: v for k, v in carried.items() if v}
            if carried:
                attrs[SPLIT_KEY] = carried
        # a run of consecutive indices selects by slice: a view, no copy of a multi-GB field
        sel = slice(int(idx[0]), int(idx[-1]) + 1) if (np.diff(idx) == 1).all() else idx
        return Trajectories._trusted(
            self.u[sel], self.t[sel], self.domain, self.boundary,
            None if self.mu is None else self.mu[sel], None if self.f is None else self.f[sel], attrs)

    def split(self, sizes: Mapping[str, float] | Sequence[float], seed: int = 0) -> "Trajectories":
        """Record a random split of the trajectories into named parts; returns a new Trajectories.

        Args:
            sizes: ``{name: size}`` or a sequence read as ``(train, val, test)``. Sizes are all
                integers (trajectory counts, summing to at most ``n_traj``) or all fractions in
                ``[0, 1]`` (summing to at most 1; rounded to counts by largest remainder, e.g. 10
                trajectories with ``(0.8, 0.1, 0.1)`` -> 8/1/1).
            seed: seed of the permutation (``numpy.random.default_rng(seed)``); same seed, same split.

        The indices (sorted within each part) go to ``attrs["split"]``; the arrays are shared,
        not copied. Raises ConfigError when sizes are negative, exceed the data, a part asked
        for (size > 0) would receive no trajectory, or the data are already split in time.
        """
        if TIME_SPLIT_KEY in self.attrs:
            raise ConfigError(f"split: the data are split in time (attrs['time_split'] = "
                              f"{self.attrs[TIME_SPLIT_KEY]}); expected data without a time split")
        if not isinstance(sizes, Mapping):
            sizes = list(sizes)
            if len(sizes) > 3:
                raise ConfigError(f"split: {len(sizes)} sizes given as a sequence; expected at most 3 "
                                  f"(train, val, test) or a dict name -> size")
            sizes = dict(zip(("train", "val", "test"), sizes))
        counts = split_counts(dict(sizes), self.n_traj)
        perm = np.random.default_rng(seed).permutation(self.n_traj)
        parts, start = {}, 0
        for name, c in counts.items():
            parts[name] = sorted(int(i) for i in perm[start:start + c])
            start += c
        parts = {k: v for k, v in parts.items() if v}
        attrs = dict(self.attrs)
        attrs[SPLIT_KEY] = parts
        return Trajectories._trusted(self.u, self.t, self.domain, self.boundary, self.mu, self.f, attrs)

    def get_split(self, name: str, source: str = "attrs['split']", purpose: str = "") -> "Trajectories":
        """The trajectories of split ``name`` (see :meth:`split`); ``"all"`` or ``"*"``: every one.

        The one place a split is selected by name (training, validation, evaluation, the demo),
        through :func:`pymsde.data.splits.select_split`. For data split in time
        (``attrs["time_split"]``) it returns the frames ``first <= k < stop`` of every
        trajectory (views, no copy), with ``attrs["time_window"] = [first, stop]`` in place of
        the time split.

        Args:
            name: a split recorded in ``attrs["split"]`` or ``attrs["time_split"]``, or ``"all"``.
            source: names the data in the error (e.g. the file).
            purpose: appended to the error (e.g. the flag that asked for the split).

        Raises:
            DataError: the split is not recorded, or it is empty.
        """
        indices, window = select_split(self.attrs, name, source, purpose)
        if window is not None:
            a, b = window
            attrs = {k: v for k, v in self.attrs.items() if k != TIME_SPLIT_KEY}
            attrs["time_window"] = [a, b]
            return Trajectories._trusted(self.u[:, a:b], self.t[:, a:b], self.domain, self.boundary, self.mu,
                                         None if self.f is None else self.f[:, a:b], attrs)
        return self if indices is None else self.subset(indices)
