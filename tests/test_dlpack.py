"""The Python side of the DLPack bridge, with numpy and torch as consumers (no Julia needed).

Zero-copy is shown by shared memory: a write through one view is read through the other.
"""
import ctypes
import gc

import numpy as np
import pytest
import torch

from pymsde.backends.dlpack import (KDL_CPU, KDL_FLOAT, KDL_INT, as_exportable, check_exportable,
                                   describe_capsule, dlpackjl_layout)
from pymsde.util.errors import DataError


def _julia_view(ex):
    """What Julia's ``reshape(from_dlpack(flat), julia_size...)`` is, built with numpy: a
    column-major array of the reversed shape over the exported buffer (read from the capsule)."""
    info = describe_capsule(ex.flat.__dlpack__())
    assert info.shape == (ex.flat.numel(),) and info.strides in (None, (1,))
    itemsize = ex.tensor.element_size()
    buf = (ctypes.c_char * (ex.flat.numel() * itemsize)).from_address(info.data_ptr + info.byte_offset)
    dtype = {torch.float64: np.float64, torch.float32: np.float32, torch.int64: np.int64,
             torch.complex128: np.complex128}[ex.tensor.dtype]
    return np.ndarray(ex.julia_size, dtype=dtype, buffer=buf, order="F")


def test_torch_to_numpy_shares_memory():
    t = torch.zeros(2, 3, 5, dtype=torch.float64)
    a = np.from_dlpack(t)
    a[1, 2, 4] = 7.5
    assert t[1, 2, 4].item() == 7.5
    t[0, 0, 0] = -2.0
    assert a[0, 0, 0] == -2.0


def test_numpy_to_torch_shares_memory():
    a = np.zeros((4, 6), dtype=np.float32)
    t = torch.from_dlpack(a)
    t[3, 5] = 1.25
    assert a[3, 5] == np.float32(1.25)
    assert t.data_ptr() == a.__array_interface__["data"][0]


def test_torch_to_torch_through_a_capsule_shares_memory():
    t = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    u = torch.utils.dlpack.from_dlpack(t.__dlpack__())
    u[2, 3] = 100.0
    assert t[2, 3].item() == 100.0
    assert u.data_ptr() == t.data_ptr()


def test_capsule_describes_the_tensor():
    t = torch.zeros(2, 3, 7, dtype=torch.float64)
    info = describe_capsule(t.__dlpack__())
    assert info.shape == (2, 3, 7) and info.strides == (21, 7, 1)
    assert (info.dtype_code, info.dtype_bits, info.dtype_lanes) == (KDL_FLOAT, 64, 1)
    assert (info.device_type, info.device_id) == (KDL_CPU, 0)
    assert info.data_ptr == t.data_ptr()
    # a view that starts inside its storage: torch folds the offset into the data pointer
    # (DLPack.jl ignores byte_offset, so this must hold for the bridge to be right)
    v = torch.arange(10, dtype=torch.int64)[3:]
    vi = describe_capsule(v.__dlpack__())
    assert v.data_ptr() == v.untyped_storage().data_ptr() + 3 * 8
    assert vi.byte_offset == 0 and vi.data_ptr == v.data_ptr()
    assert (vi.dtype_code, vi.dtype_bits) == (KDL_INT, 64)


def test_julia_sees_a_column_major_array_with_reversed_axes():
    t = torch.randn(2, 3, 5, dtype=torch.float64)
    ex = as_exportable(t)
    assert ex.julia_size == (5, 3, 2) and not ex.copied and ex.julia_eltype == "Float64"
    assert ex.flat.data_ptr() == t.data_ptr()
    jv = _julia_view(ex)
    # Julia index [j, c, b] (1-based) is torch [b-1, c-1, j-1]
    for b, c, j in [(0, 0, 0), (1, 2, 4), (1, 0, 3), (0, 1, 2)]:
        assert jv[j, c, b] == t[b, c, j].item()
    jv[4, 1, 0] = 42.0                       # a "Julia" write...
    assert t[0, 1, 4].item() == 42.0         # ...is seen by torch


def test_dlpackjl_rule_misreads_size_one_axes_and_the_flat_export_does_not():
    # torch calls this C-contiguous; its strides (1, 1) also fit the column-major reading,
    # which DLPack.jl prefers: it would hand Julia a (1, 4) array instead of (4, 1).
    t = torch.arange(4.0, dtype=torch.float64).reshape(4, 1).t()
    assert t.is_contiguous() and t.stride() == (1, 1)
    assert dlpackjl_layout(describe_capsule(t.__dlpack__())) == ("col", (1, 4))
    # an ordinary C-contiguous tensor is read row-major with reversed axes
    u = torch.zeros(2, 3, dtype=torch.float64)
    assert dlpackjl_layout(describe_capsule(u.__dlpack__())) == ("row", (3, 2))
    # the bridge exports a 1-D buffer (one reading only) and reshapes to the reversed size
    ex = as_exportable(t)
    assert dlpackjl_layout(describe_capsule(ex.flat.__dlpack__())) == ("col", (4,))
    assert ex.julia_size == (4, 1)
    assert _julia_view(ex)[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_non_contiguous_is_refused_with_the_strides_named():
    t = torch.zeros(3, 4, dtype=torch.float64).t()
    with pytest.raises(DataError, match=r"strides \(1, 4\).*expected C-contiguous strides \(3, 1\)"):
        check_exportable(t, name="u")
    with pytest.raises(DataError, match="^u: non-contiguous"):
        as_exportable(t, name="u")


def test_non_contiguous_explicit_copy_is_flagged_and_does_not_alias():
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    t = base[:, ::2]
    ex = as_exportable(t, allow_copy=True)
    assert ex.copied and ex.tensor.is_contiguous()
    assert torch.equal(ex.tensor, t)
    assert ex.julia_size == (2, 3)
    _julia_view(ex)[0, 0] = -1.0
    assert ex.tensor[0, 0].item() == -1.0 and base[0, 0].item() == 0.0   # the copy, not the original


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.complex64, torch.bool, torch.int32])
def test_unsupported_dtypes_are_refused(dtype):
    t = torch.zeros(3, dtype=dtype)
    with pytest.raises(DataError, match=r"dtype .* cannot be shared with Julia; expected one of float32, float64, int64, complex128"):
        check_exportable(t, name="w")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.complex128])
def test_supported_dtypes_pass(dtype):
    ex = as_exportable(torch.ones(2, 2, dtype=dtype))
    assert ex.julia_eltype == {torch.float32: "Float32", torch.float64: "Float64", torch.int64: "Int64",
                               torch.complex128: "ComplexF64"}[dtype]
    info = describe_capsule(ex.flat.__dlpack__())
    assert info.dtype_bits == 8 * ex.tensor.element_size() and info.shape == (4,)


def test_devices():
    with pytest.raises(DataError, match="device meta; expected cpu or cuda"):
        check_exportable(torch.empty(3, device="meta"), name="x")
    with pytest.raises(DataError, match="expected a torch.Tensor, found ndarray"):
        check_exportable(np.zeros(3), name="x")
    if torch.cuda.is_available():
        c = torch.zeros(3, device="cuda")
        with pytest.raises(DataError, match="no functional CUDA.jl"):
            check_exportable(c, name="x")
        check_exportable(c, name="x", cuda_ok=True)


def test_requires_grad_is_detached_without_copy():
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    ex = as_exportable(w)
    assert not ex.tensor.requires_grad and not ex.copied
    assert ex.tensor.data_ptr() == w.data_ptr()
    ex.flat.__dlpack__()  # would raise for a tensor that requires grad


def test_capsule_keeps_the_storage_alive():
    # The producer's deleter owns the buffer: dropping the tensor in Python does not free it
    # while a consumer (here the capsule; in pymsde DLPack.jl's wrapped array) holds it.
    t = torch.full((1000,), 3.0, dtype=torch.float64)
    cap = t.__dlpack__()
    ptr = describe_capsule(cap).data_ptr
    del t
    gc.collect()
    torch.zeros(1000, dtype=torch.float64)  # an allocation that could reuse freed memory
    vals = np.ctypeslib.as_array((ctypes.c_double * 1000).from_address(ptr))
    assert np.all(vals == 3.0)
    u = torch.utils.dlpack.from_dlpack(cap)  # consuming it hands the ownership on
    assert u.data_ptr() == ptr and float(u.sum()) == 3000.0


def test_julia_wrappers_keep_exported_temporaries_alive_until_the_call_returns(monkeypatch):
    """The Julia wrappers export `.contiguous()` copies (here of a broadcast `mu` and per-sample
    times) that no other Python object owns. A stand-in for Julia that holds only weak
    references sees every exported buffer alive during the call (the wrappers keep them),
    and nothing is kept after it."""
    import weakref

    from pymsde.data.grid import Grid
    from pymsde.backends import julia
    from pymsde.model.multiscale import MultiscaleModel

    model = MultiscaleModel.build(Grid((16,), ((0.0, 1.0),), ("periodic",)), 4, micro_dim=2, drift_hidden=(8,),
                                  micro_hidden=(8,), encoder_channels=(2, 4), n_mu=1)
    params = model.drift_params().detach()
    seen = []

    def wrap_tensor(flat, *size):
        return weakref.ref(flat)                                   # Julia holds nothing strongly

    def drift(*args):
        gc.collect()
        arrays = [a for a in args if isinstance(a, weakref.ref)]
        seen.append(len(arrays))
        assert all(a() is not None for a in arrays), "an exported buffer was freed during the call"

    fns = {"wrap_tensor": wrap_tensor, "multiscale_drift!": drift}
    monkeypatch.setattr(julia, "_fn", lambda name: fns[name])
    monkeypatch.setattr(julia, "cuda_functional", lambda: False)
    z = torch.randn(3, params.latent_dim)
    mu = torch.tensor([[0.5]]).expand(3, 1)                       # a stride-0 view: copied on export
    julia.multiscale_drift(params, torch.tensor([0.1, 0.2, 0.3]), z, mu=mu)
    assert seen == [3 + 2 * (len(params.macro_weights) + len(params.micro_weights)) + 1]   # out, z, mu, t, weights
    assert julia._PENDING.items == []


def test_the_dlpack_layer_imports_nothing_of_the_julia_bridge():
    """dlpack.py is the lower layer: julia.py imports it, never the other way round (no import
    cycle, not even a lazy one inside a function)."""
    import ast
    import inspect

    from pymsde.backends import dlpack

    tree = ast.parse(inspect.getsource(dlpack))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [m for m in imported if m and "julia" in m] == []
    assert not any("julia" in name.lower() for name in dlpack.__all__)
