# NVIDIA GPUs for PyMSDEKernels: loaded automatically when CUDA.jl is loaded next to it.
#
# The kernels themselves need nothing here: KernelAbstractions picks `CUDABackend()` from
# `get_backend(::CuArray)` (defined by CUDA.jl), dense products on `CuArray`s go to CUBLAS,
# broadcasts compile to GPU kernels, and DLPack.jl's own CUDA extension wraps CUDA tensors
# from torch as `CuArray`s. What this extension adds: the GPU random number generator for
# Brownian increments drawn in Julia, the device binding (`select_device`) and the check that
# a wrapped tensor lives on the current device, and the `cuda_functional` hook the Python side
# asks. Written against CUDA.jl 5.x (the compat bound; see docs/julia.md).
module PyMSDEKernelsCUDAExt

using CUDA
import PyMSDEKernels

"""
    device_rng(z::CuArray, seed)

`CUDA.RNG(seed)` for increments drawn on the GPU (`CUDA.default_rng()` when `seed < 0`).
"""
PyMSDEKernels.device_rng(z::CUDA.CuArray, seed::Integer) =
    seed < 0 ? CUDA.default_rng() : CUDA.RNG(seed)

"""
    check_wrapped(A::CuArray) -> A

A tensor wrapped by DLPack.jl is tied to the context that was current (`unsafe_wrap`'s
default `ctx = context()`), whatever device its memory is on. Refuse the mismatch (memory of
device `i` wrapped while device `j` is current) instead of launching kernels on the wrong
device: the memory's device is the pointer attribute `CUDA.device(pointer(A))`.
"""
function PyMSDEKernels.check_wrapped(A::CUDA.CuArray)
    isempty(A) && return A
    mem = CUDA.deviceid(CUDA.device(pointer(A)))
    cur = CUDA.deviceid(CUDA.device(A))
    mem == cur || throw(ArgumentError("wrap_tensor: the tensor is on CUDA device $mem but device $cur is current; " *
                                      "call select_device($mem) first"))
    return A
end

function __init__()
    PyMSDEKernels.CUDA_FUNCTIONAL[] = () -> CUDA.functional()
    PyMSDEKernels.CUDA_DEVICE[] = ordinal -> (CUDA.device!(ordinal); nothing)
end

end # module PyMSDEKernelsCUDAExt
