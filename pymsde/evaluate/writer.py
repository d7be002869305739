"""Writing an evaluation to a folder: ``report.md`` (:mod:`pymsde.evaluate.render`),
``metrics.json`` (:meth:`pymsde.evaluate.report.EvaluationResult.to_json`) and the PNG plots.

Layer order inside ``evaluate``: ``report`` (scores, JSON, table) <- ``render`` (text) <-
``writer`` (files).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pymsde.evaluate.baselines import Prediction
from pymsde.evaluate.render import render_report
from pymsde.evaluate.report import METHOD_ORDER, EvaluationResult
from pymsde.util.atomic import atomic_write_text

log = logging.getLogger(__name__)


def write_report(result: EvaluationResult, predictions: dict[str, Prediction], traj, out_dir: str | os.PathLike,
                 *, plots: bool = True, traj_index: int = 0) -> Path:
    """Write ``report.md`` (:func:`pymsde.evaluate.render.render_report`), ``metrics.json``
    (:meth:`EvaluationResult.to_json`) and the PNG plots (unless ``plots=False``) into ``out_dir``.

    Args:
        result: the scores and metadata.
        predictions: method name -> :class:`Prediction` (for the plots).
        traj: the evaluation ``Trajectories`` (truth; its ``attrs``, grid and times describe the data).
        traj_index: which trajectory of the split the field plots show.

    Returns:
        the path of ``report.md``; also stored in ``result.report_path``.
    """

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = write_plots(result, predictions, traj, out, traj_index=traj_index) if plots else []
    path = out / "report.md"
    atomic_write_text(path, render_report(result, traj, figures, out))
    result.report_path = path                              # before to_json: it names the report
    atomic_write_text(out / "metrics.json", result.to_json() + "\n")
    return path


def _finite(a: np.ndarray) -> np.ndarray:
    """``a`` with inf replaced by NaN (a diverged forecast; plots leave NaN blank)."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


#: Legend / panel name of each method's prediction in the plots.
PLOT_NAMES = {"multiscale": "multiscale (ensemble mean)", "closure": "closure (ensemble mean)",
              "dns": "coarse DNS", "dmd": "DMD", "sindy": "POD-SINDy"}


def _error_vs_time(result: EvaluationResult, names: list[str], t: np.ndarray, out: Path, labels: dict,
                   n_traj: int) -> tuple[str, Path, str]:
    """The error-vs-time figure: ``(title, path, caption)``."""
    from pymsde.evaluate import plots as P

    scored = [m for m in names if m in result.scores]
    curves = {m: _finite(result.scores[m].relative_error_per_time if result.scores[m].relative_error_per_time
                         is not None else result.scores[m].nrmse_per_time) for m in scored}
    levels = {m: result.scores[m].relative_error for m in scored}
    pos = np.concatenate([c[np.isfinite(c) & (c > 0)] for c in curves.values()] + [np.zeros(0)])
    logy = bool(pos.size > 0 and pos.max() > 1e3 * pos.min())
    p = out / "error_vs_time.png"
    P.plot_error_curves(t, curves, p, ylabel="relative error ε(t) (%)", logy=logy, levels=levels,
                        xlabel=labels["t"])
    over = "the one trajectory" if n_traj == 1 else f"the {n_traj} trajectories"
    caption = (f"Relative error eps(t) = 100 ||u(t) - u_hat(t)|| / ||u(t)|| of each method against the stored "
               f"(noisy) observations, mean over {over} of the split (solid lines); dashed: "
               f"each method's pooled mean over all trajectories and times (the table's rel. error)"
               + ("; logarithmic axis (the curves span more than three decades)" if logy else "")
               + ". Blank stretches: a diverged forecast.")
    return "Relative error vs time", p, caption


def write_plots(result: EvaluationResult, predictions: dict[str, Prediction], traj, out: Path,
                *, traj_index: int = 0) -> list[tuple[str, Path, str]]:
    """The report's PNGs; returns ``(title, path, caption)`` triples.

    Both 1-D and 2-D: the relative error ``eps(t)`` vs time for every method (mean over
    trajectories, against the stored observations; dashed: each method's pooled mean), on a
    log axis when the curves span more than three decades. 1-D: forecast vs truth snapshots
    with the ensemble's +-2 std band (each ensemble method), space-time diagrams of truth and
    predictions (one shared colourbar) and of the errors (one symmetric colourbar); 2-D: field
    snapshots of truth and every method side by side (one shared colourbar). Every channel is
    drawn (one set per channel for multi-channel data); a 2-D field of 2 channels (a velocity
    (u, v), unless ``attrs["field"]`` names something else) also gets vorticity snapshots with the
    velocity as arrows (:func:`pymsde.evaluate.plots.plot_vorticity`). Axis labels carry the units of
    ``traj.attrs`` (:func:`pymsde.evaluate.plots.axis_labels`; "(nondimensional)" without).
    Diverged (non-finite) values are left blank.
    """
    from pymsde.evaluate import plots as P

    i = traj_index
    t = np.asarray(traj.t[i], dtype=np.float64)
    truth = np.asarray(traj.u[i], dtype=np.float64)          # (n_t, C, *grid)
    names = [m for m in METHOD_ORDER if m in predictions] + [m for m in predictions if m not in METHOD_ORDER]
    labels = P.axis_labels(traj.attrs)
    figs = [_error_vs_time(result, names, t, out, labels, int(traj.n_traj))]
    snap_idx = np.unique(np.round(np.linspace(0, len(t) - 1, 4)).astype(int))
    times = ", ".join(f"{v:.3g}" for v in t[snap_idx])
    which = f"trajectory {i} of the split"
    means = {m: _finite(predictions[m].mean[i]) for m in names}         # (n_t, C, *grid)
    shown = {m: PLOT_NAMES.get(m, m) for m in names}
    for c in range(truth.shape[1]):
        sfx = "" if truth.shape[1] == 1 else f"_c{c}"
        ctitle = "" if truth.shape[1] == 1 else f" (channel {c})"
        if traj.grid.ndim == 1:
            x = traj.grid.coordinates(0)
            for m in names:
                pred = predictions[m]
                std = None if pred.std is None else pred.std[i, snap_idx, c]
                p = out / f"profiles_{m}{sfx}.png"
                P.plot_profiles(x, truth[snap_idx, c], means[m][snap_idx, c], std, t[snap_idx], p,
                                label=labels["u"], xlabel=labels["x"], mean_label=shown[m],
                                truth_label="truth (observation)")
                band = ("the ensemble mean (dashed) with a band of ± 2 ensemble standard deviations"
                        if std is not None else "the deterministic prediction (dashed), no band")
                figs.append((f"{m}: prediction vs truth{ctitle}", p,
                             f"{which.capitalize()} at t = {times}: the stored observation (black) and {band}."))
            panels = {"truth": truth[:, c], **{shown[m]: means[m][:, c] for m in names}}
            p = out / f"spacetime{sfx}.png"
            P.plot_spacetime(panels, x, t, p, xlabel=labels["x"], tlabel=labels["t"], label=labels["u"])
            figs.append((f"Space-time: truth and predictions{ctitle}", p,
                         f"{which.capitalize()}, x across and t up: the stored observation and each method's "
                         f"prediction on one shared colour scale (one colourbar)."))
            err = {f"error: {shown[m]}": means[m][:, c] - truth[:, c] for m in names}
            p = out / f"spacetime_error{sfx}.png"
            P.plot_spacetime(err, x, t, p, xlabel=labels["x"], tlabel=labels["t"], label=labels["u"],
                             error_label=f"prediction - truth, {labels['u']}")
            figs.append((f"Space-time: prediction minus truth{ctitle}", p,
                         f"{which.capitalize()}: prediction minus observation for each method, on one colour "
                         f"scale symmetric around zero shared by all methods (red: too high, blue: too low)."))
        else:
            panels = {"truth": truth[snap_idx, c], **{shown[m]: means[m][snap_idx, c] for m in names}}
            p = out / f"snapshots{sfx}.png"
            P.plot_snapshots(panels, t[snap_idx], p, x=traj.grid.coordinates(0), y=traj.grid.coordinates(1),
                             label=labels["u"], xlabel=labels["x"], ylabel=labels["y"])
            figs.append((f"Snapshots: truth and predictions side by side{ctitle}", p,
                         f"{which.capitalize()} at t = {times} (columns): the stored observation (first row) "
                         f"and each method's prediction (one row each) on one shared colour scale (one colourbar)."))
    if _is_velocity(traj, truth.shape[1]):
        figs.append(_vorticity(traj, truth, means, names, shown, snap_idx, t, out, labels, which, times))
    return figs


def _is_velocity(traj, channels: int) -> bool:
    """A 2-D field of 2 channels is taken as a velocity (u, v) unless ``attrs["field"]`` says otherwise."""
    field = str(traj.attrs.get("field", "velocity")).lower()
    return traj.grid.ndim == 2 and channels == 2 and "velocity" in field


def _vorticity(traj, truth, means, names, shown, snap_idx, t, out: Path, labels: dict, which: str,
               times: str) -> tuple[str, Path, str]:
    """The vorticity snapshots of truth and predictions, velocity arrows on top."""
    from pymsde.evaluate import plots as P

    panels = {"truth": truth[snap_idx], **{shown[m]: means[m][snap_idx] for m in names}}
    p = out / "vorticity.png"
    P.plot_vorticity(panels, t[snap_idx], p, x=traj.grid.coordinates(0), y=traj.grid.coordinates(1),
                     periodic=[b == "periodic" for b in traj.grid.boundary], label=P.vorticity_label(traj.attrs),
                     xlabel=labels["x"], ylabel=labels["y"])
    return ("Vorticity and velocity: truth and predictions", p,
            f"{which.capitalize()} at t = {times} (columns): the vorticity dv/dx - du/dy (finite differences "
            f"of channels 0 = u and 1 = v) of the stored observation (first row) and of each method's "
            f"prediction, on one colour scale symmetric around zero, with the velocity as arrows "
            f"(one length scale for all panels).")
