# Boundary padding, stencil gathers and finite differences: the port of
# pymsde/kernels/padding.py and pymsde/kernels/stencils.py.
#
# Arrays are in the Julia layout (see the module docstring): spatial dimensions first
# (dimension 1 = the last torch axis), then channel, then batch. `boundary` is given per
# Julia spatial dimension.

# Boundary codes used inside the kernels (plain integers: GPU-friendly).
const PERIODIC = 0   # wrap around
const EDGE = 1       # Dirichlet, repeat the boundary value
const ZEROS = 2      # Dirichlet, zeros outside

"""
    parse_boundary(b) -> NTuple{N,Symbol}

Boundary types per spatial dimension from a tuple of names or a comma-separated string
(`"periodic,dirichlet"`, the form the Python bridge passes).
"""
parse_boundary(b::AbstractString) = Tuple(Symbol(strip(s)) for s in split(b, ","))
parse_boundary(b::Symbol) = (b,)
parse_boundary(b::Tuple) = map(Symbol, b)

"""
    as_tuple(x, T) -> NTuple{N,T}

Numbers per dimension from a tuple/vector or a comma-separated string (the bridge's form).
"""
as_tuple(x::AbstractString, ::Type{T}) where {T} = Tuple(parse(T, strip(s)) for s in split(x, ","))
as_tuple(x::Real, ::Type{T}) where {T} = (T(x),)
as_tuple(x, ::Type{T}) where {T} = Tuple(T.(x))

"""
    boundary_codes(boundary, dirichlet_mode) -> NTuple{N,Int}

Integer codes (`PERIODIC`, `EDGE`, `ZEROS`) per dimension; `dirichlet_mode` is `:edge`
(repeat the boundary value) or `:zeros`. Throws `ArgumentError` for unknown names.
"""
function boundary_codes(boundary, dirichlet_mode)
    mode = Symbol(dirichlet_mode)
    mode in (:edge, :zeros) ||
        throw(ArgumentError("dirichlet_mode $(repr(mode)); expected :edge or :zeros"))
    return map(parse_boundary(boundary)) do bc
        bc === :periodic && return PERIODIC
        bc === :dirichlet && return mode === :edge ? EDGE : ZEROS
        throw(ArgumentError("unknown boundary type $(repr(bc)); expected periodic or dirichlet"))
    end
end

# Index `i` (possibly outside 1:n) mapped into 1:n by the boundary rule; for ZEROS the
# clamped index is returned and `inside` tells whether the value is a real one.
@inline wrap_index(i, n, code) = code == PERIODIC ? mod1(i, n) : clamp(i, 1, n)
@inline inside(i, n, code) = code != ZEROS || (1 <= i <= n)

# Wait for a KernelAbstractions launch on the CPU (GPU launches stay ordered on the stream,
# so nothing is waited for there: the next kernel or CUBLAS call follows on the same stream).
@inline launched(backend) = backend isa KernelAbstractions.CPU ? KernelAbstractions.synchronize(backend) : nothing

@kernel function pad_kernel!(out, @Const(x), widths, codes)
    I = @index(Global, Cartesian)
    D = length(codes)
    J = ntuple(k -> k <= D ? wrap_index(I[k] - widths[k], size(x, k), codes[k]) : I[k], Val(ndims(x)))
    ok = all(ntuple(k -> k > D || inside(I[k] - widths[k], size(x, k), codes[k]), Val(ndims(x))))
    @inbounds out[I] = ok ? x[J...] : zero(eltype(out))
end

"""
    pad!(out, x, widths, boundary, dirichlet_mode=:edge) -> out

Port of `pymsde.kernels.padding.pad`: extend each of the first `D = length(boundary)`
dimensions of `x` by `widths[k]` points on both sides (periodic: wrap around; Dirichlet:
repeat the edge value, or zeros with `dirichlet_mode = :zeros`). The remaining dimensions are
copied. `out` must have size `size(x, k) + 2 widths[k]` in the first `D` dimensions.
`widths` is an integer, a tuple, or a comma-separated string.
"""
function pad!(out::AbstractArray, x::AbstractArray, widths, boundary, dirichlet_mode=:edge)
    codes = boundary_codes(boundary, dirichlet_mode)
    D = length(codes)
    w = widths isa Integer ? ntuple(_ -> Int(widths), D) : as_tuple(widths, Int)
    length(w) == D || throw(ArgumentError("pad!: $(length(w)) widths for $D boundary types"))
    for k in 1:D
        codes[k] == PERIODIC && w[k] > size(x, k) &&
            throw(ArgumentError("periodic padding of $(w[k]) points on an axis of $(size(x, k)) points"))
        size(out, k) == size(x, k) + 2w[k] ||
            throw(DimensionMismatch("pad!: out has $(size(out, k)) points on dimension $k, expected $(size(x, k) + 2w[k])"))
    end
    size(out)[D+1:end] == size(x)[D+1:end] || throw(DimensionMismatch("pad!: trailing dimensions differ"))
    backend = get_backend(out)
    pad_kernel!(backend)(out, x, w, codes; ndrange=size(out))
    launched(backend)
    return out
end

@kernel function gather_kernel!(out, @Const(x), radius, codes)
    I = @index(Global, Cartesian)
    D = length(codes)
    w = 2radius + 1
    K = w^D
    c, k = divrem(I[1] - 1, K)                     # channel slowest, then the offset index
    # offset along Julia dimension a: digit a-1 of k in base w (dimension 1 fastest), which is
    # torch's itertools.product order (first torch axis slowest) read backwards
    src = ntuple(a -> I[a+1] + (k ÷ w^(a - 1)) % w - radius, Val(length(codes)))
    J = ntuple(a -> wrap_index(src[a], size(x, a), codes[a]), Val(length(codes)))
    ok = all(ntuple(a -> inside(src[a], size(x, a), codes[a]), Val(length(codes))))
    @inbounds out[I] = ok ? x[J..., c + 1, I[D+2]] : zero(eltype(out))
end

"""
    gather_stencil!(out, x, radius, boundary, dirichlet_mode=:edge) -> out

Port of `pymsde.kernels.padding.gather_stencil`. `x` has size `(n_1, ..., n_D, C, B)`;
`out` has size `(C (2r+1)^D, n_1, ..., n_D, B)`: for every point, its `(2r+1)^D`
neighbourhood, channel slowest, offsets with dimension 1 fastest -- the memory of torch's
`(B, *grid, C (2r+1)^d)` result, whose offsets run in `itertools.product` order over the torch
axes.
"""
function gather_stencil!(out::AbstractArray, x::AbstractArray, radius::Integer, boundary,
                         dirichlet_mode=:edge)
    codes = boundary_codes(boundary, dirichlet_mode)
    D = length(codes)
    ndims(x) == D + 2 || throw(DimensionMismatch("gather_stencil!: x must have $D spatial dims + channel + batch"))
    C, B = size(x, D + 1), size(x, D + 2)
    expected = (C * (2radius + 1)^D, size(x)[1:D]..., B)
    size(out) == expected || throw(DimensionMismatch("gather_stencil!: out has size $(size(out)), expected $expected"))
    backend = get_backend(out)
    gather_kernel!(backend)(out, x, Int(radius), codes; ndrange=size(out))
    launched(backend)
    return out
end

"""
    fd_weights(deriv, offsets) -> Vector{Float64}

Weights `w` with `f^(deriv)(0) ≈ Σ w_i f(offsets_i)` on a unit grid, exact for polynomials of
degree `length(offsets) - 1`: the moment equations solved in exact rational arithmetic, then
rounded (port of `pymsde.kernels.stencils.fd_weights`).
"""
function fd_weights(deriv::Integer, offsets)
    n = length(offsets)
    deriv < n || throw(ArgumentError("fd_weights: derivative $deriv needs more than $n points"))
    A = [Rational{BigInt}(o)^k for k in 0:n-1, o in offsets]
    rhs = [k == deriv ? Rational{BigInt}(factorial(big(deriv))) : Rational{BigInt}(0) for k in 0:n-1]
    return Float64.(A \ rhs)
end

"""
    central_weights(deriv, order) -> Vector{Float64}

Central stencil for offsets `-r:r`, `r = order ÷ 2`, accuracy `order` ∈ (2, 4, 6).
"""
function central_weights(deriv::Integer, order::Integer)
    order in (2, 4, 6) || throw(ArgumentError("accuracy order $order; expected one of (2, 4, 6)"))
    r = order ÷ 2
    deriv <= 2r || throw(ArgumentError("derivative $deriv needs a wider stencil than order $order"))
    return fd_weights(deriv, -r:r)
end

"""
    extrapolation_weights(order) -> Matrix{Float64}

Ghost-point weights for a Dirichlet axis, `r × (order + 1)`: row `g` gives the value `g`
points outside the boundary from the `order + 1` points nearest it (boundary first).
"""
function extrapolation_weights(order::Integer)
    r = order ÷ 2
    rows = [fd_weights(0, (0:order) .+ g) for g in 1:r]
    return permutedims(reduce(hcat, rows))
end

# Value at index j (1-based, possibly a ghost point) along dimension `dim` of the line of u
# through I: periodic wrap, or the Dirichlet ghost-point extrapolation E (tuple of rows).
@inline function line_value(u, I, dim, j, n, periodic, E)
    if 1 <= j <= n
        return @inbounds u[Base.setindex(Tuple(I), j, dim)...]
    elseif periodic
        return @inbounds u[Base.setindex(Tuple(I), mod1(j, n), dim)...]
    end
    g = j < 1 ? 1 - j : j - n
    wg = E[g]
    acc = zero(eltype(u))
    for i in 0:length(wg)-1
        src = j < 1 ? 1 + i : n - i
        acc += wg[i+1] * @inbounds u[Base.setindex(Tuple(I), src, dim)...]
    end
    return acc
end

# The central stencil of `stencils.apply_central` along dimension `dim`: weights `w`
# (already divided by dx^deriv, as torch does), the centre term first, then for j = 1..r the
# pair (+j, -j) combined exactly as torch combines it (w (x+ + x-), w (x+ - x-) or the plain
# sum), added in the same order: the same operations, so the same rounding up to the ghost
# values' summation order.
@kernel function central_kernel!(out, @Const(u), w, E, dim, periodic)
    I = @index(Global, Cartesian)
    n = size(u, dim)
    r = (length(w) - 1) ÷ 2
    i = I[dim]
    acc = zero(eltype(out))
    wc = w[r+1]
    if !iszero(wc)
        acc = line_value(u, I, dim, i, n, periodic, E) * wc
    end
    for j in 1:r
        wp = w[r+1+j]
        wm = w[r+1-j]
        (iszero(wp) && iszero(wm)) && continue      # torch skips zero pairs too
        xp = line_value(u, I, dim, i + j, n, periodic, E)
        xm = line_value(u, I, dim, i - j, n, periodic, E)
        term = wp == wm ? (xp + xm) * wp : (wp == -wm ? (xp - xm) * wp : xp * wp + xm * wm)
        acc += term
    end
    @inbounds out[I] = acc
end

"""
    apply_central!(out, u, dim, weights, boundary, order=(length(weights) - 1)) -> out

Port of `pymsde.kernels.stencils.apply_central` applied to `pad_axis(u, dim, order, boundary)`:
`out[.., i, ..] = Σ_j weights[j] u[.., i + j - r - 1, ..]` along Julia dimension `dim`, with the
ghost points of `boundary` (periodic wrap, or degree-`order` Dirichlet extrapolation through the
`order + 1` points nearest the boundary). `weights` are the already scaled stencil weights
(`2r + 1` of them, `r = order ÷ 2`). `out` and `u` have the same size.
"""
function apply_central!(out::AbstractArray{T}, u::AbstractArray{T}, dim::Integer, weights, boundary,
                        order::Integer=length(weights) - 1) where {T}
    bc = only(parse_boundary(boundary))
    bc in (:periodic, :dirichlet) || throw(ArgumentError("unknown boundary type $(repr(bc)); expected periodic or dirichlet"))
    size(out) == size(u) || throw(DimensionMismatch("apply_central!: out and u differ in size"))
    r = order ÷ 2
    length(weights) == 2r + 1 ||
        throw(ArgumentError("apply_central!: $(length(weights)) weights for order $order; expected $(2r + 1)"))
    bc === :dirichlet && size(u, dim) < order + 1 &&
        throw(ArgumentError("Dirichlet axis of $(size(u, dim)) points; the order-$order closure needs at least $(order + 1)"))
    bc === :periodic && size(u, dim) < r &&
        throw(ArgumentError("apply_central!: $(size(u, dim)) points are fewer than the stencil radius $r"))
    w = Tuple(T.(weights))
    Em = extrapolation_weights(order)
    E = ntuple(g -> Tuple(T.(Em[g, :])), size(Em, 1))
    backend = get_backend(out)
    central_kernel!(backend)(out, u, w, E, Int(dim), bc === :periodic; ndrange=size(out))
    launched(backend)
    return out
end

"""
    derivative!(out, u, dim, deriv, dx, boundary, order=4) -> out

Port of `pymsde.kernels.stencils.derivative`: central finite difference of order `order`
(2, 4, 6) for the `deriv`-th derivative (1 or 2) along Julia dimension `dim` (torch spatial
axis `d - dim` of a `d`-D field), spacing `dx`. Periodic dimensions wrap; Dirichlet dimensions
use `r` ghost points extrapolated with degree `order` from the `order + 1` points nearest the
boundary. The weights are divided by `dx^deriv` (in Float64) before they are applied, as in
torch. `out` and `u` have the same size.
"""
function derivative!(out::AbstractArray{T}, u::AbstractArray{T}, dim::Integer, deriv::Integer,
                     dx::Real, boundary, order::Integer=4) where {T}
    w = central_weights(deriv, order) ./ Float64(dx)^deriv
    return apply_central!(out, u, dim, w, boundary, order)
end
