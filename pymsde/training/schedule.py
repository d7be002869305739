"""The two schedules of training, as pure functions of the optimiser step (counted from 0).

- KL annealing (docs/method.md section 6): ``beta = 0`` during ``warmup`` steps, then rising
  linearly to 1 over ``ramp`` steps, then 1. Reference: no warm-up, ramp 5000.
- Learning rate: a smooth per-step exponential decay,
  ``lr(step) = lr0 * decay ** (step / decay_steps)``. Reference: lr0 = 1e-3, decay 0.9 every
  1000 steps.

Pure functions of the step mean a resumed run needs nothing but the step to continue the
schedules exactly; no scheduler object is checkpointed.
"""
from __future__ import annotations


def beta_at(step: int, ramp: int = 5000, warmup: int = 0) -> float:
    """KL weight at optimiser step ``step``: 0 during warm-up, then linear to 1 over ``ramp``.

    ``ramp = 0`` jumps to 1 right after the warm-up.
    """
    s = step - warmup
    if s < 0:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, s / ramp)


def lr_at(step: int, lr0: float = 1e-3, decay: float = 0.9, decay_steps: int = 1000) -> float:
    """Learning rate at optimiser step ``step``: ``lr0 * decay ** (step / decay_steps)``."""
    return lr0 * decay ** (step / decay_steps)
