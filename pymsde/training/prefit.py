"""The least-squares pre-fit of the drift's linear stencil term, before the first training step.

The macroscale latent state's encoder mean is the coarse-grained field (a fixed kernel), so
the coarse field of every training frame, and its time derivative by central differences, are
known before any training. :func:`prefit_linear_drift` solves the ridge-regularised linear
least-squares problem

    min_W  sum_{trajectories, interior times, cells} || dzM/dt - W [s, mu_1 s, ..., mu_k s] ||^2

for the linear term ``W`` of :func:`pymsde.model.drift.multiscale_drift` (``drift_linear``),
writes it into the model and zeroes the last layer of the macroscale MLP, so that training
starts from the linear drift that best explains the data and the MLP from a zero correction.

Why: fitted by the variational objective alone, the drift is regressed on posterior samples
whose noise attenuates it (errors in variables) and on a few trajectories whose span a
per-cell MLP does not extend beyond; on the advection-diffusion set of docs/own_data.md the
forecast error fell from 54 % to 7 % with the pre-fit, the smaller initial variances of
:func:`pymsde.training.recipes.model_for_data` and Heun forecasts (that page's table).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pymsde.model.drift import linear_features
from pymsde.numerics.padding import gather_stencil
from pymsde.util.errors import ConfigError

#: Ridge weight on the equilibrated normal matrix (each column scaled to a unit diagonal, so
#: that a channel of small units is regularised as little as a large one): smooth fields make
#: the stencil columns nearly collinear; this keeps the solve well posed (tests/test_prefit.py:
#: the residual is lstsq's to 1e-6 of it).
RIDGE = 1e-8
#: Frames coarse-grained per call (memory of a large 2-D trajectory on a GPU).
CHUNK = 512


@dataclass(frozen=True)
class PrefitResult:
    """What the pre-fit found.

    Attributes:
        relative_error: ``||dzM/dt - W x|| / ||dzM/dt||`` over the rows fitted (a fraction).
        channel_errors: the same per channel (a channel of small units is not hidden by a large one).
        rows: (trajectory, interior time, cell) rows fitted.
    """

    relative_error: float
    channel_errors: tuple[float, ...]
    rows: int

    def as_dict(self) -> dict:
        return {"relative_error": self.relative_error, "channel_errors": list(self.channel_errors),
                "rows": self.rows}


@torch.no_grad()
def prefit_linear_drift(model, data) -> PrefitResult:
    """Fit the linear stencil term of ``model``'s drift to ``data`` by least squares (in place).

    Args:
        model: a :class:`~pymsde.model.MultiscaleModel` built with ``drift_linear``.
        data: the training :class:`~pymsde.data.trajectories.Trajectories` (or lazy ones):
            each trajectory needs at least 3 times (central differences).

    Returns:
        :class:`PrefitResult`. The model's ``drift_net.linear`` holds the fit and the last
        layer of the macroscale MLP is zero (the drift is the linear term alone).

    Raises:
        ConfigError: the model has no linear term, the trajectories are too short, or the
            coarse-grained field is zero everywhere.
    """
    drift = model.drift_net
    if getattr(drift, "linear", None) is None:
        raise ConfigError("drift_prefit: the model has no linear drift term; set drift_linear = true in [model]")
    cfg = model.config
    if data.n_t < 3:
        raise ConfigError(f"drift_prefit: the trajectories have {data.n_t} times; the central differences of the "
                          f"pre-fit need at least 3")
    ref = drift.linear
    params = drift.params()
    n_in = params.linear_in
    gram = torch.zeros(n_in, n_in, dtype=torch.float64)
    rhs = torch.zeros(n_in, cfg.channels, dtype=torch.float64)
    yy = torch.zeros(cfg.channels, dtype=torch.float64)
    n_rows = 0
    t_all = np.asarray(data.t, dtype=np.float64)
    for i in range(data.n_traj):
        # the macroscale encoder mean is the coarse-graining kernel's output (no micro CNN needed)
        u_i = np.asarray(data.u[i])                                                          # (n_t, C, *grid)
        zM = torch.cat([model.kernel.coarse(torch.as_tensor(u_i[a:a + CHUNK], dtype=ref.dtype, device=ref.device))
                        .flatten(1).to(torch.float64).cpu() for a in range(0, u_i.shape[0], CHUNK)])
        t = t_all[i] if t_all.ndim == 2 else t_all
        dt2 = torch.as_tensor(t[2:] - t[:-2], dtype=torch.float64).view(-1, 1)
        dz = (zM[2:] - zM[:-2]) / dt2                                                        # (n_t - 2, C n_cells)
        n = dz.shape[0]
        st = gather_stencil(zM[1:-1].reshape(n, cfg.channels, *cfg.coarse_shape), cfg.stencil_radius, cfg.boundary)
        rows = st.reshape(n * params.n_cells, params.stencil_size)
        mu = None
        if cfg.n_mu:
            mu = torch.as_tensor(np.asarray(data.mu[i]), dtype=torch.float64).view(1, -1).expand(n, -1)
        x = linear_features(rows, mu, params.n_cells)
        # targets in the rows' order: (sample, cell) rows, one column per channel
        y = dz.view(n, cfg.channels, params.n_cells).transpose(1, 2).reshape(n * params.n_cells, cfg.channels)
        gram += x.T @ x
        rhs += x.T @ y
        yy += (y * y).sum(0)
        n_rows += x.shape[0]
    diag = gram.diagonal()
    if not float(diag.max()) > 0.0:
        raise ConfigError("drift_prefit: the coarse-grained training field is zero everywhere; there is no linear "
                          "drift to fit (set drift_prefit = false in [train])")
    # equilibrate (unit diagonal; a column that is zero stays zero), ridge, solve, scale back
    d = torch.where(diag > 0, diag.rsqrt(), torch.zeros_like(diag))
    a = d[:, None] * gram * d[None, :] + RIDGE * torch.eye(n_in, dtype=torch.float64)
    w = d[:, None] * torch.linalg.solve(a, d[:, None] * rhs)                                  # (n_in, C)
    # ||y - X w||^2 = y'y - 2 w'X'y + w'X'X w per channel, from the accumulated sums
    resid = (yy - 2.0 * (w * rhs).sum(0) + (w * (gram @ w)).sum(0)).clamp_min(0.0)
    per = [float((r / t).sqrt()) if t > 0 else 0.0 for r, t in zip(resid, yy)]
    rel = float((resid.sum() / yy.sum()).sqrt()) if float(yy.sum()) > 0 else 0.0
    drift.linear.copy_(w.t().to(dtype=ref.dtype, device=ref.device))
    drift.macro_weights[-1].zero_()
    drift.macro_biases[-1].zero_()
    return PrefitResult(relative_error=rel, channel_errors=tuple(per), rows=n_rows)


__all__ = ["prefit_linear_drift", "PrefitResult", "RIDGE", "CHUNK"]
