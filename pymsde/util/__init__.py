"""Small helpers shared by every layer: atomic file writes and progress bars.

Nothing here knows about fields, models or SDEs; every other subpackage may import it.
"""
from pymsde.util.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from pymsde.util.errors import (BackendUnavailableError, ConfigError, DataError, PymsdeError,
                                 StabilityError, TrainingDivergedError)
from pymsde.util.progress import progress

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "progress", "PymsdeError",
           "DataError", "ConfigError", "StabilityError", "BackendUnavailableError", "TrainingDivergedError"]
