"""Zero-copy exchange of torch tensors with Julia through DLPack: the Python side.

Julia sees a C-contiguous torch tensor ``(d_1, ..., d_n)`` (row-major, last axis fastest) as a
column-major Julia ``Array`` of size ``(d_n, ..., d_1)`` over the *same* memory: the axes are
reversed, nothing is copied. A field batch ``(B, C, N)`` is ``(N, C, B)`` in Julia, a 2-D
field ``(B, C, Nx, Ny)`` is ``(Ny, Nx, C, B)``; Julia index ``[j, c, b]`` (1-based) is torch
index ``[b-1, c-1, j-1]``.

How the bytes cross (the decisions, see ``docs/julia.md``):

- **Flat 1-D capsules.** :func:`as_exportable` hands Julia a 1-D view of the tensor plus the
  reversed shape, and Julia reshapes (``PyMSDEKernels.wrap_tensor``). DLPack.jl decides
  row- vs column-major from the strides and picks *column-major* whenever the strides also
  fit that reading; for tensors with size-1 axes both readings can fit
  (``torch.arange(4.).reshape(4, 1).t()`` has shape ``(1, 4)``, strides ``(1, 1)``) and the
  array would come out with the wrong orientation. A 1-D contiguous buffer has one reading.
  :func:`dlpackjl_layout` reproduces DLPack.jl's rule so the tests can show this.
- **Contiguity.** Only C-contiguous tensors are exported (DLPack.jl ignores strides it does not
  recognise as column-major and would read a strided tensor as if it were contiguous).
  A non-contiguous tensor raises :class:`~pymsde.util.errors.DataError` naming its shape and
  strides; ``allow_copy=True`` makes a C-contiguous copy instead, and the returned
  :class:`Exportable` says so (``copied=True``): writes from Julia then land in the copy.
- **dtype.** float32, float64 (fields, weights), complex128 (spectral coefficients) and int64
  (indices, masks); anything else is refused.
- **device.** CPU always; CUDA only with ``cuda_ok=True`` (the caller checked that Julia has
  CUDA.jl functional). Other devices are refused.
- **autograd.** Tensors that require grad are detached (a view, no copy): the Julia kernels are
  not differentiable, training stays in torch.
- **Lifetime.** DLPack.jl keeps the torch storage alive through the Julia array it returns
  (its pool entry is dropped when that array is finalized); a reshaped array need not keep
  that one alive (Julia >= 1.11, CUDA.jl), so pymsde does not rely on it: the wrappers of
  :mod:`pymsde.backends.julia` keep every exported tensor referenced from Python until the Julia
  call has returned (and, on a GPU, until the device has finished). Julia kernels are called
  synchronously, outputs are allocated by torch and filled in place, and no Julia array
  outlives the call that received it.

This module is pure Python (torch, ctypes), imports nothing of the Julia bridge and is tested
without Julia (``tests/test_dlpack.py``). The calls into Julia (``PyMSDEKernels.wrap_tensor``)
are made by :mod:`pymsde.backends.julia`; the other direction, a Julia array handed to torch,
is ``julia.load().share_with(array, torch.from_dlpack)`` (``DLPack.share``).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import torch

from pymsde.util.errors import DataError

#: torch dtype -> Julia element type name
SUPPORTED_DTYPES: dict[torch.dtype, str] = {
    torch.float32: "Float32",
    torch.float64: "Float64",
    torch.int64: "Int64",
    torch.complex128: "ComplexF64",
}

#: DLPack device type codes (dlpack.h ``DLDeviceType``)
KDL_CPU, KDL_CUDA = 1, 2
#: DLPack dtype codes (dlpack.h ``DLDataTypeCode``)
KDL_INT, KDL_UINT, KDL_FLOAT = 0, 1, 2


@dataclass(frozen=True)
class Exportable:
    """A tensor ready to cross to Julia.

    Attributes:
        tensor: the C-contiguous, detached tensor whose memory Julia will see (the input itself
            when no copy was needed, else its copy).
        flat: 1-D view of ``tensor`` (same memory), the buffer actually exported.
        julia_size: the Julia array size, ``tuple(reversed(tensor.shape))``.
        julia_eltype: Julia element type name (``"Float64"``...).
        copied: True when ``allow_copy`` had to copy a non-contiguous input: Julia's writes do
            not reach the original then.
    """

    tensor: torch.Tensor
    flat: torch.Tensor
    julia_size: tuple[int, ...]
    julia_eltype: str
    copied: bool


def check_exportable(t: Any, *, name: str = "tensor", allow_copy: bool = False,
                     cuda_ok: bool = False) -> None:
    """Raise :class:`DataError` unless ``t`` can be shared with Julia (see the module docstring).

    A non-contiguous tensor passes only with ``allow_copy=True``. The message names ``name``,
    what was expected and what was found.
    """
    if not isinstance(t, torch.Tensor):
        raise DataError(f"{name}: expected a torch.Tensor, found {type(t).__name__}")
    if t.dtype not in SUPPORTED_DTYPES:
        allowed = ", ".join(str(d).replace("torch.", "") for d in SUPPORTED_DTYPES)
        raise DataError(f"{name}: dtype {str(t.dtype).replace('torch.', '')} cannot be shared with "
                        f"Julia; expected one of {allowed}")
    dev = t.device.type
    if dev == "cuda":
        if not cuda_ok:
            raise DataError(f"{name}: tensor on {t.device} but the Julia backend has no functional "
                            f"CUDA.jl; expected a cpu tensor (or install CUDA.jl for the Julia side)")
    elif dev != "cpu":
        raise DataError(f"{name}: tensor on device {t.device!s}; expected cpu or cuda")
    if not t.is_contiguous() and not allow_copy:
        expected = _c_strides(tuple(t.shape))
        raise DataError(f"{name}: non-contiguous tensor of shape {tuple(t.shape)} with strides "
                        f"{tuple(t.stride())} (elements); expected C-contiguous strides {expected}. "
                        f"Call .contiguous() first, or pass allow_copy=True to copy explicitly")


def as_exportable(t: torch.Tensor, *, name: str = "tensor", allow_copy: bool = False,
                  cuda_ok: bool = False) -> Exportable:
    """Validate ``t`` and return the zero-copy (or, with ``allow_copy``, copied) export view."""
    check_exportable(t, name=name, allow_copy=allow_copy, cuda_ok=cuda_ok)
    base = t.detach()  # a view: shares memory, drops autograd (DLPack refuses grad tensors)
    copied = False
    if not base.is_contiguous():
        base = base.contiguous()
        copied = True
    return Exportable(tensor=base, flat=base.view(-1), julia_size=tuple(reversed(base.shape)),
                      julia_eltype=SUPPORTED_DTYPES[base.dtype], copied=copied)


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major (C) strides in elements for ``shape``."""
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(int(n), 1)
    return tuple(reversed(strides))


def _f_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Column-major (Fortran/Julia) strides in elements, as ``Base.size_to_strides(1, shape...)``."""
    strides, acc = [], 1
    for n in shape:
        strides.append(acc)
        acc *= int(n)
    return tuple(strides)


# ---- reading a DLPack capsule without a consumer library (ctypes, dlpack.h v0.x layout) ----

class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


_capsule_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get_pointer.restype = ctypes.c_void_p
_capsule_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_is_valid.restype = ctypes.c_int
_capsule_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]


@dataclass(frozen=True)
class CapsuleInfo:
    """What a DLPack consumer reads from an unversioned ``"dltensor"`` capsule.

    ``strides`` are in elements; None when the producer left them NULL (meaning C-contiguous).
    """

    data_ptr: int
    device_type: int
    device_id: int
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None
    dtype_code: int
    dtype_bits: int
    dtype_lanes: int
    byte_offset: int


def describe_capsule(capsule: Any) -> CapsuleInfo:
    """Read the ``DLTensor`` inside an unconsumed ``"dltensor"`` capsule (no copy, no consume).

    This is the legacy (unversioned) capsule that ``tensor.__dlpack__()`` returns when called
    without ``max_version`` -- the call DLPack.jl's PythonCall extension makes.
    """
    if not _capsule_is_valid(capsule, b"dltensor"):
        raise DataError("describe_capsule: expected an unconsumed PyCapsule named 'dltensor'")
    dl = _DLTensor.from_address(_capsule_get_pointer(capsule, b"dltensor"))
    nd = int(dl.ndim)
    shape = tuple(int(dl.shape[i]) for i in range(nd))
    strides = tuple(int(dl.strides[i]) for i in range(nd)) if dl.strides else None
    return CapsuleInfo(data_ptr=int(dl.data or 0), device_type=int(dl.device.device_type),
                       device_id=int(dl.device.device_id), shape=shape, strides=strides,
                       dtype_code=int(dl.dtype.code), dtype_bits=int(dl.dtype.bits),
                       dtype_lanes=int(dl.dtype.lanes), byte_offset=int(dl.byte_offset))


def dlpackjl_layout(info: CapsuleInfo) -> tuple[str, tuple[int, ...]]:
    """The memory layout and Julia array size DLPack.jl (v0.3) gives a capsule.

    Mirrors ``DLPack.is_col_major`` and ``reshape_me_maybe``: the tensor is read as
    column-major when it has no elements or its strides equal ``Base.size_to_strides(1, size...)``
    (NULL strides count as C-contiguous), otherwise as row-major with the axes reversed. Note
    that DLPack.jl checks nothing else: a strided tensor is read as if it were contiguous.

    Returns:
        ``("col", shape)`` or ``("row", reversed shape)``.
    """
    shape = info.shape
    strides = info.strides if info.strides is not None else _c_strides(shape)
    n = 1
    for s in shape:
        n *= s
    if len(shape) == 0 or n == 0 or strides == _f_strides(shape):
        return "col", shape
    return "row", tuple(reversed(shape))


__all__ = ["SUPPORTED_DTYPES", "Exportable", "check_exportable", "as_exportable", "CapsuleInfo",
           "describe_capsule", "dlpackjl_layout"]
