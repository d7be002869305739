"""PDEBench's 2-D HDF5 files converted to pymsde's format, one sample at a time (``pymsde import pdebench``).

The layouts, as PDEBench's own code writes and reads them (github.com/pdebench/PDEBench, read
for this module):

- ``"groups"``: one group per sample, named by the zero-padded seed (``"0000"``, ``"0001"``,
  ...), each holding ``data (n_t, nx, ny, C)`` and ``grid/x (nx,)``, ``grid/y (ny,)``,
  ``grid/t (n_t,)``. The radial dam break ``2D_rdb_NA_NA.h5`` is written this way by
  ``pdebench/data_gen/src/sim_radial_dam_break.py`` (``save_state_to_disk``:
  ``create_dataset(f"{seed_str}/data", data=H, dtype="f")`` with ``H`` the depth ``h`` of
  PyClaw's ``q`` (x first) and a trailing channel axis, ``grid/x``, ``grid/y`` the cell centres,
  ``grid/t`` = ``linspace(0, T, tsteps + 1)``) and ``pdebench/data_gen/gen_radial_dam_break.py``
  (``seed_str = str(i).zfill(4)``; the group's ``attrs["config"]`` is the run's YAML config,
  with ``sim.dam_radius``). ``pdebench/models/fno/utils.py`` (``FNODatasetMult``) reads it:
  ``sorted(h5_file.keys())``, "data dim = [t, x1, ..., xd, v]", the grid by
  ``meshgrid(x, y, indexing="ij")``. The 2-D diffusion-reaction file has the same layout with
  ``C = 2``.
- ``"tensor"``: a dataset ``tensor (n, n_t, nx, ny)`` and ``x-coordinate``, ``y-coordinate``,
  ``t-coordinate`` (``FNODatasetSingle`` in ``pdebench/models/fno/utils.py``: "batch, time,
  x,..."; its 1-D files store ``n_t + 1`` values of ``t-coordinate``, of which the loader keeps
  the first ``n_t``, as this converter does).
- ``"cfd"``: ``density``, ``pressure``, ``Vx``, ``Vy``, each ``(n, n_t, nx, ny)``, with the same
  coordinate datasets (the 2-D compressible Navier-Stokes files; ``FNODatasetSingle`` stacks
  them as channels in that order, which is the default order here; ``fields`` picks some).

Output: ``u (n, n_t, C, nx, ny)`` float32 (``(T, H, W, C) -> (T, C, H, W)``, the paper's
transposition for 2D_rdb, FINAL_PAPER.md 6.1), ``u - subtract`` plus N(0, noise^2) noise
(trajectory ``i`` seeded ``default_rng([seed, i])``), times from the file, each axis as
``"dirichlet"`` on ``(x[0], x[-1])`` so ``Grid.coordinates`` returns the stored coordinates
(``boundary="periodic"``: ``(x[0], x[0] + nx dx)``), ``mu[:, 0]`` the dam radius when every group's
config has one, and a consecutive train/val/test split (the paper: the first 90 % of the sorted
keys train, the next 5 % val, the rest test). Memory: one sample in float64.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pymsde.data.grid import BOUNDARY_TYPES, uniform_step
from pymsde.data.io import _h5py
from pymsde.data.splits import split_counts
from pymsde.data.stream import stream_writer
from pymsde.util.errors import ConfigError, DataError, check_readable_file
from pymsde.util.progress import progress

LAYOUTS = ("groups", "tensor", "cfd")
CFD_FIELDS = ("density", "pressure", "Vx", "Vy")
_RADIUS = re.compile(r"^\s*dam_radius:\s*([-+0-9.eE]+)\s*$", re.MULTILINE)


class _Source:
    """One PDEBench file: ``n`` samples of ``(n_t, C, nx, ny)``, coordinates, a reader per sample."""

    def __init__(self, layout, n, shape, x, y, t, read: Callable[[int], np.ndarray], names, fields, radii=None):
        self.layout, self.n, self.shape, self.x, self.y, self.t = layout, n, shape, x, y, t
        self.read, self.names, self.fields, self.radii = read, names, fields, radii


def _dataset(h5py, node, src: str, field: str):
    try:
        obj = node[field]
    except KeyError:
        raise DataError(f"{src}: no field {field!r}; expected the PDEBench dataset {field!r}") from None
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{src}: field {field!r} is an HDF5 group; expected a dataset")
    return obj


def _coordinate(h5py, node, src: str, field: str, n: int, allow_extra: bool = False) -> np.ndarray:
    """A 1-D coordinate of ``n`` values (``allow_extra``: ``n + 1`` stored, the first ``n`` kept)."""
    c = np.asarray(_dataset(h5py, node, src, field)[()], dtype=np.float64)
    if c.ndim == 1 and allow_extra and c.size == n + 1:
        c = c[:n]
    if c.shape != (n,):
        raise DataError(f"{src}: field {field!r} has shape {c.shape}; expected ({n},) to match the data")
    uniform_step(c, f"{src}: field {field!r}")
    return c


def _groups(h5py, h5, src: str) -> _Source:
    names = sorted(k for k in h5.keys() if isinstance(h5.get(k), h5py.Group))
    if not names:
        raise DataError(f"{src}: no PDEBench layout found: expected groups '0000', '0001', ... each holding "
                        f"'data', a dataset 'tensor', or {list(CFD_FIELDS)}; found keys {sorted(h5.keys())[:10]}")
    first = h5[names[0]]
    d0 = _dataset(h5py, h5, src, f"{names[0]}/data")
    if d0.ndim != 4:
        raise DataError(f"{src}: field '{names[0]}/data' has shape {d0.shape}; expected (n_t, nx, ny, C), a 2-D "
                        f"field with a channel axis")
    n_t, nx, ny, c = (int(v) for v in d0.shape)
    x = _coordinate(h5py, first, src, "grid/x", nx)
    y = _coordinate(h5py, first, src, "grid/y", ny)
    t = _coordinate(h5py, first, src, "grid/t", n_t)

    def read(i: int) -> np.ndarray:
        name = names[i]
        if not isinstance(h5.get(name), h5py.Group):
            raise DataError(f"{src}: group {name!r} is missing")
        d = _dataset(h5py, h5, src, f"{name}/data")
        if tuple(d.shape) != (n_t, nx, ny, c):
            raise DataError(f"{src}: field '{name}/data' has shape {d.shape}; expected {(n_t, nx, ny, c)} as "
                            f"'{names[0]}/data'")
        return np.moveaxis(np.asarray(d[()], dtype=np.float64), -1, 1)

    radii = []
    for name in names:
        m = _RADIUS.search(str(h5[name].attrs.get("config", "")))
        radii.append(float(m.group(1)) if m else None)
    return _Source("groups", len(names), (n_t, c, nx, ny), x, y, t, read, names, ["data"],
                   None if None in radii else np.asarray(radii))


def _arrays(h5py, h5, src: str, fields: Sequence[str]) -> _Source:
    sets = [_dataset(h5py, h5, src, f) for f in fields]
    shape = tuple(int(v) for v in sets[0].shape)
    if len(shape) != 4:
        raise DataError(f"{src}: field {fields[0]!r} has shape {shape}; expected (n, n_t, nx, ny), samples of a "
                        f"2-D field in time")
    for f, d in zip(fields, sets):
        if tuple(d.shape) != shape:
            raise DataError(f"{src}: field {f!r} has shape {d.shape}; expected {shape} as {fields[0]!r}")
    n, n_t, nx, ny = shape
    x = _coordinate(h5py, h5, src, "x-coordinate", nx)
    y = _coordinate(h5py, h5, src, "y-coordinate", ny)
    t = _coordinate(h5py, h5, src, "t-coordinate", n_t, allow_extra=True)

    def read(i: int) -> np.ndarray:
        return np.stack([np.asarray(d[i], dtype=np.float64) for d in sets], axis=1)

    layout = "tensor" if list(fields) == ["tensor"] else "cfd"
    return _Source(layout, n, (n_t, len(fields), nx, ny), x, y, t, read, [str(i) for i in range(n)], list(fields))


def open_source(h5py, h5, src: str, fields: Sequence[str] | None = None) -> _Source:
    """Detect the layout of an open PDEBench file (see the module docstring)."""
    if "tensor" in h5 and isinstance(h5["tensor"], h5py.Dataset):
        if fields and list(fields) != ["tensor"]:
            raise ConfigError(f"{src}: fields {list(fields)}; this file holds the one field 'tensor'")
        return _arrays(h5py, h5, src, ["tensor"])
    present = [f for f in CFD_FIELDS if f in h5]
    if fields or present:
        chosen = list(fields) if fields else present
        return _arrays(h5py, h5, src, chosen)
    return _groups(h5py, h5, src)


def _domain(x: np.ndarray, boundary: str) -> list[float]:
    if boundary == "periodic":
        return [float(x[0]), float(x[0] + x.size * (x[-1] - x[0]) / (x.size - 1))]
    return [float(x[0]), float(x[-1])]


def convert_pdebench(src: str | Path, out: str | Path, fields: Sequence[str] | None = None, subtract: float = 0.0,
                     noise: float = 0.0, seed: int = 0, split=(0.9, 0.05, 0.05), n_traj: int | None = None,
                     boundary: str = "dirichlet", case: str | None = None, show_progress: bool = True) -> dict:
    """Convert the PDEBench HDF5 file ``src`` into the pymsde HDF5 file ``out`` (atomically).

    Args:
        fields: the ``cfd`` datasets to stack as channels (default: those present of
            :data:`CFD_FIELDS`, in that order); subtract: a constant removed from every value
            (2D_rdb: 1, the outer depth, as the paper); noise: std of added Gaussian noise;
            seed: its seed; split: train/val/test fractions or counts of consecutive samples;
            n_traj: convert the first ``n_traj`` samples only; boundary: the kind of both axes
            (:data:`~pymsde.data.grid.BOUNDARY_TYPES`; 2D_rdb's are ``"outflow"``); case: recorded as ``attrs["case"]`` (``"swe2d"`` for
            2D_rdb with ``subtract=1`` lets the coarse-DNS baseline run on it).
    Returns:
        a summary dict (``out``, ``layout``, ``n_traj``, ``shape``, ``splits``, ``seconds``).
    Raises:
        DataError: one line naming the file and the field: no layout found, a missing group
            or dataset, a wrong shape, non-uniform coordinates, non-finite values.
    """
    if boundary not in BOUNDARY_TYPES:
        raise ConfigError(f"import pdebench: boundary {boundary!r}; expected one of {BOUNDARY_TYPES}")
    if not (np.isfinite(noise) and noise >= 0 and np.isfinite(subtract)):
        raise ConfigError(f"import pdebench: noise = {noise}, subtract = {subtract}; expected finite numbers, noise >= 0")
    src = str(check_readable_file(src, "a PDEBench HDF5 file", max_bytes=np.inf))
    h5py = _h5py()
    try:
        h5 = h5py.File(src, "r")
    except OSError as err:
        raise DataError(f"{src}: not a readable HDF5 file ({err})") from None
    start = time.perf_counter()
    with h5:
        s = open_source(h5py, h5, src, fields)
        n = s.n if n_traj is None else int(n_traj)
        if not 1 <= n <= s.n:
            raise ConfigError(f"import pdebench: n_traj = {n_traj}; expected 1 to the file's {s.n} samples")
        counts = split_counts(dict(zip(("train", "val", "test"), split)), n)
        parts, k = {}, 0
        for name, c in counts.items():
            if c:
                parts[name] = list(range(k, k + c))
            k += c
        radii = None if s.radii is None else s.radii[:n]
        shape = (n, *s.shape)
        with stream_writer(out, shape, s.t, [_domain(s.x, boundary), _domain(s.y, boundary)], (boundary,) * 2,
                           n_mu=0 if radii is None else 1) as w:
            for i in progress(range(n), desc="import pdebench", unit="sample", enabled=show_progress):
                u = s.read(i) - subtract
                if noise > 0:
                    u += noise * np.random.default_rng([int(seed), i]).standard_normal(u.shape)
                w.write(i, u[None], mu=None if radii is None else radii[i:i + 1, None])
            w.attrs = {**({"case": case} if case else {}), "source": "PDEBench", "source_file": Path(src).name,
                       "layout": s.layout, "fields": s.fields, "samples": [s.names[0], s.names[n - 1]],
                       "subtract": float(subtract), "noise": float(noise), "seed": int(seed),
                       **({"mu_names": ["dam_radius"]} if radii is not None else {}), "split": parts}
    return {"out": Path(out), "layout": s.layout, "n_traj": n, "shape": shape, "fields": s.fields,
            "splits": {k: len(v) for k, v in parts.items()}, "seconds": time.perf_counter() - start}


__all__ = ["convert_pdebench", "open_source", "LAYOUTS", "CFD_FIELDS"]
