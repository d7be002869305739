"""The text of ``report.md``: a report a newcomer can read on its own, with no other file.

:func:`render_report` builds it from an :class:`~pymsde.evaluate.report.EvaluationResult`
(scores and metadata), the evaluated ``Trajectories`` and the figures
(:func:`pymsde.evaluate.writer.write_plots`). Its sections, in order:

1. a one-line **verdict**, computed from the scores: the multiscale model's pooled relative
   error and how it compares with the best baseline (saying so when a baseline wins);
2. **Data**: case and equation, file, evaluated split and the file's splits, grid, times,
   channels, observation noise and units (from ``traj.attrs``, ``traj.grid``, ``traj.t``);
3. **Methods**: one definition per method present (and only those);
4. **Results**: the metrics table (:func:`~pymsde.evaluate.report.metrics_table`, read back
   by :func:`~pymsde.evaluate.report.parse_metrics_table`) and how each column is computed;
5. **What to conclude**: ranking, closure vs multiscale (same model without the microscale
   state, same training budget), the learned model vs the coarse DNS on the same mesh, why
   the error is not zero at t0 (reconstruction floor plus observation noise), calibration,
   how many trajectories the numbers rest on;
6. **Notes** (only when some apply: training-range coverage, diverged forecasts, skipped
   baselines), **Setup**, **Figures** with captions.

References point inside the repository only (``docs/method.md``, ``docs/evaluation.md``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pymsde.evaluate.plots import axis_labels
from pymsde.evaluate.report import METHOD_ORDER, EvaluationResult, _fmt, metrics_table

#: What each method is called in prose (the table and the JSON use the keys).
DISPLAY = {"multiscale": "multiscale model", "closure": "closure model", "dns": "coarse DNS", "dmd": "DMD",
           "sindy": "POD-SINDy"}
#: Governing equations by ``attrs["pde"]``: (name, equation per number of spatial axes, coefficient).
_PDES = {"burgers": ("Burgers' equation", {1: "u_t + u u_x = nu u_xx", 2: "u_t + (u . grad) u = nu lap u"}, "nu"),
         "kdv": ("the Korteweg-de Vries equation", {1: "u_t + u u_x + d u_xxx = 0"}, "d"),
         "advection": ("linear advection", {1: "u_t + c u_x = 0"}, "c")}


def _names(result: EvaluationResult) -> list[str]:
    return [m for m in METHOD_ORDER if m in result.scores] + [m for m in result.scores if m not in METHOD_ORDER]


def _pct(x: float | None) -> str:
    return f"{_fmt(x, '.2f')} %"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _cells(shape: Sequence[int] | None) -> str:
    return "?" if not shape else " x ".join(str(int(n)) for n in shape) + " cells"


def _trajectories(n: int) -> str:
    return f"{n} trajectory" if n == 1 else f"{n} trajectories"


# ----------------------------------------------------------------------------- verdict

def verdict(result: EvaluationResult) -> str:
    """One line: the multiscale model's pooled relative error against the best baseline's."""
    split = result.meta.get("split", "evaluated")
    rel = {m: result.scores[m].relative_error for m in _names(result)}
    base = {m: v for m, v in rel.items() if m != "multiscale"}
    best = min((m for m in base if _finite(base[m])), key=lambda m: base[m], default=None)
    best_txt = None if best is None else f"the {DISPLAY.get(best, best)} (`{best}`, {_pct(base[best])})"
    if "multiscale" not in rel:
        return (f"**Verdict:** no multiscale forecast was scored; the lowest pooled relative error on the "
                f"`{split}` split is {best_txt}." if best else
                f"**Verdict:** no forecast of the `{split}` split gave a finite error.")
    ms = rel["multiscale"]
    if isinstance(ms, float) and math.isnan(ms):
        return f"**Verdict:** the multiscale model's pooled relative error on the `{split}` split is not available."
    head = (f"**Verdict:** the multiscale model forecasts the `{split}` split with a relative error of {_pct(ms)} "
            f"(pooled mean)")
    if not _finite(ms):
        return (f"**Verdict:** the multiscale model's forecast of the `{split}` split diverged (relative error "
                f"{_fmt(ms, '.2f')})" + (f"; the best baseline is {best_txt}." if best else "."))
    if not base:
        return head + "; no baseline was run, so there is nothing to compare it with."
    if best is None:
        return head + f"; every baseline ({', '.join(base)}) diverged."
    y = base[best]
    if ms < y:
        ratio = f"{y / ms:.1f} times lower than" if ms > 0 else "lower than"
        return head + f", {ratio} the best baseline, {best_txt}."
    if ms == y:
        return head + f", the same as the best baseline, {best_txt}."
    ratio = f", {ms / y:.1f} times lower" if y > 0 else ""
    return head + f"; a baseline does better: the {DISPLAY.get(best, best)} (`{best}`) reaches {_pct(y)}{ratio}."


# ----------------------------------------------------------------------------- data

def _equation(attrs: dict, n_dims: int) -> str:
    pde = attrs.get("pde")
    if pde not in _PDES:
        return ""
    name, eqs, coef = _PDES[pde]
    eq = eqs.get(n_dims)
    value = attrs.get(coef)
    txt = name + (f", {eq}" if eq else "")
    return txt + (f", with {coef} = {value:g}" if isinstance(value, (int, float)) else "")


def _rms_frames(traj) -> np.ndarray:
    """RMS over channels and grid of every frame, ``(n_traj, n_t)`` (one trajectory at a time)."""
    return np.stack([np.sqrt(np.mean(np.asarray(traj.u[i], dtype=np.float64).reshape(traj.n_t, -1) ** 2, axis=1))
                     for i in range(traj.n_traj)])


def _noise(attrs: dict) -> float | None:
    v = attrs.get("noise")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def data_lines(meta: dict, traj, rms: np.ndarray) -> list[str]:
    """The "Data" section: what was forecast, from the evaluated Trajectories and the metadata
    (``rms``: :func:`_rms_frames` of ``traj``)."""
    attrs = dict(traj.attrs or {})
    grid, n_dims = traj.grid, traj.n_dims
    eq = _equation(attrs, n_dims)
    case = f"`{attrs['case']}`" if attrs.get("case") else "not recorded (the file's attrs have no 'case')"
    lines = [f"- case: {case}{' (' + eq + ')' if eq else ''}; file `{meta.get('data', '?')}`"]
    sizes = meta.get("split_sizes") or {}
    of = f" (the file's splits: {', '.join(f'{k} {v}' for k, v in sizes.items())})" if sizes else ""
    lines.append(f"- evaluated: the `{meta.get('split', '?')}` split, {_trajectories(traj.n_traj)}{of}; every "
                 f"method forecasts each one from its initial observation alone")
    shape = " x ".join(map(str, grid.shape))
    dom = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in grid.domain)
    coarse = meta.get("coarse_shape")
    per = ""
    if coarse and len(coarse) == len(grid.shape) and all(s % c == 0 for s, c in zip(grid.shape, coarse)):
        per = f", {' x '.join(str(s // c) for s, c in zip(grid.shape, coarse))} fine points per cell"
    lines.append(f"- grid: {shape} points on {dom} ({', '.join(grid.boundary)}); forecasts are made and scored "
                 f"on this fine grid" + (f"; the models' coarse mesh: {_cells(coarse)}{per}" if coarse else ""))
    t = np.asarray(traj.t, dtype=np.float64)
    same = bool(np.allclose(t, t[:1]))
    lines.append(f"- times: {traj.n_t} output times per trajectory, t = {t[0, 0]:g} to {t[0, -1]:g} in steps of "
                 f"{float(traj.dts[0]):.4g}" + ("" if same else " (trajectory 0; the others differ)"))
    names = attrs.get("channel_names")
    names = (f" ({', '.join(map(str, names))})" if isinstance(names, (list, tuple)) else
             " (a scalar field u)" if traj.channels == 1 else f" (u_0 .. u_{traj.channels - 1})")
    lines.append(f"- channels: {traj.channels}{names}; RMS of the field at t0 {float(rms[:, 0].mean()):.4g} "
                 f"(data units, mean over trajectories), the scale of the CRPS values")
    noise = _noise(attrs)
    if noise is None:
        lines.append("- observation noise: not recorded in the file (attrs['noise']); the scores compare with the "
                     "stored fields as they are")
    elif noise == 0:
        lines.append("- observation noise: none (clean data)")
    else:
        lines.append(f"- observation noise: Gaussian, standard deviation {noise:g} (data units), added to every "
                     f"stored value; every score compares with these noisy observations")
    labels = axis_labels(attrs)
    if any("nondimensional" not in v for v in labels.values()):
        lines.append(f"- units: {', '.join(labels[k] for k in ('u', 'x', 't'))}")
    else:
        lines.append("- units: none recorded in the file: every quantity is nondimensional")
    return lines


# ----------------------------------------------------------------------------- methods and metrics

def method_lines(meta: dict, names: Sequence[str]) -> list[str]:
    """One definition per method in ``names`` (none for an absent one)."""
    coarse = _cells(meta.get("coarse_shape"))
    settings = meta.get("baseline_settings") or {}
    defs = {
        "multiscale": (f"the model evaluated: a learned stochastic model whose latent state has a macroscale part "
                       f"on the coarse mesh ({coarse}) and a microscale part (micro_dim "
                       f"{meta.get('micro_dim', '?')}) for the unresolved small scales; from the encoded initial "
                       f"observation it integrates its learned SDE for an ensemble of {meta.get('n_samples', '?')} "
                       f"members, decoded to the fine grid, and the scores use the ensemble mean "
                       f"(docs/method.md sections 2-7)."),
        "closure": ("the implicit-scale (closure) model: the same model class with micro_dim 0, i.e. no microscale "
                    "state, only the macroscale drift, trained on the same data with the same configuration and "
                    "training budget (as `pymsde demo` does; the recorded budgets are under What to conclude) and "
                    "forecast the same way; it shows what the microscale state buys (docs/method.md section 9)."),
        "dns": (f"coarse DNS, an under-resolved simulation: the governing equation solved by a conventional "
                f"numerical scheme on the models' coarse mesh ({coarse}) from the block-averaged initial "
                f"observation, mapped back to the fine grid; it is not a fully resolved simulation (the coarse "
                f"mesh cannot carry the small scales) and it is deterministic (docs/method.md section 9)."),
        "dmd": (f"dynamic mode decomposition (pydmd): a linear map of rank "
                f"{settings.get('dmd', {}).get('rank_requested', 'n_coarse + 5')} (coarse values + 5) fitted on one "
                f"training trajectory and iterated from the initial observation; deterministic (docs/method.md "
                f"section 9, docs/evaluation.md)."),
        "sindy": (f"POD-SINDy (pysindy): {settings.get('sindy', {}).get('n_pod', 'n_coarse + 5')} POD modes of the "
                  f"training trajectories and a sparse polynomial ODE for their coefficients (threshold and degree "
                  f"chosen on the validation split), integrated from the projected initial observation and lifted "
                  f"back to the fine grid; deterministic (docs/method.md section 9, docs/evaluation.md)."),
    }
    return [f"- **{m}**: {defs[m]}" if m in defs else f"- **{m}**: a method pymsde does not describe." for m in names]


def metric_lines(meta: dict, names: Sequence[str], deterministic: Sequence[str]) -> list[str]:
    """How each column of the table is computed (naming only the methods present)."""
    det = ", ".join(deterministic)
    n_score = meta.get("n_score", "?")
    fitted = [DISPLAY[m] for m in ("dmd", "sindy") if m in names]
    lines = [
        "- **rel. error** (the headline number, percent): for trajectory i and output time t_k, "
        "eps_i(t_k) = 100 ||u_i(t_k) - u_hat_i(t_k)||_2 / ||u_i(t_k)||_2, the 2-norm over all channels and grid "
        "points of one frame, where u is the stored observation (noise included) and u_hat the prediction (the "
        "ensemble mean for an ensemble). The values of every (trajectory, time) pair of the split, t0 included, "
        "are pooled: mean ± population standard deviation (docs/method.md section 7).",
        "- **nRMSE** (percent): per trajectory the root mean square over time of the same eps, "
        "nRMSE_i = sqrt(mean_k eps_i(t_k)^2), t0 included, then averaged over trajectories; it weighs the large, "
        "usually late, errors more than the pooled mean does.",
        f"- **CRPS** (data units, lower is better): the ensemble's continuous ranked probability score, "
        f"E|X - u| - 1/2 E|X - X'| over members X, X', averaged over grid points and {n_score} output times evenly "
        f"spaced after t0" + (f"; for a deterministic method ({det}) it is the mean absolute error." if det else "."),
        "- **spread-skill**: sqrt((n+1)/n) x ensemble spread / RMSE of the ensemble mean, at the same times: about "
        "1 for a calibrated ensemble, below 1 over-confident (too narrow), above 1 under-confident (too wide)"
        + (f"; n/a for a deterministic method ({det})." if det else "."),
        "- **forecast / training time (s)**: wall clock; training is the whole training run of a learned model"
        + (f" (the fitting time for {' and '.join(fitted)})" if fitted else "")
        + ". n/a: undefined or not recorded; inf: the forecast diverged.",
    ]
    return lines


# ----------------------------------------------------------------------------- conclusions

def _budget(meta: dict) -> str:
    """What the closure and the multiscale run have in common, with their recorded budgets."""
    steps = {m: (meta.get("training") or {}).get(m, {}).get("steps") for m in ("multiscale", "closure")}
    a, b = steps["multiscale"], steps["closure"]
    if isinstance(a, int) and isinstance(b, int) and a != b:
        return (f"The closure is the same model without the microscale state, but the runs had different "
                f"budgets ({a} optimiser steps for the multiscale model, {b} for the closure), so the gap mixes "
                f"the microscale state's effect with the training's")
    steps_txt = f"{a} optimiser steps each" if isinstance(a, int) else "budget not recorded in the runs' metadata"
    return (f"The closure is the same model without the microscale state, trained with the same budget "
            f"({steps_txt}), so the gap is what the microscale state buys at this budget")


def _closure_line(ms: float, cl: float, meta: dict) -> str:
    head = f"- closure vs multiscale: {_pct(cl)} against {_pct(ms)} (pooled relative error)"
    if cl > ms:
        return (f"{head}. {_budget(meta)}: without it the macroscale drift alone must carry the effect of the "
                f"unresolved scales. At a small budget the gap can be large; it is not the closure's best "
                f"possible error, and longer training of both may narrow it.")
    return f"{head}: the closure does as well or better. {_budget(meta)}: here the microscale state did not pay off."


def _t0_line(result: EvaluationResult, names: Sequence[str], traj, rms: np.ndarray) -> str:
    e0 = {}
    for m in names:
        s = result.scores[m]
        curve = s.relative_error_per_time if s.relative_error_per_time is not None else s.nrmse_per_time
        e0[m] = float(np.asarray(curve, dtype=np.float64)[0])
    why = []
    models = [m for m in ("multiscale", "closure") if m in names]
    if models:
        many = len(models) > 1
        why.append(f"the {' and '.join(models)} forecast{'s' if many else ''} at t0 decode{'' if many else 's'} "
                   f"the encoder's latent state of the initial observation (sampled per member, then averaged), "
                   f"not the observation itself: the encode-decode reconstruction floor")
    if "dns" in names:
        why.append("the coarse DNS starts from the block average on the coarse mesh mapped back to the fine grid: "
                   "what the coarse mesh cannot represent")
    if "sindy" in names:
        why.append("POD-SINDy starts from the projection on its POD modes")
    if "dmd" in names:
        why.append("DMD starts from the observation itself")
    line = ("- error at t0, before any time step: " + ", ".join(f"{m} {_pct(v)}" for m, v in e0.items())
            + (". Where it comes from: " + "; ".join(why) + "." if why else "."))
    noise = _noise(dict(traj.attrs or {}))
    with np.errstate(divide="ignore"):
        inv = 1.0 / rms
    floor0, floor = (100 * noise * float(inv[:, 0].mean()), 100 * noise * float(inv.mean())) if noise else (0, 0)
    if noise and math.isfinite(floor):
        line += (f" And every score is against the noisy observations: noise of standard deviation {noise:g} "
                 f"alone makes even a perfect forecast of the clean field score about {floor0:.2f} % at t0 and "
                 f"{floor:.2f} % pooled over all times (noise std / RMS of the field), a floor no forecast can be "
                 f"expected to beat.")
    return line


def _calibration_line(result: EvaluationResult, names: Sequence[str]) -> str | None:
    parts = []
    for m in names:
        r = result.scores[m].spread_skill
        if not _finite(r):
            continue
        how = ("about calibrated" if 0.8 <= r <= 1.25 else
               "over-confident: its spread is narrower than its error" if r < 0.8 else
               "under-confident: its spread is wider than its error")
        parts.append(f"{m} {r:.2f} ({how})")
    return "- calibration (spread-skill, ~1 is calibrated): " + "; ".join(parts) + "." if parts else None


def conclusion_lines(result: EvaluationResult, traj, rms: np.ndarray) -> list[str]:
    """The "What to conclude" section: ranking, closure, coarse DNS, t0 floor, calibration, sample size
    (``rms``: :func:`_rms_frames` of ``traj``)."""
    names = _names(result)
    rel = {m: result.scores[m].relative_error for m in names}
    order = sorted(names, key=lambda m: (not _finite(rel[m]), rel[m] if _finite(rel[m]) else 0.0))
    lines = ["- ranking by pooled relative error (lower is better): "
             + ", ".join(f"{m} {_pct(rel[m])}" for m in order) + "."]
    ms = rel.get("multiscale")
    if _finite(ms) and _finite(rel.get("closure")):
        lines.append(_closure_line(ms, rel["closure"], result.meta))
    if _finite(ms) and _finite(rel.get("dns")):
        better = ms < rel["dns"]
        mesh = _cells(result.meta.get("coarse_shape"))
        lines.append(f"- multiscale vs coarse DNS, both on the coarse mesh ({mesh}): {_pct(ms)} against "
                     f"{_pct(rel['dns'])}: "
                     + ("the learned model recovers part of what a conventional solver on that mesh loses."
                        if better else "the learned model does not beat a conventional solver on its own mesh."))
    lines.append(_t0_line(result, names, traj, rms))
    calibration = _calibration_line(result, names)
    if calibration:
        lines.append(calibration)
    n = int(traj.n_traj)
    if n < 5:
        lines.append(f"- these numbers rest on {_trajectories(n)}: they depend on which trajectory the split drew "
                     f"(docs/evaluation.md shows how much they vary over the demo's seeds).")
    return lines


# ----------------------------------------------------------------------------- setup, figures, the report

def baseline_setup_lines(settings: dict[str, dict]) -> list[str]:
    """Report lines saying how the library baselines were set up (``meta["baseline_settings"]``)."""
    lines = []
    if "dmd" in settings:
        d = settings["dmd"]
        lines.append(f"- dmd: pydmd DMD of rank {d.get('rank_requested')} (n_coarse {d.get('n_coarse')} + 5; "
                     f"{d.get('rank')} modes kept), tikhonov {d.get('tikhonov')}, fitted on "
                     f"{d.get('fitted_on')}, iterated at its step dt = {d.get('dt')}")
    if "sindy" in settings:
        d = settings["sindy"]
        lines.append(f"- sindy: {d.get('n_pod')} POD modes (n_coarse {d.get('n_coarse')} + 5) of the "
                     f"{d.get('n_train')} training trajectories; STLSQ threshold {d.get('threshold')}, polynomial "
                     f"degree {d.get('degree')}, chosen on the {d.get('n_val')} validation trajectories from "
                     f"{len(d.get('val_scores') or [])} settings (lowest pooled relative error)")
    return lines


def setup_lines(meta: dict) -> list[str]:
    """The "Setup" section: where the runs and data are, and the settings of the evaluation."""
    training = meta.get("training") or {}
    steps = ", ".join(f"{m} {v['steps']}" for m, v in training.items() if isinstance(v, dict) and v.get("steps"))
    setup = [("run", meta.get("run")), ("closure run", meta.get("closure_run")), ("data", meta.get("data")),
             ("split", meta.get("split")), ("backend", meta.get("backend")),
             ("ensemble size", meta.get("n_samples")), ("forecast solver", meta.get("solver")),
             ("seed", meta.get("seed")), ("checkpoint", meta.get("checkpoint")),
             ("coarse grid", meta.get("coarse_shape")), ("micro dim", meta.get("micro_dim")),
             ("training steps", steps or None), ("pymsde", meta.get("pymsde_version")),
             ("torch", meta.get("torch_version")), ("evaluated at", meta.get("date"))]
    lines = [f"- {k}: `{v}`" for k, v in setup if v is not None]
    lines += baseline_setup_lines(meta.get("baseline_settings") or {})
    if meta.get("nrmse_per_traj_note"):
        lines.append(f"- {meta['nrmse_per_traj_note']}")
    return lines


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # different drives on Windows
        return str(path)


def figure_lines(figures: Sequence[tuple], out: Path) -> list[str]:
    """``### title``, the image and its caption for each ``(title, path[, caption])``."""
    lines = []
    for fig in figures:
        title, path, caption = (*fig, "")[:3]
        lines += [f"### {title}", "", f"![{title}]({_rel(Path(path), out)})", ""]
        if caption:
            lines += [caption, ""]
    return lines


def render_report(result: EvaluationResult, traj, figures: Sequence[tuple], out: Path) -> str:
    """The whole ``report.md`` text (see the module docstring for its sections)."""
    meta = result.meta
    names = _names(result)
    deterministic = [m for m in names if m in ("dns", "dmd", "sindy")]
    rms = _rms_frames(traj)                                    # (n_traj, n_t): field scale, noise floor
    lines = ["# pymsde evaluation report", "", verdict(result), "",
             "## Data", "", *data_lines(meta, traj, rms), "",
             "## Methods", "", *method_lines(meta, names), "",
             "## Results", "", metrics_table(result), "",
             "Every score compares a method's prediction (the ensemble mean for an ensemble) with the stored, noisy "
             "observations of the split, as the paper scores. The columns:", "",
             *metric_lines(meta, names, deterministic), "",
             "## What to conclude", "", *conclusion_lines(result, traj, rms), ""]
    notes = meta.get("notes") or []
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["## Setup", "", *setup_lines(meta), ""]
    if figures:
        lines += ["## Figures", "", *figure_lines(figures, out)]
    return "\n".join(lines).rstrip() + "\n"
