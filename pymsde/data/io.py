"""Trajectories files: ``.npz`` (numpy) and ``.h5`` / ``.hdf5`` (HDF5, needs h5py).

One format, documented in ``docs/data_format.md``, that anyone can write without pymsde.
Keys (the same names in both containers; HDF5 stores them as datasets at the file root):

=========== ======================== ==========================================================
key         shape                    meaning
=========== ======================== ==========================================================
``u``       (n_traj, n_t, C, *grid)  field, float32 or float64 (required)
``t``       (n_traj, n_t) or (n_t,)  times, uniform step per trajectory (required)
``domain``  (n_dims, 2)              (lo, hi) per spatial axis (optional: default [0, 1])
``boundary`` (n_dims,) strings       "periodic" / "dirichlet" / "outflow" / "slip" (optional: default "periodic")
``mu``      (n_traj, n_mu)           parameters (optional)
``f``       (n_traj, n_t, n_f)       forcing at the observation times (optional)
``attrs``   0-d string               JSON object of metadata; ``"split"`` (trajectories) or
                                     ``"time_split"`` (frame intervals) holds named splits
=========== ======================== ==========================================================

``save`` always writes every key it has (``t`` as ``(n_traj, n_t)``, ``boundary`` as a
fixed-width unicode array in ``.npz`` and UTF-8 strings in HDF5, ``attrs`` as JSON), so a
file round trip is bit-exact. ``load`` falls back to the documented defaults when ``domain``
or ``boundary`` is absent and logs a warning naming the file and the assumed value.

Safety: ``.npz`` is read with ``allow_pickle=False``; an object (pickled) array is refused
with a DataError naming the key; so is a path that is no regular file (a directory, a FIFO,
a symlink to ``/dev/zero``), and a file whose array headers (``.npz`` headers, HDF5 dataset
shapes) declare more than the available memory, before anything is read. Arrays in
big-endian byte order are converted to the native one. Writes go through :func:`pymsde.util.atomic_path`: a failed
save leaves no file (and an existing file untouched).
"""
from __future__ import annotations

import json
import logging
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pymsde.data.trajectories import Trajectories, normalise_attrs
from pymsde.util.atomic import atomic_path
from pymsde.util.errors import BackendUnavailableError, DataError, check_memory, check_readable_file, format_bytes

log = logging.getLogger(__name__)

NPZ_SUFFIXES = (".npz",)
HDF5_SUFFIXES = (".h5", ".hdf5")
KEYS = ("u", "t", "domain", "boundary", "mu", "f", "attrs")
REQUIRED_KEYS = ("u", "t")
#: Default extent of an axis when a file has no ``domain``.
DEFAULT_DOMAIN = (0.0, 1.0)
#: Default boundary type of an axis when a file has no ``boundary``.
DEFAULT_BOUNDARY = "periodic"


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise BackendUnavailableError("HDF5 files need the h5py package: pip install pymsde[hdf5] "
                                      "(or use a .npz file)") from None
    return h5py


def file_format(path: str | Path, for_writing: bool = False) -> str:
    """``"npz"`` or ``"hdf5"`` from the suffix of ``path``; DataError for another suffix.

    With ``for_writing``, also checks that h5py is importable for an HDF5 name, so a caller can
    refuse a bad output name before a long computation rather than after it.
    """
    path = Path(path)
    fmt = _format(path)
    if fmt == "hdf5" and for_writing:
        _h5py()
    return fmt


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in NPZ_SUFFIXES:
        return "npz"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    raise DataError(f"{path}: unknown file type {path.suffix!r}; expected one of "
                    f"{NPZ_SUFFIXES + HDF5_SUFFIXES}")


def _to_arrays(traj: Trajectories) -> dict[str, np.ndarray]:
    arrays = {"u": traj.u, "t": traj.t, "domain": traj.domain,
              "boundary": np.asarray(traj.boundary, dtype=str),
              "attrs": np.asarray(json.dumps(traj.attrs))}
    if traj.mu is not None:
        arrays["mu"] = traj.mu
    if traj.f is not None:
        arrays["f"] = traj.f
    return arrays


def save(traj: Trajectories, path: str | Path) -> Path:
    """Write ``traj`` to ``path`` (format by suffix: ``.npz``, ``.h5``, ``.hdf5``), atomically.

    The trajectories are re-validated first (an array changed in place since construction,
    e.g. a NaN written into ``u``, is caught before any byte is written). Returns the path.
    """
    path = Path(path)
    fmt = _format(path)
    if not isinstance(traj, Trajectories):
        raise DataError(f"{path}: save expects a Trajectories, found {type(traj).__name__}")
    try:
        Trajectories(u=traj.u, t=traj.t, domain=traj.domain, boundary=traj.boundary,
                     mu=traj.mu, f=traj.f, attrs=traj.attrs)
    except DataError as err:
        raise DataError(f"{path}: not saved: {err}") from None
    arrays = _to_arrays(traj)
    if fmt == "hdf5":
        h5py = _h5py()
    with atomic_path(path) as tmp:
        if fmt == "npz":
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        else:
            with h5py.File(tmp, "w") as h5:
                for key, value in arrays.items():
                    if value.dtype.kind == "U":  # h5py has no fixed-width unicode: UTF-8 strings
                        h5.create_dataset(key, data=value.astype(object), dtype=h5py.string_dtype("utf-8"))
                    else:
                        h5.create_dataset(key, data=value)
    return path


def _check_sizes(path: Path, declared: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """Refuse a file whose arrays, as their headers declare them, would not fit in memory (a
    damaged or crafted header claiming petabytes), before anything is allocated."""
    total = 0.0
    for key, (shape, dtype) in declared.items():
        nbytes = float(math.prod(shape)) * max(1, dtype.itemsize)
        total += nbytes
        check_memory(nbytes, f"{path}: key {key!r} declares shape {tuple(shape)} {dtype}, which", error=DataError,
                     hint=f"the file is {format_bytes(path.stat().st_size)} on disk: damaged, or too large for "
                          f"this machine")
    check_memory(total, f"{path}: its arrays ({', '.join(declared)})", error=DataError)


def _npz_headers(path: Path, npz) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype of every ``.npy`` member of an open ``.npz``, read from the headers."""
    from numpy.lib import format as npformat

    out = {}
    for key in npz.files:
        name = key if key in npz.zip.namelist() else key + ".npy"
        try:
            with npz.zip.open(name) as fh:
                version = npformat.read_magic(fh)
                reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                shape, _, dtype = reader(fh)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise DataError(f"{path}: key {key!r} cannot be read ({err})") from None
        out[key] = (tuple(int(n) for n in shape), np.dtype(dtype))
    return out


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not an .npz archive of named arrays")
    out = {}
    with npz:
        _check_sizes(path, _npz_headers(path, npz))
        for key in npz.files:
            try:
                out[key] = npz[key]
            except ValueError as err:
                if "allow_pickle" in str(err) or "bject arrays" in str(err):
                    raise DataError(f"{path}: key {key!r} holds an object (pickled) array; expected a numeric "
                                    f"or string array (pickled data is never loaded)") from None
                raise DataError(f"{path}: key {key!r} cannot be read ({err})") from None
            except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as err:   # truncated / corrupt
                raise DataError(f"{path}: key {key!r} cannot be read ({err})") from None
            except MemoryError:    # a header claiming a huge shape in a small (damaged) file
                raise DataError(f"{path}: key {key!r} claims an array larger than memory "
                                f"({path.stat().st_size} bytes on disk); the file is damaged or not a data file") from None
    return out


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    h5py = _h5py()
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    with h5:
        _check_sizes(path, {k: (tuple(n.shape or ()), n.dtype) for k, n in _h5_datasets(h5py, h5).items()})
        return read_h5_keys(h5py, h5, path)


def read_h5_keys(h5py, h5, path: Path, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The root datasets of an open HDF5 file as arrays (strings decoded as UTF-8), except ``skip``;
    groups that are not pymsde keys are skipped with a warning."""
    out = {}
    for key in h5.keys():
        if key in skip:
            continue
        try:
            node = h5[key]
        except KeyError as err:            # a dangling soft or external link
            raise DataError(f"{path}: key {key!r} cannot be opened ({err})") from None
        if not isinstance(node, h5py.Dataset):
            if key in KEYS:
                raise DataError(f"{path}: key {key!r} is an HDF5 group; expected a dataset")
            log.warning("%s: ignoring HDF5 group %r (not a pymsde key)", path, key)
            continue
        if node.dtype.kind == "O" or h5py.check_string_dtype(node.dtype) is not None:
            # strings (boundary names, attrs JSON): bytes or str -> numpy unicode, as UTF-8
            # (fixed-length byte strings carry no encoding; asstr() would assume ASCII)
            if h5py.check_string_dtype(node.dtype) is None:
                raise DataError(f"{path}: key {key!r} holds objects of dtype {node.dtype}; "
                                f"expected numbers or strings")
            out[key] = _decode_utf8(path, key, np.asarray(node[()]))
        else:
            out[key] = node[()]
    return out


def _h5_datasets(h5py, h5) -> dict:
    """The datasets at the root of an open HDF5 file (links that do not open are skipped here)."""
    out = {}
    for key in h5.keys():
        try:
            node = h5[key]
        except KeyError:
            continue
        if isinstance(node, h5py.Dataset):
            out[key] = node
    return out


def _decode_utf8(path: Path, key: str, value: np.ndarray) -> np.ndarray:
    """Bytes / str / object-of-either arrays -> a numpy unicode array, decoding bytes as UTF-8."""
    flat = value.reshape(-1)
    try:
        items = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: key {key!r} holds bytes that are not UTF-8 text ({err})") from None
    return np.asarray(items, dtype=str).reshape(value.shape)


def _strings(path: Path, key: str, value: np.ndarray) -> list[str]:
    if value.dtype.kind == "S":
        value = _decode_utf8(path, key, value)
    if value.dtype.kind != "U":
        raise DataError(f"{path}: key {key!r} has dtype {value.dtype}; expected strings")
    return [str(v) for v in value.reshape(-1)]


def load(path: str | Path) -> Trajectories:
    """Read a trajectories file (``.npz``, ``.h5``, ``.hdf5``) and validate it.

    Raises DataError naming the file and the key for a missing key, a wrong shape or dtype,
    non-finite values, non-uniform times, an unknown boundary type or a pickled array.
    """
    path = Path(path)
    fmt = _format(path)
    if not os.path.lexists(path):
        raise DataError(f"{path}: no such file")
    check_readable_file(path, "a data file (.npz, .h5 or .hdf5)", max_bytes=math.inf)
    raw = _read_npz(path) if fmt == "npz" else _read_hdf5(path)
    return from_arrays(raw, source=str(path))


def from_arrays(raw: dict[str, Any], source: str = "<arrays>") -> Trajectories:
    """Build Trajectories from a dict of the file keys (the loader's second half).

    ``source`` names the origin in error messages (the file path for :func:`load`).
    """
    check_keys(raw, source)
    u = np.asarray(raw["u"])
    domain, boundary, attrs, defaulted = parse_metadata(raw, max(u.ndim - 3, 1), source)
    try:
        traj = Trajectories(u=u, t=raw["t"], domain=domain, boundary=boundary,
                            mu=raw.get("mu"), f=raw.get("f"), attrs=attrs)
    except DataError as err:
        raise DataError(f"{source}: key {err}") from None
    for message in defaulted:
        log.warning("%s: %s", source, message)
    return traj


def check_keys(raw, source: str) -> None:
    """DataError for a missing required key; a warning for unknown ones (``raw``: the file's key names)."""
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise DataError(f"{source}: missing key {missing[0]!r} ({_KEY_HELP[missing[0]]}); "
                        f"found keys {sorted(raw)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        log.warning("%s: ignoring unknown keys %s (known: %s)", source, unknown, list(KEYS))


def parse_metadata(raw: dict[str, Any], n_dims: int, source: str) -> tuple[Any, tuple, dict, list[str]]:
    """``(domain, boundary, attrs, defaulted)`` from the file keys: the documented defaults
    where ``domain`` / ``boundary`` are absent (``defaulted``: the warnings to log), the
    ``attrs`` JSON decoded; DataError naming ``source`` and the key otherwise."""
    path = Path(source)
    defaulted = []
    domain = raw.get("domain")
    if domain is None:
        domain = np.asarray([DEFAULT_DOMAIN] * n_dims)
        defaulted.append(f"no 'domain' key; assuming {list(DEFAULT_DOMAIN)} on each of the {n_dims} spatial axes")
    boundary = raw.get("boundary")
    if boundary is None:
        boundary = (DEFAULT_BOUNDARY,) * n_dims
        defaulted.append(f"no 'boundary' key; assuming {DEFAULT_BOUNDARY!r} on each of the {n_dims} spatial axes")
    else:
        boundary = np.asarray(boundary)
        if boundary.ndim != 1:
            raise DataError(f"{source}: key 'boundary' has shape {boundary.shape}; expected (n_dims,), one name "
                            f"per spatial axis")
        boundary = tuple(_strings(path, "boundary", boundary))
    attrs: Any = {}
    if "attrs" in raw:
        if np.ndim(raw["attrs"]) != 0:
            raise DataError(f"{source}: key 'attrs' has shape {np.shape(raw['attrs'])}; expected () (one JSON "
                            f"string)")
        text = _strings(path, "attrs", np.asarray(raw["attrs"]))
        if len(text) != 1:
            raise DataError(f"{source}: key 'attrs' has {len(text)} strings; expected one JSON string")
        try:
            attrs = json.loads(text[0])
        except json.JSONDecodeError as err:
            raise DataError(f"{source}: key 'attrs' is not valid JSON ({err})") from None
        if not isinstance(attrs, dict):
            raise DataError(f"{source}: key 'attrs' is a JSON {type(attrs).__name__}; expected a JSON object")
    return domain, boundary, normalise_attrs(attrs), defaulted


_KEY_HELP = {"u": "the field, shape (n_traj, n_t, C, *grid)", "t": "the times, shape (n_traj, n_t) or (n_t,)"}
