"""Flow past a cylinder at Re = 160 in a slip-walled channel (FINAL_PAPER.md section 5).

Equations: incompressible Navier-Stokes ``u_t + (u . grad) u = -grad p + nu lap u``, ``div u = 0``
(density 1), on ``[0, length] x [0, height]`` with a cylinder of radius ``radius`` at ``centre``.
Boundaries: uniform inflow ``(u, v) = (u_in, 0)`` at ``x = 0``; slip walls (``v = 0``,
``du/dy = 0``) at ``y = 0`` and ``y = height``; a convective outflow ``u_t + u_in u_x = 0`` at
``x = length`` whose flux is corrected to equal the inflow; no slip on the cylinder.

Method: finite differences on a staggered (MAC) grid of square cells of side ``h``
(``u`` on x-faces ``(nx + 1, ny)``, ``v`` on y-faces ``(nx, ny + 1)``, pressure at centres).
Advection in flux form with third-order upwind-biased face values (the kappa = 1/3 scheme),
diffusion by the 5-point Laplacian, SSP-RK3 in time with a CFL step; after every stage the
velocity is made divergence-free by an exact projection (the Neumann Poisson problem solved by
cosine transforms built on ``torch.fft``). The cylinder is an immersed boundary: in every
stage each velocity control volume keeps the fraction ``1 - chi`` of its velocity (``chi`` its
volume fraction inside the cylinder), before the projection. The momentum removed is the force
on the body, hence the drag and lift coefficients ``C = 2 F / (u_in^2 D)``.

The run starts from uniform flow plus a small transverse-velocity blob behind the cylinder
(``perturbation`` x u_in, Gaussian of width D, centred 2 D behind it) that breaks the
top/bottom symmetry so that shedding starts early. The saved field is the cell-centred
velocity, block-averaged from the internal grid (``refine`` cells per output cell) and cropped
to ``[0, out_length] x [0, height]``: ``(n_t, 2, nx_out, ny_out)``, channel 0 ``u``, 1 ``v``,
axis 0 of the grid is x, cell centres ``(j + 1/2) / cells_per_unit``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from pymsde.backends.protocol import resolve_backend
from pymsde.systems.solvers import compute_threads
from pymsde.util.errors import ConfigError, StabilityError
from pymsde.util.progress import progress


#: explicit diffusion: dt nu / h^2 <= 0.3 (the 5-point Laplacian's 8 / h^2 inside SSP-RK3's 2.51)
VISCOUS_LIMIT = 0.3


@dataclass(frozen=True)
class CylinderSetup:
    """Parameters of the cylinder run (lengths in the units of the paper's domain, times in
    length / velocity). Defaults: FINAL_PAPER.md section 5 (Re = u_in 2 radius / nu = 160) on a
    computational channel twice as long as the output, like the Gerris domain the data come from."""

    u_in: float = 1.0
    nu: float = 1.0 / 1280.0
    radius: float = 0.0625
    centre: tuple = (0.5, 0.5)
    height: float = 1.0
    length: float = 8.0
    out_length: float = 4.0
    cells_per_unit: int = 80
    refine: int = 2
    t_end: float = 15.0
    dt_out: float = 0.01
    cfl: float = 0.8
    perturbation: float = 0.1

    @property
    def reynolds(self) -> float:
        """``u_in D / nu``."""
        return self.u_in * 2 * self.radius / self.nu

    def check(self) -> "CylinderSetup":
        """Raise ConfigError for an impossible set-up; return self."""
        for name in ("u_in", "nu", "radius", "height", "length", "out_length", "t_end", "dt_out", "cfl"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"cylinder: {name} = {getattr(self, name)}; expected a positive number")
        if int(self.cells_per_unit) < 4 or int(self.refine) < 1:
            raise ConfigError(f"cylinder: cells_per_unit = {self.cells_per_unit}, refine = {self.refine}; "
                              f"expected >= 4 and >= 1")
        for name in ("height", "length", "out_length"):
            if abs(getattr(self, name) * self.cells_per_unit - round(getattr(self, name) * self.cells_per_unit)) > 1e-9:
                raise ConfigError(f"cylinder: {name} = {getattr(self, name)} is not a whole number of "
                                  f"cells at {self.cells_per_unit} cells per unit")
        if self.out_length > self.length:
            raise ConfigError(f"cylinder: out_length {self.out_length} exceeds the channel length {self.length}")
        cx, cy = self.centre
        if not (self.radius < cx < self.length - self.radius and self.radius < cy < self.height - self.radius):
            raise ConfigError(f"cylinder: cylinder at {self.centre} radius {self.radius} is not inside the channel")
        n = int(self.cells_per_unit) * int(self.refine)
        if round(self.height * n) % 2 or round(self.length * n) % 2:
            raise ConfigError(f"cylinder: {round(self.length * n)} x {round(self.height * n)} internal cells; "
                              f"expected even numbers (the cosine transforms of the pressure solve)")
        if abs(self.t_end / self.dt_out - round(self.t_end / self.dt_out)) > 1e-6:
            raise ConfigError(f"cylinder: t_end = {self.t_end} is not a whole number of dt_out = {self.dt_out}")
        if not (self.perturbation >= 0 and math.isfinite(self.perturbation)):
            raise ConfigError(f"cylinder: perturbation = {self.perturbation}; expected a non-negative amplitude")
        if self.cfl > 1.2:
            raise ConfigError(f"cylinder: cfl = {self.cfl}; expected <= 1.2 (SSP-RK3 with upwind-biased advection)")
        return self


def volume_fractions(nx: int, ny: int, h: float, centre, radius: float, sub: int = 8):
    """Fractions of the u- and v-control volumes inside the disc: ``(chi_u (nx + 1, ny),
    chi_v (nx, ny + 1))`` float64, by ``sub x sub`` sampling of the volumes that cut the circle."""
    def frac(xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
        X, Y = np.meshgrid(xc, yc, indexing="ij")
        d = np.hypot(X - centre[0], Y - centre[1])
        chi = (d < radius - h).astype(np.float64)
        cut = np.abs(d - radius) <= h
        off = (np.arange(sub) + 0.5) / sub - 0.5
        px = X[cut][:, None, None] + h * off[None, :, None]
        py = Y[cut][:, None, None] + h * off[None, None, :]
        chi[cut] = ((px - centre[0]) ** 2 + (py - centre[1]) ** 2 < radius ** 2).mean(axis=(1, 2))
        return chi

    xf, xc = np.arange(nx + 1) * h, (np.arange(nx) + 0.5) * h
    yf, yc = np.arange(ny + 1) * h, (np.arange(ny) + 0.5) * h
    return torch.as_tensor(frac(xf, yc)), torch.as_tensor(frac(xc, yf))


class _CosineTransform:
    """Unnormalised DCT-II ``X_k = 2 sum_n x_n cos(pi k (2n + 1) / (2N))`` along one axis of even
    length ``N`` and its inverse, each by one real FFT of length ``N`` (Makhoul's reordering)."""

    def __init__(self, n: int, dim: int):
        if n % 2:
            raise ConfigError(f"cylinder: {n} cells along an axis; expected an even number")
        self.n, self.dim = n, dim
        idx = torch.arange(n)
        self.perm = torch.cat([idx[0::2], idx[1::2].flip(0)])
        self.inv_perm = torch.argsort(self.perm)
        k = torch.arange(n // 2 + 1, dtype=torch.float64)
        shape = [1, 1]
        shape[dim] = n // 2 + 1
        self.w = torch.exp(-0.5j * math.pi * k / n).view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.fft.rfft(x.index_select(self.dim, self.perm), dim=self.dim) * self.w
        m = self.n // 2
        return torch.cat([2 * z.real, -2 * z.imag.narrow(self.dim, 1, m - 1).flip(self.dim)], dim=self.dim)

    def inverse(self, X: torch.Tensor) -> torch.Tensor:
        m = self.n // 2
        rev = torch.cat([torch.zeros_like(X.narrow(self.dim, 0, 1)), X.narrow(self.dim, m, m).flip(self.dim)],
                        dim=self.dim)
        V = 0.5 * self.w.conj() * torch.complex(X.narrow(self.dim, 0, m + 1), -rev)
        return torch.fft.irfft(V, n=self.n, dim=self.dim).index_select(self.dim, self.inv_perm)


def dct2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Unnormalised DCT-II of a 2-D tensor along ``dim`` (even length; see :class:`_CosineTransform`)."""
    return _CosineTransform(x.shape[dim], dim).forward(x)


def idct2(X: torch.Tensor, dim: int) -> torch.Tensor:
    """The inverse of :func:`dct2` along ``dim``."""
    return _CosineTransform(X.shape[dim], dim).inverse(X)


class NeumannPoisson:
    """Exact solver of the 5-point ``lap psi = d`` on ``(nx, ny)`` cells of side ``h`` (both even)
    with zero normal gradient on every side (the MAC projection); the mean of ``psi`` is zero."""

    def __init__(self, nx: int, ny: int, h: float):
        kx = torch.arange(nx, dtype=torch.float64)
        ky = torch.arange(ny, dtype=torch.float64)
        lam = ((2 * torch.cos(math.pi * kx / nx) - 2)[:, None] + (2 * torch.cos(math.pi * ky / ny) - 2)[None, :])
        lam[0, 0] = 1.0
        self.inv = h * h / lam
        self.inv[0, 0] = 0.0
        self.tx, self.ty = _CosineTransform(nx, 0), _CosineTransform(ny, 1)

    def solve(self, d: torch.Tensor) -> torch.Tensor:
        """``psi (nx, ny)`` for the source ``d (nx, ny)`` (its mean is ignored)."""
        return self.tx.inverse(self.ty.inverse(self.ty.forward(self.tx.forward(d)) * self.inv))


def _pad_u(u: torch.Tensor, u_in: float) -> torch.Tensor:
    """``u (nx + 1, ny)`` with 2 ghost layers: inflow value upstream, zero gradient downstream,
    mirrored (slip) across the walls: ``(nx + 5, ny + 4)``."""
    up = torch.cat([torch.full_like(u[:2], u_in), u, u[-1:].expand(2, -1)], dim=0)
    return torch.cat([up[:, :2].flip(1), up, up[:, -2:].flip(1)], dim=1)


def _pad_v(v: torch.Tensor) -> torch.Tensor:
    """``v (nx, ny + 1)`` with 2 ghost layers: odd across the inflow face and the walls (v = 0
    there), zero gradient downstream: ``(nx + 4, ny + 5)``."""
    vp = torch.cat([-v[:2].flip(0), v, v[-1:].expand(2, -1)], dim=0)
    return torch.cat([-vp[:, 1:3].flip(1), vp, -vp[:, -3:-1].flip(1)], dim=1)


def _upwind3(p: torch.Tensor, vel: torch.Tensor, dim: int, start: int, count: int) -> torch.Tensor:
    """Third-order upwind-biased values at ``count`` faces of the padded ``p`` along ``dim``; face
    ``k`` lies between ``p[start + k]`` and ``p[start + k + 1]``, ``vel`` its advecting velocity."""
    a = [p.narrow(dim, start - 1 + s, count) for s in range(4)]          # p[m-1], p[m], p[m+1], p[m+2]
    pos = (-a[0] + 5 * a[1] + 2 * a[2]) / 6
    neg = (2 * a[1] + 5 * a[2] - a[3]) / 6
    return torch.where(vel >= 0, pos, neg)


def momentum_rhs(u: torch.Tensor, v: torch.Tensor, nu: float, h: float, u_in: float):
    """``(du/dt (nx + 1, ny), dv/dt (nx, ny + 1))`` without the pressure: advection (flux form)
    plus diffusion on the interior faces, the convective outflow on the last x-face, zero on
    the inflow face and the walls (units: velocity / time)."""
    nx, ny = v.shape[0], u.shape[1]
    up, vp = _pad_u(u, u_in), _pad_v(v)
    uc = 0.5 * (u[:-1] + u[1:])                                           # (nx, ny) at centres
    fxu = uc * _upwind3(up[:, 2:-2], uc, 0, 2, nx)
    vn = 0.5 * (v[:-1] + v[1:])                                           # (nx - 1, ny + 1) corners
    fyu = vn * _upwind3(up[3:-3], vn, 1, 1, ny + 1)
    lap_u = up[4:-2, 2:-2] + up[2:-4, 2:-2] + up[3:-3, 3:-1] + up[3:-3, 1:-3] - 4 * u[1:-1]
    ru = torch.zeros_like(u)
    ru[1:-1] = ((nu / h) * lap_u - (fxu[1:] - fxu[:-1]) - (fyu[:, 1:] - fyu[:, :-1])) / h
    ru[-1] = -u_in * (u[-1] - u[-2]) / h
    un = 0.5 * (u[:, :-1] + u[:, 1:])                                     # (nx + 1, ny - 1) corners
    fxv = un * _upwind3(vp[:, 3:-3], un, 0, 1, nx + 1)
    vc = 0.5 * (v[:, :-1] + v[:, 1:])                                     # (nx, ny) at centres
    fyv = vc * _upwind3(vp[2:-2], vc, 1, 2, ny)
    lap_v = vp[3:-1, 3:-3] + vp[1:-3, 3:-3] + vp[2:-2, 4:-2] + vp[2:-2, 2:-4] - 4 * v[:, 1:-1]
    rv = torch.zeros_like(v)
    rv[:, 1:-1] = ((nu / h) * lap_v - (fxv[1:] - fxv[:-1]) - (fyv[:, 1:] - fyv[:, :-1])) / h
    return ru, rv


def project(u: torch.Tensor, v: torch.Tensor, solver: NeumannPoisson, h: float) -> None:
    """Make ``(u, v)`` discretely divergence-free in place (boundary normal velocities kept);
    the outflow face is first shifted so that its flux equals the inflow's."""
    u[-1] += (u[0].sum() - u[-1].sum()) / u.shape[1]
    div = (u[1:] - u[:-1] + v[:, 1:] - v[:, :-1]) / h
    psi = solver.solve(div)
    u[1:-1] -= (psi[1:] - psi[:-1]) / h
    v[:, 1:-1] -= (psi[:, 1:] - psi[:, :-1]) / h


#: SSP-RK3 in Shu-Osher form: stage s is a_s u^n + (1 - a_s) (u_{s-1} + dt R(u_{s-1})).
_RK3_A = (0.0, 0.75, 1.0 / 3.0)
#: weight of stage s's forcing impulse in the step's impulse: prod_{k > s} (1 - a_k)
_RK3_W = (0.25 * (2.0 / 3.0), 2.0 / 3.0, 1.0)


def _box(chi: torch.Tensor):
    """The bounding box ``(slice_x, slice_y)`` of the non-zero entries of ``chi``."""
    ix, iy = torch.nonzero(chi, as_tuple=True)
    return slice(int(ix.min()), int(ix.max()) + 1), slice(int(iy.min()), int(iy.max()) + 1)


def disc_masks(chi) -> list:
    """``[(box, chi[box])]`` for the u- and v-fractions ``chi`` of :func:`volume_fractions`,
    ``box`` the bounding slices of the disc: what :func:`immersed_forcing` works on."""
    return [(_box(c), c[_box(c)].clone()) for c in chi]


def immersed_forcing(u: torch.Tensor, v: torch.Tensor, masks) -> tuple[float, float]:
    """Keep the fraction ``1 - chi`` of the velocity in each control volume (in place, on the
    bounding box of the disc only; ``masks`` from :func:`disc_masks`); returns the momentum
    removed ``(sum chi u, sum chi v)`` (per unit cell area: multiply by ``h^2``)."""
    out = []
    for w, (box, cb) in zip((u, v), masks):
        part = w[box]
        out.append(float(torch.sum(cb * part)))
        part.mul_(1 - cb)
    return out[0], out[1]


def rk3_step(u, v, dt: float, nu: float, u_in: float, h: float, masks, solver: NeumannPoisson):
    """One SSP-RK3 step with forcing and projection per stage (viscosity ``nu``, inflow ``u_in``).
    Returns ``(u, v, (Fx, Fy))``, the force on the cylinder per unit span averaged over the step
    (density 1)."""
    un, vn = u, v
    force = [0.0, 0.0]
    for a, w in zip(_RK3_A, _RK3_W):
        ru, rv = momentum_rhs(u, v, nu, h, u_in)
        u, v = torch.add(u, ru, alpha=dt), torch.add(v, rv, alpha=dt)
        if a:
            u, v = torch.lerp(u, un, a), torch.lerp(v, vn, a)
        u[0] = u_in
        mx, my = immersed_forcing(u, v, masks)
        force[0] += w * mx * h * h / dt
        force[1] += w * my * h * h / dt
        project(u, v, solver, h)
    return u, v, tuple(force)


def initial_velocity(s: CylinderSetup, nx: int, ny: int, h: float):
    """Uniform ``u_in`` plus the symmetry-breaking blob ``v = perturbation u_in exp(-r^2 / D^2)``,
    ``r`` the distance to ``centre + (2 D, 0)``: ``(u (nx + 1, ny), v (nx, ny + 1))`` before projection."""
    d = 2 * s.radius
    x, y = (np.arange(nx) + 0.5) * h, np.arange(ny + 1) * h
    r2 = (x[:, None] - s.centre[0] - 2 * d) ** 2 + (y[None, :] - s.centre[1]) ** 2
    v = torch.as_tensor(s.perturbation * s.u_in * np.exp(-r2 / d ** 2))
    v[:, 0] = v[:, -1] = 0.0
    return torch.full((nx + 1, ny), float(s.u_in), dtype=torch.float64), v


def faces_from_centres(w, s: CylinderSetup, nx: int, ny: int):
    """A cell-centred velocity ``w (2, nx, ny)`` on the internal grid as MAC face values
    ``(u (nx + 1, ny), v (nx, ny + 1))``: interior faces average their two cells, the inflow
    face is ``u_in``, the outflow face copies the last cell, the walls have ``v = 0`` (before
    the projection). The start of a coarse run from data (``systems.coarse.solve_coarse``)."""
    w = torch.as_tensor(np.asarray(w, dtype=np.float64))
    if tuple(w.shape) != (2, nx, ny) or not bool(torch.isfinite(w).all()):
        raise ConfigError(f"cylinder: initial field of shape {tuple(w.shape)}; expected finite (2, {nx}, {ny}), "
                          f"the cell-centred (u, v) of the internal grid")
    u = torch.cat([torch.full((1, ny), float(s.u_in), dtype=w.dtype), 0.5 * (w[0, 1:] + w[0, :-1]), w[0, -1:]])
    zero = torch.zeros((nx, 1), dtype=w.dtype)
    return u, torch.cat([zero, 0.5 * (w[1, :, 1:] + w[1, :, :-1]), zero], dim=1)


def output_field(u: torch.Tensor, v: torch.Tensor, refine: int, nx_out: int) -> torch.Tensor:
    """Cell-centred velocity block-averaged by ``refine`` and cropped to the first ``nx_out``
    output columns: ``(2, nx_out, ny // refine)``."""
    r = int(refine)
    w = torch.stack([0.5 * (u[:-1] + u[1:]), 0.5 * (v[:, :-1] + v[:, 1:])])
    nxo = int(nx_out)
    w = w[:, : nxo * r]
    return w.reshape(2, nxo, r, w.shape[2] // r, r).mean(dim=(2, 4))


def cylinder_run(u0: torch.Tensor, v0: torch.Tensor, chi_u: torch.Tensor, chi_v: torch.Tensor, h: float, nu: float,
                 u_in: float, dt_out: float, n_out: int, cfl: float, refine: int, nx_out: int, probe,
                 *, show_progress: bool = False):
    """The time loop of :func:`run_cylinder` (the torch implementation of the backend kernel of
    the same name, :mod:`pymsde.backends.protocol`): ``n_out - 1`` output intervals, each of
    ``n_sub`` SSP-RK3 steps (:func:`rk3_step`), ``n_sub`` from the CFL and viscous limits at its start.

    Args:
        u0, v0: ``(nx + 1, ny)`` and ``(nx, ny + 1)`` float64 MAC face velocities, already
            forced and projected (the state of the first frame); not modified.
        chi_u, chi_v: the volume fractions of :func:`volume_fractions` (same shapes).
        h: cell side; nu: viscosity; u_in: inflow velocity; dt_out: output interval (time);
        n_out: frames including the first; cfl: CFL number of the advective limit;
        refine, nx_out: the block average and crop of :func:`output_field`;
        probe: ``(i, j)``: the probe is ``v`` averaged over the y-faces ``(i - 1, j)``, ``(i, j)``.
    Returns:
        ``(frames (n_out, 2, nx_out, ny // refine), forces (n_out - 1, 2), probe_v (n_out,),
        max_div (n_out - 1,), steps)``: float64 tensors (``(Fx, Fy)`` on the body per unit span
        averaged over each interval; max |div u| of the MAC field, 1/time), the internal steps.
    Raises:
        StabilityError: the velocity blew up or became non-finite.
    """
    nx, ny = v0.shape[0], u0.shape[1]
    masks = disc_masks((chi_u, chi_v))
    solver = NeumannPoisson(nx, ny, h)
    ip, jp = (int(k) for k in probe)
    u, v = u0, v0
    first = output_field(u, v, refine, nx_out)
    frames = torch.empty((int(n_out), *first.shape), dtype=torch.float64)
    frames[0] = first
    forces = torch.empty((int(n_out) - 1, 2), dtype=torch.float64)
    max_div = torch.empty(int(n_out) - 1, dtype=torch.float64)
    probe_v, steps = [float(0.5 * (v[ip - 1, jp] + v[ip, jp]))], 0
    for i in progress(range(1, int(n_out)), desc="cylinder_2d", unit="frame", enabled=show_progress):
        speed = float(u.abs().max() + v.abs().max())
        if not math.isfinite(speed) or speed > 20 * u_in:
            raise StabilityError(f"cylinder: the velocity blew up (max |u| + |v| = {speed:.3g}) before "
                                 f"t = {i * dt_out:.4g}; reduce cfl")
        rate = max(speed / (cfl * h), nu / (VISCOUS_LIMIT * h * h))
        n_sub = max(1, math.ceil(dt_out * rate - 1e-9))
        dt = dt_out / n_sub
        fx = fy = 0.0
        for _k in range(n_sub):
            u, v, (f0, f1) = rk3_step(u, v, dt, nu, u_in, h, masks, solver)
            fx, fy = fx + f0 / n_sub, fy + f1 / n_sub
        steps += n_sub
        forces[i - 1, 0], forces[i - 1, 1] = fx, fy
        probe_v.append(float(0.5 * (v[ip - 1, jp] + v[ip, jp])))
        max_div[i - 1] = ((u[1:] - u[:-1] + v[:, 1:] - v[:, :-1]) / h).abs().max()
        frames[i] = output_field(u, v, refine, nx_out)
    if not bool(torch.isfinite(u).all() and torch.isfinite(v).all()):
        raise StabilityError("cylinder: the velocity became non-finite; reduce cfl")
    return frames, forces, torch.tensor(probe_v, dtype=torch.float64), max_div, steps


def run_cylinder(setup: CylinderSetup | None = None, show_progress: bool = True, dtype=np.float64, initial=None,
                 backend="torch", **overrides) -> dict:
    """Simulate the cylinder flow and return the saved velocity and the diagnostics.

    Args:
        setup: a :class:`CylinderSetup` (default: the paper's); ``**overrides`` replace its fields.
        dtype: dtype of the returned field (float64 inside).
        initial: start from this cell-centred velocity ``(2, nx, ny)`` of the internal grid
            (:func:`faces_from_centres`) instead of uniform flow plus the perturbation.
        backend: ``"torch"``, ``"julia"``, ``"auto"`` or a ``Backend`` (``resolve_backend``); a
            non-torch one runs the time loop (:func:`cylinder_run`) in one kernel call, no
            progress bar; the set-up (fractions, the first forcing and projection) stays in torch.
    Returns:
        dict with ``u (n_t, 2, nx_out, ny_out)`` (velocity; x first), ``t (n_t,)``, ``x (nx_out,)``
        and ``y (ny_out,)`` cell centres, ``cd`` and ``cl (n_t - 1,)`` (force coefficients
        averaged over each output interval), ``probe_v (n_t,)`` (v at ``centre + (4 D, 0)`` on
        the internal grid), ``max_div (n_t - 1,)`` (max |div u| of the internal MAC field, 1/time),
        ``steps`` (internal steps), ``setup`` (a dict) and ``backend`` (the one that ran).
    Raises:
        ConfigError: impossible parameters. StabilityError: a non-finite or runaway velocity.
        BackendUnavailableError: ``"julia"`` asked for and Julia cannot start.
    """
    s = (setup or CylinderSetup())
    s = CylinderSetup(**{**asdict(s), **overrides}).check()
    be = resolve_backend(backend)
    n = int(s.cells_per_unit) * int(s.refine)
    h = 1.0 / n
    nx, ny = int(round(s.length * n)), int(round(s.height * n))
    n_t = int(round(s.t_end / s.dt_out)) + 1
    chi = volume_fractions(nx, ny, h, s.centre, s.radius)
    masks = disc_masks(chi)
    solver = NeumannPoisson(nx, ny, h)
    u, v = initial_velocity(s, nx, ny, h) if initial is None else faces_from_centres(initial, s, nx, ny)
    immersed_forcing(u, v, masks)
    project(u, v, solver, h)
    probe = (int(round((s.centre[0] + 4 * s.radius * 2) * n)), int(round(s.centre[1] * n)))
    nxo = int(round(s.out_length * s.cells_per_unit))
    args = (u, v, *chi, h, s.nu, s.u_in, s.dt_out, n_t, s.cfl, int(s.refine), nxo, probe)
    if be.accelerated:
        frames, forces, probe_v, max_div, steps = be.cylinder_run(*args)
    else:
        with compute_threads():
            frames, forces, probe_v, max_div, steps = cylinder_run(*args, show_progress=show_progress)
    if dtype == np.float32:
        frames = frames.to(torch.float32)
    scale = 2.0 / (s.u_in ** 2 * 2 * s.radius)
    nyo = frames.shape[3]
    return {"u": frames.numpy(), "t": np.linspace(0, s.dt_out * (n_t - 1), n_t),
            "x": (np.arange(nxo) + 0.5) / s.cells_per_unit, "y": (np.arange(nyo) + 0.5) / s.cells_per_unit,
            "cd": (scale * forces[:, 0]).numpy(), "cl": (scale * forces[:, 1]).numpy(), "probe_v": probe_v.numpy(),
            "max_div": max_div.numpy(), "steps": int(steps), "backend": be.name,
            "setup": {**asdict(s), "reynolds": s.reynolds, "internal_cells": [nx, ny]}}


def dominant_frequency(signal, dt: float, pad: int = 16) -> float:
    """Frequency (1 / time) of the highest peak of the Hann-windowed, mean-removed, ``pad``-times
    zero-padded spectrum of the uniformly sampled ``signal (n,)``, refined by a parabola
    through the log-magnitudes around the peak."""
    x = np.asarray(signal, dtype=np.float64)
    x = (x - x.mean()) * np.hanning(x.size)
    n = pad * x.size
    mag = np.abs(np.fft.rfft(x, n))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1:k + 2] + 1e-300)
    shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return (k + shift) / (n * dt)


def strouhal(signal, dt: float, diameter: float = 0.125, u_in: float = 1.0) -> float:
    """``St = f D / U`` from the dominant frequency of a lift-like ``signal (n,)`` sampled every ``dt``."""
    return dominant_frequency(signal, dt) * diameter / u_in


def centred_divergence(field, h: float) -> np.ndarray:
    """``u_x + v_y`` by central differences at the interior cells of a cell-centred velocity
    ``field (..., 2, nx, ny)`` with cell size ``h``: ``(..., nx - 2, ny - 2)`` (1 / time)."""
    f = np.asarray(field, dtype=np.float64)
    return ((f[..., 0, 2:, 1:-1] - f[..., 0, :-2, 1:-1]) + (f[..., 1, 1:-1, 2:] - f[..., 1, 1:-1, :-2])) / (2 * h)


__all__ = ["CylinderSetup", "run_cylinder", "cylinder_run", "volume_fractions", "dct2", "idct2", "NeumannPoisson",
           "momentum_rhs", "project", "disc_masks", "immersed_forcing", "rk3_step", "initial_velocity",
           "output_field", "faces_from_centres", "dominant_frequency", "strouhal", "centred_divergence"]
