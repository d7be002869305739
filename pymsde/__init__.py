"""pymsde: learn stochastic multiscale models of physical systems from data.

The layers, in the one direction data flows (each imports only the ones before it):

``util`` -> ``numerics`` (padding, stencils, spectral, PDE right-hand sides) -> ``sde``
(solvers, the integration loop, forcing) -> ``backends`` (torch or Julia for the whole-run
loops) -> ``data`` (grid, trajectories, files, windows) -> ``systems`` (simulators, the
coarse solver) -> ``model`` (encoder, decoder, drift, diffusion, posterior, config) ->
``forecast`` (the rollout, ensembles) -> ``evaluate`` (metrics, baselines, scoring, plots)
-> ``training`` (objective, trainer, checkpoints) -> ``workflows`` (evaluation of a run,
the demo) -> ``cli``.

The names most users need are available here directly (imported on first use, so
``import pymsde`` stays cheap and never starts Julia)::

    import pymsde
    data = pymsde.simulate("burgers1d", n_traj=10, seed=0)
    result = pymsde.fit(data.get_split("train"), {"coarse_shape": (20,), "micro_dim": 5},
                        pymsde.TrainConfig(epochs=50), val=data.get_split("val"), run_dir="runs/b1")
    from pymsde.forecast import forecast
    fc = forecast(result.model, data.u[0, 0], data.t[0])
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Grid": "pymsde.data", "Trajectories": "pymsde.data", "WindowSampler": "pymsde.data",
    "load": "pymsde.data", "save": "pymsde.data",
    "simulate": "pymsde.systems", "solve_coarse": "pymsde.systems", "CASES": "pymsde.systems",
    "MultiscaleModel": "pymsde.model", "ModelConfig": "pymsde.model",
    "fit": "pymsde.training", "load_run": "pymsde.training", "TrainConfig": "pymsde.training",
    # (``forecast`` itself is not re-exported: the name is the subpackage ``pymsde.forecast``;
    # use ``from pymsde.forecast import forecast``)
    "Forecast": "pymsde.forecast", "LatentSDE": "pymsde.forecast",
    "nrmse": "pymsde.evaluate", "crps_ensemble": "pymsde.evaluate", "spread_skill": "pymsde.evaluate",
    "evaluate_run": "pymsde.workflows",
    "resolve_backend": "pymsde.backends",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pymsde' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
