"""Inference: the objective, its schedules, the training loop, checkpoints and run directories.

- :mod:`~pymsde.inference.config`: :class:`TrainConfig`, :class:`ModelOptions`, TOML files;
- :mod:`~pymsde.inference.elbo`: :func:`elbo_terms` (METHOD.md section 6);
- :mod:`~pymsde.inference.schedule`: KL annealing and learning-rate decay;
- :mod:`~pymsde.inference.train`: :func:`fit`;
- :mod:`~pymsde.inference.checkpoint`, :mod:`~pymsde.inference.run`: checkpoints, run
  directories, :func:`load_run`.

The guide is ``docs/training.md``.
"""
from pymsde.inference.config import ModelOptions, TrainConfig, read_config, write_config
from pymsde.inference.elbo import elbo_terms, residual_factor
from pymsde.inference.run import LoadedRun, load_run
from pymsde.inference.schedule import beta_at, lr_at
from pymsde.inference.train import TrainResult, fit

__all__ = ["TrainConfig", "ModelOptions", "read_config", "write_config", "elbo_terms", "residual_factor",
           "beta_at", "lr_at", "fit", "TrainResult", "load_run", "LoadedRun"]
