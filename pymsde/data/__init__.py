"""Data layer: the grid, the trajectories container, files and training windows."""
from pymsde.data.grid import BOUNDARY_TYPES, Grid

__all__ = ["Grid", "BOUNDARY_TYPES"]
