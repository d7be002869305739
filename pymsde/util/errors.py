"""The exceptions pymsde raises for bad input. Each message names the problem: the file,
the field, what was expected and what was found."""
from __future__ import annotations


class PymsdeError(Exception):
    """Base class of every pymsde error."""


class DataError(PymsdeError, ValueError):
    """A data set or data file is malformed (missing key, wrong shape, non-finite values...)."""


class ConfigError(PymsdeError, ValueError):
    """A configuration is impossible (coarse grid not dividing the fine grid, negative sizes...)."""


class StabilityError(PymsdeError, ValueError):
    """A time step violates the stability limit of the chosen scheme."""


class BackendUnavailableError(PymsdeError, RuntimeError):
    """A compute backend was asked for explicitly but cannot start."""


class TrainingDivergedError(PymsdeError, RuntimeError):
    """Training produced a non-finite loss; the message names the ELBO term that went bad."""
