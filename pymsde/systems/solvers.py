"""Time loops of the fine-grid simulators: choose the internal step, check it against the
scheme's stability limit, step with the kernels of ``pymsde.numerics.pde`` and save every
output time. numpy float64 in, numpy float64 out, torch inside.

Stability limits (the internal step ``dt`` must satisfy them; a larger user-given ``dt``
raises :class:`~pymsde.util.errors.StabilityError` naming the limit):

- Burgers, central differences of order p + RK4 (:func:`burgers_dt_limit`): the linearised
  eigenvalues lie within ``|Im| <= umax sum_a S1 / dx_a`` and ``-nu sum_a S2 / dx_a^2 <= Re <= 0``
  (``S1, S2`` the symbol bounds of the stencils, 1.372 and 16/3 for p = 4); the step must
  satisfy ``dt (umax sum S1/dx / 2.8284 + nu sum S2/dx^2 / 2.78) <= 1``, a straight line
  between the RK4 region's imaginary-axis (2.8284, just inside 2 sqrt 2) and real-axis (2.78) reaches, which lies
  inside the region. ``umax = max|u0|`` by the maximum principle of viscous Burgers.
- Pseudo-spectral + ETDRK4 (KdV, and 1-D periodic Burgers; :func:`kdv_dt_limit`): the linear
  term (dispersion ``i d k^3`` or viscosity ``-nu k^2``) is integrated exactly; the advection
  needs ``dt umax k_max <= 2.8284`` with ``k_max`` the largest kept wavenumber; ``umax = max|u0|``
  for Burgers, ``2 max|u0|`` for KdV (solitons emerging from an initial bump are at most
  about twice its height).

Automatic steps use ``safety`` (default 0.8) times the limit and divide each output interval
into an integer number of equal substeps.

Linear advection ``u_t + c u_x = 0`` on a periodic axis (wave1d) needs no time loop: the
solution is the initial field translated by ``c t``, written in closed form
(:func:`gaussian_pulse_advection` for the case's pulse, :func:`advect_fourier` for a given
initial field).
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import os
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from pymsde.numerics import pde
from pymsde.numerics import spectral
from pymsde.backends.protocol import resolve_backend
from pymsde.numerics.stencils import symbol_bounds
from pymsde.util.errors import ConfigError, StabilityError
from pymsde.util.progress import progress

RK4_IMAG = 2.8284   # RK4 stability region reaches i 2 sqrt(2) = i 2.828427 on the imaginary axis
RK4_REAL = 2.78     # and -2.7853 on the real axis
MAX_SUBSTEPS = 10 ** 7  # internal steps per output interval beyond which a run is refused


def burgers_dt_limit(umax: float, dx: Sequence[float], nu: float, order: int = 4) -> float:
    """Largest stable RK4 step of the central-difference Burgers scheme (see module docstring)."""
    s1, s2 = symbol_bounds(order)
    rate = umax * sum(s1 / h for h in dx) / RK4_IMAG + nu * sum(s2 / h ** 2 for h in dx) / RK4_REAL
    return math.inf if rate == 0 else 1.0 / rate


def kdv_dt_limit(umax: float, k_max: float) -> float:
    """Largest stable ETDRK4 step of pseudo-spectral KdV for advection speed ``umax``."""
    return math.inf if umax * k_max == 0 else RK4_IMAG / (umax * k_max)


def _substeps(dt_out: float, dt: float | None, limit: float, safety: float, what: str) -> tuple[int, float]:
    """Number of equal substeps per output interval and the internal step."""
    if dt is not None:
        if not dt > 0:
            raise ConfigError(f"{what}: internal time step dt = {dt!r}; expected a positive number")
        if dt > limit:
            raise StabilityError(f"{what}: internal time step dt = {dt:.4g} exceeds the stability limit "
                                 f"{limit:.4g} of the scheme; choose dt <= {limit:.4g} (or leave dt unset)")
        target = dt
    else:
        target = safety * limit
    n_sub = max(1, math.ceil(dt_out / target - 1e-9))
    if n_sub > MAX_SUBSTEPS:   # a run that would never end: say why instead of hanging
        raise StabilityError(f"{what}: a stable internal step ({target:.3g}) needs {n_sub:.3g} substeps per output "
                             f"interval {dt_out:.3g} (more than {MAX_SUBSTEPS:g}); the initial condition is "
                             f"probably far larger than intended (the limit scales with 1 / max|u0|)")
    return n_sub, dt_out / n_sub


def _check_times(t_out: np.ndarray, what: str) -> float:
    """The output step of uniformly spaced times: the data layer's one check
    (:func:`pymsde.data.grid.uniform_step`, relative tolerance ``DT_RTOL``), so times
    the data layer accepts (e.g. float32 ones) are accepted here too."""
    from pymsde.data.grid import uniform_step

    t_out = np.asarray(t_out, dtype=np.float64)
    if t_out.ndim != 1 or t_out.size < 2:
        raise ConfigError(f"{what}: output times of shape {t_out.shape}; expected at least 2 times (n_t,)")
    return float(uniform_step(t_out, f"{what}: output times", error=ConfigError))


def loop_threads() -> int:
    """torch threads used inside the simulators' time loops: ``PYMSDE_SIM_THREADS`` if set,
    else 1.

    Why one: the loops run thousands of short element-wise ops, for which OpenMP's fork/join
    and MKL's threaded FFT cost more than they give on a shared small machine
    (docs/simulators.md, "Threads and memory in the time loops", has the measurements).
    """
    value = os.environ.get("PYMSDE_SIM_THREADS", "")
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        raise ConfigError(f"PYMSDE_SIM_THREADS={value!r}; expected a positive integer") from None


#: (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) inside a time loop
_MALLOC_LOOP = ((-3, 64 << 20), (-1, 512 << 20))
#: ... and after it. Setting either one switches glibc's dynamic threshold off for good, so the
#: documented start values (128 KiB) would stay fixed: every later allocation above 128 KiB
#: would be a fresh mmap, page-faulted in again (the demo's training ran 2.3 times slower
#: after its simulation, most of it system time). These are the values the dynamic rule
#: itself grows to on 64-bit: the mmap threshold's maximum, 32 MiB, and twice that for trim.
_MALLOC_AFTER = ((-3, 32 << 20), (-1, 64 << 20))


def _mallopt(settings) -> bool:
    """Set glibc malloc parameters; False off glibc or when ``PYMSDE_NO_MALLOC_TUNING`` is set."""
    if os.environ.get("PYMSDE_NO_MALLOC_TUNING"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        for param, value in settings:
            libc.mallopt(param, value)
        return True
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def _malloc_for_reuse() -> Iterator[None]:
    """glibc malloc keeps freed memory for reuse inside a time loop, and only there.

    Every stage of a time step allocates fresh temporaries of the field's size (5 MB for
    Burgers 2-D); with glibc's defaults these go back to the OS on free and are page-faulted
    in again on the next allocation. Raising ``M_MMAP_THRESHOLD`` (64 MiB) and
    ``M_TRIM_THRESHOLD`` (512 MiB) for the loop avoids that (docs/simulators.md, "Threads and
    memory in the time loops"); afterwards they are set to what glibc's dynamic rule reaches
    (:data:`_MALLOC_AFTER`) and ``malloc_trim`` returns the memory.
    """
    tuned = _mallopt(_MALLOC_LOOP)
    try:
        yield
    finally:
        if tuned:
            _mallopt(_MALLOC_AFTER)
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass


@contextlib.contextmanager
def compute_threads(n_values: int | None = None) -> Iterator[None]:
    """Context of a time loop: :func:`loop_threads` torch threads and glibc malloc tuned for
    reuse of temporaries (:func:`_malloc_for_reuse`), both restored after. ``n_values`` is
    unused (kept for callers that pass the field size)."""
    before = torch.get_num_threads()
    want = loop_threads()
    if want != before:
        torch.set_num_threads(want)
    try:
        with _malloc_for_reuse():
            yield
    finally:
        if want != before:
            torch.set_num_threads(before)


def _check_finite(out: torch.Tensor, what: str, dt: float) -> None:
    # One check after the loop (no host sync inside it): a blow-up is reported, never returned.
    if not bool(torch.isfinite(out).all()):
        raise StabilityError(f"{what}: the solution became non-finite with internal step dt = {dt:.4g}; "
                             f"reduce dt")


def march(step: Callable[[torch.Tensor], torch.Tensor], state: torch.Tensor, n_sub: int, n_out: int,
          observe: Callable[[torch.Tensor], torch.Tensor] | None = None, *, show_progress: bool = False,
          desc: str = "run") -> torch.Tensor:
    """The time loop of every whole-run kernel: ``n_out - 1`` output intervals of ``n_sub`` steps.

    Args:
        step: one internal time step, ``state -> state``.
        state: the initial state, batch first.
        observe: what is stored of a state (default: the state itself), e.g. ``irfft``.
    Returns:
        ``(B, n_out, ...)``: ``[:, 0] = observe(state)``, ``[:, i]`` after ``i * n_sub`` steps.
    """
    obs = observe if observe is not None else (lambda s: s)
    first = obs(state)
    out = first.new_empty((first.shape[0], int(n_out), *first.shape[1:]))
    out[:, 0] = first
    for i in progress(range(1, int(n_out)), desc=desc, unit="step", enabled=show_progress):
        for _ in range(int(n_sub)):
            state = step(state)
        out[:, i] = obs(state)
    return out


def burgers_fd_run(u0: torch.Tensor, dt: float, n_sub: int, n_out: int, dx: Sequence[float], nu: float,
                   boundary: Sequence[str], order: int = 4, *, show_progress: bool = False) -> torch.Tensor:
    """A whole finite-difference Burgers run: ``n_out - 1`` output intervals of ``n_sub`` RK4 steps.

    The torch implementation of the backend kernel of the same name
    (:mod:`pymsde.backends.protocol`).

    Args:
        u0: ``(B, C, *grid)`` float64 initial fields.
        dt: internal RK4 step; n_sub: steps per output interval; n_out: outputs incl. ``u0``.
        dx, nu, boundary, order: as :func:`pymsde.numerics.pde.burgers_rhs`.
    Returns:
        ``(B, n_out, C, *grid)`` with ``[:, 0] = u0`` and ``[:, i]`` after ``i * n_sub`` steps.
    """
    return march(lambda u: pde.burgers_rk4_step(u, dt, dx, nu, boundary, order), u0, n_sub, n_out,
                 show_progress=show_progress, desc="burgers")


def spectral_run(v0_hat: torch.Tensor, coeffs, k: torch.Tensor, mask: torch.Tensor, n: int, dealias: str,
                 n_sub: int, n_out: int, *, show_progress: bool = False, desc: str = "spectral") -> torch.Tensor:
    """A whole pseudo-spectral ETDRK4 run for ``u_t + (u^2/2)_x = L u`` on one periodic axis.

    The torch implementation of the backend kernel of the same name
    (:mod:`pymsde.backends.protocol`).

    Args:
        v0_hat: ``(B, C, n // 2 + 1)`` complex128 initial rfft coefficients.
        coeffs: ``numerics.spectral.etd_coefficients(L, dt)``; k, mask, n, dealias: as
            :func:`pymsde.numerics.pde.advection_etdrk4_step`.
        n_sub: steps per output interval; n_out: outputs including the initial state.
    Returns:
        ``(B, n_out, C, n)`` float64 fields ``irfft(v)`` at the outputs.
    """
    return march(lambda v: pde.advection_etdrk4_step(v, coeffs, k, mask, n, dealias), v0_hat, n_sub, n_out,
                 observe=lambda v: torch.fft.irfft(v, n=n), show_progress=show_progress, desc=desc)


BURGERS_SCHEMES = ("auto", "spectral", "fd")


def integrate_burgers(u0: np.ndarray, t_out: np.ndarray, dx: Sequence[float], nu: float,
                      boundary: Sequence[str], dt: float | None = None, order: int = 4,
                      safety: float = 0.8, show_progress: bool = True, scheme: str = "auto",
                      dealias: str = "2/3", backend: str = "torch") -> tuple[np.ndarray, dict]:
    """Solve ``u_t + u sum_a u_{x_a} = nu lap u`` from ``u0`` and save at ``t_out``.

    Args:
        u0: ``(B, C, *grid)`` initial fields (float64).
        t_out: ``(n_t,)`` uniform output times, ``t_out[0]`` the time of ``u0``.
        dx: grid spacing per axis; nu: viscosity; boundary: per axis.
        dt: internal step (None: automatic, ``safety`` x the stability limit).
        order: central-difference accuracy order (2, 4, 6) of the ``"fd"`` scheme.
        scheme: ``"fd"`` (central differences + RK4, any dimension and boundary types),
            ``"spectral"`` (1-D periodic only: Fourier pseudo-spectral, conservative advection
            ``(u^2/2)_x`` dealiased by ``dealias``, ETDRK4 with the viscous term integrated
            exactly; spectrally accurate and ~5x fewer operations per output step), or
            ``"auto"``: spectral for a single periodic axis, fd otherwise.
        backend: ``"torch"``, ``"julia"`` or ``"auto"`` (``kernels.backend.resolve_backend``);
            a non-torch backend runs the whole time loop in one kernel call (no progress bar).
    Returns:
        ``(u, info)``: ``u (B, n_t, C, *grid)`` float64 with ``u[:, 0] = u0``; ``info`` holds the scheme, internal step, substeps per output
        interval and the stability limit.
    """
    if scheme not in BURGERS_SCHEMES:
        raise ConfigError(f"burgers: scheme {scheme!r}; expected one of {BURGERS_SCHEMES}")
    one_periodic = tuple(boundary) == ("periodic",)
    if scheme == "auto":
        scheme = "spectral" if one_periodic else "fd"
    if scheme == "spectral":
        if not one_periodic:
            raise ConfigError(f"burgers: scheme 'spectral' needs one periodic axis; found boundary {tuple(boundary)}")
        n = np.shape(u0)[-1]
        k = spectral.wavenumbers(n, dx[0] * n)
        return _integrate_spectral(u0, t_out, pde.burgers_linear_symbol(k, nu), k, 1.0, dt, dealias, safety,
                                   show_progress, "burgers", backend)
    dt_out = _check_times(t_out, "burgers")
    u = torch.as_tensor(np.asarray(u0, dtype=np.float64))
    umax = float(u.abs().max())
    limit = burgers_dt_limit(umax, dx, nu, order)
    n_sub, h = _substeps(dt_out, dt, limit, safety, "burgers")
    n_t = len(t_out)
    dx, boundary = tuple(float(v) for v in dx), tuple(boundary)
    be = resolve_backend(backend)
    if be.accelerated:
        out = be.burgers_fd_run(u, h, n_sub, n_t, dx, nu, boundary, order)
    else:
        with compute_threads(u.numel()):
            out = burgers_fd_run(u, h, n_sub, n_t, dx, nu, boundary, order, show_progress=show_progress)
    _check_finite(out[:, -1], "burgers", h)
    return out.numpy(), {"dt_internal": h, "substeps": n_sub, "dt_limit": limit, "backend": be.name, "scheme":
                         f"central differences order {order}, skew-symmetric advection, RK4"}


def _integrate_spectral(u0: np.ndarray, t_out: np.ndarray, lin: torch.Tensor, k: torch.Tensor,
                        umax_factor: float, dt: float | None, dealias: str, safety: float,
                        show_progress: bool, what: str, backend: str = "torch") -> tuple[np.ndarray, dict]:
    """ETDRK4 pseudo-spectral loop for ``u_t + (u^2/2)_x = L u`` on one periodic axis."""
    dt_out = _check_times(t_out, what)
    u = torch.as_tensor(np.asarray(u0, dtype=np.float64))
    n = u.shape[-1]
    mask = spectral.dealias_mask(n, dealias)
    k_max = float(k[mask].max())
    limit = kdv_dt_limit(umax_factor * float(u.abs().max()), k_max)
    n_sub, h = _substeps(dt_out, dt, limit, safety, what)
    coeffs = spectral.etd_coefficients(lin, h)
    # The state keeps every mode of u0 (the first saved frame is u0 itself); only the
    # nonlinear term is dealiased. Modes outside the mask then evolve by the exact linear
    # propagator alone -- this matters for the KdV recipe, whose initial condition has a
    # jump of ~4e-3 at the periodic seam (x = 0 vs 10) that a projection would smear.
    v = torch.fft.rfft(u)
    n_t = len(t_out)
    be = resolve_backend(backend)
    if be.accelerated:
        out = be.spectral_run(v, coeffs, k, mask, n, dealias, n_sub, n_t)
    else:
        with compute_threads(u.numel()):
            out = spectral_run(v, coeffs, k, mask, n, dealias, n_sub, n_t, show_progress=show_progress, desc=what)
    out[:, 0] = u                     # u0 itself, not irfft(rfft(u0))
    _check_finite(out[:, -1], what, h)
    return out.numpy(), {"dt_internal": h, "substeps": n_sub, "dt_limit": limit, "backend": be.name,
                         "scheme": f"Fourier pseudo-spectral ({dealias} dealiasing), ETDRK4"}


def periodic_offset(x: np.ndarray, centre, length: float) -> np.ndarray:
    """Signed nearest-image offset ``x - centre`` on a period ``length``, in ``[-length/2, length/2]``.

    Args:
        x, centre: positions (broadcast together), in the units of ``length``.
    Returns:
        array of the broadcast shape: ``length * (s - round(s))`` with ``s = (x - centre) / length``,
        so the wrap is exact however many periods ``centre`` has travelled.
    """
    s = (np.asarray(x, dtype=np.float64) - np.asarray(centre, dtype=np.float64)) / length
    return length * (s - np.round(s))


def gaussian_pulse_advection(x: np.ndarray, t: np.ndarray, width, centre: float = 0.0, speed: float = 1.0,
                             length: float = 1.0) -> np.ndarray:
    """Exact solution of periodic ``u_t + c u_x = 0`` from the pulse ``u0 = exp(-(d(x, x0)/w)^2)``.

    ``u(x, t) = exp(-(d(x, x0 + c t) / w)^2)`` with ``d`` the periodic nearest-image distance
    (:func:`periodic_offset`), the paper's wave_1d field (FINAL_PAPER.md section 3.1). The
    initial field is periodic (its kink at ``x0 + L/2`` is ``exp(-(L/2w)^2)``, below 1e-270
    for ``w <= 0.02, L = 1``), so the translated field is the exact solution.

    Args:
        x: ``(n,)`` grid coordinates (length units); t: ``(n_t,)`` times.
        width: ``(B,)`` pulse widths ``w`` (length units); centre: ``x0`` at ``t = 0``;
        speed: ``c`` (length / time); length: the period ``L``.
    Returns:
        ``(B, n_t, 1, n)`` float64.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    width = np.atleast_1d(np.asarray(width, dtype=np.float64))
    offset = periodic_offset(x[None, :], centre + speed * t[:, None], length)      # (n_t, n), shared
    out = np.empty((width.size, t.size, 1, x.size))
    for i, w in enumerate(width):                      # one trajectory at a time: no (B, n_t, n) temporaries
        np.exp(-(offset / w) ** 2, out=out[i, :, 0])
    return out


def advect_fourier(u0: np.ndarray, t: np.ndarray, speed: float, length: float) -> np.ndarray:
    """Exact translation of a periodic field by ``speed * t``: ``u_t + c u_x = 0`` for its
    trigonometric interpolant (mode ``k`` times ``exp(-i k c t)``).

    A shift by a whole number of grid spacings is the exact cyclic roll of the values (to
    round-off); other shifts are exact for fields of modes ``|m| < n/2``; the Nyquist mode of
    an even ``n`` keeps the real part of its shifted coefficient.

    Args:
        u0: ``(B, C, n)`` values on ``n`` equispaced points of a period ``length``.
        t: ``(n_t,)`` times (``t[0]`` need not be 0; the shift is ``speed * t``).
        speed: ``c`` (length / time).
    Returns:
        ``(B, n_t, C, n)`` float64; frames at ``t == 0`` are ``u0`` itself.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    n = u0.shape[-1]
    k = 2 * np.pi * np.fft.rfftfreq(n, d=length / n)
    u_hat = np.fft.rfft(u0)
    out = np.empty((u0.shape[0], len(t), *u0.shape[1:]))
    for j, tj in enumerate(np.asarray(t, dtype=np.float64)):
        out[:, j] = u0 if tj == 0 else np.fft.irfft(u_hat * np.exp(-1j * k * speed * tj), n=n)
    return out


def integrate_kdv(u0: np.ndarray, t_out: np.ndarray, length: float, d: float, dt: float | None = None,
                  dealias: str = "2/3", safety: float = 0.8, show_progress: bool = True,
                  backend: str = "torch") -> tuple[np.ndarray, dict]:
    """Solve periodic ``u_t + u u_x + d u_xxx = 0`` (pseudo-spectral, ETDRK4) and save at ``t_out``.

    Args:
        u0: ``(B, C, n)`` initial fields on ``n`` equispaced points of a period ``length``.
        t_out: ``(n_t,)`` uniform output times.
        d: dispersion coefficient (length^3 / time).
        dt: internal step (None: automatic). dealias: ``"2/3"`` or ``"3/2"``.
        backend: as in :func:`integrate_burgers`.
    Returns:
        ``(u (B, n_t, C, n) float64, info)``; ``u[:, 0] = u0``.
    """
    n = np.shape(u0)[-1]
    k = spectral.wavenumbers(n, length)
    return _integrate_spectral(u0, t_out, pde.kdv_linear_symbol(k, d), k, 2.0, dt, dealias, safety,
                               show_progress, "kdv", backend)


__all__ = ["compute_threads", "loop_threads", "burgers_dt_limit", "kdv_dt_limit", "integrate_burgers", "integrate_kdv",
           "burgers_fd_run", "spectral_run", "BURGERS_SCHEMES", "periodic_offset", "gaussian_pulse_advection",
           "advect_fourier"]
