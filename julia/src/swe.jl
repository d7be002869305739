# The 2-D shallow-water finite-volume solver: port of pymsde/systems/swe.py (swe_run and what it
# calls). MUSCL face values of the primitive variables (h, u, v) with the MC or minmod limiter,
# HLL fluxes with Einfeldt's wave speeds for (h, h u_n), the tangential momentum carried upwind
# by the mass flux, SSP-RK2 (Heun) or SSP-RK3, a CFL step per trajectory and output interval.
#
# Julia layout: torch's conserved state q (B, 3, nx, ny) arrives as (ny, nx, 3, B). Julia
# dimension 1 is torch's y axis, dimension 2 its x axis; channel 1 is the depth h, 2 the
# x-momentum hu, 3 the y-momentum hv. Spacings and boundary names are per Julia dimension (the
# bridge reverses torch's order). Every arithmetic step is torch's, in torch's order.

# Boundary codes of the solver (plain integers inside the kernels).
const SWE_OUTFLOW = 0      # zero-gradient ghost cells (PDEBench's extrapolation)
const SWE_REFLECTIVE = 1   # closed wall: mirrored cells, normal velocity negated
const SWE_PERIODIC = 2

function swe_codes(boundary)
    return map(parse_boundary(boundary)) do bc
        bc === :outflow && return SWE_OUTFLOW
        bc === :reflective && return SWE_REFLECTIVE
        bc === :periodic && return SWE_PERIODIC
        throw(ArgumentError("swe: unknown boundary $(repr(bc)); expected outflow, reflective or periodic"))
    end
end

# The momentum channel normal to Julia dimension `dim` (2 = torch x: hu; 1 = torch y: hv), and
# the tangential one.
@inline swe_normal(dim) = dim == 2 ? 2 : 3
@inline swe_tangential(dim) = dim == 2 ? 3 : 2

# Cell `j` (1-based, up to two ghost cells beyond either end) of a line of `n` cells: the cell
# it reads and whether the normal velocity changes sign. Outflow clamps (torch's pad_axis),
# periodic wraps, a reflective wall mirrors (torch: flip of the two cells next to it).
@inline function swe_ghost(j, n, code)
    1 <= j <= n && return (j, false)
    code == SWE_PERIODIC && return (mod1(j, n), false)
    code == SWE_OUTFLOW && return (clamp(j, 1, n), false)
    return (j < 1 ? 1 - j : 2n + 1 - j, true)
end

# Primitive variable `c` (1: h, else the velocity q_c / h) of cell `j` along `dim` on the line
# through (i1, i2) of sample b, ghost cells included.
@inline function swe_primitive(q, i1, i2, b, dim, j, c, code, nrm)
    src, flip = swe_ghost(j, size(q, dim), code)
    k1, k2 = dim == 1 ? (src, i2) : (i1, src)
    h = @inbounds q[k1, k2, 1, b]
    c == 1 && return h
    w = @inbounds(q[k1, k2, c, b]) / h
    return (flip && c == nrm) ? -w : w
end

# torch's _limited_slope: minmod(a, b), or MC written as (sign a + sign b) min(|a|, |b|, |a + b|/4).
@inline function swe_slope(a, b, mc::Bool)
    T = typeof(a)
    m = min(abs(a), abs(b))
    mc || return T(0.5) * (sign(a) + sign(b)) * m
    return (sign(a) + sign(b)) * min(m, T(0.25) * abs(a + b))
end

# MUSCL value of channel c of cell j on the face on its `side` (+1: the face after it, the
# left state of that face; -1: the face before it, the right state).
@inline function swe_face_value(q, i1, i2, b, dim, j, c, code, nrm, mc, side)
    wm = swe_primitive(q, i1, i2, b, dim, j - 1, c, code, nrm)
    w0 = swe_primitive(q, i1, i2, b, dim, j, c, code, nrm)
    wp = swe_primitive(q, i1, i2, b, dim, j + 1, c, code, nrm)
    s = swe_slope(w0 - wm, wp - w0, mc)
    half = typeof(w0)(0.5) * s
    return side > 0 ? w0 + half : w0 - half
end

"""
    hll_flux(hl, unl, utl, hr, unr, utr, g, sg=sqrt(g)) -> (f_h, f_n, f_t)

Normal flux through one face from the left and right depth, normal and tangential velocity
(port of `swe.hll_flux`): HLL with Einfeldt's wave speeds for `(h, h u_n)`, the tangential
momentum carried upwind by the mass flux (HLLC's passive-scalar flux). Scalars, torch's
operations in torch's order.
"""
@inline function hll_flux(hl, unl, utl, hr, unr, utr, g, sg=sqrt(g))
    T = typeof(hl)
    sql, sqr = sqrt(hl), sqrt(hr)
    u_roe = (sql * unl + sqr * unr) / (sql + sqr)
    c_roe = sqrt((T(0.5) * g) * (hl + hr))
    s_l = min(min(unl - sg * sql, u_roe - c_roe), zero(T))
    s_r = max(max(unr + sg * sqr, u_roe + c_roe), zero(T))
    inv = one(T) / (s_r - s_l)
    ml, mr = hl * unl, hr * unr
    slr = s_l * s_r
    f_h = (s_r * ml - s_l * mr + slr * (hr - hl)) * inv
    f_n = (s_r * (ml * unl + (T(0.5) * g) * hl * hl) - s_l * (mr * unr + (T(0.5) * g) * hr * hr) + slr * (mr - ml)) * inv
    f_t = f_h * (f_h > 0 ? utl : utr)
    return f_h, f_n, f_t
end

# The fluxes through the faces normal to Julia dimension `dim`: `flux` has one more entry than
# the cells along `dim` (face f between cells f - 1 and f), channels (h, hu, hv), samples last.
@kernel function swe_flux_kernel!(flux, @Const(q), dim, code, g, sg, mc)
    I = @index(Global, Cartesian)
    i1, i2, b = I[1], I[2], I[3]
    f = dim == 1 ? i1 : i2
    nrm, tng = swe_normal(dim), swe_tangential(dim)
    hl = swe_face_value(q, i1, i2, b, dim, f - 1, 1, code, nrm, mc, 1)
    unl = swe_face_value(q, i1, i2, b, dim, f - 1, nrm, code, nrm, mc, 1)
    utl = swe_face_value(q, i1, i2, b, dim, f - 1, tng, code, nrm, mc, 1)
    hr = swe_face_value(q, i1, i2, b, dim, f, 1, code, nrm, mc, -1)
    unr = swe_face_value(q, i1, i2, b, dim, f, nrm, code, nrm, mc, -1)
    utr = swe_face_value(q, i1, i2, b, dim, f, tng, code, nrm, mc, -1)
    f_h, f_n, f_t = hll_flux(hl, unl, utl, hr, unr, utr, g, sg)
    @inbounds flux[i1, i2, 1, b] = f_h
    @inbounds flux[i1, i2, nrm, b] = f_n
    @inbounds flux[i1, i2, tng, b] = f_t
end

# dq/dt = -(div_x / dx_x + div_y / dx_y), torch's order (x = Julia dimension 2 first).
@kernel function swe_divergence_kernel!(dq, @Const(f1), @Const(f2), dx1, dx2)
    I = @index(Global, Cartesian)
    i1, i2, c, b = I[1], I[2], I[3], I[4]
    d2 = (@inbounds(f2[i1, i2+1, c, b]) - @inbounds(f2[i1, i2, c, b])) / dx2
    d1 = (@inbounds(f1[i1+1, i2, c, b]) - @inbounds(f1[i1, i2, c, b])) / dx1
    @inbounds dq[I] = -(d2 + d1)
end

function swe_check(q, codes, dxs)
    ndims(q) == 4 && size(q, 3) == 3 || throw(DimensionMismatch("swe: q has size $(size(q)); expected (ny, nx, 3, B)"))
    length(codes) == 2 == length(dxs) ||
        throw(ArgumentError("swe: $(length(codes)) boundary names and $(length(dxs)) spacings; expected 2 of each"))
    for a in 1:2      # a reflective wall mirrors two cells (torch's narrow refuses fewer)
        codes[a] == SWE_REFLECTIVE && size(q, a) < 2 &&
            throw(ArgumentError("swe: dimension $a has $(size(q, a)) cells; a reflective wall needs at least 2"))
    end
    return nothing
end

# The right-hand side with preallocated face fluxes f1 ((n1 + 1, n2, 3, B)) and f2 ((n1, n2 + 1, 3, B)).
function swe_rhs_work!(dq, q, dxs, codes, g, mc::Bool, f1, f2)
    check_no_alias("swe_rhs!", dq, q)
    T = eltype(q)
    backend = get_backend(dq)
    gT = T(g)
    sg = sqrt(gT)
    swe_flux_kernel!(backend)(f1, q, 1, codes[1], gT, sg, mc; ndrange=(size(f1, 1), size(f1, 2), size(f1, 4)))
    swe_flux_kernel!(backend)(f2, q, 2, codes[2], gT, sg, mc; ndrange=(size(f2, 1), size(f2, 2), size(f2, 4)))
    launched(backend)
    swe_divergence_kernel!(backend)(dq, f1, f2, T(dxs[1]), T(dxs[2]); ndrange=size(dq))
    launched(backend)
    return dq
end

"""
    swe_rhs!(out, q, dx, boundary, g=1.0, limiter="mc") -> out

Semi-discrete right-hand side `dq/dt` of the conserved state `q` (`(ny, nx, 3, B)`, torch
`(B, 3, nx, ny)`), port of `swe.swe_rhs`. `dx` and `boundary` (`outflow`, `reflective`,
`periodic`) per Julia dimension (tuples or the bridge's comma-separated strings).
"""
function swe_rhs!(out::AbstractArray, q::AbstractArray, dx, boundary, g::Real=1.0, limiter::AbstractString="mc")
    codes, dxs = swe_codes(boundary), as_tuple(dx, Float64)
    swe_check(q, codes, dxs)
    size(out) == size(q) || throw(DimensionMismatch("swe_rhs!: out and q differ in size"))
    limiter in ("mc", "minmod") || throw(ArgumentError("swe: limiter $(repr(limiter)); expected mc or minmod"))
    n1, n2, _, B = size(q)
    return swe_rhs_work!(out, q, dxs, codes, g, limiter == "mc", similar(q, n1 + 1, n2, 3, B), similar(q, n1, n2 + 1, 3, B))
end

"""
    swe_wave_rate(q, dx, g) -> Vector

`max(|u| + c) / dx + max(|v| + c) / dy` per sample (`c = sqrt(g h)`, port of `swe.wave_rate`):
the CFL rate (1 / time); `dx` per Julia dimension, so torch's `dx[0]` is `dx[2]`.
"""
function swe_wave_rate(q::AbstractArray, dx, g::Real)
    dxs = as_tuple(dx, Float64)
    h = selectdim(q, 3, 1)
    c = sqrt.(g .* h)
    ax = vec(maximum(abs.(selectdim(q, 3, 2) ./ h) .+ c; dims=(1, 2)))
    ay = vec(maximum(abs.(selectdim(q, 3, 3) ./ h) .+ c; dims=(1, 2)))
    return ax ./ dxs[2] .+ ay ./ dxs[1]
end

"""
    swe_ssp_step(q, dt, rhs, order) -> q

One SSP Runge-Kutta step (`order` 2: Heun, 3: Shu-Osher; port of `swe.ssp_step`) of
`dq/dt = rhs(q)`; `dt` a number or an array broadcasting over the samples (`(1, 1, 1, B)`).
"""
function swe_ssp_step(q, dt, rhs, order::Integer)
    T = eltype(q)
    q1 = q .+ dt .* rhs(q)
    order == 2 && return T(0.5) .* ((q .+ q1) .+ dt .* rhs(q1))
    q2 = T(0.75) .* q .+ T(0.25) .* (q1 .+ dt .* rhs(q1))
    return q ./ T(3) .+ T(2 / 3) .* (q2 .+ dt .* rhs(q2))
end

"""
    swe_run!(out, steps, q0, t_out, dx, g, boundary, cfl, limiter, rk) -> Int

The whole run of `swe.swe_run`: `out` is `(ny, nx, n_save, n_t, B)` (torch `(B, n_t, n_save,
nx, ny)`, `n_save` 1 saves the depth, 3 the whole state), `steps` the `B` step counts (Int64,
added to), `q0` the state `(ny, nx, 3, B)`, `t_out` the `n_t` output times. Each output
interval is split per sample into `n_b = max(1, ceil(interval rate / cfl - 1e-9))` equal steps
(rate at its start, [`swe_wave_rate`](@ref)); the step is `Float32(interval) * inv(Float32(n_b))`
widened to the state's type, as torch computes `interval / n_b` (float32, its default dtype);
samples that are done keep their state while the others step on. Returns the number of frames
written: `n_t`, or fewer when the depth became non-finite or non-positive (the Python side
raises the torch loop's StabilityError).
"""
function swe_run!(out::AbstractArray, steps::AbstractVector, q0::AbstractArray, t_out::AbstractVector, dx, g::Real,
                  boundary, cfl::Real, limiter::AbstractString, rk::Integer)
    codes, dxs = swe_codes(boundary), as_tuple(dx, Float64)
    swe_check(q0, codes, dxs)
    limiter in ("mc", "minmod") || throw(ArgumentError("swe: limiter $(repr(limiter)); expected mc or minmod"))
    rk in (2, 3) || throw(ArgumentError("swe: rk = $rk; expected 2 or 3"))
    n1, n2, _, B = size(q0)
    times = Array{Float64}(Array(t_out))             # host copy: the loop reads it number by number
    n_t, n_save = length(times), size(out, 3)
    size(out) == (n1, n2, n_save, n_t, B) && n_save in (1, 3) && length(steps) == B ||
        throw(DimensionMismatch("swe_run!: out $(size(out)), steps $(length(steps)) for q0 $(size(q0)) and $n_t times"))
    T = eltype(q0)
    f1, f2 = similar(q0, n1 + 1, n2, 3, B), similar(q0, n1, n2 + 1, 3, B)
    rhs = x -> swe_rhs_work!(similar(x), x, dxs, codes, g, limiter == "mc", f1, f2)
    q = copy(q0)
    selectdim(out, 4, 1) .= view(q, :, :, 1:n_save, :)
    for i in 2:n_t
        interval = times[i] - times[i-1]
        n_b = max.(ceil.(Int, interval .* swe_wave_rate(q, dxs, T(g)) ./ cfl .- 1e-9), 1)
        dt = reshape(T.(Float32(interval) .* inv.(Float32.(n_b))), 1, 1, 1, B)
        k_min, k_max = minimum(n_b), maximum(n_b)
        for k in 0:k_max-1
            new = swe_ssp_step(q, dt, rhs, rk)
            q = k < k_min ? new : ifelse.(reshape(k .< n_b, 1, 1, 1, B), new, q)
        end
        steps .+= n_b
        (all(isfinite, q) && all(>(zero(T)), selectdim(q, 3, 1))) || return i - 1
        selectdim(out, 4, i) .= view(q, :, :, 1:n_save, :)
    end
    KernelAbstractions.synchronize(get_backend(out))
    return n_t
end
