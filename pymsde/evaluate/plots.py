"""Plotting primitives for data and forecasts (PNG files, matplotlib's Agg renderer).

matplotlib is an optional dependency (``pip install pymsde[plot]``); it is imported only when a
plot is drawn. Figures are built with the object-oriented API (``matplotlib.figure.Figure`` on
an Agg canvas), never through ``pyplot``, so plotting changes no global state, needs no display
and does not interfere with a user's interactive backend. Every PNG is written atomically.

Colour scales: the panels of one figure share one colour scale, so truth and forecast can be
compared by eye; panels named in ``own_scale`` (by default every panel whose name contains
"error") share a second scale, symmetric around zero, so errors of different methods compare too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pymsde.util.atomic import atomic_path
from pymsde.util.errors import BackendUnavailableError, DataError

DPI = 120


def _figure(n_rows: int, n_cols: int, panel_size: tuple[float, float], sharey: bool = False):
    """A Figure with an Agg canvas and a ``(n_rows, n_cols)`` array of axes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise BackendUnavailableError("plotting needs matplotlib: pip install pymsde[plot]") from None
    fig = Figure(figsize=(panel_size[0] * n_cols, panel_size[1] * n_rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False, sharey=sharey))
    return fig, axes


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DataError(f"{path}: plots are written as PNG; expected a file name ending in .png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _own_scale(names: Sequence[str], own_scale: Sequence[str] | None) -> set[str]:
    if own_scale is None:
        return {n for n in names if "error" in n.lower()}
    return set(own_scale)


def _finite_values(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The finite entries of ``arrays``, flattened (NaN / inf -- a diverged forecast -- left out)."""
    flat = [np.asarray(a, dtype=float).ravel() for a in arrays]
    v = np.concatenate(flat) if flat else np.zeros(0)
    return v[np.isfinite(v)]


def _limits(panels: Mapping[str, np.ndarray], own: set[str]) -> dict[str, tuple[float, float, str]]:
    """(vmin, vmax, colormap) per panel: a shared range for the rest, symmetric for ``own``;
    over finite values only (a panel with none does not widen the range)."""
    shared = _finite_values([a for n, a in panels.items() if n not in own])
    lim = {}
    if any(n not in own for n in panels):
        lo, hi = (float(shared.min()), float(shared.max())) if shared.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        for n in panels:
            if n not in own:
                lim[n] = (lo, hi, "viridis")
    own = [n for n in panels if n in own]
    if own:
        # one symmetric scale for all error panels: errors of different methods compare by eye
        err = _finite_values([panels[n] for n in own])
        m = float(np.abs(err).max()) if err.size else 0.0
        m = m or 1.0
        for n in own:
            lim[n] = (-m, m, "RdBu_r")
    return lim


def _as_panels(panels: Mapping[str, np.ndarray], ndim: int, what: str) -> dict[str, np.ndarray]:
    if not panels:
        raise DataError(f"{what}: no panels given")
    out = {}
    for name, a in panels.items():
        a = np.asarray(a, dtype=float)
        if a.ndim != ndim:
            raise DataError(f"{what}: panel {name!r} has shape {a.shape}; expected {ndim} axes")
        out[str(name)] = a
    shapes = {a.shape for a in out.values()}
    if len(shapes) != 1:
        raise DataError(f"{what}: panels have different shapes {sorted(shapes)}; expected one shape")
    return out


def _edges(c: np.ndarray) -> tuple[float, float]:
    """Outer cell edges of equally spaced centres ``c`` (for imshow extents)."""
    if c.size < 2:
        return float(c[0]) - 0.5, float(c[0]) + 0.5
    h = (c[-1] - c[0]) / (c.size - 1)
    return float(c[0] - h / 2), float(c[-1] + h / 2)


def plot_spacetime(panels: Mapping[str, np.ndarray], x: np.ndarray, t: np.ndarray, path: str | Path, *,
                   title: str | None = None, xlabel: str = "x", tlabel: str = "t", label: str = "u",
                   own_scale: Sequence[str] | None = None) -> Path:
    """Side-by-side space-time diagrams (x across, t up) of 1-D fields, e.g. truth / forecast / error.

    Args:
        panels: ``{name: array (n_t, n_x)}``, all of one shape.
        x: ``(n_x,)`` point coordinates; t: ``(n_t,)`` times (equally spaced).
        path: the PNG to write.
        label: colour-bar label (quantity and units).
        own_scale: panel names on the separate symmetric error scale (default: names with "error").
    """
    panels = _as_panels(panels, 2, "plot_spacetime")
    x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    shape = next(iter(panels.values())).shape
    if shape != (t.size, x.size):
        raise DataError(f"plot_spacetime: panels have shape {shape}; expected (len(t), len(x)) = ({t.size}, {x.size})")
    limits = _limits(panels, _own_scale(list(panels), own_scale))
    fig, axes = _figure(1, len(panels), (4.2, 3.6))
    extent = (*_edges(x), *_edges(t))
    for ax, (name, a) in zip(axes[0], panels.items()):
        vmin, vmax, cmap = limits[name]
        im = ax.imshow(a, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap=cmap,
                       interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(tlabel)
        fig.colorbar(im, ax=ax, label=label if "error" not in name.lower() else f"{label} error")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_snapshots(panels: Mapping[str, np.ndarray], times: np.ndarray, path: str | Path, *,
                   x: np.ndarray | None = None, y: np.ndarray | None = None, title: str | None = None,
                   label: str = "u", own_scale: Sequence[str] | None = None) -> Path:
    """Snapshots of 2-D fields: one row per panel, one column per time.

    Args:
        panels: ``{name: array (n_s, nx, ny)}`` (first spatial axis = x, drawn across).
        times: ``(n_s,)`` the time of each snapshot (column titles).
        x, y: ``(nx,)``, ``(ny,)`` point coordinates for the axes (default: indices).
    """
    panels = _as_panels(panels, 3, "plot_snapshots")
    times = np.asarray(times, dtype=float).reshape(-1)
    n_s = next(iter(panels.values())).shape[0]
    if times.size != n_s:
        raise DataError(f"plot_snapshots: {times.size} times for {n_s} snapshots per panel; expected equal")
    limits = _limits(panels, _own_scale(list(panels), own_scale))
    fig, axes = _figure(len(panels), n_s, (2.6, 2.4))
    nx, ny = next(iter(panels.values())).shape[1:]
    x = np.arange(nx, dtype=float) if x is None else np.asarray(x, dtype=float)
    y = np.arange(ny, dtype=float) if y is None else np.asarray(y, dtype=float)
    if (x.size, y.size) != (nx, ny):
        raise DataError(f"plot_snapshots: coordinates of lengths ({x.size}, {y.size}) for fields of "
                        f"shape ({nx}, {ny}); expected equal")
    extent = (*_edges(x), *_edges(y))
    for r, (name, a) in enumerate(panels.items()):
        vmin, vmax, cmap = limits[name]
        for c in range(n_s):
            ax = axes[r, c]
            im = ax.imshow(a[c].T, origin="lower", extent=extent, vmin=vmin, vmax=vmax, cmap=cmap,
                           interpolation="nearest")
            ax.set_title(f"{name}, t = {times[c]:.3g}", fontsize=9)
            ax.set_xlabel("x", fontsize=8)
            ax.set_ylabel("y", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=list(axes[r]), label=label if "error" not in name.lower() else f"{label} error",
                     shrink=0.9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_profiles(x: np.ndarray, truth: np.ndarray, mean: np.ndarray, std: np.ndarray | None,
                  times: np.ndarray, path: str | Path, *, title: str | None = None, label: str = "u",
                  xlabel: str = "x") -> Path:
    """1-D profiles at a few times: truth, forecast mean and a ±2σ band.

    Args:
        x: ``(n_x,)`` coordinates; truth, mean, std: ``(n_s, n_x)`` at ``times`` ``(n_s,)``
            (``std`` may be None: no band).
    """
    x = np.asarray(x, dtype=float)
    truth, mean = np.atleast_2d(np.asarray(truth, dtype=float)), np.atleast_2d(np.asarray(mean, dtype=float))
    times = np.asarray(times, dtype=float).reshape(-1)
    expected = (times.size, x.size)
    arrays = {"truth": truth, "mean": mean}
    if std is not None:
        arrays["std"] = np.atleast_2d(np.asarray(std, dtype=float))
    for name, a in arrays.items():
        if a.shape != expected:
            raise DataError(f"plot_profiles: {name} has shape {a.shape}; expected (len(times), len(x)) = {expected}")
    fig, axes = _figure(1, times.size, (3.4, 2.8), sharey=True)
    for j, ax in enumerate(axes[0]):
        if std is not None:
            s = arrays["std"][j]
            ax.fill_between(x, mean[j] - 2 * s, mean[j] + 2 * s, color="C0", alpha=0.25, lw=0, label="mean ± 2σ")
        ax.plot(x, truth[j], color="k", lw=1.2, label="truth")
        ax.plot(x, mean[j], color="C0", lw=1.2, ls="--", label="forecast mean")
        ax.set_title(f"t = {times[j]:.3g}", fontsize=10)
        ax.set_xlabel(xlabel)
        if j == 0:
            ax.set_ylabel(label)
            ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_error_curves(t: np.ndarray, curves: Mapping[str, np.ndarray], path: str | Path, ylabel: str, *,
                      title: str | None = None, logy: bool = False, xlabel: str = "t",
                      levels: Mapping[str, float] | None = None) -> Path:
    """Error against time, one line per method.

    Args:
        t: ``(n_t,)`` times.
        curves: ``{name: (n_t,)}``; non-finite values (a diverged forecast) are left blank.
        path: the PNG to write.
        ylabel: y-axis label (quantity and units).
        logy: logarithmic y axis (non-positive values are not drawn).
        levels: ``{name: value}`` drawn as a dashed horizontal line in the colour of the curve
            ``name`` (e.g. each method's pooled mean); non-finite values are skipped.
    """
    t = np.asarray(t, dtype=float).reshape(-1)
    if not curves:
        raise DataError("plot_error_curves: no curves given")
    unknown = sorted(set(levels or {}) - set(curves))
    if unknown:
        raise DataError(f"plot_error_curves: level {unknown[0]!r} has no curve; expected one of {sorted(curves)}")
    fig, axes = _figure(1, 1, (5.0, 3.4))
    ax = axes[0, 0]
    for k, (name, c) in enumerate(curves.items()):
        c = np.asarray(c, dtype=float).reshape(-1)
        if c.size != t.size:
            raise DataError(f"plot_error_curves: curve {name!r} has {c.size} values; expected len(t) = {t.size}")
        ax.plot(t, np.where(np.isfinite(c), c, np.nan), lw=1.4, color=f"C{k}", label=str(name))
        level = (levels or {}).get(name)
        if level is not None and np.isfinite(level):
            ax.axhline(float(level), color=f"C{k}", lw=0.9, ls="--", alpha=0.8)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    if title:
        ax.set_title(title)
    return _save(fig, path)
