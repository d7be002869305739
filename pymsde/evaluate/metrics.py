"""Forecast scores: the paper's nRMSE and the probabilistic scores of ensemble forecasts.

Pure functions over numpy arrays or torch tensors (torch inputs are converted to float64
numpy); ensemble members are on axis 0 of ``samples``, time on axis 0 of a trajectory.

- :func:`nrmse`, :func:`nrmse_per_time`: docs/method.md section 7,
  ``nRMSE = sqrt( mean_k ||pred_k - truth_k||^2 / ||truth_k||^2 )``, in percent.
- :func:`crps_ensemble`: continuous ranked probability score of an ensemble, per point
  ``CRPS = E|X - y| - 1/2 E|X - X'|``, averaged over all points. Standard form (default): the
  CRPS of the ensemble's empirical distribution, ``1/n sum |x_i - y| - 1/(2 n^2) sum |x_i - x_j|``
  (as properscoring / xskillscore). Fair form (``fair=True``, Ferro 2014): the spread term
  divided by ``2 n (n - 1)`` instead, an unbiased estimate of the CRPS of the distribution the
  members are drawn from (it does not reward small ensembles). Same units as the field.
- :func:`spread_skill`: ensemble spread over the RMSE of the ensemble mean, with the finite-
  ensemble correction ``sqrt((n + 1) / n)``; ~1 for a calibrated ensemble.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pymsde.util.errors import DataError


def _np(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise DataError(f"metrics: {name} contains NaN or infinity")
    return a


def _same_shape(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise DataError(f"metrics: {na} has shape {a.shape} but {nb} has shape {b.shape}; expected equal")


def _members(x: np.ndarray, y: np.ndarray) -> None:
    """samples ``(n, ...)`` must match truth ``(...)`` after the member axis."""
    if x.ndim != y.ndim + 1 or x.shape[1:] != y.shape:
        raise DataError(f"metrics: samples have shape {x.shape}, truth {y.shape}; expected samples "
                        f"(n_members, *truth.shape)")


def nrmse_per_time(pred: Any, truth: Any) -> np.ndarray:
    """Relative error per time, in percent: ``100 ||pred_k - truth_k|| / ||truth_k||``.

    Args:
        pred, truth: ``(n_t, ...)`` with time first (any field shape after it).

    Returns:
        ``(n_t,)`` float64 percent.

    Raises:
        DataError: shapes differ, values not finite, or ``truth_k`` is zero at some time.
    """
    p, t = _np(pred, "pred"), _np(truth, "truth")
    _same_shape(p, t, "pred", "truth")
    if p.ndim < 1 or p.shape[0] == 0:
        raise DataError(f"metrics: expected (n_t, ...) with n_t >= 1, found shape {p.shape}")
    err = np.sqrt(((p - t) ** 2).reshape(p.shape[0], -1).sum(1))
    ref = np.sqrt((t ** 2).reshape(t.shape[0], -1).sum(1))
    if np.any(ref == 0):
        k = int(np.argmin(ref))
        raise DataError(f"metrics: truth is identically zero at time index {k}; nRMSE is undefined")
    return 100.0 * err / ref


def nrmse(pred: Any, truth: Any) -> float:
    """docs/method.md section 7: ``100 sqrt( mean_k ||pred_k - truth_k||^2 / ||truth_k||^2 )``.

    Args:
        pred, truth: one trajectory ``(n_t, C, *grid)`` (time first).

    Returns:
        float, percent.
    """
    r = nrmse_per_time(pred, truth)
    return float(np.sqrt(np.mean(r ** 2)))


def crps_ensemble(samples: Any, truth: Any, fair: bool = False, reduce: bool = True) -> Any:
    """Ensemble CRPS averaged over all points (see the module docstring for the two forms).

    Uses the sorted-member identity ``sum_ij |x_i - x_j| = 2 sum_i (2i - n - 1) x_(i)``
    (``i = 1..n``), ``O(n log n)`` per point.

    Args:
        samples: ``(n, ...)`` ensemble members.
        truth: ``(...)`` the verifying values.
        fair: the fair (unbiased) form; needs ``n >= 2``.
        reduce: average over points (float); False returns the per-point field ``(...)``.

    Returns:
        float (or array), in the units of the field.
    """
    x, y = _np(samples, "samples"), _np(truth, "truth")
    _members(x, y)
    n = x.shape[0]
    if n < 1 or (fair and n < 2):
        raise DataError(f"metrics: crps_ensemble needs at least {2 if fair else 1} members, found {n}")
    skill = np.abs(x - y).mean(0)
    xs = np.sort(x, axis=0)
    w = (2.0 * np.arange(1, n + 1) - n - 1).reshape((n,) + (1,) * (x.ndim - 1))
    pair_sum = 2.0 * (w * xs).sum(0)                  # sum_ij |x_i - x_j|
    spread = pair_sum / (2.0 * n * (n - 1)) if fair else pair_sum / (2.0 * n * n)
    crps = skill - spread
    return float(crps.mean()) if reduce else crps


def spread_skill(samples: Any, truth: Any, return_parts: bool = False) -> Any:
    """Spread-skill ratio ``sqrt((n+1)/n) * spread / skill``.

    ``spread = sqrt(mean over points of the member variance (ddof = 1))``,
    ``skill = sqrt(mean over points of (ensemble mean - truth)^2)`` (RMSE of the mean).
    For members and truth drawn from one distribution of variance ``s^2``,
    ``E (mean - truth)^2 = s^2 (1 + 1/n)`` while ``E var_ddof1 = s^2``: the factor
    ``sqrt((n+1)/n)`` makes the ratio 1 for a calibrated ensemble of any size. Below 1:
    under-dispersive (overconfident); above 1: over-dispersive.

    Args:
        samples: ``(n, ...)`` members, ``n >= 2``; truth: ``(...)``.
        return_parts: also return ``(spread, skill)``.

    Returns:
        float ratio, or ``(ratio, spread, skill)``.
    """
    x, y = _np(samples, "samples"), _np(truth, "truth")
    _members(x, y)
    n = x.shape[0]
    if n < 2:
        raise DataError(f"metrics: spread_skill needs at least 2 members, found {n}")
    spread = float(np.sqrt(x.var(0, ddof=1).mean()))
    skill = float(np.sqrt(((x.mean(0) - y) ** 2).mean()))
    if skill == 0.0:
        raise DataError("metrics: the ensemble mean equals the truth everywhere; spread-skill is undefined")
    ratio = float(np.sqrt((n + 1) / n) * spread / skill)
    return (ratio, spread, skill) if return_parts else ratio


def _np_raw(x: Any) -> np.ndarray:
    """float64 numpy copy of an array or torch tensor, non-finite values kept."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _frame_norms(a: np.ndarray) -> np.ndarray:
    """2-norm of each frame of ``(n_traj, n_t, -1)``, scaled by the frame's max so that large
    finite values do not overflow when squared."""
    scale = np.max(np.abs(a), axis=-1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    return scale[..., 0] * np.sqrt(((a / safe) ** 2).sum(-1))


def relative_error(pred: Any, truth: Any) -> np.ndarray:
    """The paper's relative error per (trajectory, time), in percent.

    ``eps[i, k] = 100 ||truth[i, k] - pred[i, k]||_2 / ||truth[i, k]||_2``, the 2-norm taken
    over all channels and grid points of one frame (FINAL_PAPER.md section 0 and 1.5; the
    paper's scripts compute ``np.linalg.norm(x_pred[j] - x[j]) / np.linalg.norm(x[j])`` on the
    flattened frame, e.g. experiments_refac/*/dmd/run_dmd.py). The paper's tables give this
    ratio as a fraction (0.057); here it is multiplied by 100 (5.7).

    A frame of ``pred`` holding NaN or infinity (a forecast that diverged or stopped early,
    see :mod:`pymsde.evaluate.linear_baselines`) scores ``+inf``, as does a frame whose
    difference ``pred - truth`` overflows. Norms are scaled by the frame's largest entry, so
    large finite values are not lost to overflow in the squares.

    Args:
        pred, truth: ``(n_traj, n_t, C, *grid)``, numpy arrays or torch tensors (converted to
            float64). ``truth`` must be finite.

    Returns:
        ``(n_traj, n_t)`` float64, percent.

    Raises:
        DataError: shapes differ, fewer than 3 axes, ``truth`` not finite, or a frame of
            ``truth`` is identically zero (the ratio is undefined there; the message names
            the first such (trajectory, time) pair).
    """
    p, t = _np_raw(pred), _np(truth, "truth")
    _same_shape(p, t, "pred", "truth")
    if p.ndim < 3 or p.shape[0] == 0 or p.shape[1] == 0:
        raise DataError(f"metrics: expected (n_traj, n_t, C, *grid) with n_traj, n_t >= 1, "
                        f"found shape {p.shape}")
    n_traj, n_t = p.shape[:2]
    ref = _frame_norms(t.reshape(n_traj, n_t, -1))
    if np.any(ref == 0):
        i, k = (int(v) for v in np.argwhere(ref == 0)[0])
        raise DataError(f"metrics: truth is identically zero at trajectory {i}, time index {k}; "
                        f"the relative error is undefined there")
    with np.errstate(over="ignore", invalid="ignore"):
        err = _frame_norms((p - t).reshape(n_traj, n_t, -1))
        frame_ok = np.isfinite(p).reshape(n_traj, n_t, -1).all(-1)
        err = np.where(frame_ok & np.isfinite(err), err, np.inf)
    return 100.0 * err / ref


def relative_error_summary(pred: Any, truth: Any) -> dict[str, float]:
    """Mean and standard deviation of :func:`relative_error`, pooled over every
    (trajectory, time) pair, including the initial time, in percent.

    This is how the paper pools: ``np.mean(rel_err)`` and ``np.std(rel_err)`` over the whole
    ``(n_traj, n_t)`` array (FINAL_PAPER.md section 1.5; experiments_refac/*/postproc_visde.py,
    */dmd/run_dmd.py, */sindy_2step/postproc_psindy.py). ``std`` is therefore the
    **population** standard deviation (``ddof = 0``). Score only a leading part of the time
    axis (the paper's wave_1d uses steps 0..200) by slicing the inputs.

    Args:
        pred, truth: ``(n_traj, n_t, C, *grid)``, as for :func:`relative_error`.

    Returns:
        ``{"mean": float, "std": float, "n": int, "n_inf": int}``: ``n`` pooled values, of
        which ``n_inf`` are infinite (diverged frames); when ``n_inf > 0``, ``mean`` and
        ``std`` are both ``inf``.
    """
    eps = relative_error(pred, truth).ravel()
    n_inf = int(np.sum(~np.isfinite(eps)))
    if n_inf:
        return {"mean": float("inf"), "std": float("inf"), "n": int(eps.size), "n_inf": n_inf}
    return {"mean": float(np.mean(eps)), "std": float(np.std(eps)), "n": int(eps.size), "n_inf": 0}
