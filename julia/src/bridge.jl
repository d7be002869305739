# The Python side's entry points (called by pymsde/backends/julia.py through juliacall).
#
# Arguments cross from Python as the types PythonCall converts without ambiguity: integers,
# floats, strings, `nothing`, and arrays. A torch tensor has no `__array_struct__`,
# `__array_interface__` or buffer, and the no-copy `PyArray` rule does not call `__array__`, so
# PythonCall hands it over as a `PyIterable` (collections.abc.Iterable, the next rule by
# priority); DLPack.jl's `from_dlpack` takes `Py`, `PyArray` and `PyIterable` alike and wraps
# it zero-copy (docs/julia.md, "How torch tensors arrive"). Tuples (boundary types, sizes) are
# passed as comma-separated strings.

"""
    wrap_tensor(t, dims...) -> Array

A Julia array of size `dims` over the memory of the 1-D, contiguous Python tensor `t`, without
a copy: `DLPack.from_dlpack(t)` (which calls `t.__dlpack__()`) reshaped to `dims`. pymsde passes
`tensor.reshape(-1)` and `dims = reverse(size(tensor))`, so a C-contiguous torch tensor becomes
the column-major array with the axes reversed. (A 1-D buffer has one unambiguous layout;
DLPack.jl would read some tensors with size-1 axes as column-major otherwise.)
The array is valid while the tensor's storage is: DLPack's deleter, run by the finalizer of the
wrapped array, releases torch's reference. A CUDA tensor must be on the task's current device
(call [`select_device`](@ref) first): DLPack.jl wraps its pointer in the current CUDA context
and ignores the capsule's device id; the CUDA extension checks the pointer's device.
"""
function wrap_tensor(t, dims::Integer...)
    v = DLPack.from_dlpack(t)
    ndims(v) == 1 || throw(ArgumentError("wrap_tensor: expected a 1-D tensor, got $(ndims(v)) dimensions"))
    check_wrapped(v)
    return reshape(v, Int.(dims))
end

# Checks of a freshly wrapped array (the CUDA extension adds the device check for CuArrays).
check_wrapped(A::AbstractArray) = A

"""
    share_with(A, from_dlpack) -> Python tensor

Hand a Julia array to Python without a copy: `DLPack.share(A, from_dlpack)` with e.g.
`torch.from_dlpack`; the Python tensor has the axes of `A` reversed. For a `CuArray` this goes
through DLPack.jl 0.3.1's `dldevice(::StridedCuArray)`, which names `CUDA.Mem.DeviceBuffer`:
defined (as a deprecated alias of `CUDA.DeviceMemory`) up to CUDA.jl 5.x, gone in 6.0 -- the
reason for the `CUDA = "5"` compat bound (docs/julia.md, "Dependencies and compat").
"""
share_with(A::AbstractArray, from_dlpack) = DLPack.share(A, from_dlpack)

"""
    drift_params_from_python(activation, radius, boundary, coarse, channels, micro_dim, n_mu, n_f,
                             [positional, [linear,]] n_macro, W1, b1, ..., Wn, bn, Q1, c1, ...) -> DriftParams

Build `DriftParams` from positional arguments: `boundary` and `coarse` as comma-separated
strings in Julia dimension order, optionally the `Bool` `positional` (Python passes it only when
true or when a linear term follows; absent means false), then optionally the matrix `linear`
of the linear stencil term (Python passes it only when the model has one), then `n_macro`
(weight, bias) pairs of the macroscale MLP followed by the microscale MLP's pairs (Julia
layout: weights `(in, out)`).
"""
function drift_params_from_python(activation_name::AbstractString, radius::Integer, boundary::AbstractString,
                                  coarse::AbstractString, channels::Integer, micro_dim::Integer,
                                  n_mu::Integer, n_f::Integer, positional::Bool, n_macro::Integer,
                                  arrays::AbstractArray...; linear=nothing)
    iseven(length(arrays)) || throw(ArgumentError("drift_params_from_python: weights and biases must alternate"))
    pairs = [(arrays[2k-1], arrays[2k]) for k in 1:length(arrays)÷2]
    # n_macro counts the macroscale MLP's layers (Python passes len(params.macro_weights))
    1 <= n_macro <= length(pairs) ||
        throw(ArgumentError("drift_params_from_python: n_macro = $n_macro macroscale layers, but $(length(pairs)) (weight, bias) pairs were passed"))
    cs = Tuple(parse(Int, s) for s in split(coarse, ","))
    return DriftParams(pairs[1:n_macro], pairs[n_macro+1:end], activation_name, radius, boundary, cs,
                       channels, micro_dim, n_mu, n_f; positional=positional, linear=linear)
end

# with the linear term (after the flag, before n_macro)
drift_params_from_python(activation_name::AbstractString, radius::Integer, boundary::AbstractString,
                         coarse::AbstractString, channels::Integer, micro_dim::Integer, n_mu::Integer,
                         n_f::Integer, positional::Bool, linear::AbstractMatrix, n_macro::Integer,
                         arrays::AbstractArray...) =
    drift_params_from_python(activation_name, radius, boundary, coarse, channels, micro_dim, n_mu, n_f, positional,
                             n_macro, arrays...; linear=linear)

# without the flag (at least one array, so no call matches both methods): positional = false
drift_params_from_python(activation_name::AbstractString, radius::Integer, boundary::AbstractString,
                         coarse::AbstractString, channels::Integer, micro_dim::Integer, n_mu::Integer,
                         n_f::Integer, n_macro::Integer, W1::AbstractArray, arrays::AbstractArray...) =
    drift_params_from_python(activation_name, radius, boundary, coarse, channels, micro_dim, n_mu, n_f, false,
                             n_macro, W1, arrays...)

"""
    multiscale_drift!(out, t, z, mu, f, param_args...) -> out

Bridge form of [`multiscale_drift!`](@ref): the drift parameters as the positional
arguments of [`drift_params_from_python`](@ref).
"""
multiscale_drift!(out::AbstractMatrix, t::Union{Real,AbstractVector}, z::AbstractMatrix, mu, f, param_args...) =
    multiscale_drift!(out, drift_params_from_python(param_args...), t, z, mu, f)

"""
    rollout!(zs, z0, sigma, t0, dt, n_steps, scheme, save_every, dW, dI, mu, f, seed, param_args...) -> zs

Bridge form of [`rollout!`](@ref) with the drift parameters as positional arguments.
"""
rollout!(zs, z0, sigma, t0, dt, n_steps, scheme, save_every, dW, dI, mu, f, seed::Integer,
         param_args...) =
    rollout!(zs, z0, sigma, t0, dt, n_steps, scheme, save_every, dW, dI, mu, f, seed,
             drift_params_from_python(param_args...))

"""
    face_pairs(arrays...) -> Tuple

The fixed face values of the finite-volume solver from the bridge's flat form: per Julia
dimension two arguments, `lo, hi` (arrays shaped like the cell field with that dimension of
size 1) or `nothing, nothing` (periodic).
"""
function face_pairs(arrays...)
    iseven(length(arrays)) || throw(ArgumentError("face_pairs: expected two entries (lo, hi) per dimension, got $(length(arrays))"))
    return ntuple(k -> arrays[2k-1] === nothing ? nothing : (arrays[2k-1], arrays[2k]), length(arrays) ÷ 2)
end

"""
    burgers_fv_rhs!(out, c, dx, nu, boundary, lo_1, hi_1, lo_2, hi_2, ...) -> out

Bridge form of [`burgers_fv_rhs!`](@ref): the face values flat, two per Julia dimension
(see [`face_pairs`](@ref)).
"""
burgers_fv_rhs!(out::AbstractArray, c::AbstractArray, dx, nu::Real, boundary, lo1, hi1, more...) =
    burgers_fv_rhs!(out, c, dx, nu, boundary, face_pairs(lo1, hi1, more...))

"""
    burgers_fv_run!(out, c0, dt, n_sub, dx, nu, boundary, lo_1, hi_1, ...) -> out

Bridge form of [`burgers_fv_run!`](@ref): the face values flat, two per Julia dimension.
"""
burgers_fv_run!(out::AbstractArray, c0::AbstractArray, dt::Real, n_sub::Integer, dx, nu::Real, boundary,
                lo1, hi1, more...) =
    burgers_fv_run!(out, c0, dt, n_sub, dx, nu, boundary, face_pairs(lo1, hi1, more...))

"""
    etd_coefficients!(E, E2, Q, f1, f2, f3, lin, dt, n_contour) -> nothing

Bridge form of [`etd_coefficients`](@ref): fills six preallocated ComplexF64 vectors.
"""
function etd_coefficients!(E, E2, Q, f1, f2, f3, lin::AbstractVector, dt::Real, n_contour::Integer)
    for (dst, src) in zip((E, E2, Q, f1, f2, f3), etd_coefficients(lin, dt, n_contour))
        copyto!(dst, src)
    end
    return nothing
end

"""
    synchronize_device(A)

Block until the kernels queued on `A`'s device have finished (before Python reads results).
"""
synchronize_device(A::AbstractArray) = KernelAbstractions.synchronize(get_backend(A))

# Set by the CUDA extension's __init__ (hooks rather than method redefinitions, which
# precompilation forbids).
const CUDA_FUNCTIONAL = Ref{Any}(nothing)
const CUDA_DEVICE = Ref{Any}(nothing)

"""
    select_device(ordinal) -> Int

Make the GPU with CUDA ordinal `ordinal` (torch's `tensor.device.index`) the calling task's
CUDA.jl device (`CUDA.device!(ordinal)`), before tensors on it are wrapped. Needed because
DLPack.jl's CUDA extension wraps a capsule's pointer with `unsafe_wrap(CuArray, ptr, dims)`,
whose context defaults to the task's current one (device 0 unless changed), and ignores the
capsule's `device_id`; the kernels, CUBLAS/CUFFT calls and [`synchronize_device`](@ref) then
all use that device and its task-local stream. Returns `ordinal`; `ArgumentError` when CUDA.jl
is not loaded.
"""
function select_device(ordinal::Integer)
    ordinal >= 0 || throw(ArgumentError("select_device: negative device ordinal $ordinal"))
    h = CUDA_DEVICE[]
    h === nothing && throw(ArgumentError("select_device: CUDA.jl is not loaded (PyMSDEKernelsCUDAExt is inactive)"))
    h(Int(ordinal))
    return Int(ordinal)
end

"""
    cuda_functional() -> Bool

Whether CUDA.jl is loaded (the `PyMSDEKernelsCUDAExt` extension is active) and has a usable GPU.
"""
cuda_functional() = (h = CUDA_FUNCTIONAL[]; h === nothing ? false : Bool(h()))
