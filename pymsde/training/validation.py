"""Validation of a model during training: the ELBO terms on every validation window and a
short forecast scored with the evaluation metric (:func:`pymsde.evaluate.metrics.nrmse`).

Validation draws from its own keyed streams (:mod:`pymsde.util.rng`: the ELBO noise of
validation window ``i`` from ``(seed, "val.window", 0, i)``, the forecast's members from
``(seed, "forecast", trajectory, member)``), the same at every validation, so when and how often
one validates does not change the training path, and the scores do not depend on
``batch_windows``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from pymsde.data.windows import window_starts
from pymsde.evaluate.metrics import nrmse
from pymsde.forecast import forecast
from pymsde.training.config import TrainConfig
from pymsde.training.device_data import DeviceData
from pymsde.training.elbo import WeightKL, WindowNoise, elbo_terms
from pymsde.util.errors import DataError


def _decode_mean(model, z: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    return torch.cat([model.decode(z[i:i + chunk])[0] for i in range(0, z.shape[0], chunk)])


def _mean_nrmse(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over trajectories of :func:`pymsde.evaluate.metrics.nrmse` (percent); inf when
    the prediction is not finite or undefined (a diverged model scores as infinitely wrong)."""
    if not bool(torch.isfinite(pred).all()):
        return math.inf
    try:
        return float(np.mean([nrmse(p, y) for p, y in zip(pred, truth)]))
    except DataError:          # a truth frame that is identically zero: nRMSE undefined
        return math.inf


@torch.no_grad()
def validate(model, val: DeviceData, config: TrainConfig, res_factor: float,
             weight_kl: WeightKL | None = None) -> dict[str, float]:
    """Validation scores of ``model`` on device data ``val``.

    - ELBO terms (beta = 1, midpoint quadrature) averaged over every window of every
      validation trajectory;
    - ``val_nrmse``: a short :func:`~pymsde.forecast.forecast` from each trajectory's first
      frame (``val_forecast_samples`` members, the run's ``forecast_solver`` at the data step,
      ``val_forecast_steps`` steps), nRMSE (%) of the ensemble mean against the truth (mean
      over trajectories). All trajectories start at the first trajectory's time (the time
      features of the micro drift);
    - ``val_recon_nrmse``: the autoencoder floor, nRMSE (%) of decode(encode mean) over the
      same frames.
    """
    was_training = model.training
    model.eval()
    n_traj, n_t = val.u.shape[:2]
    out: dict[str, float] = {}
    window = min(config.window, n_t)
    starts = torch.as_tensor(window_starts(n_t, window), device=val.u.device)
    pairs = torch.cartesian_prod(torch.arange(n_traj, device=val.u.device), starts).reshape(-1, 2)
    offsets = torch.arange(window, device=val.u.device)
    acc = torch.zeros(4, dtype=val.u.dtype, device=val.u.device)
    bw = max(1, config.batch_windows)
    for i in range(0, pairs.shape[0], bw):
        p = pairs[i:i + bw]
        u, t, mu, f = val.windows(p[:, 0], p[:, 1], offsets)
        noise = WindowNoise(config.seed, 0, tuple(range(i, i + p.shape[0])), kind="val")
        terms = elbo_terms(model, u, t, mu, f, beta=1.0, res_factor=res_factor, n_quad=config.n_quad,
                           n_samples=config.n_samples, stratified=False, noise=noise, weight_kl=weight_kl,
                           encode_stride=config.encode_stride)
        acc += torch.stack([terms[k] for k in ("loss", "loglik", "residual", "kl")]) * p.shape[0]
    for k, v in zip(("val_loss", "val_loglik", "val_residual", "val_kl"), (acc / pairs.shape[0]).tolist()):
        out[k] = v

    n_steps = min(config.val_forecast_steps, n_t - 1)
    if n_steps >= 1:
        truth = val.u[:, :n_steps + 1]
        t0, dt = float(val.t[0, 0]), val.dt
        t_out = t0 + dt * np.arange(n_steps + 1)
        f = None if val.f is None else val.f[:, :n_steps + 1]
        fc = forecast(model, val.u[:, 0], t_out, val.mu, f, f_times=t_out, t0=t0, dt=dt,
                      n_samples=config.val_forecast_samples, quantiles=(), decode_batch=512, seed=config.seed,
                      solver=config.forecast_solver, check_finite=False)
        out["val_nrmse"] = _mean_nrmse(fc.mean, truth)
        frames = truth.flatten(0, 1)
        rec = _decode_mean(model, torch.cat([model.encode(frames[i:i + 512])[0]
                                             for i in range(0, frames.shape[0], 512)]))
        out["val_recon_nrmse"] = _mean_nrmse(rec.reshape(truth.shape), truth)
    model.train(was_training)
    return out
