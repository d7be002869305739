"""Compute backends for the whole-run kernels: torch (the reference, always there) or Julia.

- :mod:`~pymsde.backends.protocol`: ``resolve_backend("torch" | "julia" | "auto") -> Backend``
  and the protocol every accelerated backend implements.
- :mod:`~pymsde.backends.julia`, :mod:`~pymsde.backends.dlpack`: the Julia port (package
  ``julia/``, loaded lazily through juliacall) and the zero-copy DLPack bridge.

Importing this package starts no Julia and imports no juliacall.
"""
from pymsde.backends.protocol import BACKEND_NAMES, Backend, resolve_backend

__all__ = ["BACKEND_NAMES", "Backend", "resolve_backend"]
