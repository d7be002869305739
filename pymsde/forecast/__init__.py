"""Forecasting with a learned multiscale SDE: ensemble forecasts on the fine grid.

- :mod:`~pymsde.forecast.rollout`: the latent ensemble rollout (torch, or an accelerated
  backend's ``sde_rollout``), the one loop every forecast and every validation goes through.
- :mod:`~pymsde.forecast.ensemble`: ``forecast(model, u0, t_out, ...) -> Forecast``.

The solver objects, forcing interpolation and the torchsde view are in :mod:`pymsde.sde`;
they are re-exported here because forecasting is where users meet them.
"""
from pymsde.forecast.ensemble import Forecast, forecast, output_steps
from pymsde.sde import SRA1, EulerMaruyama, LatentSDE, LinearForcing, Solver, StochasticHeun, get_solver, interp_linear, solve

__all__ = ["Forecast", "forecast", "output_steps", "LinearForcing", "interp_linear", "Solver",
           "EulerMaruyama", "StochasticHeun", "SRA1", "get_solver", "solve", "LatentSDE"]
