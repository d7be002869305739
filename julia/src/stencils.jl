# Boundary padding, stencil gathers and finite differences: the port of
# pymsde/numerics/padding.py and pymsde/numerics/stencils.py.
#
# Arrays are in the Julia layout (see the module docstring): spatial dimensions first
# (dimension 1 = the last torch axis), then channel, then batch. `boundary` is given per
# Julia spatial dimension.

# Boundary codes used inside the kernels (plain integers: GPU-friendly).
const PERIODIC = 0   # wrap around
const EDGE = 1       # Dirichlet or outflow, repeat the boundary value
const ZEROS = 2      # Dirichlet, zeros outside
const MIRROR = 3     # slip: mirror about the face, the wall-normal velocity negated

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

Integer codes (`PERIODIC`, `EDGE`, `ZEROS`, `MIRROR`) per dimension (`:periodic`,
`:dirichlet`, `:outflow`, `:slip`; `pymsde.numerics.padding.PAD_RULES`); `dirichlet_mode` is
`:edge` (repeat the boundary value) or `:zeros`, for Dirichlet dimensions only. Throws
`ArgumentError` for unknown names.
"""
function boundary_codes(boundary, dirichlet_mode)
    mode = Symbol(dirichlet_mode)
    mode in (:edge, :zeros) ||
        throw(ArgumentError("dirichlet_mode $(repr(mode)); expected :edge or :zeros"))
    return map(parse_boundary(boundary)) do bc
        bc === :periodic && return PERIODIC
        bc === :dirichlet && return mode === :edge ? EDGE : ZEROS
        bc === :outflow && return EDGE
        bc === :slip && return MIRROR
        throw(ArgumentError("unknown boundary type $(repr(bc)); expected periodic, dirichlet, outflow or slip"))
    end
end

# Index `i` (possibly outside 1:n) mapped into 1:n by the boundary rule; for ZEROS the
# clamped index is returned and `inside` tells whether the value is a real one. MIRROR is
# symmetric about the faces: 0 -> 1, -1 -> 2, n + 1 -> n (torch's -1 -> 0, n -> n - 1).
@inline mirror_index(i, n) = i < 1 ? 1 - i : (i > n ? 2n + 1 - i : i)
@inline wrap_index(i, n, code) = code == PERIODIC ? mod1(i, n) : (code == MIRROR ? mirror_index(i, n) : clamp(i, 1, n))
@inline inside(i, n, code) = code != ZEROS || (1 <= i <= n)

# The sign of a padded value: -1 for the wall-normal velocity outside a slip dimension. On a
# field of D channels on D dimensions, channel c is the velocity along torch axis c - 1,
# which is Julia dimension D - c + 1; a scalar (one channel on D > 1 dimensions) keeps +1.
@inline function slip_sign(src, sizes, codes, c, C)
    D = length(codes)
    C == D || return 1
    a = D - c + 1
    return codes[a] == MIRROR && !(1 <= src[a] <= sizes[a]) ? -1 : 1
end

# torch's `check_padding` for a slip dimension: the field is a scalar or the velocity.
function check_slip_channels(fname, codes, C)
    D = length(codes)
    for k in D:-1:1                       # torch's axis order, so the first one named is torch's
        codes[k] == MIRROR && !(C == D || (C == 1 && D > 1)) &&
            throw(ArgumentError("slip boundary on axis $(D - k): the field has $C channels; expected $D " *
                                "(the velocity, channel i along axis i)" * (D > 1 ? " or 1 (a scalar)" : "")))
    end
    return nothing
end

# torch's `pad` refuses a periodic pad wider than the axis (`narrow` cannot take more points
# than there are); `mod1` would wrap around several times instead. Every kernel entry point
# refuses the same inputs, with torch's message; a slip (mirror) pad likewise.
function check_periodic_width(fname, w, n)
    w > n && throw(ArgumentError("$fname: periodic padding of $w points on an axis of $n points"))
    return nothing
end

function check_pad_width(fname, w, n, code)
    code == PERIODIC && check_periodic_width(fname, w, n)
    code == MIRROR && w > n &&
        throw(ArgumentError("$fname: slip padding (a mirror image) of $w points on an axis of $n points"))
    return nothing
end

# The kernels read their `@Const` input while they write `out`: the two must not share memory
# (KernelAbstractions wraps such kernels in an alias scope that promises it; see
# docs/julia.md, "KernelAbstractions issue #652").
function check_no_alias(fname, out, x)
    Base.mightalias(out, x) &&
        throw(ArgumentError("$fname: out shares memory with the input it reads; pass a separate output array"))
    return nothing
end

# Wait for a KernelAbstractions launch on the CPU (GPU launches stay ordered on the stream,
# so nothing is waited for there: the next kernel or CUBLAS call follows on the same stream).
@inline launched(backend) = backend isa KernelAbstractions.CPU ? KernelAbstractions.synchronize(backend) : nothing

@kernel function pad_kernel!(out, @Const(x), widths, codes)
    I = @index(Global, Cartesian)
    D = length(codes)
    J = ntuple(k -> k <= D ? wrap_index(I[k] - widths[k], size(x, k), codes[k]) : I[k], Val(ndims(x)))
    ok = all(ntuple(k -> k > D || inside(I[k] - widths[k], size(x, k), codes[k]), Val(ndims(x))))
    src = ntuple(k -> I[k] - widths[k], Val(length(codes)))
    s = ndims(x) > D ? slip_sign(src, size(x), codes, I[min(D + 1, ndims(x))], size(x, min(D + 1, ndims(x)))) : 1
    @inbounds out[I] = ok ? s * x[J...] : zero(eltype(out))
end

"""
    pad!(out, x, widths, boundary, dirichlet_mode=:edge) -> out

Port of `pymsde.numerics.padding.pad`: extend each of the first `D = length(boundary)`
dimensions of `x` by `widths[k]` points on both sides (periodic: wrap around; Dirichlet:
repeat the edge value, or zeros with `dirichlet_mode = :zeros`; outflow: repeat the edge value;
slip: mirror about the face, the wall-normal velocity -- channel `D - k + 1` of dimension `D + 1`
on a field of `D` channels -- negated). The remaining dimensions are copied. `out` must have size `size(x, k) + 2 widths[k]` in the first `D` dimensions.
`widths` is an integer, a tuple, or a comma-separated string.
"""
function pad!(out::AbstractArray, x::AbstractArray, widths, boundary, dirichlet_mode=:edge)
    codes = boundary_codes(boundary, dirichlet_mode)
    D = length(codes)
    w = widths isa Integer ? ntuple(_ -> Int(widths), D) : as_tuple(widths, Int)
    length(w) == D || throw(ArgumentError("pad!: $(length(w)) widths for $D boundary types"))
    ndims(x) >= D || throw(DimensionMismatch("pad!: x has $(ndims(x)) dimensions for $D boundary types"))
    MIRROR in codes && ndims(x) == D &&
        throw(ArgumentError("slip boundary on axis $(D - findlast(==(MIRROR), codes)): the field has no channel axis; " *
                            "expected $D (the velocity, channel i along axis i)" * (D > 1 ? " or 1 (a scalar)" : "")))
    ndims(x) > D && check_slip_channels("pad!", codes, size(x, D + 1))
    for k in 1:D
        w[k] >= 0 || throw(ArgumentError("pad!: negative width $(w[k]) on dimension $k"))
        check_pad_width("pad!", w[k], size(x, k), codes[k])
        size(out, k) == size(x, k) + 2w[k] ||
            throw(DimensionMismatch("pad!: out has $(size(out, k)) points on dimension $k, expected $(size(x, k) + 2w[k])"))
    end
    size(out)[D+1:end] == size(x)[D+1:end] || throw(DimensionMismatch("pad!: trailing dimensions differ"))
    check_no_alias("pad!", out, x)
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
    s = slip_sign(src, size(x), codes, c + 1, size(x, D + 1))
    @inbounds out[I] = ok ? s * x[J..., c + 1, I[D+2]] : zero(eltype(out))
end

"""
    gather_stencil!(out, x, radius, boundary, dirichlet_mode=:edge) -> out

Port of `pymsde.numerics.padding.gather_stencil`. `x` has size `(n_1, ..., n_D, C, B)`;
`out` has size `(C (2r+1)^D, n_1, ..., n_D, B)`: for every point, its `(2r+1)^D`
neighbourhood, channel slowest, offsets with dimension 1 fastest -- the memory of torch's
`(B, *grid, C (2r+1)^d)` result, whose offsets run in `itertools.product` order over the torch
axes. A periodic dimension with fewer points than `radius` is refused (`ArgumentError`), as
torch's `pad` refuses it: the stencil would wrap around more than once.
"""
function gather_stencil!(out::AbstractArray, x::AbstractArray, radius::Integer, boundary,
                         dirichlet_mode=:edge)
    codes = boundary_codes(boundary, dirichlet_mode)
    D = length(codes)
    ndims(x) == D + 2 || throw(DimensionMismatch("gather_stencil!: x must have $D spatial dims + channel + batch"))
    radius >= 0 || throw(ArgumentError("gather_stencil!: negative radius $radius"))
    check_slip_channels("gather_stencil!", codes, size(x, D + 1))
    for k in 1:D
        check_pad_width("gather_stencil!", radius, size(x, k), codes[k])
    end
    C, B = size(x, D + 1), size(x, D + 2)
    expected = (C * (2radius + 1)^D, size(x)[1:D]..., B)
    size(out) == expected || throw(DimensionMismatch("gather_stencil!: out has size $(size(out)), expected $expected"))
    check_no_alias("gather_stencil!", out, x)
    backend = get_backend(out)
    gather_kernel!(backend)(out, x, Int(radius), codes; ndrange=size(out))
    launched(backend)
    return out
end

"""
    fd_weights(deriv, offsets) -> Vector{Float64}

Weights `w` with `f^(deriv)(0) ≈ Σ w_i f(offsets_i)` on a unit grid, exact for polynomials of
degree `length(offsets) - 1`: the moment equations solved in exact rational arithmetic, then
rounded (port of `pymsde.numerics.stencils.fd_weights`).
"""
function fd_weights(deriv::Integer, offsets)::Vector{Float64}
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
function extrapolation_weights(order::Integer)::Matrix{Float64}
    r = order ÷ 2
    r >= 1 || throw(ArgumentError("extrapolation_weights: order $order has no ghost points (r = $r)"))
    rows = [fd_weights(0, (0:order) .+ g) for g in 1:r]
    return permutedims(reduce(hcat, rows))
end

"""
    CentralStencil{N,R,M,T}

A central stencil in the form the kernel takes: `weights`, the `N = 2R + 1` already scaled
weights; `ghosts`, `R` rows of `M = order + 1` Dirichlet extrapolation weights (row `g` for
the ghost point `g` outside the boundary; zeros on a periodic axis, which never reads them);
`periodic`. Every length is a type parameter, so the launch and the loops inside the kernel
are resolved at compile time. Built once per run by [`central_stencil`](@ref) (the exact
rational solve of the ghost weights runs there, not per launch).
"""
struct CentralStencil{N,R,M,T}
    weights::NTuple{N,T}
    ghosts::NTuple{R,NTuple{M,T}}
    periodic::Bool
end

# :periodic or :dirichlet, else ArgumentError
function boundary_symbol(boundary)
    bc = only(parse_boundary(boundary))
    bc in (:periodic, :dirichlet) || throw(ArgumentError("unknown boundary type $(repr(bc)); expected periodic or dirichlet"))
    return bc
end

# The ghost rows of a stencil of order P in element type T, from `Em =
# extrapolation_weights(P)` (unused, and may be `nothing`, on a periodic axis).
function ghost_rows(::Type{T}, periodic::Bool, Em, ::Val{P}) where {T,P}
    R = P ÷ 2
    (periodic || R == 0) && return ntuple(_ -> ntuple(_ -> zero(T), Val(P + 1)), Val(R))
    return ntuple(g -> ntuple(i -> T(Em[g, i])::T, Val(P + 1)), Val(R))
end

"""
    central_stencil(T, weights, boundary, order) -> CentralStencil

The [`CentralStencil`](@ref) of the scaled `weights` (`2r + 1` numbers, `r = order ÷ 2`,
converted to `T` as torch converts its Python-float weights to the tensor's dtype) on one
`boundary` (`:periodic` or `:dirichlet`). `order` may be given as `Val(order)` (a caller
that knows it statically avoids the one dynamic dispatch); `Em` is
`extrapolation_weights(order)` when the caller has it already (several stencils of one order).
"""
central_stencil(::Type{T}, weights, boundary, order::Integer, Em=nothing) where {T} =
    central_stencil(T, weights, boundary, Val(Int(order)), Em)

function central_stencil(::Type{T}, weights, boundary, ::Val{P}, Em=nothing) where {T,P}
    P >= 0 || throw(ArgumentError("central_stencil: accuracy order $P must not be negative"))
    bc = boundary_symbol(boundary)
    R = P ÷ 2
    length(weights) == 2R + 1 ||
        throw(ArgumentError("apply_central!: $(length(weights)) weights for order $P; expected $(2R + 1)"))
    periodic = bc === :periodic
    E = (periodic || R == 0) ? nothing : (Em === nothing ? extrapolation_weights(P) : Em)
    w = ntuple(i -> T(weights[i])::T, Val(2R + 1))
    return CentralStencil{2R + 1,R,P + 1,T}(w, ghost_rows(T, periodic, E, Val(P)), periodic)
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
# values' summation order. `w` and `E` are tuples of static length (a `CentralStencil`'s
# fields), so `r` and the loops are compile-time constants.
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
    apply_central!(out, u, dim, stencil::CentralStencil) -> out

Port of `pymsde.numerics.stencils.apply_central` applied to `pad_axis(u, dim, order, boundary)`:
`out[.., i, ..] = Σ_j weights[j] u[.., i + j - r - 1, ..]` along Julia dimension `dim`, with the
ghost points of `boundary` (periodic wrap, or degree-`order` Dirichlet extrapolation through the
`order + 1` points nearest the boundary). `weights` are the already scaled stencil weights
(`2r + 1` of them, `r = order ÷ 2`). `out` and `u` have the same size and must not share
memory. The first form builds the [`CentralStencil`](@ref) on every call; loops that apply the
same stencil many times build it once ([`central_stencil`](@ref)) and call the second form.
As torch's `pad_axis`, it refuses a periodic axis with fewer than `r` points and a Dirichlet
axis with fewer than `order + 1` points (`ArgumentError`).
"""
function apply_central!(out::AbstractArray{T}, u::AbstractArray{T}, dim::Integer, weights, boundary,
                        order::Integer=length(weights) - 1) where {T}
    return apply_central!(out, u, dim, central_stencil(T, weights, boundary, order))
end

function apply_central!(out::AbstractArray{T}, u::AbstractArray{T}, dim::Integer,
                        s::CentralStencil{N,R,M,T}) where {N,R,M,T}
    1 <= dim <= ndims(u) || throw(ArgumentError("apply_central!: dimension $dim of a $(ndims(u))-dimensional array"))
    size(out) == size(u) || throw(DimensionMismatch("apply_central!: out and u differ in size"))
    check_no_alias("apply_central!", out, u)
    n = size(u, dim)
    if s.periodic
        check_periodic_width("apply_central!", R, n)
    else
        n >= M || throw(ArgumentError("Dirichlet axis of $n points; the order-$(M - 1) closure needs at least $M"))
    end
    backend = get_backend(out)
    central_kernel!(backend)(out, u, s.weights, s.ghosts, Int(dim), s.periodic; ndrange=size(out))
    launched(backend)
    return out
end

"""
    derivative!(out, u, dim, deriv, dx, boundary, order=4) -> out

Port of `pymsde.numerics.stencils.derivative`: central finite difference of order `order`
(2, 4, 6) for the `deriv`-th derivative (1 or 2) along Julia dimension `dim` (torch spatial
axis `d - dim` of a `d`-D field), spacing `dx`. Periodic dimensions wrap; Dirichlet dimensions
use `r` ghost points extrapolated with degree `order` from the `order + 1` points nearest the
boundary. The weights are divided by `dx^deriv` (in Float64) before they are applied, as in
torch. `out` and `u` have the same size.
"""
function derivative!(out::AbstractArray{T}, u::AbstractArray{T}, dim::Integer, deriv::Integer,
                     dx::Real, boundary, order::Integer=4) where {T}
    w = central_weights(deriv, order) ./ Float64(dx)^deriv
    return apply_central!(out, u, dim, central_stencil(T, w, boundary, order))
end
