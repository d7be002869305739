"""The compute-backend switch: ``resolve_backend("torch" | "julia" | "auto") -> Backend``.

- ``"torch"``: the torch reference kernels (always available).
- ``"julia"``: the PyMSDEKernels Julia package through juliacall (:mod:`pymsde.backends.julia`).
  If Julia cannot start or the package cannot load, :class:`BackendUnavailableError` is raised
  with the reason and the install hint -- never a silent fallback.
- ``"auto"``: Julia when an existing Julia executable is found *and* it starts and loads the
  package with juliapkg offline (nothing is downloaded); otherwise torch. The choice and the
  reason are logged once per process (``logging``, logger ``pymsde.backends.protocol``).

A :class:`Backend` names itself (``name``; record it in results with :meth:`Backend.describe`)
and hands out the kernels by attribute, with the torch signatures on both backends::

    be = resolve_backend("auto")
    out = be.gather_stencil(x, 2, ("periodic",))
    ts, zs = be.sde_rollout(params, sigma, z0, 0.0, 1e-3, 1000, dW=dW)

Importing this module imports neither juliacall nor Julia.
"""
from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from pymsde.util.errors import BackendUnavailableError, ConfigError

logger = logging.getLogger(__name__)

BACKEND_NAMES = ("torch", "julia", "auto")

#: the kernels every backend offers (torch signatures)
KERNELS = ("pad", "gather_stencil", "derivative", "mlp_forward", "multiscale_drift", "sde_rollout",
           "burgers_rhs", "burgers_fd_run", "spectral_run", "etd_coefficients", "burgers_fv_rhs",
           "burgers_fv_run")


def torch_sde_rollout(params, sigma: torch.Tensor, z0: torch.Tensor, t0: float, dt: float,
                      n_steps: int, scheme: str = "em", save_every: int = 1,
                      dW: torch.Tensor | None = None, dI: torch.Tensor | None = None,
                      mu: torch.Tensor | None = None, f: torch.Tensor | None = None,
                      seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """An ensemble rollout of the learned multiscale SDE with the torch kernels.

    ``dz = multiscale_drift(params, t, z, mu, f) dt + sigma dW`` with constant ``mu``
    ``(B, n_mu)`` and forcing ``f`` ``(B, n_f)`` (time-dependent forcing is the forecast
    layer's business), stepped by :func:`pymsde.sde.integrator.integrate`.

    Args:
        params: :class:`pymsde.model.drift.DriftParams`.
        sigma: ``(D,)`` or ``(B, D)`` diagonal diffusion.
        z0: ``(B, D)`` initial latent states.
        t0, dt, n_steps: start time, step and number of steps.
        scheme: ``"em"``, ``"heun"`` or ``"sra1"``.
        save_every: keep every k-th state, starting with ``z0``.
        dW, dI: optional ``(n_steps, B, D)`` Brownian increments (and SRA1 integrals).
        seed: seeds a ``torch.Generator`` for the increments when ``dW`` is None.

    Returns:
        ``ts (n_saved,)`` and ``zs (n_saved, B, D)``.
    """
    from pymsde.model.drift import DriftWorkspace, multiscale_drift
    from pymsde.sde.integrator import integrate

    p = params.detach()
    ws = DriftWorkspace(p, z0.shape[0])   # hidden-layer buffers allocated once per rollout
    gen = None
    if dW is None and seed is not None:
        gen = torch.Generator(device=z0.device).manual_seed(int(seed))

    def drift(t, z):
        return multiscale_drift(p, t, z, mu, f, workspace=ws)

    with torch.no_grad():
        return integrate(drift, sigma.to(z0), z0, t0, dt, n_steps, scheme=scheme,
                         save_every=save_every, dW=dW, dI=dI, generator=gen)


def torch_burgers_fd_run(u0: torch.Tensor, dt: float, n_sub: int, n_out: int, dx, nu: float, boundary,
                         order: int = 4) -> torch.Tensor:
    """A whole finite-difference Burgers run (the loop of ``systems.solvers.integrate_burgers``).

    Args:
        u0: ``(B, C, *grid)`` float64 initial fields.
        dt: internal RK4 step; n_sub: steps per output interval; n_out: outputs incl. ``u0``.
        dx, nu, boundary, order: as :func:`pymsde.numerics.pde.burgers_rhs`.
    Returns:
        ``(B, n_out, C, *grid)`` with ``[:, 0] = u0`` and ``[:, i]`` after ``i * n_sub`` steps.
    """
    from pymsde.numerics import pde

    out = u0.new_empty((u0.shape[0], int(n_out), *u0.shape[1:]))
    u = u0
    out[:, 0] = u
    for i in range(1, int(n_out)):
        for _ in range(int(n_sub)):
            u = pde.burgers_rk4_step(u, dt, dx, nu, boundary, order)
        out[:, i] = u
    return out


def torch_spectral_run(v0_hat: torch.Tensor, coeffs, k: torch.Tensor, mask: torch.Tensor, n: int,
                       dealias: str, n_sub: int, n_out: int) -> torch.Tensor:
    """A whole pseudo-spectral ETDRK4 run (the loop of ``systems.solvers._integrate_spectral``).

    Args:
        v0_hat: ``(B, C, n // 2 + 1)`` complex128 initial rfft coefficients (the solver passes
            ``rfft(u0)`` with every mode: only the nonlinear term is dealiased).
        coeffs: ``kernels.spectral.etd_coefficients(L, dt)``; k, mask, n, dealias: as
            :func:`pymsde.numerics.pde.advection_etdrk4_step`.
        n_sub: steps per output interval; n_out: outputs including the initial state.
    Returns:
        ``(B, n_out, C, n)`` float64 fields ``irfft(v)`` at the outputs.
    """
    from pymsde.numerics import pde

    v = v0_hat
    out = torch.empty((v.shape[0], int(n_out), v.shape[1], int(n)), dtype=torch.float64, device=v.device)
    out[:, 0] = torch.fft.irfft(v, n=n)
    for i in range(1, int(n_out)):
        for _ in range(int(n_sub)):
            v = pde.advection_etdrk4_step(v, coeffs, k, mask.bool(), n, dealias)
        out[:, i] = torch.fft.irfft(v, n=n)
    return out


def torch_burgers_fv_run(c0: torch.Tensor, dt: float, n_sub: int, n_out: int, dx, nu: float, boundary,
                         face_values) -> torch.Tensor:
    """A whole coarse finite-volume Burgers solve (the loop of ``systems.coarse.solve_coarse``).

    Args:
        c0: ``(B, C, *cells)`` float64 initial cell averages.
        dt: internal SSP-RK3 step; n_sub: steps per output interval; n_out: outputs incl. ``c0``.
        dx, nu, boundary, face_values: as :func:`pymsde.numerics.pde.burgers_fv_rhs`.
    Returns:
        ``(B, n_out, C, *cells)`` with ``[:, 0] = c0`` and ``[:, i]`` after ``i * n_sub`` steps.
    """
    from pymsde.numerics import pde

    def rhs(v):
        return pde.burgers_fv_rhs(v, dx, nu, boundary, face_values)

    out = c0.new_empty((c0.shape[0], int(n_out), *c0.shape[1:]))
    c = c0
    out[:, 0] = c
    for i in range(1, int(n_out)):
        for _ in range(int(n_sub)):
            c = pde.ssprk3_step(rhs, c, dt)
        out[:, i] = c
    return out


def _torch_kernels() -> dict[str, Callable]:
    from pymsde.model import mlp
    from pymsde.model import drift as multiscale
    from pymsde.numerics import padding
    from pymsde.numerics import pde
    from pymsde.numerics import spectral
    from pymsde.numerics import stencils

    return {"pad": padding.pad, "gather_stencil": padding.gather_stencil,
            "derivative": stencils.derivative, "mlp_forward": mlp.mlp_forward,
            "multiscale_drift": multiscale.multiscale_drift, "sde_rollout": torch_sde_rollout,
            "burgers_rhs": pde.burgers_rhs, "burgers_fd_run": torch_burgers_fd_run,
            "spectral_run": torch_spectral_run, "etd_coefficients": spectral.etd_coefficients,
            "burgers_fv_rhs": pde.burgers_fv_rhs, "burgers_fv_run": torch_burgers_fv_run}


def _julia_kernels() -> dict[str, Callable]:
    from pymsde.backends import julia

    return {name: getattr(julia, name) for name in KERNELS}


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

    def kernel(self, name: str) -> Callable:
        """The kernel function ``name`` (one of :data:`KERNELS`) of this backend."""
        if name not in KERNELS:
            raise ConfigError(f"backend {self.name}: unknown kernel {name!r}; expected one of {KERNELS}")
        table = _torch_kernels() if self.name == "torch" else _julia_kernels()
        return table[name]

    def __getattr__(self, name: str) -> Callable:
        if name in KERNELS:
            return self.kernel(name)
        raise AttributeError(name)

    def describe(self) -> dict:
        """A JSON-serialisable record of the backend for results and reports."""
        return {"name": self.name, "requested": self.requested, "reason": self.reason, **self.info}


_CACHE: dict[str, Backend] = {}


def clear_cache() -> None:
    """Forget resolved backends (the next ``auto`` resolution logs its choice again)."""
    _CACHE.clear()


def _base_info() -> dict:
    return {"torch_version": torch.__version__, "python": platform.python_version(),
            "cuda_available_torch": torch.cuda.is_available()}


def resolve_backend(name: str = "auto") -> Backend:
    """Resolve a backend name to a :class:`Backend` (cached per name for the process).

    Raises:
        ConfigError: unknown name.
        BackendUnavailableError: ``"julia"`` requested and Julia cannot start or load
            PyMSDEKernels; the message says why and how to install.
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKEND_NAMES:
        raise ConfigError(f"backend {name!r}; expected one of {BACKEND_NAMES}")
    if name in _CACHE:
        return _CACHE[name]
    if name == "torch":
        be = Backend("torch", "torch", "requested explicitly", _base_info())
    elif name == "julia":
        from pymsde.backends import julia

        julia.load(offline=False)  # raises BackendUnavailableError with the reason and hint
        be = Backend("julia", "julia", "requested explicitly", {**_base_info(), "julia": julia.info()})
    else:
        be = _resolve_auto()
        logger.info("backend auto -> %s: %s", be.name, be.reason)
    _CACHE[name] = be
    return be


def _resolve_auto() -> Backend:
    from pymsde.backends import julia

    try:
        julia.load(offline=True)
    except BackendUnavailableError as exc:
        return Backend("torch", "auto", f"Julia not used: {exc}", _base_info())
    return Backend("julia", "auto", "Julia started and PyMSDEKernels loaded",
                   {**_base_info(), "julia": julia.info()})


def available_backends() -> dict[str, Any]:
    """``{"torch": True, "julia": True | "reason it is not"}`` without raising."""
    from pymsde.backends import julia

    try:
        julia.load(offline=True)
        jl: Any = True
    except BackendUnavailableError as exc:
        jl = str(exc)
    return {"torch": True, "julia": jl}


__all__ = ["BACKEND_NAMES", "KERNELS", "Backend", "resolve_backend", "clear_cache",
           "available_backends", "torch_sde_rollout", "torch_burgers_fd_run", "torch_spectral_run",
           "torch_burgers_fv_run"]
