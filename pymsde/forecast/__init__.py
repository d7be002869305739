"""Forecasting with a learned multiscale SDE: fixed-step solvers, ensemble forecasts on the
fine grid, and a torchsde view of the latent SDE.

- solvers, forcing interpolation and the torchsde view live in :mod:`pymsde.sde`; they are
  ``solve(sde, z0, t0, dt, n_steps, solver, ...)`` over :func:`pymsde.sde.integrator.integrate`.
- :mod:`~pymsde.forecast.ensemble`: ``forecast(model, u0, t_out, ...) -> Forecast``.
- :mod:`~pymsde.sde.torchsde_view`: ``LatentSDE(model, mu, forcing)`` for ``torchsde.sdeint``.
- :mod:`~pymsde.sde.forcing`: ``LinearForcing`` (vectorised linear interpolation in time).
"""
from pymsde.forecast.ensemble import Forecast, forecast, output_steps
from pymsde.sde.forcing import LinearForcing, interp_linear
from pymsde.sde.solvers import SRA1, EulerMaruyama, Solver, StochasticHeun, get_solver, solve
from pymsde.sde.torchsde_view import LatentSDE

__all__ = ["Forecast", "forecast", "output_steps", "LinearForcing", "interp_linear", "Solver",
           "EulerMaruyama", "StochasticHeun", "SRA1", "get_solver", "solve", "LatentSDE"]
