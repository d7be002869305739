"""Reading a trajectories file without loading ``u``: :func:`open_lazy` -> :class:`LazyTrajectories`.

For data sets larger than memory (the dam break: 1000 x 101 x 128^2 float32 values, 6.6 GB).
Opening an HDF5 file reads and validates everything except the values of ``u`` (``t``,
``domain``, ``boundary``, ``mu``, ``f``, ``attrs``, and ``u``'s shape and dtype, with the same
checks and messages as :func:`pymsde.data.io.load`); ``u`` stays on disk and is read window by
window::

    data = open_lazy("swe.h5")                 # no field values read
    train = data.get_split("train")            # a view: the same selector as Trajectories.get_split
    x = train.read_window(i, t0, t0 + 20)      # (20, C, *grid), read now, checked finite
    x = train.u[i, t0:t0 + 20]                 # the same, by slicing

Peak memory of a reader: the metadata (``t``: ``8 n_traj n_t`` bytes), the window asked for, and
HDF5's chunk cache (:data:`pymsde.data.stream.CACHE_BYTES`, 16 MiB; a window reads whole chunks
of at most :data:`~pymsde.data.stream.CHUNK_BYTES`, 8 MiB). A ``.npz`` file cannot be read
lazily: :func:`open_lazy` loads it whole (memory checked) and serves the same interface.

A file whose ``u`` declares more bytes than the file stores (a damaged, crafted or
half-written file: HDF5 would return zeros for the missing part) is refused on opening.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from pymsde.data.io import (_check_sizes, _format, _h5_datasets, _h5py, check_keys, load, log, parse_metadata,
                            read_h5_keys)
from pymsde.data.splits import SPLIT_KEY, TIME_SPLIT_KEY, select_split
from pymsde.data.stream import CACHE_BYTES
from pymsde.data.trajectories import Trajectories, TrajectoryShape, validate_fields
from pymsde.util.errors import DataError, check_memory, check_readable_file, format_bytes


class LazyField:
    """``u`` of a :class:`LazyTrajectories`: shape, dtype and numpy-style reads (``u[i]``,
    ``u[i, t0:t1]``, ``u[a:b, k]``, ...); ``np.asarray(u)`` reads everything (memory checked)."""

    def __init__(self, owner: "LazyTrajectories"):
        self._owner = owner

    @property
    def shape(self) -> tuple[int, ...]:
        o = self._owner
        return (len(o._index), o._stop - o._first, *o._ds.shape[2:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._owner._ds.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(math.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis or k is None for k in key):
            raise TypeError("u[...]: Ellipsis and None are not supported; index trajectory, frames, then channel/grid")
        first, frames, rest = key[0], (key[1] if len(key) > 1 else slice(None)), key[2:]
        n, n_t = self.shape[:2]
        drop_t = isinstance(frames, (int, np.integer))
        if drop_t:
            k = int(frames) + (n_t if frames < 0 else 0)
            if not 0 <= k < n_t:
                raise IndexError(f"frame index {frames} out of range for {n_t} frames")
            frames = slice(k, k + 1)
        if not isinstance(frames, slice):
            raise TypeError(f"u[i, frames]: frames {frames!r}; expected an int or a slice")
        start, stop, step = frames.indices(n_t)
        if step < 1:
            raise ValueError(f"u[i, frames]: step {step}; expected a positive step")
        drop_i = isinstance(first, (int, np.integer))
        rows = np.arange(n)[first].reshape(-1)
        data = np.stack([self._owner._read(int(i), start, stop, step) for i in rows]) if rows.size else \
            np.empty((0, len(range(start, stop, step)), *self.shape[2:]), dtype=self.dtype)
        if rest:
            data = data[(slice(None), slice(None)) + rest]
        if drop_t:
            data = data[:, 0]
        return data[0] if drop_i else data

    def __array__(self, dtype=None, copy=None):
        check_memory(float(self.nbytes), f"{self._owner.source}: reading u {self.shape} {self.dtype} whole",
                     error=DataError, hint="read it window by window (read_window)")
        data = self[:]
        return data if dtype is None else data.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyField(shape={self.shape}, dtype={self.dtype}, source={self._owner.source!r})"


class LazyTrajectories(TrajectoryShape):
    """A trajectories file with ``u`` on disk (see the module docstring); built by :func:`open_lazy`.

    Attributes (as :class:`Trajectories`): ``u`` (a :class:`LazyField`), ``t (n_traj, n_t)``,
    ``domain``, ``boundary``, ``mu``, ``f``, ``attrs``, and ``source`` (the file). A view from
    :meth:`get_split` or :meth:`subset` shares the open file.
    """

    def __init__(self, ds, source: str, t, domain, boundary, mu, f, attrs, h5=None, checked: bool = False,
                 index: np.ndarray | None = None, window: tuple[int, int] | None = None):
        self._ds, self._h5, self._checked, self.source = ds, h5, checked, source
        self._index = np.arange(ds.shape[0]) if index is None else np.asarray(index, dtype=np.int64)
        self._first, self._stop = window or (0, int(ds.shape[1]))
        sel, win = self._index, slice(self._first, self._stop)
        self.t = t[sel][:, win]
        self.domain, self.boundary, self.attrs = domain, boundary, attrs
        self.mu = None if mu is None else mu[sel]
        self.f = None if f is None else f[sel][:, win]
        self._mu_all, self._f_all, self._t_all = mu, f, t
        self.u = LazyField(self)

    # ------------------------------------------------------------------ reading
    def _read(self, i: int, start: int, stop: int, step: int = 1) -> np.ndarray:
        if not 0 <= i < len(self._index):
            raise IndexError(f"trajectory {i} out of range for {len(self._index)} trajectories")
        fi = int(self._index[i])
        a, b = self._first + start, self._first + max(start, stop)
        data = np.array(self._ds[fi, a:b:step])           # a fresh array (h5py reads; numpy copies)
        if not data.dtype.isnative:
            data = data.astype(data.dtype.newbyteorder("="))
        if not self._checked and data.size:
            ok = np.isfinite(data.reshape(data.shape[0], -1)).all(axis=1)
            if not ok.all():
                raise DataError(f"{self.source}: key u: non-finite value (NaN or inf) at trajectory {fi}, time "
                                f"index {a + int(np.argmin(ok)) * step}")
        return data

    def read_window(self, i: int, t0: int, t1: int) -> np.ndarray:
        """Frames ``t0 <= k < t1`` of trajectory ``i`` (of this view): ``(t1 - t0, C, *grid)`` in
        the file's dtype, read now; DataError naming the file for a NaN or inf in them."""
        n_t = self._stop - self._first
        if not 0 <= int(t0) < int(t1) <= n_t:
            raise IndexError(f"read_window: frames [{t0}, {t1}); expected 0 <= t0 < t1 <= n_t = {n_t}")
        return self._read(int(i), int(t0), int(t1))

    def iter_blocks(self, max_bytes: float = 64 * 2 ** 20) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(i, t0, block)`` over the whole view, each block at most ``max_bytes`` (whole frames of one trajectory)."""
        frame = max(1, int(math.prod(self.u.shape[2:])) * self.u.dtype.itemsize)
        k = max(1, int(max_bytes // frame))
        n_t = self.n_t
        for i in range(self.n_traj):
            for t0 in range(0, n_t, k):
                yield i, t0, self.read_window(i, t0, min(n_t, t0 + k))

    def to_trajectories(self) -> Trajectories:
        """Everything read into a validated :class:`Trajectories` (memory checked first)."""
        check_memory(float(self.u.nbytes), f"{self.source}: u {self.u.shape} {self.u.dtype}", error=DataError,
                     hint="read it window by window (read_window)")
        return Trajectories(u=np.asarray(self.u), t=self.t, domain=self.domain, boundary=self.boundary, mu=self.mu,
                            f=self.f, attrs=self.attrs)

    # ------------------------------------------------------------------ selection
    def _view(self, index=None, window=None, attrs=None) -> "LazyTrajectories":
        return LazyTrajectories(self._ds, self.source, self._t_all, self.domain, self.boundary, self._mu_all,
                                self._f_all, self.attrs if attrs is None else attrs, self._h5, self._checked,
                                self._index if index is None else index,
                                (self._first, self._stop) if window is None else window)

    def subset(self, indices: Sequence[int]) -> "LazyTrajectories":
        """The trajectories ``indices`` (of this view), without reading; recorded trajectory
        splits are carried over under the new positions, as :meth:`Trajectories.subset` does."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= self.n_traj:
            raise IndexError(f"subset: indices {idx.tolist()[:8]} out of range for {self.n_traj} trajectories")
        attrs = {k: v for k, v in self.attrs.items() if k != SPLIT_KEY}
        new_pos = {int(old): new for new, old in enumerate(idx)}
        carried = {name: [new_pos[int(i)] for i in members if int(i) in new_pos]
                   for name, members in self.attrs.get(SPLIT_KEY, {}).items()}
        if any(carried.values()):
            attrs[SPLIT_KEY] = {k: v for k, v in carried.items() if v}
        return self._view(index=self._index[idx], attrs=attrs)

    def get_split(self, name: str, source: str | None = None, purpose: str = "") -> "LazyTrajectories":
        """The view of split ``name``: the selector of :meth:`Trajectories.get_split`
        (``pymsde.data.splits.select_split``), without reading any value of ``u``."""
        indices, window = select_split(self.attrs, name, source or self.source, purpose)
        if window is not None:
            attrs = {k: v for k, v in self.attrs.items() if k != TIME_SPLIT_KEY}
            attrs["time_window"] = list(window)
            return self._view(window=(self._first + window[0], self._first + window[1]), attrs=attrs)
        return self if indices is None else self.subset(indices)

    # sizes, grid, dt, splits: TrajectoryShape (as Trajectories)

    def close(self) -> None:
        """Close the file (views of it stop working)."""
        if self._h5 is not None:
            self._h5.close()

    def __enter__(self) -> "LazyTrajectories":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"LazyTrajectories(n_traj={self.n_traj}, n_t={self.n_t}, channels={self.channels}, "
                f"grid={self.grid_shape}, dtype={self.u.dtype}, source={self.source!r})")


def _check_stored(h5py, path: Path, ds) -> None:
    """Refuse an unfiltered ``u`` held in this file that declares more bytes than the file stores."""
    declared = float(math.prod(ds.shape)) * ds.dtype.itemsize
    stored = float(ds.id.get_storage_size())
    plist = ds.id.get_create_plist()
    local = plist.get_layout() in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED) and plist.get_external_count() == 0
    if local and plist.get_nfilters() == 0 and stored < declared:
        raise DataError(f"{path}: key 'u' declares shape {tuple(ds.shape)} {ds.dtype}, which would need "
                        f"{format_bytes(declared)}, but the file stores {format_bytes(stored)} of it (damaged, or "
                        f"not completely written)")


def open_lazy(path: str | Path) -> LazyTrajectories:
    """Open a trajectories file without reading ``u`` (HDF5); a ``.npz`` is loaded whole.

    Raises:
        DataError: as :func:`pymsde.data.io.load` for everything but ``u``'s values, which are
            checked (finite) as they are read; also for a ``u`` the file does not store.
    """
    path = Path(path)
    if _format(path) == "npz":
        traj = load(path)
        return LazyTrajectories(traj.u, str(path), traj.t, traj.domain, traj.boundary, traj.mu, traj.f,
                                traj.attrs, checked=True)
    h5py = _h5py()
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: no such file")
    check_readable_file(path, "a data file (.npz, .h5 or .hdf5)", max_bytes=math.inf)
    try:
        h5 = h5py.File(path, "r", rdcc_nbytes=CACHE_BYTES)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    try:
        datasets = _h5_datasets(h5py, h5)
        check_keys(set(h5.keys()), str(path))
        ds = datasets.get("u")
        if ds is None:
            raise DataError(f"{path}: key 'u' is not a dataset; expected the field (n_traj, n_t, C, *grid)")
        _check_stored(h5py, path, ds)
        _check_sizes(path, {k: (tuple(n.shape or ()), n.dtype) for k, n in datasets.items() if k != "u"})
        raw = read_h5_keys(h5py, h5, path, skip=("u",))
        domain, boundary, attrs, defaulted = parse_metadata(raw, max(len(ds.shape) - 3, 1), str(path))
        try:
            t, domain, boundary, mu, f, attrs = validate_fields(ds.shape, ds.dtype, raw["t"], domain, boundary,
                                                                raw.get("mu"), raw.get("f"), attrs)
        except DataError as err:
            raise DataError(f"{path}: key {err}") from None
    except BaseException:
        h5.close()
        raise
    for message in defaulted:
        log.warning("%s: %s", path, message)
    return LazyTrajectories(ds, str(path), t, domain, boundary, mu, f, attrs, h5=h5)


__all__ = ["open_lazy", "LazyTrajectories", "LazyField"]
