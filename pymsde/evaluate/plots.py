"""Plotting primitives for data and forecasts (PNG files, matplotlib's Agg renderer).

matplotlib is an optional dependency (``pip install pymsde[plot]``); it is imported only when a
plot is drawn. Figures are built with the object-oriented API (``matplotlib.figure.Figure`` on
an Agg canvas), never through ``pyplot``, so plotting changes no global state, needs no display
and does not interfere with a user's interactive backend. Every PNG is written atomically.

Each ``plot_*`` function writes a PNG; the matching ``*_figure`` function builds the same
``Figure`` without writing it (for tests and for callers that want to add to it).

Colour scales: the panels of one figure share one colour scale and **one colourbar**, so truth
and forecast can be compared by eye; panels named in ``own_scale`` (by default every panel whose
name contains "error") share a second scale, symmetric around zero, with a second colourbar, so
errors of different methods compare too.

Axis labels: :func:`axis_labels` turns a data file's ``attrs`` into labels with units
(``attrs["units"]`` for the field, ``attrs["x_units"]`` / ``"y_units"`` for space,
``attrs["t_units"]`` for time); without them the labels say "(nondimensional)".

Two-channel 2-D fields (a velocity ``(u, v)`` along the grid's two axes):
:func:`pymsde.evaluate.vorticity.vorticity` (finite differences) and :func:`plot_vorticity` (vorticity snapshots with a quiver overlay of
the velocity); the single-channel functions take one channel at a time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pymsde.evaluate.vorticity import vorticity
from pymsde.util.atomic import atomic_path
from pymsde.util.errors import BackendUnavailableError, DataError

DPI = 120

#: The label suffix of a quantity whose data record no units.
NONDIMENSIONAL = "(nondimensional)"

#: attrs keys read for the units of each labelled quantity, first found wins.
UNIT_KEYS: dict[str, tuple[str, ...]] = {
    "u": ("units", "u_units", "field_units"),
    "x": ("x_units", "space_units", "length_units"),
    "y": ("y_units", "x_units", "space_units", "length_units"),
    "t": ("t_units", "time_units"),
}


def axis_labels(attrs: Mapping[str, Any] | None) -> dict[str, str]:
    """``{"u", "x", "y", "t"}`` -> axis label with units from ``attrs`` (see :data:`UNIT_KEYS`),
    e.g. ``"x (m)"``; ``"x (nondimensional)"`` when the data record no units for it."""
    attrs = attrs or {}
    out = {}
    for name, keys in UNIT_KEYS.items():
        unit = next((attrs[k] for k in keys if isinstance(attrs.get(k), str) and attrs[k].strip()), None)
        out[name] = f"{name} ({unit.strip()})" if unit else f"{name} {NONDIMENSIONAL}"
    return out


def vorticity_label(attrs: Mapping[str, Any] | None) -> str:
    """The colourbar label of a vorticity ``ω = ∂v/∂x − ∂u/∂y``, with ``attrs["vorticity_units"]``
    or "(nondimensional)"."""
    unit = (attrs or {}).get("vorticity_units")
    unit = unit.strip() if isinstance(unit, str) and unit.strip() else NONDIMENSIONAL[1:-1]
    return f"vorticity ω ({unit})"


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
            hint = (" (one channel at a time, a[:, c]; plot_vorticity draws a velocity (u, v))"
                    if a.ndim == ndim + 1 else "")
            raise DataError(f"{what}: panel {name!r} has shape {a.shape}; expected {ndim} axes{hint}")
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



def _shared_colorbars(fig, axes_of: Mapping[str, list], images: Mapping[str, Any], own: set[str],
                      label: str, error_label: str | None, **kwargs) -> None:
    """One colourbar for all panels on the shared scale, one for all panels on the error scale."""
    for group, text in (([n for n in axes_of if n not in own], label),
                        ([n for n in axes_of if n in own], error_label or f"error in {label}")):
        if group:
            fig.colorbar(images[group[0]], ax=[ax for n in group for ax in axes_of[n]], label=text, **kwargs)


def spacetime_figure(panels: Mapping[str, np.ndarray], x: np.ndarray, t: np.ndarray, *, title: str | None = None,
                     xlabel: str = "x", tlabel: str = "t", label: str = "u", error_label: str | None = None,
                     own_scale: Sequence[str] | None = None):
    """The Figure of :func:`plot_spacetime` (not written anywhere)."""
    panels = _as_panels(panels, 2, "plot_spacetime")
    x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    shape = next(iter(panels.values())).shape
    if shape != (t.size, x.size):
        raise DataError(f"plot_spacetime: panels have shape {shape}; expected (len(t), len(x)) = ({t.size}, {x.size})")
    own = _own_scale(list(panels), own_scale)
    limits = _limits(panels, own)
    fig, axes = _figure(1, len(panels), (3.8, 3.6), sharey=True)
    extent = (*_edges(x), *_edges(t))
    images, axes_of = {}, {}
    for k, (ax, (name, a)) in enumerate(zip(axes[0], panels.items())):
        vmin, vmax, cmap = limits[name]
        images[name] = ax.imshow(a, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap=cmap,
                                 interpolation="nearest")
        axes_of[name] = [ax]
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        if k == 0:
            ax.set_ylabel(tlabel)
    _shared_colorbars(fig, axes_of, images, own, label, error_label)
    if title:
        fig.suptitle(title)
    return fig


def plot_spacetime(panels: Mapping[str, np.ndarray], x: np.ndarray, t: np.ndarray, path: str | Path, *,
                   title: str | None = None, xlabel: str = "x", tlabel: str = "t", label: str = "u",
                   error_label: str | None = None, own_scale: Sequence[str] | None = None) -> Path:
    """Side-by-side space-time diagrams (x across, t up) of 1-D fields, e.g. truth / forecast / error.

    Args:
        panels: ``{name: array (n_t, n_x)}``, all of one shape.
        x: ``(n_x,)`` point coordinates; t: ``(n_t,)`` times (equally spaced).
        path: the PNG to write.
        xlabel, tlabel: axis labels (with units, see :func:`axis_labels`).
        label: label of the shared colourbar (quantity and units).
        error_label: label of the error panels' colourbar (default ``"error in " + label``).
        own_scale: panel names on the separate symmetric error scale (default: names with "error").
    """
    return _save(spacetime_figure(panels, x, t, title=title, xlabel=xlabel, tlabel=tlabel, label=label,
                                  error_label=error_label, own_scale=own_scale), path)


def snapshots_figure(panels: Mapping[str, np.ndarray], times: np.ndarray, *, x: np.ndarray | None = None,
                     y: np.ndarray | None = None, title: str | None = None, label: str = "u",
                     error_label: str | None = None, xlabel: str = "x", ylabel: str = "y",
                     own_scale: Sequence[str] | None = None):
    """The Figure of :func:`plot_snapshots` (not written anywhere)."""
    panels = _as_panels(panels, 3, "plot_snapshots")
    times = np.asarray(times, dtype=float).reshape(-1)
    n_s = next(iter(panels.values())).shape[0]
    if times.size != n_s:
        raise DataError(f"plot_snapshots: {times.size} times for {n_s} snapshots per panel; expected equal")
    own = _own_scale(list(panels), own_scale)
    limits = _limits(panels, own)
    fig, axes = _figure(len(panels), n_s, (2.6, 2.4))
    nx, ny = next(iter(panels.values())).shape[1:]
    x = np.arange(nx, dtype=float) if x is None else np.asarray(x, dtype=float)
    y = np.arange(ny, dtype=float) if y is None else np.asarray(y, dtype=float)
    if (x.size, y.size) != (nx, ny):
        raise DataError(f"plot_snapshots: coordinates of lengths ({x.size}, {y.size}) for fields of "
                        f"shape ({nx}, {ny}); expected equal")
    extent = (*_edges(x), *_edges(y))
    images, axes_of = {}, {}
    for r, (name, a) in enumerate(panels.items()):
        vmin, vmax, cmap = limits[name]
        for c in range(n_s):
            ax = axes[r, c]
            images[name] = ax.imshow(a[c].T, origin="lower", extent=extent, vmin=vmin, vmax=vmax, cmap=cmap,
                                     interpolation="nearest")
            _label_panel(ax, f"{name}, t = {times[c]:.3g}", xlabel if r == len(panels) - 1 else None,
                         ylabel if c == 0 else None)
        axes_of[name] = list(axes[r])
    _shared_colorbars(fig, axes_of, images, own, label, error_label, shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def _label_panel(ax, title: str, xlabel: str | None, ylabel: str | None) -> None:
    """Title, axis labels (bottom row / first column only: None elsewhere) and ticks of one snapshot panel."""
    ax.set_title(title, fontsize=9)
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def plot_snapshots(panels: Mapping[str, np.ndarray], times: np.ndarray, path: str | Path, *,
                   x: np.ndarray | None = None, y: np.ndarray | None = None, title: str | None = None,
                   label: str = "u", error_label: str | None = None, xlabel: str = "x", ylabel: str = "y",
                   own_scale: Sequence[str] | None = None) -> Path:
    """Snapshots of 2-D fields: one row per panel, one column per time; one colourbar for the
    panels on the shared scale (one more for error panels).

    Args:
        panels: ``{name: array (n_s, nx, ny)}`` (first spatial axis = x, drawn across).
        times: ``(n_s,)`` the time of each snapshot (column titles).
        x, y: ``(nx,)``, ``(ny,)`` point coordinates for the axes (default: indices).
        label, error_label, xlabel, ylabel: colourbar and axis labels (see :func:`plot_spacetime`).
    """
    return _save(snapshots_figure(panels, times, x=x, y=y, title=title, label=label, error_label=error_label,
                                  xlabel=xlabel, ylabel=ylabel, own_scale=own_scale), path)


def profiles_figure(x: np.ndarray, truth: np.ndarray, mean: np.ndarray, std: np.ndarray | None,
                    times: np.ndarray, *, title: str | None = None, label: str = "u", xlabel: str = "x",
                    mean_label: str | None = None, truth_label: str = "truth"):
    """The Figure of :func:`plot_profiles` (not written anywhere)."""
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
    if mean_label is None:
        mean_label = "forecast mean" if std is not None else "forecast"
    fig, axes = _figure(1, times.size, (3.4, 2.8), sharey=True)
    for j, ax in enumerate(axes[0]):
        if std is not None:
            s = arrays["std"][j]
            ax.fill_between(x, mean[j] - 2 * s, mean[j] + 2 * s, color="C0", alpha=0.25, lw=0, label="mean ± 2σ")
        ax.plot(x, truth[j], color="k", lw=1.2, label=truth_label)
        ax.plot(x, mean[j], color="C0", lw=1.2, ls="--", label=mean_label)
        ax.set_title(f"t = {times[j]:.3g}", fontsize=10)
        ax.set_xlabel(xlabel)
        if j == 0:
            ax.set_ylabel(label)
            ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def plot_profiles(x: np.ndarray, truth: np.ndarray, mean: np.ndarray, std: np.ndarray | None,
                  times: np.ndarray, path: str | Path, *, title: str | None = None, label: str = "u",
                  xlabel: str = "x", mean_label: str | None = None, truth_label: str = "truth") -> Path:
    """1-D profiles at a few times: truth, the prediction and (for an ensemble) a ±2σ band.

    Args:
        x: ``(n_x,)`` coordinates; truth, mean, std: ``(n_s, n_x)`` at ``times`` ``(n_s,)``
            (``std`` may be None: a deterministic prediction, no band).
        label, xlabel: y- and x-axis labels (with units, see :func:`axis_labels`).
        mean_label: legend entry of the prediction (default "forecast mean" with a band,
            "forecast" without; e.g. "coarse DNS" for the deterministic DNS).
        truth_label: legend entry of the truth.
    """
    return _save(profiles_figure(x, truth, mean, std, times, title=title, label=label, xlabel=xlabel,
                                 mean_label=mean_label, truth_label=truth_label), path)


def error_curves_figure(t: np.ndarray, curves: Mapping[str, np.ndarray], ylabel: str, *, title: str | None = None,
                        logy: bool = False, xlabel: str = "t", levels: Mapping[str, float] | None = None):
    """The Figure of :func:`plot_error_curves` (not written anywhere)."""
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
    return fig


def plot_error_curves(t: np.ndarray, curves: Mapping[str, np.ndarray], path: str | Path, ylabel: str, *,
                      title: str | None = None, logy: bool = False, xlabel: str = "t",
                      levels: Mapping[str, float] | None = None) -> Path:
    """Error against time, one line per method.

    Args:
        t: ``(n_t,)`` times.
        curves: ``{name: (n_t,)}``; non-finite values (a diverged forecast) are left blank.
        path: the PNG to write.
        ylabel: y-axis label (quantity and units); xlabel: the time axis's (with units).
        logy: logarithmic y axis (non-positive values are not drawn).
        levels: ``{name: value}`` drawn as a dashed horizontal line in the colour of the curve
            ``name`` (e.g. each method's pooled mean); non-finite values are skipped.
    """
    return _save(error_curves_figure(t, curves, ylabel, title=title, logy=logy, xlabel=xlabel, levels=levels), path)


def vorticity_figure(panels: Mapping[str, np.ndarray], times: np.ndarray, *, x: np.ndarray | None = None,
                     y: np.ndarray | None = None, periodic: Sequence[bool] = (False, False), quiver: bool = True,
                     arrows: int = 16, title: str | None = None, label: str = "vorticity",
                     error_label: str | None = None, xlabel: str = "x", ylabel: str = "y",
                     own_scale: Sequence[str] | None = None):
    """The Figure of :func:`plot_vorticity` (not written anywhere)."""
    panels = _as_panels(panels, 4, "plot_vorticity")
    n_s, n_c, nx, ny = next(iter(panels.values())).shape
    if n_c != 2:
        raise DataError(f"plot_vorticity: panels have {n_c} channels; expected 2 (the velocity (u, v))")
    times = np.asarray(times, dtype=float).reshape(-1)
    if times.size != n_s:
        raise DataError(f"plot_vorticity: {times.size} times for {n_s} snapshots per panel; expected equal")
    x = np.arange(nx, dtype=float) if x is None else np.asarray(x, dtype=float)
    y = np.arange(ny, dtype=float) if y is None else np.asarray(y, dtype=float)
    omega = {n: vorticity(a[:, 0], a[:, 1], x, y, periodic) for n, a in panels.items()}
    own = _own_scale(list(panels), own_scale)
    limits, top = {}, {}                       # per scale group: colour range and fastest arrow
    for group in ([n for n in panels if n not in own], [n for n in panels if n in own]):
        vals = _finite_values([omega[n] for n in group])
        m = (float(np.abs(vals).max()) if vals.size else 0.0) or 1.0       # symmetric: vorticity has a sign
        limits.update({n: (-m, m, "RdBu_r") for n in group})
        speed = _finite_values([np.hypot(panels[n][:, 0], panels[n][:, 1]) for n in group])
        top.update({n: float(speed.max()) if speed.size else 0.0 for n in group})
    (x0, x1), (y0, y1) = _edges(x), _edges(y)
    width = 3.0
    fig, axes = _figure(len(panels), n_s, (width, min(3.0, max(0.8, width * (y1 - y0) / (x1 - x0))) + 0.45))
    stride = max(1, -(-max(nx, ny) // max(1, arrows)))
    sub = (slice(stride // 2, None, stride),) * 2
    X, Y = (g[sub] for g in np.meshgrid(x, y, indexing="ij"))
    h = min(abs(float(x[1] - x[0])), abs(float(y[1] - y[0])))
    images, axes_of = {}, {}
    for r, (name, a) in enumerate(panels.items()):
        vmin, vmax, cmap = limits[name]
        for c in range(n_s):
            ax = axes[r, c]
            images[name] = ax.imshow(omega[name][c].T, origin="lower", extent=(x0, x1, y0, y1), vmin=vmin,
                                     vmax=vmax, cmap=cmap, interpolation="nearest")
            if quiver and top[name] > 0:            # one arrow scale per group: the fastest is 0.9 strides
                ax.quiver(X, Y, np.ma.masked_invalid(a[c, 0][sub]), np.ma.masked_invalid(a[c, 1][sub]),
                          angles="xy", scale_units="xy", scale=top[name] / (0.9 * stride * h), width=0.004,
                          color="k")
            _label_panel(ax, f"{name}, t = {times[c]:.3g}", xlabel if r == len(panels) - 1 else None,
                         ylabel if c == 0 else None)
        axes_of[name] = list(axes[r])
    _shared_colorbars(fig, axes_of, images, own, label, error_label, shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def plot_vorticity(panels: Mapping[str, np.ndarray], times: np.ndarray, path: str | Path, **options) -> Path:
    """Vorticity snapshots of 2-D velocity fields (u, v), with the velocity as arrows on top.

    One row per panel, one column per time; the vorticity (:func:`~pymsde.evaluate.vorticity.vorticity`) on a colour scale
    symmetric around zero shared by the panels (error panels, see :func:`plot_spacetime`, on a
    second one); arrows every ``ceil(max(nx, ny) / arrows)`` points, one length scale for the
    fields and one for the errors (the fastest arrow is 0.9 strides long). Non-finite values are
    left blank.

    Args:
        panels: ``{name: array (n_s, 2, nx, ny)}``: channel 0 the velocity along x (the first
            axis, drawn across), channel 1 along y.
        times: ``(n_s,)``.
        options: of :func:`vorticity_figure`: ``x, y`` point coordinates (default indices),
            ``periodic`` per axis, ``quiver`` (draw the arrows), ``arrows`` (per longer axis),
            ``title``, ``label`` (the colourbar's; :func:`vorticity_label` gives it units),
            ``error_label``, ``xlabel``, ``ylabel``, ``own_scale``.
    """
    return _save(vorticity_figure(panels, times, **options), path)
