"""Fourier helpers for periodic axes: wavenumbers, dealiasing, exponential-integrator
coefficients and the exact block-average / interpolation pair between a coarse and a fine
periodic grid.

All functions work on the LAST tensor dimension with real FFTs (``torch.fft.rfft``), in
float64/complex128. Conventions:

- a periodic axis of ``n`` points and length ``L`` has rfft wavenumbers
  ``k_m = 2 pi m / L``, ``m = 0 .. n // 2`` (:func:`wavenumbers`);
- a coarse periodic grid of ``nc`` points stands for blocks of ``s`` consecutive fine points
  (``n = nc s``); coarse point ``i`` sits at the centre of its block, fine index
  ``i s + (s - 1) / 2`` (matching ``pymsde.data.grid``).
"""
from __future__ import annotations

import math

import torch

from pymsde.util.errors import ConfigError


def wavenumbers(n: int, length: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """rfft angular wavenumbers ``2 pi m / length``, ``m = 0 .. n // 2``; shape ``(n // 2 + 1,)``."""
    return 2.0 * math.pi / length * torch.arange(n // 2 + 1, dtype=dtype)


def dealias_mask(n: int, rule: str = "2/3") -> torch.Tensor:
    """Boolean mask ``(n // 2 + 1,)`` of the rfft modes kept.

    ``"2/3"``: Orszag's rule, keep ``3 m < n`` (quadratic products of kept modes alias only
    into removed modes; ``m = n / 3`` itself must go when 3 divides n). ``"3/2"`` (products
    computed on a 3/2-padded grid, see :func:`padded_square`) and ``"none"`` keep every mode except the Nyquist mode of even ``n``
    (it has no consistent real odd derivative).
    """
    m = torch.arange(n // 2 + 1)
    if rule == "2/3":
        return 3 * m < n
    if rule in ("3/2", "none"):
        keep = torch.ones(n // 2 + 1, dtype=torch.bool)
        if n % 2 == 0:
            keep[-1] = False
        return keep
    raise ConfigError(f"dealiasing rule {rule!r}; expected '2/3', '3/2' or 'none'")


def padded_square(v_hat: torch.Tensor, n: int) -> torch.Tensor:
    """rfft of ``u**2`` without aliasing, for ``u = irfft(v_hat, n)``.

    The product is formed on ``m = 3n/2`` (rounded up to even) points, where no mode of the
    square of an ``n``-point field aliases onto a mode ``< n/2``, and truncated back to
    ``n // 2 + 1`` modes. Args: ``v_hat (..., n // 2 + 1)`` complex. Returns the same shape.
    """
    m = 3 * n // 2 + (3 * n // 2) % 2
    u = torch.fft.irfft(v_hat, n=m) * (m / n)
    return torch.fft.rfft(u * u)[..., : n // 2 + 1] * (n / m)


def etd_coefficients(lin: torch.Tensor, dt: float, n_contour: int = 64) -> tuple[torch.Tensor, ...]:
    """Coefficients of the ETDRK4 scheme (Cox & Matthews 2002) for ``v' = lin * v + N(v)``.

    The phi-functions are evaluated by the contour-integral average of Kassam & Trefethen
    (2005), which removes the cancellation error of the direct formulas for ``|lin dt| << 1``:
    ``phi(z) ~ mean_j phi(z + exp(2 i pi (j - 1/2) / n_contour))`` (trapezoidal rule on the unit
    circle around z, exponentially accurate).

    Args:
        lin: diagonal linear operator per mode (complex or real), any shape.
        dt: time step.
    Returns:
        ``(E, E2, Q, f1, f2, f3)``, complex128 tensors of ``lin``'s shape:
        ``E = exp(lin dt)``, ``E2 = exp(lin dt / 2)``, ``Q = dt phi_1(lin dt / 2) / 2``-type
        weights as in Kassam & Trefethen's ``kdv.m`` / ``kursiv.m``.
    """
    z = (lin.to(torch.complex128) * dt)[..., None]
    # Points on the full unit circle: Kassam & Trefethen's half circle plus taking the real
    # part is valid only for real lin; KdV's lin is imaginary.
    r = torch.exp(2j * math.pi * (torch.arange(1, n_contour + 1, dtype=torch.float64) - 0.5) / n_contour)
    lr = z + r
    e_lr = torch.exp(lr)
    q = dt * ((torch.exp(lr / 2) - 1) / lr).mean(-1)
    f1 = dt * ((-4 - lr + e_lr * (4 - 3 * lr + lr ** 2)) / lr ** 3).mean(-1)
    f2 = dt * ((2 + lr + e_lr * (-2 + lr)) / lr ** 3).mean(-1)
    f3 = dt * ((-4 - 3 * lr - lr ** 2 + e_lr * (4 - lr)) / lr ** 3).mean(-1)
    zz = z[..., 0]
    return torch.exp(zz), torch.exp(zz / 2), q, f1, f2, f3


def block_average_symbol(n_coarse: int, s: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Factor by which averaging over blocks of ``s`` fine points scales rfft mode ``m``.

    ``sigma_m = sin(pi m / n_coarse) / (s sin(pi m / (s n_coarse)))`` for ``m = 0 .. n_coarse // 2``
    (``sigma_0 = 1``). Positive for every coarse mode (``m <= n_coarse / 2`` gives ``pi m /
    n_coarse <= pi / 2``), so the block average is invertible on the coarse band.
    """
    m = torch.arange(n_coarse // 2 + 1, dtype=dtype)
    n = n_coarse * s
    sig = torch.ones_like(m)
    nz = m > 0
    sig[nz] = torch.sin(math.pi * m[nz] / n_coarse) / (s * torch.sin(math.pi * m[nz] / n))
    return sig


def fourier_interpolate(v: torch.Tensor, s: int, deconvolve: bool = False) -> torch.Tensor:
    """Trigonometric interpolation from ``nc`` coarse points (block centres) to ``nc s`` fine points.

    Args:
        v: ``(..., nc)`` real; the values at the block centres (fine index ``i s + (s-1)/2``),
            or, with ``deconvolve=True``, the block AVERAGES of the field.
        s: integer refinement factor.
        deconvolve: divide mode ``m`` by :func:`block_average_symbol` first, so that the
            returned fine field has block averages exactly ``v`` (to round-off).
    Returns:
        ``(..., nc s)`` real: the band-limited (modes ``|m| <= nc/2``) field on the fine grid.
        The Nyquist mode of even ``nc`` is represented by the cosine through the block centres.
    """
    nc = v.shape[-1]
    n = nc * s
    v_hat = torch.fft.rfft(v)
    m = torch.arange(nc // 2 + 1, dtype=torch.float64)
    if deconvolve:
        v_hat = v_hat / block_average_symbol(nc, s)
    # Shift from block centres (offset (s-1)/2 fine points) to the fine points.
    v_hat = v_hat * torch.exp(-2j * math.pi * m * ((s - 1) / 2) / n)
    if nc % 2 == 0 and s > 1:
        # The coarse rfft counts its Nyquist bin once; on the fine grid it is an ordinary mode
        # whose conjugate partner irfft adds implicitly, so halve it.
        v_hat[..., -1] = v_hat[..., -1] / 2
    full = torch.zeros(*v_hat.shape[:-1], n // 2 + 1, dtype=v_hat.dtype)
    full[..., : nc // 2 + 1] = v_hat
    return torch.fft.irfft(full, n=n) * s


__all__ = ["wavenumbers", "dealias_mask", "padded_square", "etd_coefficients", "block_average_symbol",
           "fourier_interpolate"]
