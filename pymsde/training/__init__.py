"""Training: the objective, its schedules, the training loop, checkpoints and run directories.

- :mod:`~pymsde.training.config`: :class:`TrainConfig` and the run's ``config.toml``;
- :mod:`~pymsde.training.elbo`: :func:`elbo_terms` (docs/method.md section 6);
- :mod:`~pymsde.training.schedule`: KL annealing and learning-rate decay;
- :mod:`~pymsde.training.trainer`: :func:`fit` and the :class:`Trainer`;
- :mod:`~pymsde.training.validation`: the validation scores (through :func:`pymsde.forecast.forecast`);
- :mod:`~pymsde.training.checkpoint`, :mod:`~pymsde.training.run`: checkpoints, run
  directories, :func:`load_run`.

The guide is ``docs/training.md``.
"""
from pymsde.training.config import TrainConfig, read_config, write_config
from pymsde.training.elbo import elbo_terms, residual_factor
from pymsde.training.run import LoadedRun, load_run
from pymsde.training.schedule import beta_at, lr_at
from pymsde.training.trainer import Trainer, TrainResult, fit

__all__ = ["TrainConfig", "read_config", "write_config", "elbo_terms", "residual_factor", "beta_at", "lr_at",
           "fit", "Trainer", "TrainResult", "load_run", "LoadedRun"]
