"""Forcing as a function of time: vectorised linear interpolation of sampled values.

A data set stores the forcing ``f`` at the observation times (``(n_t, n_f)`` per trajectory).
The SDE's drift needs it at arbitrary times (every step, and the stages in between). The
interpolation here is a handful of tensor operations on the whole batch -- ``searchsorted``
on the sample times, two gathers and one blend -- with no Python loop over samples or
members and no host synchronisation, so it can sit inside the integrator's time loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pymsde.util.errors import DataError


@dataclass(frozen=True)
class LinearForcing:
    """Piecewise-linear forcing ``f(t)``; constant beyond the first and last sample.

    Attributes:
        times: ``(n,)`` strictly increasing sample times.
        values: ``(n, n_f)`` samples shared by the whole batch, or ``(B, n, n_f)`` one series
            per batch member.
    """

    times: torch.Tensor
    values: torch.Tensor

    @classmethod
    def from_samples(cls, times, values, dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> "LinearForcing":
        """Validate and convert (numpy or torch). Raises DataError naming the bad field."""
        t = _tensor(times, dtype, device).reshape(-1)
        v = _tensor(values, dtype, device)
        if v.dim() not in (2, 3) or v.shape[-2] != t.shape[0]:
            raise DataError(f"forcing: values must be (n_t, n_f) or (B, n_t, n_f) with n_t = "
                            f"{t.shape[0]} sample times, found shape {tuple(v.shape)}")
        if t.shape[0] > 1 and not bool((t[1:] > t[:-1]).all()):
            raise DataError("forcing: sample times must be strictly increasing")
        if not bool(torch.isfinite(v).all()):
            raise DataError("forcing: values contain NaN or infinity")
        return cls(t, v)

    def expand(self, repeats: int) -> "LinearForcing":
        """Per-member values ``(B, n, n_f)`` -> ``(B * repeats, n, n_f)`` (member-major,
        like ``repeat_interleave``); shared values are returned unchanged."""
        if self.values.dim() == 2 or repeats == 1:
            return self
        return LinearForcing(self.times, self.values.repeat_interleave(repeats, dim=0))

    def __call__(self, t: torch.Tensor | float) -> torch.Tensor:
        """``f(t)``: ``(n_f,)`` (shared values) or ``(B, n_f)`` for a scalar ``t``."""
        return interp_linear(t, self.times, self.values)


def _tensor(x, dtype, device) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = np.ascontiguousarray(x)  # torch refuses numpy views with negative strides
    return torch.as_tensor(x, dtype=dtype, device=device)


def interp_linear(t: torch.Tensor | float, times: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``values`` (``(..., n, n_f)``, samples on axis -2) at a scalar
    time ``t``; clamped (constant) outside ``[times[0], times[-1]]``.

    Returns:
        ``(..., n_f)``.
    """
    n = times.shape[0]
    if n == 1:
        return values[..., 0, :]
    t = torch.as_tensor(t, dtype=times.dtype, device=times.device).reshape(1)
    i = (torch.searchsorted(times, t, right=True) - 1).clamp_(0, n - 2)   # (1,), stays on device
    t_lo = times.index_select(0, i)
    t_hi = times.index_select(0, i + 1)
    w = ((t - t_lo) / (t_hi - t_lo)).clamp_(0.0, 1.0)
    lo = values.index_select(-2, i).squeeze(-2)
    hi = values.index_select(-2, i + 1).squeeze(-2)
    return torch.lerp(lo, hi, w.to(values.dtype))


def interp_forcing(f: torch.Tensor, tau: torch.Tensor, dt: float) -> torch.Tensor:
    """Linear interpolation of per-step values at relative times ``tau`` of a window (training's
    residual quadrature; the values sit on the uniform grid ``k * dt``, so the bracket is found
    by division instead of :func:`interp_linear`'s search).

    Args:
        f: ``(B, M, n_f)`` values at the window's observation times ``k * dt``.
        tau: ``(Q,)`` times relative to the window's first observation, in ``[0, (M-1) dt]``.
        dt: the observation step.

    Returns:
        ``(Q, B, n_f)``.
    """
    m = f.shape[1]
    x = (tau / dt).clamp(0, m - 1)
    i0 = x.floor().long().clamp(max=m - 2)
    w = (x - i0.to(x.dtype))[:, None, None]            # (Q, 1, 1)
    f0 = f[:, i0].transpose(0, 1)                        # (Q, B, n_f)
    f1 = f[:, i0 + 1].transpose(0, 1)
    return f0 + w * (f1 - f0)
