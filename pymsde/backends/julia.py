"""The Julia backend: start Julia through juliacall (lazily, once; how Julia is found and
started without downloads: :mod:`pymsde.backends.julia_start`), load ``PyMSDEKernels`` (the
package in ``julia/``, plus CUDA.jl when torch sees a GPU or ``PYMSDE_JULIA_CUDA=1``), and call
its kernels on DLPack-shared tensors (:mod:`pymsde.backends.dlpack`).

The wrappers have the signatures of the torch functions they mirror (``pymsde.numerics``,
``pymsde.model``, and the whole-run kernels of :mod:`pymsde.backends.protocol`; the two flow
solvers' bridge is :mod:`pymsde.backends.julia_flows`). Outputs
are allocated by torch and filled in place by Julia. Inputs torch refuses are refused before
Julia runs (a periodic stencil wider than its axis: torch's ValueError; a finite-volume axis
of fewer than 2 cells). GPU tensors: one device per call, made current for torch and CUDA.jl
while a tensor is wrapped (:func:`_jl`), one synchronisation each way around the call (:func:`_call`).

Index mapping: a torch tensor ``(d_1, ..., d_n)`` is a Julia array ``(d_n, ..., d_1)``, so the
wrappers reverse ``boundary`` (per Julia dimension, fastest first) and map torch spatial axis
``a`` of ``d`` axes to Julia dimension ``d - a`` (1-based).
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any, Sequence

import torch

from pymsde.backends.dlpack import as_exportable
from pymsde.backends.julia_start import (INSTALL_HINT, PACKAGE, PACKAGE_UUID, find_julia, julia_project_dir)
from pymsde.backends.julia_start import import_juliacall as _import_juliacall
from pymsde.numerics.padding import check_padding
from pymsde.util.errors import BackendUnavailableError, ConfigError, DataError, StabilityError

logger = logging.getLogger(__name__)

_STATE: dict[str, Any] = {"module": None, "error": None, "fns": {}, "cuda": False, "info": {}}


def load(*, offline: bool = False) -> Any:
    """Start Julia and load PyMSDEKernels once per process; return the Julia module.

    Args:
        offline: run juliapkg offline (no package installation, no network).

    Raises:
        BackendUnavailableError: naming the reason and :data:`INSTALL_HINT`. A failure is
            remembered: Julia cannot be restarted inside one Python process.
    """
    if _STATE["module"] is not None:
        return _STATE["module"]
    if _STATE["error"] is not None:
        raise BackendUnavailableError(_STATE["error"])
    exe, how = find_julia()
    if exe is None and os.environ.get("PYMSDE_JULIA_ALLOW_INSTALL") != "1":
        raise BackendUnavailableError(f"Julia backend unavailable: {how}; {INSTALL_HINT}")
    try:
        jc = _import_juliacall(offline)
        jc.Main.seval(f"using {PACKAGE}")
        if torch.cuda.is_available() or os.environ.get("PYMSDE_JULIA_CUDA") == "1":
            # CUDA.jl is a weak dependency: loading it (when installed) activates the package
            # extension; without it the Julia side stays on the CPU
            jc.Main.seval("try; import CUDA; catch; end")
        mod = getattr(jc.Main, PACKAGE)
        fns = {name: jc.Main.seval(f"{PACKAGE}.{name}") for name in _JULIA_FUNCTIONS}
        cuda = bool(jc.Main.seval(f"{PACKAGE}.cuda_functional()"))
        info = {"julia_version": str(jc.Main.seval("string(VERSION)")), "executable": exe,
                "found_by": how, "threads": int(jc.Main.seval("Threads.nthreads()")),
                "package_version": str(jc.Main.seval(f"string(pkgversion({PACKAGE}))")),
                "cuda": cuda}
    except Exception as exc:  # juliacall raises plain Exceptions and JuliaError
        _STATE["error"] = (f"Julia backend unavailable: Julia at {exe} ({how}) could not start "
                           f"or load {PACKAGE}: {type(exc).__name__}: {exc}; {INSTALL_HINT}")
        raise BackendUnavailableError(_STATE["error"]) from exc
    _STATE.update(module=mod, fns=fns, cuda=cuda, info=info)
    logger.info("Julia %s at %s loaded %s %s (threads %d, CUDA %s)", info["julia_version"], exe, PACKAGE,
                info["package_version"], info["threads"], cuda)
    return mod


def info() -> dict:
    """Versions and settings of the loaded Julia backend (empty before :func:`load`)."""
    return dict(_STATE["info"])


def cuda_functional() -> bool:
    """Whether the loaded Julia session has a functional CUDA.jl (False before :func:`load`)."""
    return bool(_STATE["cuda"])


# Julia functions the wrappers call, looked up once by load() (`!` is no Python attribute)
_JULIA_FUNCTIONS = ("wrap_tensor", "pad!", "gather_stencil!", "derivative!", "mlp_forward!",
                    "multiscale_drift!", "rollout!", "burgers_rhs!", "burgers_fd_run!", "spectral_run!",
                    "etd_coefficients!", "burgers_fv_rhs!", "burgers_fv_run!", "swe_run!", "cylinder_run!",
                    "synchronize_device", "select_device")


def _fn(name: str):
    load()
    return _STATE["fns"][name]


# ---------------------------------------------------------------- one Julia call

#: ``(tensor, export, Julia array)`` of the Julia call being assembled (per thread)
_PENDING = threading.local()


def _pending() -> list:
    return _PENDING.__dict__.setdefault("items", [])


def _julia_kernel(fn):
    """Decorator of the public wrappers: the pending list starts empty and is emptied however
    the wrapper ends (an argument refused part-way must not leave its tensors to the next call)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _PENDING.items = []
        try:
            return fn(*args, **kwargs)
        finally:
            _PENDING.items = []
    return wrapper


def _cuda_device(items) -> tuple[torch.device | None, Any]:
    """``(device, a Julia array on it)`` when the pending call's tensors are on a GPU, else
    ``(None, None)`` (:func:`_jl` keeps them on one device)."""
    if items and items[0][0].is_cuda:
        return items[0][0].device, items[0][2]
    return None, None


def _jl(t: torch.Tensor, name: str) -> Any:
    """A tensor as a Julia array over the same memory (axes reversed), kept alive by
    :func:`_call` until the Julia call that receives it is over.

    All tensors of one call must be on one device (else :class:`DataError`). A CUDA tensor is
    wrapped with its device current for torch (which exports only tensors on its current
    device) and for CUDA.jl (``select_device`` = ``CUDA.device!``: DLPack.jl wraps the pointer
    in CUDA.jl's current context and ignores the capsule's device id)."""
    ex = as_exportable(t, name=name, cuda_ok=cuda_functional())
    items = _pending()
    if items and items[0][0].device != t.device:
        raise DataError(f"{name}: tensor on {t.device}, the other tensors of this call are on "
                        f"{items[0][0].device}; expected one device")
    if t.is_cuda:
        _fn("select_device")(t.device.index)
        with torch.cuda.device(t.device):
            arr = _fn("wrap_tensor")(ex.flat, *ex.julia_size)
    else:
        arr = _fn("wrap_tensor")(ex.flat, *ex.julia_size)
    items.append((t, ex, arr))
    return arr


def _call(name: str, *args) -> Any:
    """Call the Julia function ``name`` on arrays made by :func:`_jl`.

    Every exported tensor stays referenced until the call returns: temporaries (``.contiguous()``
    copies, face values, per-sample times) may have no other owner, and a reshaped Julia array
    need not keep DLPack.jl's wrapper (and so the torch storage) alive (Julia >= 1.11).

    On a GPU the handover is here, after Python built every argument (every ``.to`` /
    ``.contiguous()`` is queued by then): the tensors' device made current in Julia,
    ``torch.cuda.synchronize(device)``, the call, ``synchronize_device`` (also when it raised).
    CUDA.jl's task-local stream is a *blocking* one (``CuStream()``, ``STREAM_DEFAULT``), ordered
    after torch's legacy default stream but not after torch's non-blocking side streams, and
    DLPack.jl exports without a stream (docs/julia.md, "Streams").
    """
    items = _pending()
    try:
        dev, gpu_array = _cuda_device(items)
        if dev is None:
            return _fn(name)(*args)
        _fn("select_device")(dev.index)
        torch.cuda.synchronize(dev)
        try:
            return _fn(name)(*args)
        finally:
            _fn("synchronize_device")(gpu_array)
    finally:
        _PENDING.items = []


def _csv(items: Sequence) -> str:
    # tuples travel as comma-separated strings (PythonCall converts str and int unambiguously)
    return ",".join(str(s) for s in items)


def _floats(xs: Sequence[float]) -> str:
    return ",".join(repr(float(x)) for x in xs)   # repr round-trips a double exactly


# ---------------------------------------------------------------- the mirrored kernels

@_julia_kernel
def pad(x: torch.Tensor, width: int | Sequence[int], boundary: Sequence[str],
        dirichlet_mode: str = "edge") -> torch.Tensor:
    """Julia port of :func:`pymsde.numerics.padding.pad` for ``x`` of shape ``(..., *grid)``
    with at least 2 leading axes (``(B, C, *grid)``)."""
    nd = len(boundary)
    widths = [int(width)] * nd if isinstance(width, int) else [int(w) for w in width]
    grid = x.shape[x.dim() - nd:]
    check_padding(widths, x.shape, boundary, dirichlet_mode)
    out = x.new_empty((*x.shape[:x.dim() - nd], *(n + 2 * w for n, w in zip(grid, widths))))
    _call("pad!", _jl(out, "out"), _jl(x, "x"), _csv(reversed(widths)), _csv(reversed(boundary)),
                dirichlet_mode)
    return out


@_julia_kernel
def gather_stencil(x: torch.Tensor, radius: int, boundary: Sequence[str],
                   dirichlet_mode: str = "edge") -> torch.Tensor:
    """Julia port of :func:`pymsde.numerics.padding.gather_stencil`: ``(B, C, *grid)`` ->
    ``(B, *grid, C (2r+1)^d)``."""
    nd = len(boundary)
    B, C, *grid = x.shape
    check_padding([radius] * nd, x.shape, boundary, dirichlet_mode)
    out = x.new_empty((B, *grid, C * (2 * radius + 1) ** nd))
    _call("gather_stencil!", _jl(out, "out"), _jl(x, "x"), int(radius), _csv(reversed(boundary)),
                           dirichlet_mode)
    return out


@_julia_kernel
def derivative(u: torch.Tensor, axis: int, deriv: int, dx: float, boundary: str,
               order: int = 4) -> torch.Tensor:
    """Julia port of :func:`pymsde.numerics.stencils.derivative` (``(B, C, *grid)``)."""
    nd = u.dim() - 2
    if not 0 <= axis < nd:
        raise ConfigError(f"derivative: axis {axis} of a field with {nd} spatial axes")
    check_padding([order // 2], [u.shape[2 + axis]], [boundary])
    out = torch.empty_like(u)
    _call("derivative!", _jl(out, "out"), _jl(u, "u"), nd - axis, int(deriv), float(dx), str(boundary),
                       int(order))
    return out


@_julia_kernel
def mlp_forward(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                activation: str) -> torch.Tensor:
    """Julia port of :func:`pymsde.model.mlp.mlp_forward` for 2-D ``x`` ``(rows, in)``."""
    if x.dim() != 2:
        raise ConfigError(f"mlp_forward (julia): x must be (rows, in), found {tuple(x.shape)}")
    out = x.new_empty((x.shape[0], weights[-1].shape[0]))
    arrays = [a for w, b in zip(weights, biases) for a in (_jl(w, "weight"), _jl(b, "bias"))]
    _call("mlp_forward!", _jl(out, "out"), _jl(x, "x"), activation, *arrays)
    return out


def _params_args(params) -> list:
    """DriftParams as the flat positional list ``drift_params_from_python`` expects."""
    p = params.detach()
    args = [p.activation, int(p.radius), _csv(reversed(p.boundary)), _csv(reversed(p.coarse_shape)),
            int(p.channels), int(p.micro_dim), int(p.n_mu), int(p.n_f)]
    if p.positional or p.linear is not None:   # the optional flag of drift_params_from_python (absent: off)
        args.append(bool(p.positional))
    if p.linear is not None:          # then the optional linear term, (C, S (1 + n_mu)) -> Julia (in, out)
        args.append(_jl(p.linear, "linear drift term"))
    args.append(len(p.macro_weights))
    for w, b in zip(p.macro_weights, p.macro_biases):
        args += [_jl(w, "macro weight"), _jl(b, "macro bias")]
    for w, b in zip(p.micro_weights, p.micro_biases):
        args += [_jl(w, "micro weight"), _jl(b, "micro bias")]
    return args


def _per_sample(t: torch.Tensor | None, like: torch.Tensor, name: str) -> Any:
    """``mu`` / ``f`` ``(B, n)`` for Julia in ``like``'s dtype and device. They are small and
    callers often pass broadcast views (``expand``, stride 0), so a non-contiguous one is
    copied explicitly (``.contiguous()``) instead of refused."""
    if t is None:
        return None
    return _jl(t.to(dtype=like.dtype, device=like.device).contiguous(), name)


@_julia_kernel
def multiscale_drift(params, t: float | torch.Tensor, z: torch.Tensor, mu: torch.Tensor | None = None,
                     f: torch.Tensor | None = None) -> torch.Tensor:
    """Julia port of :func:`pymsde.model.drift.multiscale_drift`: ``t`` a number, a
    0-dim tensor or a ``(B,)`` tensor of per-sample times (converted to ``z``'s dtype, as torch
    does before taking ``sin t, cos t``)."""
    check_padding([params.radius] * len(params.coarse_shape), (params.channels, *params.coarse_shape), params.boundary)
    out = torch.empty_like(z)
    if isinstance(t, torch.Tensor) and t.numel() > 1:
        if t.numel() != z.shape[0]:
            raise ConfigError(f"multiscale_drift (julia): t has {t.numel()} values for {z.shape[0]} samples")
        t_arg = _jl(t.to(dtype=z.dtype, device=z.device).reshape(-1).contiguous(), "t")
    else:
        t_arg = float(t)
    _call("multiscale_drift!", _jl(out, "out"), t_arg, _jl(z, "z"), _per_sample(mu, z, "mu"),
                             _per_sample(f, z, "f"), *_params_args(params))
    return out


@_julia_kernel
def sde_rollout(params, sigma: torch.Tensor, z0: torch.Tensor, t0: float, dt: float, n_steps: int,
                scheme: str = "em", save_every: int = 1, dW: torch.Tensor | None = None,
                dI: torch.Tensor | None = None, mu: torch.Tensor | None = None,
                f: torch.Tensor | None = None, seed: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole ensemble rollout of the learned SDE in one Julia call (the loop runs in Julia).

    Same arguments and results as :func:`pymsde.forecast.rollout.sde_rollout`: ``sigma``
    ``(D,)`` or ``(B, D)``, ``z0`` ``(B, D)``, optional ``dW``/``dI`` ``(n_steps, B, D)`` (else
    Julia draws them from ``Random.Xoshiro(seed)``), constant ``mu`` ``(B, n_mu)`` and ``f``
    ``(B, n_f)``. Returns ``ts (n_saved,)`` and ``zs (n_saved, B, D)`` (every ``save_every``-th
    state from ``z0`` on).
    """
    check_padding([params.radius] * len(params.coarse_shape), (params.channels, *params.coarse_shape), params.boundary)
    if scheme not in ("em", "heun", "sra1"):
        raise ConfigError(f"sde_rollout: unknown scheme {scheme!r}; expected em, heun or sra1")
    if save_every < 1:
        raise ConfigError(f"sde_rollout: save_every must be >= 1, found {save_every}")
    B, D = z0.shape
    if dW is not None and tuple(dW.shape) != (n_steps, B, D):
        raise ConfigError(f"sde_rollout: dW must have shape {(n_steps, B, D)}, found {tuple(dW.shape)}")
    if scheme == "sra1" and dW is not None and (dI is None or dI.shape != dW.shape):
        raise ConfigError("sde_rollout: scheme 'sra1' with given dW needs dI of the same shape")
    n_saved = n_steps // save_every + 1
    zs = z0.new_empty((n_saved, B, D))
    sig = sigma.to(dtype=z0.dtype, device=z0.device).contiguous()
    _call("rollout!", _jl(zs, "zs"), _jl(z0, "z0"), _jl(sig, "sigma"), float(t0), float(dt), int(n_steps),
                    scheme, int(save_every), None if dW is None else _jl(dW, "dW"),
                    None if dI is None else _jl(dI, "dI"),
                    _per_sample(mu, z0, "mu"), _per_sample(f, z0, "f"),
                    -1 if seed is None else int(seed),
                    *_params_args(params))
    if not bool(torch.isfinite(zs).all()):
        raise StabilityError(f"sde_rollout ({scheme}, julia): non-finite state (dt = {dt:g}); reduce dt "
                             f"or check the drift")
    ts = t0 + dt * (save_every * torch.arange(n_saved, dtype=torch.float64))   # t0 + dt k, as torch
    return ts.to(dtype=z0.dtype, device=z0.device), zs


@_julia_kernel
def burgers_rhs(u: torch.Tensor, dx: Sequence[float], nu: float, boundary: Sequence[str],
                order: int = 4) -> torch.Tensor:
    """Julia port of :func:`pymsde.numerics.pde.burgers_rhs` (``(B, C, *grid)``)."""
    check_padding([order // 2] * len(boundary), u.shape[2:], boundary)
    out = torch.empty_like(u)
    _call("burgers_rhs!", _jl(out, "out"), _jl(u, "u"), _floats(reversed(dx)), float(nu),
                        _csv(reversed(boundary)), int(order))
    return out


@_julia_kernel
def burgers_fd_run(u0: torch.Tensor, dt: float, n_sub: int, n_out: int, dx: Sequence[float], nu: float,
                   boundary: Sequence[str], order: int = 4) -> torch.Tensor:
    """A whole finite-difference Burgers run in one Julia call; same contract as
    :func:`pymsde.systems.solvers.burgers_fd_run` (``(B, n_out, C, *grid)``)."""
    check_padding([order // 2] * len(boundary), u0.shape[2:], boundary)
    out = u0.new_empty((u0.shape[0], int(n_out), *u0.shape[1:]))
    _call("burgers_fd_run!", _jl(out, "out"), _jl(u0, "u0"), float(dt), int(n_sub), _floats(reversed(dx)),
                           float(nu), _csv(reversed(boundary)), int(order))
    return out


@_julia_kernel
def spectral_run(v0_hat: torch.Tensor, coeffs: Sequence[torch.Tensor], k: torch.Tensor, mask: torch.Tensor,
                 n: int, dealias: str, n_sub: int, n_out: int) -> torch.Tensor:
    """A whole pseudo-spectral ETDRK4 run in one Julia call; same contract as
    :func:`pymsde.systems.solvers.spectral_run` (``(B, n_out, C, n)`` real)."""
    B, C, _ = v0_hat.shape
    out = torch.empty((B, int(n_out), C, int(n)), dtype=torch.float64, device=v0_hat.device)
    cs = [_jl(c.to(torch.complex128).contiguous(), "ETD coefficient") for c in coeffs]
    _call("spectral_run!", _jl(out, "out"), _jl(v0_hat, "v0_hat"), *cs, _jl(k.to(torch.float64), "k"),
                         _jl(mask.to(torch.int64), "mask"), int(n), str(dealias), int(n_sub))
    return out


@_julia_kernel
def etd_coefficients(lin: torch.Tensor, dt: float, n_contour: int = 64) -> tuple[torch.Tensor, ...]:
    """Julia port of :func:`pymsde.numerics.spectral.etd_coefficients` for a 1-D ``lin``
    (``(M,)``, real or complex): ``(E, E2, Q, f1, f2, f3)``, complex128 ``(M,)`` each."""
    if lin.dim() != 1:
        raise ConfigError(f"etd_coefficients (julia): lin must be 1-D (modes,), found {tuple(lin.shape)}")
    device = lin.device     # computed on the CPU: Julia's contour points are a CPU array
    lin = lin.to("cpu", torch.complex128).contiguous()
    outs = [torch.empty_like(lin) for _ in range(6)]
    _call("etd_coefficients!", *(_jl(o, "ETD coefficient") for o in outs), _jl(lin, "lin"), float(dt),
                             int(n_contour))
    return tuple(o.to(device) for o in outs)


def _face_args(c: torch.Tensor, boundary: Sequence[str], face_values) -> list:
    """The finite-volume face values as the bridge's flat list: two entries per Julia dimension
    (torch axes reversed), ``lo, hi`` arrays or ``None, None`` for a periodic axis.

    Face tensors that are not contiguous are copied (explicitly, with ``.contiguous()``):
    they are ``(B, C, *cells)`` with one axis of size 1, small next to the field."""
    nd = len(boundary)
    if face_values is None:
        face_values = [None] * nd
    if len(face_values) != nd:
        raise ConfigError(f"burgers_fv (julia): {len(face_values)} face entries for {nd} axes")
    for a in range(nd):                   # the MUSCL stencil reaches two cells out (Julia refuses fewer)
        if c.shape[2 + a] < 2:
            raise ConfigError(f"burgers_fv (julia): axis {a} has {c.shape[2 + a]} cells; the MUSCL stencil "
                             f"needs at least 2")
    args: list = []
    for a in reversed(range(nd)):
        fv = face_values[a]
        if boundary[a] == "periodic":
            args += [None, None]
            continue
        if fv is None:
            raise ConfigError(f"burgers_fv (julia): Dirichlet axis {a} needs face values (lo, hi), found None")
        want = (*c.shape[:2 + a], 1, *c.shape[3 + a:])
        for side, t in zip(("lo", "hi"), fv):
            if tuple(t.shape) != want:
                raise ConfigError(f"burgers_fv (julia): face value {side} of axis {a} has shape "
                                  f"{tuple(t.shape)}; expected {want}")
        args += [_jl(fv[0].to(c.dtype).contiguous(), f"face lo (axis {a})"),
                 _jl(fv[1].to(c.dtype).contiguous(), f"face hi (axis {a})")]
    return args


@_julia_kernel
def burgers_fv_rhs(c: torch.Tensor, dx: Sequence[float], nu: float, boundary: Sequence[str],
                   face_values) -> torch.Tensor:
    """Julia port of :func:`pymsde.numerics.pde.burgers_fv_rhs` (``(B, C, *cells)``)."""
    out = torch.empty_like(c)
    faces = _face_args(c, boundary, face_values)
    _call("burgers_fv_rhs!", _jl(out, "out"), _jl(c, "c"), _floats(reversed(dx)), float(nu),
                           _csv(reversed(boundary)), *faces)
    return out


@_julia_kernel
def burgers_fv_run(c0: torch.Tensor, dt: float, n_sub: int, n_out: int, dx: Sequence[float], nu: float,
                   boundary: Sequence[str], face_values) -> torch.Tensor:
    """A whole coarse finite-volume Burgers solve in one Julia call; same contract as
    :func:`pymsde.systems.coarse.burgers_fv_run` (``(B, n_out, C, *cells)``)."""
    out = c0.new_empty((c0.shape[0], int(n_out), *c0.shape[1:]))
    faces = _face_args(c0, boundary, face_values)
    _call("burgers_fv_run!", _jl(out, "out"), _jl(c0, "c0"), float(dt), int(n_sub), _floats(reversed(dx)),
                           float(nu), _csv(reversed(boundary)), *faces)
    return out


__all__ = ["PACKAGE", "PACKAGE_UUID", "INSTALL_HINT", "julia_project_dir", "find_julia", "load", "info",
           "cuda_functional", "pad", "gather_stencil", "derivative", "mlp_forward", "multiscale_drift",
           "sde_rollout", "burgers_rhs", "burgers_fd_run", "spectral_run", "etd_coefficients",
           "burgers_fv_rhs", "burgers_fv_run"]
