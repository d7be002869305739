"""Compute kernels: the torch reference implementations and the backend switch.

- :mod:`~pymsde.kernels.padding`, :mod:`~pymsde.kernels.stencils`: boundary padding, stencil
  gathers and finite differences on ``(B, C, *grid)`` tensors.
- :mod:`~pymsde.kernels.mlp`, :mod:`~pymsde.kernels.multiscale`: the functional drift of the
  learned multiscale SDE; :mod:`~pymsde.kernels.sde`: fixed-step SDE integrators.
- :mod:`~pymsde.kernels.backend`: ``resolve_backend("torch" | "julia" | "auto")``.
- :mod:`~pymsde.kernels.julia`, :mod:`~pymsde.kernels.dlpack`: the Julia port (package
  ``julia/``, loaded lazily through juliacall) and the zero-copy DLPack bridge.

Importing this package starts no Julia and imports no juliacall.
"""
from pymsde.kernels.backend import BACKEND_NAMES, Backend, resolve_backend

__all__ = ["BACKEND_NAMES", "Backend", "resolve_backend"]
