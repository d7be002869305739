"""Solver objects (diffrax-style) over the torch kernels of :mod:`pymsde.sde.integrator`.

An SDE here is any object with torchsde-style methods ``f(t, z) -> (B, D)`` (drift) and
``g(t, z) -> (B, D)`` (diagonal diffusion), Itô. A solver is a small immutable object naming
a kernel scheme and carrying its design orders::

    solver = SRA1()
    ts, zs = solve(sde, z0, t0=0.0, dt=1e-3, n_steps=1000, solver=solver, save_every=10)

The time loop is :func:`pymsde.sde.integrator.integrate`; nothing is duplicated here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from pymsde.sde.integrator import SCHEMES, em_step, heun_step, integrate, sra1_step
from pymsde.util.errors import ConfigError


@dataclass(frozen=True)
class Solver:
    """A fixed-step scheme: ``scheme`` is the kernel name, orders as designed (strong order
    quoted for additive noise; EM has strong order 0.5 for multiplicative noise)."""

    scheme: str
    strong_order: float
    weak_order: float
    needs_integral: bool  # the step needs dI = int (W(s) - W(t)) ds besides dW

    @property
    def order(self) -> float:
        """The order of the expectations (weak order), which is also the scheme's order on an ODE."""
        return self.weak_order

    def step(self, sde: Any, t: torch.Tensor, z: torch.Tensor, dt: float, dW: torch.Tensor,
             dI: torch.Tensor | None = None) -> torch.Tensor:
        """One step from ``(t, z)`` (z ``(B, D)``) with increments ``dW`` (and ``dI``) ``(B, D)``."""
        if self.scheme == "em":
            return em_step(sde.f, sde.g, t, z, dt, dW)
        if self.scheme == "heun":
            return heun_step(sde.f, sde.g, t, z, dt, dW)
        if dI is None:
            raise ConfigError(f"{type(self).__name__}.step needs dI (the integral of W over the step)")
        return sra1_step(sde.f, sde.g, t, z, dt, dW, dI)


def _make(scheme: str) -> Solver:
    strong, weak, needs = SCHEMES[scheme]
    return Solver(scheme, strong, weak, needs)


def EulerMaruyama() -> Solver:
    """Euler-Maruyama: strong order 0.5 (1.0 for additive noise), weak order 1."""
    return _make("em")


def StochasticHeun() -> Solver:
    """Stochastic Heun: converges to the Stratonovich solution, which equals the Itô one for
    additive noise only (the learned model's case); there strong order 1, weak order 2."""
    return _make("heun")


def SRA1() -> Solver:
    """Rößler's SRA1 for additive noise: strong order 1.5, weak order 2, two drift calls."""
    return _make("sra1")


_ALIASES = {"em": "em", "euler": "em", "euler_maruyama": "em", "heun": "heun",
            "stochastic_heun": "heun", "sra1": "sra1"}


def get_solver(solver: str | Solver) -> Solver:
    """A Solver from itself or a name (``"em"``/``"euler"``, ``"heun"``, ``"sra1"``)."""
    if isinstance(solver, Solver):
        return solver
    key = _ALIASES.get(str(solver).lower())
    if key is None:
        raise ConfigError(f"unknown solver {solver!r}; expected one of {sorted(_ALIASES)}")
    return _make(key)


def solve(sde: Any, z0: torch.Tensor, t0: float, dt: float, n_steps: int,
          solver: str | Solver = "em", save_every: int = 1, save_at: Sequence[int] | None = None,
          dW: torch.Tensor | None = None, dI: torch.Tensor | None = None,
          generator: torch.Generator | None = None, **kwargs: Any
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate ``sde`` from ``z0`` ``(B, D)`` at ``t0`` over ``n_steps`` steps of ``dt``.

    Other keywords (``chunk``, ``check_finite``, ``show_progress``) go to
    :func:`pymsde.sde.integrator.integrate`.

    Returns:
        ``ts`` ``(n_saved,)`` and ``zs`` ``(n_saved, B, D)``.
    """
    s = get_solver(solver)
    return integrate(sde.f, sde.g, z0, t0, dt, n_steps, scheme=s.scheme, save_every=save_every,
                     save_at=save_at, dW=dW, dI=dI, generator=generator, **kwargs)
