"""Writing a trajectories HDF5 file piece by piece, in bounded memory, atomically.

:func:`stream_writer` creates the file of ``docs/data_format.md`` (the keys of
:func:`pymsde.data.io.save`) with ``u`` as a chunked dataset that is filled as blocks of
trajectories (or blocks of frames of one trajectory) arrive, e.g. one chunk of the
shallow-water generator at a time::

    with stream_writer("swe.h5", (1000, 101, 1, 128, 128), t, domain, boundary, n_mu=1) as w:
        for part in iter_swe_chunks(...):
            w.write(part["index"][0], part["u"], mu=part["mu"])
        w.attrs = {...}                  # written when the block ends

Layout: ``u`` is float32 by default (``dtype``), chunked ``(1, k, C, *grid)`` with ``k`` the most
frames of one trajectory within :data:`CHUNK_BYTES` (the whole trajectory for the dam break:
6.6 MB; 40 frames, 8.2 MB, for the cylinder), uncompressed, so a window ``u[i, t0:t1]`` reads at
most ``ceil((t1 - t0) / k) + 1`` chunks. ``t`` is ``(n_traj, n_t)`` float64, ``mu``
``(n_traj, n_mu)`` float64, ``domain``, ``boundary`` and ``attrs`` (JSON) as ``save`` writes them,
so :func:`pymsde.data.io.load` reads the file too when it fits in memory.

Atomic: everything goes to a temporary file beside the destination (``pymsde.util.atomic_path``)
that is renamed into place only when the block ends without an exception *and* every
trajectory and every frame was written (else DataError): a failed or interrupted run leaves
no file, and an existing file untouched. Every block is checked (shape, finite values) before
it is written. Memory: the block passed to :meth:`StreamWriter.write`, its float32 copy and
HDF5's chunk cache of one chunk (at most :data:`CHUNK_BYTES`).
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from pymsde.data.io import _format, _h5py
from pymsde.data.trajectories import normalise_attrs, validate_fields
from pymsde.util.atomic import atomic_path
from pymsde.util.errors import DataError

#: Largest chunk of ``u`` (bytes): whole frames of one trajectory.
CHUNK_BYTES = 8 * 2 ** 20
#: HDF5's raw-data chunk cache of a lazily read file (bytes); the writer keeps one chunk.
CACHE_BYTES = 16 * 2 ** 20


def chunk_shape(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    """``(1, k, C, *grid)``: ``k`` the most frames of one trajectory within :data:`CHUNK_BYTES` (at least 1)."""
    frame = int(np.prod(shape[2:])) * int(itemsize)
    k = max(1, min(int(shape[1]), CHUNK_BYTES // max(frame, 1)))
    return (1, k, *(int(n) for n in shape[2:]))


class StreamWriter:
    """The open file of :func:`stream_writer`: :meth:`write` blocks, set :attr:`attrs`.

    Also keeps the running per-channel minimum and maximum of what was written (:attr:`vmin`,
    :attr:`vmax`), for a summary line.
    """

    def __init__(self, h5, path: Path, shape: tuple[int, ...], dtype, n_mu: int):
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        self._u = h5.create_dataset("u", shape=shape, dtype=self.dtype, chunks=chunk_shape(shape, self.dtype.itemsize))
        self._mu = h5.create_dataset("mu", shape=(shape[0], n_mu), dtype=np.float64) if n_mu else None
        self._done = np.zeros(shape[:2], dtype=bool)
        self._mu_done = np.zeros(shape[0], dtype=bool)
        self.attrs: dict = {}
        self.vmin = np.full(shape[2], np.inf)
        self.vmax = np.full(shape[2], -np.inf)

    def write(self, start: int, u: np.ndarray, mu: np.ndarray | None = None, t0: int = 0) -> None:
        """Write ``u (b, n_frames, C, *grid)`` as trajectories ``start .. start + b - 1``, frames
        ``t0 .. t0 + n_frames - 1`` (``mu (b, n_mu)``: their parameters). DataError naming the
        file for a block of the wrong shape, out of range or with a non-finite value."""
        u = np.asarray(u)
        n, n_t = self.shape[:2]
        if u.ndim != len(self.shape) or tuple(u.shape[2:]) != self.shape[2:]:
            raise DataError(f"{self.path}: block of shape {u.shape}; expected (b, n_frames, *{self.shape[2:]})")
        b, k = u.shape[:2]
        if not (0 <= start and start + b <= n and 0 <= t0 and t0 + k <= n_t and b and k):
            raise DataError(f"{self.path}: block of trajectories [{start}, {start + b}) x frames [{t0}, {t0 + k}) "
                            f"is outside u {self.shape[:2]}")
        for j in range(b):
            bad = ~np.isfinite(u[j])
            if bad.any():
                k_bad = int(np.argwhere(bad)[0][0])
                raise DataError(f"{self.path}: non-finite value (NaN or inf) at trajectory {start + j}, time index "
                                f"{t0 + k_bad}; nothing written")
        block = u.astype(self.dtype, copy=False)
        self._u[start:start + b, t0:t0 + k] = block
        axes = (0, 1) + tuple(range(3, u.ndim))
        self.vmin = np.minimum(self.vmin, block.min(axis=axes))
        self.vmax = np.maximum(self.vmax, block.max(axis=axes))
        self._done[start:start + b, t0:t0 + k] = True
        if mu is not None:
            if self._mu is None or np.shape(mu) != (b, self._mu.shape[1]):
                raise DataError(f"{self.path}: mu of shape {np.shape(mu)} for {b} trajectories; expected "
                                f"({b}, {0 if self._mu is None else self._mu.shape[1]})")
            self._mu[start:start + b] = np.asarray(mu, dtype=np.float64)
            self._mu_done[start:start + b] = True

    def _check_complete(self) -> None:
        if not self._done.all():
            i, k = np.argwhere(~self._done)[0]
            raise DataError(f"{self.path}: not written: trajectory {i}, frame {k} was never written "
                            f"({int((~self._done).sum())} of {self._done.size} frames missing); nothing saved")
        if self._mu is not None and not self._mu_done.all():
            raise DataError(f"{self.path}: not written: mu of trajectory {int(np.argmin(self._mu_done))} is missing")


@contextlib.contextmanager
def stream_writer(path: str | Path, shape: Sequence[int], t, domain, boundary, n_mu: int = 0,
                  dtype=np.float32) -> Iterator[StreamWriter]:
    """Open ``path`` (``.h5`` / ``.hdf5``) for writing ``u`` of ``shape = (n_traj, n_t, C, *grid)``.

    Args:
        t: ``(n_t,)`` or ``(n_traj, n_t)`` times; domain, boundary: as :class:`Trajectories`.
        n_mu: parameters per trajectory (0: no ``mu`` key); dtype: of ``u`` (float32 or float64).
    Yields:
        a :class:`StreamWriter`. When the block ends, the metadata are validated
        (``pymsde.data.trajectories.validate_fields``), ``attrs`` written, and the file renamed
        into place; on any exception nothing is left behind.
    Raises:
        DataError: a suffix other than HDF5's, bad metadata, an incomplete ``u``.
    """
    path = Path(path)
    if _format(path) != "hdf5":
        raise DataError(f"{path}: streamed files are HDF5; expected a name ending in .h5 or .hdf5")
    shape = tuple(int(n) for n in shape)
    h5py = _h5py()
    t_full, dom, bnd, _, _, _ = _checked(path, shape, dtype, t, domain, boundary, {})
    chunk_bytes = int(np.prod(chunk_shape(shape, np.dtype(dtype).itemsize))) * np.dtype(dtype).itemsize
    with atomic_path(path) as tmp:
        # a cache of one chunk: a chunk filled by blocks of frames stays in it until complete
        with h5py.File(tmp, "w", rdcc_nbytes=chunk_bytes + 1024) as h5:
            h5.create_dataset("t", data=t_full)
            h5.create_dataset("domain", data=dom)
            h5.create_dataset("boundary", data=np.asarray(bnd, dtype=object), dtype=h5py.string_dtype("utf-8"))
            writer = StreamWriter(h5, path, shape, dtype, int(n_mu))
            yield writer
            writer._check_complete()
            mu = None if writer._mu is None else np.zeros(writer._mu.shape)
            attrs = _checked(path, shape, dtype, t_full, dom, bnd, writer.attrs, mu)[5]
            h5.create_dataset("attrs", data=json.dumps(attrs), dtype=h5py.string_dtype("utf-8"))


def _checked(path: Path, shape, dtype, t, domain, boundary, attrs, mu=None):
    try:
        return validate_fields(shape, dtype, t, domain, boundary, mu, None, normalise_attrs(attrs))
    except DataError as err:
        raise DataError(f"{path}: not written: key {err}") from None


def frames_per_block(shape: Sequence[int], budget: float = 64 * 2 ** 20, itemsize: int = 8) -> int:
    """How many frames of one trajectory of ``shape`` fit in ``budget`` bytes (at least 1):
    the block size of a bounded-memory pass over a long trajectory."""
    frame = int(np.prod(shape[2:])) * itemsize
    return max(1, min(int(shape[1]), int(math.floor(budget / max(frame, 1)))))


__all__ = ["stream_writer", "StreamWriter", "chunk_shape", "frames_per_block", "CHUNK_BYTES", "CACHE_BYTES"]
