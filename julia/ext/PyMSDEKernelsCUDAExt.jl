# NVIDIA GPUs for PyMSDEKernels: loaded automatically when CUDA.jl is loaded next to it.
#
# The kernels themselves need nothing here: KernelAbstractions picks `CUDABackend()` from
# `get_backend(::CuArray)` (defined by CUDA.jl), dense products on `CuArray`s go to CUBLAS,
# broadcasts compile to GPU kernels, and DLPack.jl's own CUDA extension wraps CUDA tensors
# from torch as `CuArray`s. What this extension adds: the GPU random number generator for
# Brownian increments drawn in Julia, and the `cuda_functional` hook the Python side asks.
module PyMSDEKernelsCUDAExt

using CUDA
import PyMSDEKernels

"""
    device_rng(z::CuArray, seed)

`CUDA.RNG(seed)` for increments drawn on the GPU (`CUDA.default_rng()` when `seed < 0`).
"""
PyMSDEKernels.device_rng(z::CUDA.CuArray, seed::Integer) =
    seed < 0 ? CUDA.default_rng() : CUDA.RNG(seed)

function __init__()
    PyMSDEKernels.CUDA_FUNCTIONAL[] = () -> CUDA.functional()
end

end # module PyMSDEKernelsCUDAExt
