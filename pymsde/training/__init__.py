"""Inference: the objective, its schedules, the training loop, checkpoints and run directories.

- :mod:`~pymsde.training.config`: :class:`TrainConfig`, :class:`ModelOptions`, TOML files;
- :mod:`~pymsde.training.elbo`: :func:`elbo_terms` (METHOD.md section 6);
- :mod:`~pymsde.training.schedule`: KL annealing and learning-rate decay;
- :mod:`~pymsde.training.train`: :func:`fit`;
- :mod:`~pymsde.training.checkpoint`, :mod:`~pymsde.training.run`: checkpoints, run
  directories, :func:`load_run`.

The guide is ``docs/training.md``.
"""
from pymsde.training.config import ModelOptions, TrainConfig, read_config, write_config
from pymsde.training.elbo import elbo_terms, residual_factor
from pymsde.training.run import LoadedRun, load_run
from pymsde.training.schedule import beta_at, lr_at
from pymsde.training.train import TrainResult, fit

__all__ = ["TrainConfig", "ModelOptions", "read_config", "write_config", "elbo_terms", "residual_factor",
           "beta_at", "lr_at", "fit", "TrainResult", "load_run", "LoadedRun"]
