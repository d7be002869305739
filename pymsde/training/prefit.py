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
forecast error fell from 54 % to 8 % with the pre-fit, the smaller initial variances of
:func:`pymsde.training.recipes.model_for_data` and Heun forecasts (that page's table).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pymsde.model.drift import linear_features
from pymsde.numerics.padding import gather_stencil
from pymsde.util.errors import ConfigError

#: Ridge weight relative to the mean diagonal of the normal matrix: smooth fields make the
#: stencil columns nearly collinear; this keeps the solve well posed without biasing the fit
#: measurably (relative residual 0.37 % on docs/own_data.md's set).
RIDGE = 1e-8


@dataclass(frozen=True)
class PrefitResult:
    """What the pre-fit found.

    Attributes:
        relative_error: ``||dzM/dt - W x|| / ||dzM/dt||`` over the rows fitted (a fraction).
        rows: (trajectory, interior time, cell) rows fitted.
    """

    relative_error: float
    rows: int

    def as_dict(self) -> dict:
        return {"relative_error": self.relative_error, "rows": self.rows}


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
        ConfigError: the model has no linear term, or the trajectories are too short.
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
    yy = 0.0
    n_rows = 0
    t_all = np.asarray(data.t, dtype=np.float64)
    for i in range(data.n_traj):
        u = torch.as_tensor(np.asarray(data.u[i]), dtype=ref.dtype, device=ref.device)      # (n_t, C, *grid)
        zM = model.encode(u)[0][:, :model.macro_dim].to(torch.float64).cpu()
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
        yy += float((y * y).sum())
        n_rows += x.shape[0]
    reg = RIDGE * float(gram.diagonal().mean()) if n_rows else 0.0
    w = torch.linalg.solve(gram + reg * torch.eye(n_in, dtype=torch.float64), rhs)          # (n_in, C)
    # ||y - X w||^2 = y'y - 2 w'X'y + w'X'X w, from the accumulated sums
    resid = yy - 2.0 * float((w * rhs).sum()) + float((w * (gram @ w)).sum())
    rel = float(np.sqrt(max(resid, 0.0) / yy)) if yy > 0 else 0.0
    drift.linear.copy_(w.t().to(dtype=ref.dtype, device=ref.device))
    drift.macro_weights[-1].zero_()
    drift.macro_biases[-1].zero_()
    return PrefitResult(relative_error=rel, rows=n_rows)


__all__ = ["prefit_linear_drift", "PrefitResult", "RIDGE"]
