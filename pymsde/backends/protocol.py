"""The compute-backend switch and the protocol of the accelerated kernels.

A backend runs the six whole-run loops of pymsde as one call each (:data:`KERNELS`)::

    sde_rollout(params, sigma, z0, t0, dt, n_steps, scheme, save_every, dW, dI, mu, f)
        -> (ts (n_saved,), zs (n_saved, B, D))              # the learned SDE (forecast)
    burgers_fd_run(u0, dt, n_sub, n_out, dx, nu, boundary, order) -> (B, n_out, C, *grid)
    spectral_run(v0_hat, coeffs, k, mask, n, dealias, n_sub, n_out) -> (B, n_out, C, n)
    burgers_fv_run(c0, dt, n_sub, n_out, dx, nu, boundary, face_values) -> (B, n_out, C, *cells)
    swe_run(q0, t_out, dx, g, boundary, cfl, limiter, rk, channels)
        -> (out (B, n_t, 1 or 3, nx, ny), steps (B,))      # shallow water, CFL step per trajectory
    cylinder_run(u0, v0, chi_u, chi_v, h, nu, u_in, dt_out, n_out, cfl, refine, nx_out, probe)
        -> (frames (n_out, 2, nx_out, ny_out), forces (n_out - 1, 2), probe_v (n_out,),
            max_div (n_out - 1,), steps)                   # the MAC projection solver

The torch implementation of each is the code the callers run anyway, named after the kernel:
:func:`pymsde.forecast.rollout.sde_rollout`, :func:`pymsde.systems.solvers.burgers_fd_run`,
:func:`pymsde.systems.solvers.spectral_run`, :func:`pymsde.systems.coarse.burgers_fv_run`,
:func:`pymsde.systems.swe.swe_run`, :func:`pymsde.systems.cylinder.cylinder_run`.
A caller asks :meth:`Backend.accelerated` and either calls its own torch function or the
backend's kernel of the same name and signature -- there is no second copy of any loop.

- ``"torch"``: the torch code (always available).
- ``"julia"``: the PyMSDEKernels Julia package through juliacall (:mod:`pymsde.backends.julia`).
  If Julia cannot start or the package cannot load, :class:`BackendUnavailableError` is raised
  with the reason and the install hint -- never a silent fallback.
- ``"auto"``: Julia when an existing Julia executable is found *and* it starts and loads the
  package with juliapkg offline (nothing is downloaded); otherwise torch. The choice and the
  reason are logged once per resolution (``logging``, logger ``pymsde.backends.protocol``).

Importing this module imports neither juliacall nor Julia.
"""
from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from typing import Callable

import torch

from pymsde.util.errors import BackendUnavailableError, ConfigError

logger = logging.getLogger(__name__)

BACKEND_NAMES = ("torch", "julia", "auto")

#: the whole-run kernels a backend implements (signatures in the module docstring)
KERNELS = ("sde_rollout", "burgers_fd_run", "spectral_run", "burgers_fv_run", "swe_run", "cylinder_run")

#: the kernels whose bridge lives in :mod:`pymsde.backends.julia_flows` (the rest: :mod:`~pymsde.backends.julia`)
FLOW_KERNELS = ("swe_run", "cylinder_run")


@dataclass(frozen=True)
class Backend:
    """A resolved compute backend.

    Attributes:
        name: ``"torch"`` or ``"julia"`` -- what actually runs.
        requested: what was asked for (``"torch"``, ``"julia"`` or ``"auto"``).
        reason: why this backend was chosen (for ``auto``: why Julia was or was not used).
        info: versions and settings (torch version, Julia version/threads/CUDA when Julia).
    """

    name: str
    requested: str
    reason: str
    info: dict = field(default_factory=dict)

    @property
    def accelerated(self) -> bool:
        """True when the kernels run outside torch (the caller hands its loop over)."""
        return self.name != "torch"

    def kernel(self, name: str) -> Callable:
        """The accelerated kernel ``name`` (one of :data:`KERNELS`).

        Raises:
            ConfigError: an unknown name, or the torch backend (whose kernels are the
                callers' own torch functions, see the module docstring).
        """
        if name not in KERNELS:
            raise ConfigError(f"backend {self.name}: unknown kernel {name!r}; expected one of {KERNELS}")
        if not self.accelerated:
            raise ConfigError(f"backend torch: {name!r} is the caller's own torch loop; check "
                              f"Backend.accelerated before asking for a kernel")
        from pymsde.backends import julia, julia_flows

        return getattr(julia_flows if name in FLOW_KERNELS else julia, name)

    def __getattr__(self, name: str) -> Callable:
        if name in KERNELS:
            return self.kernel(name)
        raise AttributeError(name)

    def describe(self) -> dict:
        """A JSON-serialisable record of the backend for results and reports."""
        return {"name": self.name, "requested": self.requested, "reason": self.reason, **self.info}


def _base_info() -> dict:
    return {"torch_version": torch.__version__, "python": platform.python_version(),
            "cuda_available_torch": torch.cuda.is_available()}


TORCH = Backend("torch", "torch", "requested explicitly", _base_info())


def resolve_backend(name: str | Backend = "auto") -> Backend:
    """Resolve a backend name to a :class:`Backend`.

    Starting Julia is the expensive part; :mod:`pymsde.backends.julia` keeps the one Julia
    session of the process, so resolving again is cheap.

    Raises:
        ConfigError: unknown name.
        BackendUnavailableError: ``"julia"`` requested and Julia cannot start or load
            PyMSDEKernels; the message says why and how to install.
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKEND_NAMES:
        raise ConfigError(f"backend {name!r}; expected one of {BACKEND_NAMES}")
    if name == "torch":
        return TORCH
    from pymsde.backends import julia

    if name == "julia":
        julia.load(offline=False)  # raises BackendUnavailableError with the reason and hint
        return Backend("julia", "julia", "requested explicitly", {**_base_info(), "julia": julia.info()})
    try:
        julia.load(offline=True)
    except BackendUnavailableError as exc:
        be = Backend("torch", "auto", f"Julia not used: {exc}", _base_info())
    else:
        be = Backend("julia", "auto", "Julia started and PyMSDEKernels loaded",
                     {**_base_info(), "julia": julia.info()})
    logger.info("backend auto -> %s: %s", be.name, be.reason)
    return be


__all__ = ["BACKEND_NAMES", "KERNELS", "Backend", "TORCH", "resolve_backend"]
