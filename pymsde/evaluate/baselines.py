"""Predictions of every method on the fine grid, made the same way: the learned model, the
closure baseline and the under-resolved DNS (docs/method.md section 7).

Each method turns the initial observation ``u[i, 0]`` of a trajectory (plus its ``mu`` and
forcing ``f``) into a prediction of the whole trajectory on the fine grid at the data's own
output times ``t[i, :]``, returned as a :class:`Prediction`:

- :func:`model_prediction` -- a trained :class:`~pymsde.model.MultiscaleModel` (the
  multiscale model, or the closure model: the same class with ``micro_dim = 0``): an ensemble
  forecast (:func:`pymsde.forecast.forecast`), its mean and standard deviation at every output
  time, and the ensemble members at a few *scoring times* for the probabilistic scores.
- :func:`dns_prediction` -- the under-resolved DNS: the true PDE solved on the coarse mesh
  from the block-averaged initial condition (:func:`pymsde.systems.solve_coarse`), mapped back
  to the fine grid. It is deterministic: it has no spread (``std`` and ``samples`` are None),
  so its CRPS reduces to the mean absolute error and its spread-skill ratio is undefined
  (see :mod:`pymsde.evaluate.report`).
- :func:`dmd_prediction` -- the final paper's DMD baseline (pydmd): a rank ``n_coarse + 5``
  linear map fitted on one training trajectory, iterated from each initial frame
  (:mod:`pymsde.evaluate.linear_baselines`). Deterministic.
- :func:`sindy_prediction` -- the final paper's POD-SINDy baseline (pysindy, scikit-learn):
  ``n_coarse + 5`` POD modes and a sparse polynomial ODE on them, threshold and degree chosen
  on the validation split. Deterministic.

The two library baselines may diverge: their frames are then non-finite (NaN or inf), and
the scores call them infinite (:func:`pymsde.evaluate.report.score_prediction`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from pymsde.util.errors import ConfigError, DataError, check_memory
from pymsde.util.progress import progress

log = logging.getLogger(__name__)

#: Default number of output times at which ensemble members are kept for CRPS / spread-skill.
DEFAULT_SCORE_TIMES = 50


@dataclass
class Prediction:
    """One method's prediction of ``n_traj`` trajectories on the fine grid.

    Attributes:
        name: method name (``"multiscale"``, ``"closure"``, ``"dns"``, ...).
        mean: ``(n_traj, n_t, C, *grid)`` float64, the prediction (ensemble mean), in the
            data's units, at the data's output times.
        std: same shape, ensemble standard deviation; ``None`` for a deterministic method.
        samples: ``(n_traj, n_samples, n_score, C, *grid)`` ensemble members at the scoring
            times; ``None`` for a deterministic method.
        score_index: ``(n_score,)`` int, the indices into the time axis of the scoring times.
        wall_time_s: seconds spent making the prediction (all trajectories).
        info: free metadata (solver, step, backend, number of samples, ...), JSON-safe.
    """

    name: str
    mean: np.ndarray
    std: np.ndarray | None
    samples: np.ndarray | None
    score_index: np.ndarray
    wall_time_s: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def deterministic(self) -> bool:
        """True when the method has no ensemble (the DNS)."""
        return self.samples is None


def score_indices(n_t: int, n_score: int = DEFAULT_SCORE_TIMES) -> np.ndarray:
    """``min(n_score, n_t - 1)`` evenly spaced time indices in ``1 .. n_t - 1`` (the last included).

    The initial time is left out: every method starts from (an encoding of) the truth there.
    """
    if n_t < 2:
        raise DataError(f"evaluation data: trajectories have {n_t} time points; expected at least 2")
    n = max(1, min(int(n_score), n_t - 1))
    return np.unique(np.round(np.linspace(1, n_t - 1, n)).astype(np.int64))


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _check_forecast_memory(model, traj, n_samples: int, n_score: int) -> None:
    """Refuse an ensemble that cannot fit before forecasting: per trajectory the latent paths
    ``(n_t, S, D)`` and the members kept at the scoring times ``(S, n_score, fine)``, and for all
    trajectories the float64 mean, std and members of the prediction."""
    ref = next(model.parameters(), None)
    itemsize = 4 if ref is None else ref.element_size()
    fine = int(np.prod(traj.u.shape[2:]))
    per_traj = itemsize * n_samples * (traj.n_t * int(model.config.latent_dim) + 2 * n_score * fine)
    kept = 8 * traj.n_traj * (2 * traj.n_t * fine + n_samples * n_score * fine)
    check_memory(per_traj + kept, f"forecast ensembles of {n_samples} members ({traj.n_traj} trajectories x "
                 f"{traj.n_t} times x {fine} values)", hint="lower --n-samples")


def model_prediction(model, traj, *, name: str = "multiscale", n_samples: int = 32, seed: int = 0,
                     backend: str = "torch", solver: str = "em", n_score: int = DEFAULT_SCORE_TIMES,
                     show_progress: bool = True) -> Prediction:
    """Ensemble forecasts of a trained model for every trajectory of ``traj``.

    Args:
        model: a trained ``MultiscaleModel`` (``micro_dim = 0`` for the closure model).
        traj: ``Trajectories`` on the model's fine grid (check with
            :func:`pymsde.evaluate.report.check_grid_matches` first).
        name: the method name recorded in the prediction.
        n_samples: ensemble size per trajectory.
        seed: seeds the encoder sample of ``z0`` and the Brownian increments (trajectory ``i``
            uses ``seed + i``), so a forecast is reproducible.
        backend: ``"torch"``, ``"julia"`` or ``"auto"``, passed to the forecast.
        solver: the forecast's SDE scheme (``"em"`` is the paper's Euler-Maruyama at the data step).
        n_score: number of scoring times (see :func:`score_indices`).

    Returns:
        a :class:`Prediction` with mean and std at every output time and the ensemble members
        at the scoring times.
    """
    from pymsde.forecast import forecast

    if isinstance(n_samples, bool) or not isinstance(n_samples, int):
        raise ConfigError(f"n_samples = {n_samples!r}; expected an integer >= 2")
    _check_forecast_memory(model, traj, n_samples, min(int(n_score), traj.n_t))
    if n_samples < 2:
        raise ConfigError(f"n_samples = {n_samples}; an ensemble forecast needs at least 2 samples")
    idx = score_indices(traj.n_t, n_score)
    means, stds, members = [], [], []
    start = time.perf_counter()
    for i in progress(range(traj.n_traj), desc=f"forecast {name}", unit="traj",
                      enabled=show_progress and traj.n_traj > 1):
        mu = None if traj.mu is None else traj.mu[i]
        f = None if traj.f is None else traj.f[i]
        fc = forecast(model, traj.u[i, 0], t_out=traj.t[i], mu=mu, f=f, n_samples=n_samples,
                      solver=solver, seed=seed + i, backend=backend, return_samples=True,
                      sample_index=idx, quantiles=())   # quantiles are not scored: skip their cost
        means.append(_as_numpy(fc.mean).astype(np.float64))
        stds.append(_as_numpy(fc.std).astype(np.float64))
        members.append(_as_numpy(fc.samples).astype(np.float64))
    wall = time.perf_counter() - start
    return Prediction(name=name, mean=np.stack(means), std=np.stack(stds), samples=np.stack(members),
                      score_index=idx, wall_time_s=wall,
                      info={"n_samples": int(n_samples), "solver": solver, "backend": backend,
                            "seed": int(seed), "micro_dim": int(model.config.micro_dim)})


def dns_unavailable(traj) -> str | None:
    """Why the under-resolved DNS cannot run on ``traj`` (one line), or None when it can: the data
    must name a case with a coarse solver in ``attrs["case"]`` (:func:`pymsde.systems.simulate` does)."""
    from pymsde.systems import CASES

    case = traj.attrs.get("case")
    if not case:
        return "the data do not name their PDE (attrs has no 'case' entry)"
    if not isinstance(case, str) or case not in CASES:
        return f"attrs['case'] = {case!r} has no coarse solver"
    return None


def dns_prediction(traj, coarse_shape: Sequence[int], *, case: str | None = None, backend: str = "torch",
                   params: dict | None = None, name: str = "dns",
                   n_score: int = DEFAULT_SCORE_TIMES) -> Prediction:
    """The under-resolved DNS of every trajectory of ``traj`` on the coarse mesh ``coarse_shape``.

    Args:
        traj: ``Trajectories`` whose ``attrs`` name the case (``attrs["case"]``, as
            :func:`pymsde.systems.simulate` records it) and its PDE coefficients (``attrs["nu"]``
            or ``attrs["d"]``) unless ``case`` / ``params`` are given.
        coarse_shape: cells per axis of the coarse mesh (the model's coarse grid).
        case: ``"burgers1d"``, ``"kdv1d"`` or ``"burgers2d"``; default ``traj.attrs["case"]``.
        backend: compute backend of the coarse solver (``"torch"``, ``"julia"``, ``"auto"``).
        params: PDE coefficients (e.g. ``{"nu": 5e-4}``); default: those of the case found in
            ``traj.attrs``, else the case's defaults.

    Returns:
        a deterministic :class:`Prediction` (``std = samples = None``) on the data's grid
        (the data's own domain and boundary types) at the data's output times.

    Raises:
        DataError: when the data do not say which PDE they come from.
    """
    from pymsde.systems import CASES, solve_coarse

    case = case or traj.attrs.get("case")
    if not case:
        raise DataError("evaluation data: attrs has no 'case' entry, so the PDE for the under-resolved "
                        "DNS baseline is unknown; leave 'dns' out of the baselines (--baselines closure)")
    if not isinstance(case, str) or case not in CASES:
        raise DataError(f"evaluation data: attrs['case'] = {case!r} has no coarse solver; expected one of "
                        f"{sorted(CASES)} (or leave 'dns' out of the baselines)")
    if params is None:
        params = {}
        for k in CASES[case].params:
            if k not in traj.attrs:
                continue
            try:
                params[k] = float(traj.attrs[k])
            except (TypeError, ValueError):
                raise DataError(f"evaluation data: attrs[{k!r}] = {traj.attrs[k]!r} (a coefficient of "
                                f"{case}); expected a number") from None
    factors = traj.grid.coarsening_factors(coarse_shape)
    start = time.perf_counter()
    if np.all(traj.t == traj.t[:1]):        # one call for all trajectories when times agree
        u = solve_coarse(case, traj.u[:, 0], traj.t[0], factors=factors, params=params, grid=traj.grid,
                         backend=backend)
    else:
        u = np.concatenate([solve_coarse(case, traj.u[i:i + 1, 0], traj.t[i], factors=factors, params=params,
                                         grid=traj.grid, backend=backend) for i in range(traj.n_traj)])
    u = _as_numpy(u).astype(np.float64)
    wall = time.perf_counter() - start
    if u.shape != traj.u.shape:
        raise DataError(f"under-resolved DNS returned shape {u.shape}; expected the data's {traj.u.shape}")
    return Prediction(name=name, mean=u, std=None, samples=None, score_index=score_indices(traj.n_t, n_score),
                      wall_time_s=wall, info={"case": case, "coarse_shape": [int(c) for c in coarse_shape],
                                              "params": dict(params), "backend": backend})


def _n_nonfinite_frames(u: np.ndarray) -> int:
    """Number of frames of ``(n_traj, n_t, C, *grid)`` holding NaN or infinity."""
    return int((~np.isfinite(u.reshape(u.shape[0], u.shape[1], -1)).all(-1)).sum())


def check_dmd_time_step(traj, train) -> float:
    """The DMD baseline's time step ``train.dts[0]`` (of the trajectory it is fitted on), checked
    against every trajectory of ``traj`` (to ``DT_RTOL``, relative).

    Raises:
        DataError: an evaluated trajectory has another time step (DMD is a discrete map).
    """
    from pymsde.data.trajectories import DT_RTOL

    dt = float(train.dts[0])
    off = np.abs(traj.dts - dt) > DT_RTOL * dt
    if off.any():
        i = int(np.argmax(off))
        raise DataError(f"dmd baseline: evaluated trajectory {i} has time step {float(traj.dts[i])!r}, the "
                        f"training trajectory it is fitted on {dt!r}; DMD is a discrete map and forecasts "
                        f"only at its training step (leave 'dmd' out of the baselines)")
    return dt


def dmd_prediction(traj, train, n_coarse: int, *, name: str = "dmd",
                   n_score: int = DEFAULT_SCORE_TIMES) -> Prediction:
    """The final paper's DMD baseline for every trajectory of ``traj``.

    ``pydmd.DMD(svd_rank = n_coarse + 5, tikhonov_regularization = 0.01)`` fitted on the
    first trajectory of ``train`` only (the paper fits on training trajectory 0), then iterated
    ``x_{k+1} = Re(A x_k)`` from each evaluated trajectory's initial frame
    (:func:`pymsde.evaluate.linear_baselines.fit_dmd`). DMD is a discrete map, so the
    evaluated trajectories must have the training trajectory's time step.

    Args:
        traj: ``Trajectories`` to forecast, ``u`` of shape ``(n_traj, n_t, C, *grid)``.
        train: ``Trajectories`` of the training split on the same grid; ``train.u[0]``
            ``(n_t_train, C, *grid)`` is fitted.
        n_coarse: number of coarse-grid values of the model (``C * prod(coarse_shape)``).
        name: the method name recorded in the prediction.
        n_score: number of scoring times (see :func:`score_indices`).

    Returns:
        a deterministic :class:`Prediction` (``std = samples = None``), ``mean`` of shape
        ``(n_traj, n_t, C, *grid)``; frame 0 is the initial observation itself. ``info``
        holds the rank and the fit time (``fit_time_s``); ``wall_time_s`` is the forecast only.

    Raises:
        DataError: the time steps of ``traj`` and the training trajectory differ.
        ConfigError: pydmd is not installed.
    """
    from pymsde.evaluate.linear_baselines import PAPER_DMD_TIKHONOV, baseline_rank, fit_dmd

    idx = score_indices(traj.n_t, n_score)
    dt = check_dmd_time_step(traj, train)
    rank = baseline_rank(int(n_coarse))
    start = time.perf_counter()
    model = fit_dmd(np.asarray(train.u[0], dtype=np.float64), rank, dt=dt)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    mean = model.forecast_trajectories(np.asarray(traj.u, dtype=np.float64))
    wall = time.perf_counter() - start
    return Prediction(name=name, mean=mean, std=None, samples=None, score_index=idx, wall_time_s=wall,
                      info={"rank_requested": int(rank), "rank": int(model.rank), "n_coarse": int(n_coarse),
                            "tikhonov": PAPER_DMD_TIKHONOV, "fitted_on": "the first trajectory of the train split",
                            "dt": dt, "fit_time_s": round(fit_time, 3),
                            "n_nonfinite_frames": _n_nonfinite_frames(mean)})


def sindy_prediction(traj, train, val, n_coarse: int, *, thresholds: Sequence[float] | None = None,
                     degrees: Sequence[int] | None = None, name: str = "sindy",
                     n_score: int = DEFAULT_SCORE_TIMES) -> Prediction:
    """The final paper's POD-SINDy baseline for every trajectory of ``traj``.

    ``n_coarse + 5`` POD modes of all training snapshots (randomized SVD, no mean removed), a
    continuous-time polynomial SINDy model (STLSQ) fitted to forward-difference derivatives of
    the mode coefficients of every training trajectory; the (threshold, degree) of the grid
    with the lowest pooled relative error on ``val`` is kept
    (:func:`pymsde.evaluate.linear_baselines.fit_pod_sindy`). Each evaluated trajectory is
    integrated (``solve_ivp``, RK45) from the projection of its initial frame at its own times
    and lifted back with the modes.

    Args:
        traj: ``Trajectories`` to forecast, ``u`` of shape ``(n_traj, n_t, C, *grid)``.
        train: ``Trajectories`` of the training split ``(n_train, n_t_train, C, *grid)``, one
            common time step.
        val: ``Trajectories`` of the validation split ``(n_val, n_t_val, C, *grid)``.
        n_coarse: number of coarse-grid values of the model (``C * prod(coarse_shape)``).
        thresholds, degrees: the selection grid; default the paper's
            (``PAPER_SINDY_THRESHOLDS`` x ``PAPER_SINDY_DEGREES``).
        name: the method name recorded in the prediction.
        n_score: number of scoring times (see :func:`score_indices`).

    Returns:
        a deterministic :class:`Prediction`, ``mean`` of shape ``(n_traj, n_t, C, *grid)``
        (frame 0 is the POD projection of the initial observation; frames the integrator did not
        reach are NaN). ``info`` holds the selected setting, the validation scores of the grid
        and the fit time (``fit_time_s``, the whole sweep); ``wall_time_s`` is the forecast only.

    Raises:
        ConfigError: pysindy, scikit-learn or scipy is not installed.
    """
    from pymsde.evaluate import linear_baselines as lb

    idx = score_indices(traj.n_t, n_score)
    n_pod = lb.baseline_rank(int(n_coarse))
    grid = {"thresholds": lb.PAPER_SINDY_THRESHOLDS if thresholds is None else tuple(thresholds),
            "degrees": lb.PAPER_SINDY_DEGREES if degrees is None else tuple(degrees)}
    start = time.perf_counter()
    model = lb.fit_pod_sindy(np.asarray(train.u, dtype=np.float64), np.asarray(val.u, dtype=np.float64),
                             train.dt, n_pod, t_val=np.asarray(val.t, dtype=np.float64), **grid)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    mean = model.forecast_trajectories(np.asarray(traj.u, dtype=np.float64), np.asarray(traj.t, dtype=np.float64))
    wall = time.perf_counter() - start
    scores = [{"threshold": thr, "degree": deg, "val_relative_error": float(v) if np.isfinite(v) else None}
              for (thr, deg), v in model.val_scores.items()]
    return Prediction(name=name, mean=mean, std=None, samples=None, score_index=idx, wall_time_s=wall,
                      info={"n_pod": int(model.n_pod), "n_coarse": int(n_coarse), "threshold": model.threshold,
                            "degree": model.degree, "val_scores": scores, "n_train": int(train.n_traj),
                            "n_val": int(val.n_traj), "dt": float(train.dt), "fit_time_s": round(fit_time, 3),
                            "n_nonfinite_frames": _n_nonfinite_frames(mean)})
