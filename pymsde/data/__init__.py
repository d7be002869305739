"""Data layer: the grid, the trajectories container, files and training windows."""
from pymsde.data.grid import BOUNDARY_TYPES, Grid
from pymsde.data.io import load, save
from pymsde.data.lazy import LazyTrajectories, open_lazy
from pymsde.data.trajectories import Trajectories
from pymsde.data.windows import WindowSampler, window_starts

__all__ = ["Grid", "BOUNDARY_TYPES", "Trajectories", "WindowSampler", "window_starts",
           "load", "save", "open_lazy", "LazyTrajectories"]
