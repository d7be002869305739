"""The learnable coarse-graining kernel ``K`` shared by the encoder and the decoder.

Geometry (per axis, ``s`` fine points per coarse cell, ``P`` extra taps on each side):
the kernel has ``s + 2P`` taps; coarse cell ``j`` (fine points ``j s .. j s + s - 1``,
centre ``j s + (s-1)/2``) reads fine points ``j s - P .. j s + s - 1 + P``, so every kernel
is centred on its block (for even ``s`` the centre falls between two fine points and the
tap count is even). ``P = floor(n_sigma std - (s - 1)/2)`` so that the half-width measured
from the block centre is ``n_sigma std`` (``std = s`` by default): for ``s = 50``,
``n_sigma = 3``: 300 taps; for ``s = 16``: 96 taps.

In 2-D the kernel is separable, ``K(x, y) = K_0(x) K_1(y)``, each factor learnable (one
per channel and axis). This keeps the stride-1 smoothing at ``2 (s + 2P)`` multiply-adds per
point instead of ``(s + 2P)^2`` (on 128x128 with s = 16: 194 vs 9409), at the price of
a rank-one kernel.

Operations on fields ``(B, C, *grid)`` (channels are independent: depthwise):

- :meth:`coarse` -- ``mM = K * u + b``: stride ``s``, one value per coarse cell.
- :meth:`smooth` -- ``K_smooth * u``: the same kernel at stride 1, centred on each fine
  point, no bias. For even ``s`` the kernel's centre falls between fine points, so
  ``K_smooth`` is ``K`` convolved with ``[1/2, 1/2]`` per such axis (``s + 2P + 1`` taps,
  centred; for a Gaussian of std ``s`` this widens the variance by 1/4 cell^2).
- :meth:`transpose` -- ``xM = prod(s) K^T * (zM - b)``: the transposed convolution at
  stride ``s``. The factor ``prod(s)`` makes it reproduce constants: the stride-``s``
  shifts of a unit-sum kernel sum to ``1/s`` per axis at every fine point.

Padding: periodic axes wrap; Dirichlet axes repeat the edge value, on the fine grid for
:meth:`coarse` / :meth:`smooth` and on the coarse grid for :meth:`transpose` (so a constant
coarse field decodes to that constant up to the boundary). The bias ``b`` is a latent
offset: it is added by :meth:`coarse`, subtracted by :meth:`transpose`, and absent from
:meth:`smooth`.

Initialisation: a Gaussian of standard deviation ``std`` fine cells, normalised per phase
(the taps that meet fine points ``≡ r (mod s)`` sum to ``1/s`` for every ``r``), so at
initialisation ``coarse`` of a constant and ``transpose`` of a constant are exact (the
plain unit-sum normalisation misses this by the truncated tails: 1.9e-3 relative for
``s = 50``, 1.6e-3 for ``s = 16``).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pymsde.numerics.padding import pad_axis

#: Axes of at most this many fine points smooth by a dense GEMM (the kernel spans most of the
#: axis, so the dense map costs little more than the direct convolution and runs at GEMM
#: speed); longer axes use the FFT.
DENSE_SMOOTH_MAX = 256



def kernel_geometry(s: int, std: float, n_sigma: float) -> tuple[int, int]:
    """``(P, taps)`` for a factor ``s``: ``P`` extra taps each side, ``taps = s + 2P``."""
    pad = max(0, int(math.floor(n_sigma * std - (s - 1) / 2 + 1e-9)))
    return pad, s + 2 * pad


def gaussian_taps(s: int, std: float, n_sigma: float, dtype=None) -> torch.Tensor:
    """The initial 1-D kernel: a Gaussian centred on the block, normalised per phase."""
    pad, taps = kernel_geometry(s, std, n_sigma)
    a = torch.arange(taps, dtype=torch.float64) - pad          # offset from the block start
    w = torch.exp(-0.5 * ((a - (s - 1) / 2) / std) ** 2)
    phase = (a.long() % s)
    sums = torch.zeros(s, dtype=torch.float64).index_add_(0, phase, w)
    w = w / (s * sums[phase])
    return w.to(dtype or torch.get_default_dtype())


class CoarseGrainingKernel(nn.Module):
    """Learnable separable coarse-graining kernel with a per-channel bias.

    Args:
        fine_shape: fine points per axis (1 or 2 axes).
        channels: ``C``; each channel has its own kernel factors and bias.
        factors: ``s`` per axis (fine points per coarse cell).
        boundary: the boundary kind per axis: a periodic axis wraps, any other repeats its edge.
        n_sigma: half-width in standard deviations.
        std: initial standard deviation per axis in fine cells (default ``s``).

    Parameters: ``weights[a]`` of shape ``(C, s_a + 2 P_a)``, ``bias`` of shape ``(C,)``.

    Implementation (cost): the strided maps :meth:`coarse` and :meth:`transpose` are dense
    per-axis matrices ``(C, n_coarse, n_fine)`` assembled from the taps on every call (one
    ``index_add`` of ``n_coarse * taps`` numbers, boundary rule included) and applied as one
    GEMM per axis: ``B n_fine n_coarse`` multiply-adds (Burgers 1-D: 2.6 M for 128 frames,
    3.3 times the direct strided convolution's ``B n_coarse taps``, but one GEMM instead of
    a depthwise convolution, which runs far below GEMM speed on CPU). :meth:`smooth` along an axis of
    at most ``DENSE_SMOOTH_MAX`` points is a dense ``(C, n, n)`` GEMM likewise (128 points with
    97 taps: 1.3 times the direct convolution); longer axes multiply by the kernel's spectrum
    (rFFT of the field padded by the half-width on Dirichlet axes, unpadded on periodic
    ones): ``O(B n log n)`` instead of ``B n taps`` (1000 points, 301 taps).
    """

    def __init__(self, fine_shape: Sequence[int], channels: int, factors: Sequence[int],
                 boundary: Sequence[str], n_sigma: float = 3.0, std: Sequence[float] | None = None):
        super().__init__()
        self.fine_shape = tuple(int(n) for n in fine_shape)
        self.coarse_shape = tuple(n // s for n, s in zip(self.fine_shape, factors))
        self.factors = tuple(int(s) for s in factors)
        self.periodic = tuple(b == "periodic" for b in boundary)
        self.channels = int(channels)
        self.ndim = len(self.fine_shape)
        std = tuple(float(x) for x in std) if std else tuple(float(s) for s in self.factors)
        self.pads = tuple(kernel_geometry(s, sd, n_sigma)[0] for s, sd in zip(self.factors, std))
        self.weights = nn.ParameterList(
            nn.Parameter(gaussian_taps(s, sd, n_sigma).repeat(self.channels, 1))
            for s, sd in zip(self.factors, std))
        self.bias = nn.Parameter(torch.zeros(self.channels))
        # coarse cells of padding the transposed convolution needs on each side
        self.coarse_pads = tuple(-(-p // s) + 1 for p, s in zip(self.pads, self.factors))
        for a in range(self.ndim):
            tap, lin = self._coarse_index(a)
            self.register_buffer(f"_coarse_tap{a}", tap, persistent=False)
            self.register_buffer(f"_coarse_lin{a}", lin, persistent=False)
            tap, lin = self._transpose_index(a)
            self.register_buffer(f"_trans_tap{a}", tap, persistent=False)
            self.register_buffer(f"_trans_lin{a}", lin, persistent=False)
            self.register_buffer(f"_smooth_pos{a}", self._smooth_index(a), persistent=False)
            if self.fine_shape[a] <= DENSE_SMOOTH_MAX:
                tap, lin = self._smooth_dense_index(a)
                self.register_buffer(f"_smooth_tap{a}", tap, persistent=False)
                self.register_buffer(f"_smooth_lin{a}", lin, persistent=False)

    # -- index bookkeeping (built once) -------------------------------------------------------------
    def _coarse_index(self, a: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Tap and flat (cell, fine point) index of every entry of the coarse map along ``a``:
        cell ``j`` reads fine point ``pad(j s + m - P)`` with weight ``K[m]``."""
        s, p, n, nc = self.factors[a], self.pads[a], self.fine_shape[a], self.coarse_shape[a]
        taps = s + 2 * p
        j = torch.arange(nc).repeat_interleave(taps)
        m = torch.arange(taps).repeat(nc)
        i = j * s + m - p
        i = i.remainder(n) if self.periodic[a] else i.clamp(0, n - 1)
        return m, j * n + i

    def _transpose_index(self, a: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Same for the transposed map: fine point ``i = j s + m - P`` receives ``s K[m]
        zM[pad_coarse(j)]`` for the cells ``j`` of the coarse grid padded by ``coarse_pads``."""
        s, p, n, nc, pc = self.factors[a], self.pads[a], self.fine_shape[a], self.coarse_shape[a], self.coarse_pads[a]
        taps = s + 2 * p
        j = torch.arange(-pc, nc + pc).repeat_interleave(taps)
        m = torch.arange(taps).repeat(nc + 2 * pc)
        i = j * s + m - p
        keep = (i >= 0) & (i < n)
        j, m, i = j[keep], m[keep], i[keep]
        j = j.remainder(nc) if self.periodic[a] else j.clamp(0, nc - 1)
        return m, i * nc + j

    def _smooth_index(self, a: int) -> torch.Tensor:
        """Position of each stride-1 tap in the FFT-length kernel vector along ``a``."""
        n = self.fine_shape[a]
        taps = self.pads[a] * 2 + self.factors[a] + (1 if self.factors[a] % 2 == 0 else 0)
        h = (taps - 1) // 2
        pos = torch.arange(taps)
        # periodic: circular correlation on n points, tap m at offset m - h (mod n);
        # Dirichlet: the field is padded by h each side, tap m at position m
        return (pos - h).remainder(n) if self.periodic[a] else pos

    def _smooth_dense_index(self, a: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Tap and flat (output, input) index of the dense stride-1 map along ``a``:
        fine point ``i`` reads ``pad(i + m - h)`` with weight ``K_smooth[m]``."""
        n = self.fine_shape[a]
        taps = self.pads[a] * 2 + self.factors[a] + (1 if self.factors[a] % 2 == 0 else 0)
        h = (taps - 1) // 2
        i = torch.arange(n).repeat_interleave(taps)
        m = torch.arange(taps).repeat(n)
        src = i + m - h
        src = src.remainder(n) if self.periodic[a] else src.clamp(0, n - 1)
        return m, i * n + src

    # -- helpers ----------------------------------------------------------------------------------
    def _bias_view(self) -> torch.Tensor:
        return self.bias.view(1, self.channels, *([1] * self.ndim))

    def smoothing_taps(self, axis: int) -> torch.Tensor:
        """``(C, taps')`` stride-1 kernel along ``axis`` (odd length, centred)."""
        w = self.weights[axis]
        if self.factors[axis] % 2 == 0:
            w = 0.5 * (F.pad(w, (0, 1)) + F.pad(w, (1, 0)))
        return w

    def full_kernel(self, channel: int = 0) -> torch.Tensor:
        """The d-dimensional kernel of one channel, ``(taps_0[, taps_1])`` (for plots)."""
        k = self.weights[0][channel]
        for a in range(1, self.ndim):
            k = k.unsqueeze(-1) * self.weights[a][channel]
        return k

    def coarse_matrix(self, axis: int) -> torch.Tensor:
        """``(C, n_coarse, n_fine)``: the coarse map along ``axis`` (boundary rule included)."""
        w = self.weights[axis]
        nc, n = self.coarse_shape[axis], self.fine_shape[axis]
        tap, lin = getattr(self, f"_coarse_tap{axis}"), getattr(self, f"_coarse_lin{axis}")
        out = w.new_zeros(self.channels, nc * n).index_add_(1, lin, w[:, tap])
        return out.view(self.channels, nc, n)

    def transpose_matrix(self, axis: int) -> torch.Tensor:
        """``(C, n_fine, n_coarse)``: ``s K^T`` along ``axis`` with coarse-grid padding."""
        w = self.weights[axis] * self.factors[axis]
        nc, n = self.coarse_shape[axis], self.fine_shape[axis]
        tap, lin = getattr(self, f"_trans_tap{axis}"), getattr(self, f"_trans_lin{axis}")
        out = w.new_zeros(self.channels, n * nc).index_add_(1, lin, w[:, tap])
        return out.view(self.channels, n, nc)

    def smooth_matrix(self, axis: int) -> torch.Tensor:
        """``(C, n_fine, n_fine)``: the stride-1 map along ``axis`` (only for axes of at most
        ``DENSE_SMOOTH_MAX`` points)."""
        w = self.smoothing_taps(axis)
        n = self.fine_shape[axis]
        tap, lin = getattr(self, f"_smooth_tap{axis}"), getattr(self, f"_smooth_lin{axis}")
        out = w.new_zeros(self.channels, n * n).index_add_(1, lin, w[:, tap])
        return out.view(self.channels, n, n)

    @staticmethod
    def _apply_axis(x: torch.Tensor, mat: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
        """Contract spatial ``axis`` of ``x (B, C, *grid)`` with ``mat (C, out, in)``."""
        if ndim == 1:
            return torch.einsum("bci,coi->bco", x, mat)
        if axis == 0:
            return torch.einsum("bciw,coi->bcow", x, mat)
        return torch.einsum("bchi,coi->bcho", x, mat)

    # -- operations ------------------------------------------------------------------------------
    def coarse(self, u: torch.Tensor) -> torch.Tensor:
        """``K * u + b`` at stride ``s``: ``(B, C, *fine) -> (B, C, *coarse)``."""
        x = u
        for a in range(self.ndim):
            x = self._apply_axis(x, self.coarse_matrix(a), a, self.ndim)
        return x + self._bias_view()

    def transpose(self, zM: torch.Tensor) -> torch.Tensor:
        """``prod(s) K^T * (zM - b)``: ``(B, C, *coarse) -> (B, C, *fine)``."""
        x = zM - self._bias_view()
        for a in range(self.ndim):
            x = self._apply_axis(x, self.transpose_matrix(a), a, self.ndim)
        return x

    def smooth(self, u: torch.Tensor) -> torch.Tensor:
        """``K_smooth * u`` at stride 1 (no bias): ``(B, C, *fine) -> (B, C, *fine)``."""
        x = u
        for a in range(self.ndim):
            if self.fine_shape[a] <= DENSE_SMOOTH_MAX:
                x = self._apply_axis(x, self.smooth_matrix(a), a, self.ndim)
            else:
                x = self._smooth_fft(x, a)
        return x

    def _smooth_fft(self, x: torch.Tensor, a: int) -> torch.Tensor:
        """Stride-1 smoothing along axis ``a`` by rFFT (correlation with the taps)."""
        dim = a - self.ndim                                    # negative index of this axis
        w = self.smoothing_taps(a)
        h = (w.shape[-1] - 1) // 2
        n = self.fine_shape[a]
        if not self.periodic[a]:
            x = pad_axis(x, 2 + a, h, h, False)
        npts = x.shape[2 + a]
        kvec = w.new_zeros(self.channels, npts).index_add_(1, getattr(self, f"_smooth_pos{a}"), w)
        # correlation = irfft(rfft(x) * conj(rfft(k)))
        spec = torch.fft.rfft(kvec, dim=-1).conj()             # (C, nf)
        spec = spec.view(self.channels, *([1] * a), -1, *([1] * (self.ndim - 1 - a)))
        x = torch.fft.irfft(torch.fft.rfft(x, dim=dim) * spec, n=npts, dim=dim)
        if not self.periodic[a]:
            x = x.narrow(2 + a, 0, n)
        return x
