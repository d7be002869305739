"""The Julia bridge of the two flow solvers' whole-run kernels, ``swe_run`` (shallow water,
``julia/src/swe.jl``) and ``cylinder_run`` (the incompressible MAC projection solver,
``julia/src/cylinder.jl``), with the positional arguments of their torch implementations
:func:`pymsde.systems.swe.swe_run` and :func:`pymsde.systems.cylinder.cylinder_run`.

The machinery (starting Julia, wrapping tensors, one Julia call) is :mod:`pymsde.backends.julia`;
the same rules hold: outputs are allocated by torch and filled in place by Julia, tuples are
comma-separated strings in Julia dimension order (torch axes reversed), and inputs torch or
Julia would refuse are refused here first (:class:`~pymsde.util.errors.ConfigError`). A blow-up
is reported by the Julia kernel's return value and raised here as the
:class:`~pymsde.util.errors.StabilityError` the torch loop raises, with its message.
"""
from __future__ import annotations

from typing import Sequence

import torch

from pymsde.backends.julia import _call, _csv, _floats, _jl, _julia_kernel
from pymsde.util.errors import ConfigError, StabilityError

#: as ``pymsde.systems.swe`` (the backends layer sits above systems and does not import it)
SWE_BOUNDARIES = ("outflow", "reflective", "periodic")


def _check_swe(q0: torch.Tensor, t_out: torch.Tensor, boundary, limiter: str, rk: int, channels: str) -> None:
    if q0.dim() != 4 or q0.shape[1] != 3:
        raise ConfigError(f"swe_run (julia): q0 of shape {tuple(q0.shape)}; expected (B, 3, nx, ny)")
    if t_out.dim() != 1 or t_out.numel() < 2:
        raise ConfigError(f"swe_run (julia): t_out of shape {tuple(t_out.shape)}; expected (n_t,), n_t >= 2")
    if len(boundary) != 2 or any(b not in SWE_BOUNDARIES for b in boundary):
        raise ConfigError(f"swe_run (julia): boundary {tuple(boundary)!r}; expected two of {SWE_BOUNDARIES}")
    if limiter not in ("mc", "minmod") or rk not in (2, 3) or channels not in ("h", "all"):
        raise ConfigError(f"swe_run (julia): limiter {limiter!r}, rk {rk!r}, channels {channels!r}; expected "
                          f"'mc' or 'minmod', 2 or 3, 'h' or 'all'")
    for a in (0, 1):                      # a reflective wall mirrors two cells (torch's narrow refuses fewer)
        if boundary[a] == "reflective" and q0.shape[2 + a] < 2:
            raise ConfigError(f"swe_run (julia): axis {a} has {q0.shape[2 + a]} cells; a reflective wall needs "
                              f"at least 2")


@_julia_kernel
def swe_run(q0: torch.Tensor, t_out: torch.Tensor, dx: Sequence[float], g: float, boundary: Sequence[str],
            cfl: float, limiter: str, rk: int, channels: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole shallow-water run in one Julia call (``swe_run!``); same contract as
    :func:`pymsde.systems.swe.swe_run`: ``(out (B, n_t, 1 or 3, nx, ny), steps (B,) int64)``."""
    _check_swe(q0, t_out, boundary, limiter, rk, channels)
    B, _, nx, ny = q0.shape
    n_t = t_out.numel()
    out = q0.new_empty((B, n_t, 1 if channels == "h" else 3, nx, ny))
    steps = torch.zeros(B, dtype=torch.int64, device=q0.device)
    times = t_out.to(dtype=torch.float64, device=q0.device).contiguous()
    done = int(_call("swe_run!", _jl(out, "out"), _jl(steps, "steps"), _jl(q0, "q0"), _jl(times, "t_out"),
                     _floats(reversed(dx)), float(g), _csv(reversed(boundary)), float(cfl), str(limiter), int(rk)))
    if done < n_t:
        raise StabilityError(f"swe: the depth became non-positive or non-finite before t = {float(t_out[done]):.4g} "
                             f"(cfl = {cfl}); reduce cfl")
    return out, steps


def _check_cylinder(u0, v0, chi_u, chi_v, n_out: int, refine: int, nx_out: int, probe) -> tuple[int, int]:
    nx, ny = v0.shape[0], u0.shape[1]
    if u0.dim() != 2 or v0.dim() != 2 or tuple(u0.shape) != (nx + 1, ny) or tuple(v0.shape) != (nx, ny + 1):
        raise ConfigError(f"cylinder_run (julia): u0 {tuple(u0.shape)}, v0 {tuple(v0.shape)}; expected "
                          f"(nx + 1, ny) and (nx, ny + 1)")
    if tuple(chi_u.shape) != tuple(u0.shape) or tuple(chi_v.shape) != tuple(v0.shape):
        raise ConfigError(f"cylinder_run (julia): volume fractions {tuple(chi_u.shape)}, {tuple(chi_v.shape)}; "
                          f"expected the shapes of u0 and v0")
    if nx < 2 or ny < 2 or nx % 2 or ny % 2:
        raise ConfigError(f"cylinder_run (julia): {nx} x {ny} cells; expected even numbers >= 2 (the cosine "
                          f"transforms of the pressure solve)")
    if not (bool((chi_u != 0).any()) and bool((chi_v != 0).any())):
        raise ConfigError("cylinder_run (julia): a volume fraction is zero everywhere; expected the disc")
    if int(n_out) < 2 or int(refine) < 1 or ny % int(refine) or not 1 <= int(nx_out) * int(refine) <= nx:
        raise ConfigError(f"cylinder_run (julia): n_out {n_out}, refine {refine}, nx_out {nx_out} for {nx} x {ny} "
                          f"cells; expected n_out >= 2, refine dividing ny, nx_out * refine <= nx")
    ip, jp = (int(k) for k in probe)
    if not (1 <= ip < nx and 0 <= jp <= ny):
        raise ConfigError(f"cylinder_run (julia): probe {tuple(probe)}; expected 1 <= i < {nx}, 0 <= j <= {ny}")
    return ip, jp


@_julia_kernel
def cylinder_run(u0: torch.Tensor, v0: torch.Tensor, chi_u: torch.Tensor, chi_v: torch.Tensor, h: float, nu: float,
                 u_in: float, dt_out: float, n_out: int, cfl: float, refine: int, nx_out: int, probe):
    """The cylinder solver's time loop in one Julia call (``cylinder_run!``); same contract as
    :func:`pymsde.systems.cylinder.cylinder_run`: ``(frames (n_out, 2, nx_out, ny // refine),
    forces (n_out - 1, 2), probe_v (n_out,), max_div (n_out - 1,), steps)``."""
    ip, jp = _check_cylinder(u0, v0, chi_u, chi_v, n_out, refine, nx_out, probe)
    n_out, refine, nx_out = int(n_out), int(refine), int(nx_out)
    f64 = dict(dtype=torch.float64, device=u0.device)
    frames = torch.empty((n_out, 2, nx_out, u0.shape[1] // refine), **f64)
    forces = torch.empty((n_out - 1, 2), **f64)
    probe_v = torch.empty(n_out, **f64)
    max_div = torch.empty(n_out - 1, **f64)
    stats = torch.zeros(2, **f64)                         # (steps, the speed that stopped the run)
    fields = [_jl(t.to(**f64).contiguous(), name) for t, name in
              ((u0, "u0"), (v0, "v0"), (chi_u, "chi_u"), (chi_v, "chi_v"))]
    status = int(_call("cylinder_run!", _jl(frames, "frames"), _jl(forces, "forces"), _jl(probe_v, "probe_v"),
                       _jl(max_div, "max_div"), _jl(stats, "stats"), *fields, float(h), float(nu), float(u_in),
                       float(dt_out), float(cfl), refine, ip, jp))
    if status > 0:
        raise StabilityError(f"cylinder: the velocity blew up (max |u| + |v| = {float(stats[1]):.3g}) before "
                             f"t = {status * dt_out:.4g}; reduce cfl")
    if status < 0:
        raise StabilityError("cylinder: the velocity became non-finite; reduce cfl")
    return frames, forces, probe_v, max_div, int(stats[0])


__all__ = ["swe_run", "cylinder_run"]
