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

Shards (docs/distributed.md, "Generating a data set in shards"): a large set can be written as
``N`` shard files, shard ``k`` (1-based) holding the contiguous trajectories
:func:`shard_slice` ``(n_traj, k, N)`` beside the output (:func:`shard_path`:
``swe.shard-2-of-8.h5`` for ``swe.h5``), each a valid data file of its own with the record
``attrs["shard"]`` (:func:`shard_attrs`); :func:`merge_shards` checks that the shards are one
complete set of one run and streams them, in order, into the output through this writer.
"""
from __future__ import annotations

import contextlib
import glob
import json
import math
import re
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from pymsde.data.io import _format, _h5py
from pymsde.data.trajectories import normalise_attrs, validate_fields
from pymsde.util.atomic import atomic_path
from pymsde.util.errors import ConfigError, DataError

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


# ----------------------------------------------------------------------------- shards

#: ``attrs`` key of a shard file's record (absent from a merged file, which has ``"shards"``)
SHARD_KEY = "shard"


def shard_slice(n_traj: int, k: int, n_shards: int) -> tuple[int, int]:
    """Trajectories ``[lo, hi)`` of shard ``k`` of ``n_shards`` (1-based ``k``): contiguous,
    disjoint, covering ``range(n_traj)``, sizes differing by at most one (the first shards larger;
    rank ``k - 1``'s ``pymsde.training.distributed.rank_slice``). ConfigError unless
    ``1 <= k <= n_shards <= n_traj``."""
    if not (isinstance(k, int) and isinstance(n_shards, int) and 1 <= k <= n_shards):
        raise ConfigError(f"shard {k}/{n_shards}: expected K/N with 1 <= K <= N (shard K of N, counted from 1; "
                          f"e.g. 2/8)")
    if n_shards > n_traj:
        raise ConfigError(f"{n_shards} shards of {n_traj} trajectories: a shard would be empty; expected at most "
                          f"n_traj = {n_traj} shards")
    q, r = divmod(int(n_traj), int(n_shards))
    lo = (k - 1) * q + min(k - 1, r)
    return lo, lo + q + (1 if k - 1 < r else 0)


def shard_path(out: str | Path, k: int, n_shards: int) -> Path:
    """The file of shard ``k`` of ``n_shards`` beside ``out``: ``swe.h5`` -> ``swe.shard-2-of-8.h5``
    (``k`` zero-padded to the width of ``n_shards``, so the names sort in order)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.shard-{k:0{len(str(n_shards))}d}-of-{n_shards}{out.suffix}")


def shard_attrs(attrs: dict, k: int, n_shards: int, n_traj: int, per_trajectory: Sequence[str] = ()) -> dict:
    """The ``attrs`` of shard ``k``: the whole data set's ``attrs`` (as the single-process run
    writes them) with the record ``attrs["shard"]`` = ``{"k", "of", "n_traj", "trajectories":
    [lo, hi], "order"}`` (the keys' order). The whole set's ``split`` (indices beyond the shard) and
    the lists of ``per_trajectory`` keys (this shard's entries, e.g. swe2d's ``steps``) move into
    the record, which :func:`merge_shards` puts back: the split as it is, the lists concatenated."""
    lo, hi = shard_slice(n_traj, k, n_shards)
    record = {"k": int(k), "of": int(n_shards), "n_traj": int(n_traj), "trajectories": [lo, hi],
              "order": list(attrs)}
    out = {key: v for key, v in attrs.items() if key != "split" and key not in per_trajectory}
    if "split" in attrs:
        record["split"] = attrs["split"]
    record["per_trajectory"] = {key: list(attrs[key]) for key in per_trajectory if key in attrs}
    for key, values in record["per_trajectory"].items():
        if len(values) != hi - lo:
            raise DataError(f"shard {k} of {n_shards}: attrs[{key!r}] has {len(values)} entries; expected one per "
                            f"trajectory of the shard ({hi - lo})")
    return {**out, SHARD_KEY: record}


def find_shards(out: str | Path) -> list[Path]:
    """The shard files of ``out`` in its folder (``STEM.shard-K-of-N.SUFFIX``, any ``K`` and ``N``), sorted."""
    out = Path(out)
    name = re.compile(re.escape(out.stem) + r"\.shard-\d+-of-\d+" + re.escape(out.suffix))
    return sorted(p for p in out.parent.glob(f"{glob.escape(out.stem)}.shard-*-of-*{glob.escape(out.suffix)}")
                  if name.fullmatch(p.name))


def _short(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_shard(path: Path, h5py) -> dict:
    """A shard's metadata (``u`` stays on disk): record, attrs, shapes, t, mu, domain, boundary."""
    try:
        with h5py.File(path, "r") as h5:
            attrs = json.loads(h5["attrs"][()])
            u = h5["u"]
            meta = {"path": path, "shape": tuple(u.shape), "dtype": str(u.dtype), "t": h5["t"][()],
                    "mu": h5["mu"][()] if "mu" in h5 else None, "domain": h5["domain"][()],
                    "boundary": [b.decode() if isinstance(b, bytes) else str(b) for b in h5["boundary"][()]]}
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise DataError(f"{path}: not a readable shard file ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:200]})") from None
    record = attrs.pop(SHARD_KEY, None) if isinstance(attrs, dict) else None
    keys = {"k", "of", "n_traj", "trajectories", "order", "per_trajectory"}
    try:
        if not (isinstance(record, dict) and keys <= set(record)):
            raise ConfigError("no record")
        lo, hi = shard_slice(int(record["n_traj"]), int(record["k"]), int(record["of"]))
    except (ConfigError, TypeError, ValueError):
        raise DataError(f"{path}: attrs['{SHARD_KEY}'] is missing or not a shard record; expected a file written by "
                        f"pymsde simulate --shard K/N or under torchrun") from None
    named = re.search(r"\.shard-(\d+)-of-(\d+)$", path.stem)
    if named and (int(named[1]), int(named[2])) != (record["k"], record["of"]):
        raise DataError(f"{path}: named shard {int(named[1])} of {int(named[2])} but holds shard {record['k']} of "
                        f"{record['of']} (a renamed copy?); expected the name pymsde wrote")
    if record["trajectories"] != [lo, hi] or meta["shape"][0] != hi - lo:
        raise DataError(f"{path}: shard {record['k']} of {record['of']} holds {meta['shape'][0]} trajectories "
                        f"{record['trajectories']}; expected [{lo}, {hi}) of {record['n_traj']}")
    return {**meta, "record": record, "attrs": attrs}


def _settings(s: dict) -> dict:
    """What every shard of one run has in common (compared key by key)."""
    rec = s["record"]
    return {"number of shards": rec["of"], "n_traj": rec["n_traj"], "u frame shape": list(s["shape"][1:]),
            "u dtype": s["dtype"], "t": s["t"][0].tolist(), "domain": s["domain"].tolist(), "boundary": s["boundary"],
            "mu columns": None if s["mu"] is None else s["mu"].shape[1], "split": rec.get("split"),
            "attrs keys": rec["order"], **{f"attrs[{k!r}]": v for k, v in s["attrs"].items()}}


def check_shards(out: str | Path, paths: Sequence[str | Path] | None = None) -> list[dict]:
    """The shards of ``out`` (``paths``, or every :func:`find_shards` file) in order, checked to be
    one complete set of one run: every shard ``1 .. N`` once, the same ``N``, sizes, times, grid
    and ``attrs`` (case, seed, options...). DataError naming the file otherwise; reads metadata only."""
    out = Path(out)
    paths = find_shards(out) if paths is None else [Path(p) for p in paths]
    if not paths:
        raise DataError(f"{out}: no shard files {out.stem}.shard-K-of-N{out.suffix} found in "
                        f"{out.parent if str(out.parent) else '.'}; expected the shards of pymsde simulate --shard")
    h5py = _h5py()
    shards = [_read_shard(p, h5py) for p in paths]
    first = shards[0]
    ref = _settings(first)
    for s in shards[1:]:
        mine = _settings(s)
        for key in ref:
            if mine.get(key) != ref[key]:
                raise DataError(f"{s['path']}: {key} = {_short(mine.get(key))} but {first['path'].name} has "
                                f"{_short(ref[key])}; expected shards of one run (same case, seed, sizes, options)")
        if set(mine) != set(ref):
            extra = sorted(set(mine) ^ set(ref))[0]
            raise DataError(f"{s['path']}: {extra} is in one of {s['path'].name} and {first['path'].name} only; "
                            f"expected shards of one run")
    by_k: dict[int, dict] = {}
    for s in shards:
        k = s["record"]["k"]
        if k in by_k:
            raise DataError(f"{s['path']}: shard {k} of {s['record']['of']} again (also {by_k[k]['path'].name}); "
                            f"expected each shard once")
        by_k[k] = s
    n = first["record"]["of"]
    missing = [k for k in range(1, n + 1) if k not in by_k]
    if missing:
        raise DataError(f"{shard_path(out, missing[0], n)}: shard {missing[0]} of {n} is missing ({len(missing)} of "
                        f"{n} missing); expected all {n} shards before merging")
    return [by_k[k] for k in range(1, n + 1)]


def merge_shards(out: str | Path, paths: Sequence[str | Path] | None = None, keep: bool = False) -> dict:
    """Merge the complete set of shards of ``out`` (:func:`check_shards`) into ``out``, in order,
    through :func:`stream_writer` (atomic; one chunk of ``u`` in memory at a time), then remove
    the shard files (unless ``keep``). The merged file is the one the single-process run writes:
    the same ``u``, ``t``, ``mu`` and ``attrs``, plus ``attrs["shards"] = N``. Returns a summary
    (``path``, ``n_traj``, ``shards``, ``dtype``, ``min``, ``max``, ``seconds``)."""
    start = time.perf_counter()
    out = Path(out)
    shards = check_shards(out, paths)
    h5py = _h5py()
    first, rec = shards[0], shards[0]["record"]
    shape = (rec["n_traj"], *first["shape"][1:])
    attrs_by_key = {**first["attrs"], **({"split": rec["split"]} if "split" in rec else {}),
                    **{key: [v for s in shards for v in s["record"]["per_trajectory"][key]]
                       for key in rec.get("per_trajectory", {})}}
    attrs = {**{key: attrs_by_key[key] for key in rec["order"] if key in attrs_by_key}, "shards": rec["of"]}
    t = np.concatenate([s["t"] for s in shards])
    n_mu = 0 if first["mu"] is None else first["mu"].shape[1]
    frames = chunk_shape(shape, np.dtype(first["dtype"]).itemsize)[1]
    with stream_writer(out, shape, t, first["domain"], first["boundary"], n_mu=n_mu, dtype=first["dtype"]) as w:
        for s in shards:
            lo = s["record"]["trajectories"][0]
            with h5py.File(s["path"], "r") as h5:
                u = h5["u"]
                for i in range(u.shape[0]):
                    for t0 in range(0, shape[1], frames):
                        mu = s["mu"][i:i + 1] if (n_mu and t0 == 0) else None
                        w.write(lo + i, u[i:i + 1, t0:t0 + frames], mu=mu, t0=t0)
        w.attrs = attrs
    if not keep:
        for s in shards:
            s["path"].unlink(missing_ok=True)
    return {"path": out, "n_traj": shape[0], "shards": rec["of"], "dtype": str(w.dtype), "min": float(w.vmin.min()),
            "max": float(w.vmax.max()), "seconds": time.perf_counter() - start}


__all__ = ["stream_writer", "StreamWriter", "chunk_shape", "frames_per_block", "CHUNK_BYTES", "CACHE_BYTES",
           "shard_slice", "shard_path", "shard_attrs", "find_shards", "check_shards", "merge_shards", "SHARD_KEY"]
