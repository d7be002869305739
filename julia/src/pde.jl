# Right-hand sides, time steps and whole runs of the benchmark PDEs: port of
# pymsde/numerics/pde.py and the ETDRK4 coefficients of pymsde/numerics/spectral.py.
#
# Julia layout: a field (B, C, *grid) is (grid reversed..., C, B); rfft coefficients of a 1-D
# periodic field (B, C, n÷2+1) are (n÷2+1, C, B), transformed along dimension 1 (FFTW on the
# CPU; CUFFT through the same AbstractFFTs calls when the arrays are CuArrays). Spacings and
# boundary types are per Julia dimension.

# ------------------------------------------------------------------ Burgers, finite differences

"""
    burgers_stencils(T, dx, nu, boundary, order=4) -> NTuple{D,NTuple{2,CentralStencil}}

The stencils of [`burgers_rhs!`](@ref) per Julia dimension `a`: `(d/dx_a, nu d²/dx_a²)` with
torch's weights `c / dx_a` and `c nu / dx_a^2` (computed in Float64, then converted to `T`), and
the Dirichlet ghost weights of order `order`. One exact rational solve per run instead of one per
stencil application; all stencils have one concrete type, so the loops over them dispatch
statically.
"""
function burgers_stencils(::Type{T}, dx, nu::Real, boundary, order::Integer=4) where {T}
    bcs = map(boundary_symbol, parse_boundary(boundary))
    dxs = as_tuple(dx, Float64)
    length(dxs) == length(bcs) || throw(ArgumentError("burgers_rhs!: $(length(dxs)) spacings for $(length(bcs)) boundary types"))
    w1, w2 = central_weights(1, order), central_weights(2, order)
    P = Val(Int(order))
    Em = any(==(:dirichlet), bcs) ? extrapolation_weights(order) : nothing
    return ntuple(length(bcs)) do a
        # torch's weights: c / dx for d/dx, c * nu / dx^2 for the viscous term (nu folded in)
        (central_stencil(T, w1 ./ dxs[a], bcs[a], P, Em),
         central_stencil(T, (w2 .* Float64(nu)) ./ dxs[a]^2, bcs[a], P, Em))
    end
end

"""
    burgers_rhs!(out, u, dx, nu, boundary, order=4) -> out
    burgers_rhs!(out, u, stencils) -> out

`du/dt = -u Σ_a ∂u/∂x_a + ν Δu` by central differences of order `order`, advection in the
skew-symmetric form `(1/3) (u²)_x + (1/3) u u_x` (port of `pde.burgers_rhs`). `u` is
`(grid..., C, B)`; `dx`, `boundary` per Julia dimension. Dirichlet boundary nodes get a zero
time derivative (values held fixed). The second form takes the stencils of
[`burgers_stencils`](@ref), built once (what the run loops do).
"""
burgers_rhs!(out::AbstractArray{T}, u::AbstractArray{T}, dx, nu::Real, boundary, order::Integer=4) where {T} =
    burgers_rhs!(out, u, burgers_stencils(T, dx, nu, boundary, order))

function burgers_rhs!(out::AbstractArray{T}, u::AbstractArray{T}, stencils::Tuple) where {T}
    D = length(stencils)
    ndims(u) >= D || throw(DimensionMismatch("burgers_rhs!: u has $(ndims(u)) dimensions for $D spatial dimensions"))
    size(out) == size(u) || throw(DimensionMismatch("burgers_rhs!: out and u differ in size"))
    uu = u .* u
    d1, d2, d3 = similar(u), similar(u), similar(u)
    for a in D:-1:1            # torch sums its axes 0, 1, ...: Julia dimensions D, D-1, ...
        s1, s2 = stencils[a]
        apply_central!(d1, uu, a, s1)      # (u^2)_x
        apply_central!(d2, u, a, s1)       # u_x
        apply_central!(d3, u, a, s2)       # nu u_xx
        # skew-symmetric advection: (1/3) (u^2)_x + (1/3) u u_x
        if a == D
            out .= d3 .- (d1 .+ u .* d2) .* T(1 / 3)
        else
            out .= out .+ (d3 .- (d1 .+ u .* d2) .* T(1 / 3))
        end
    end
    for a in 1:D
        if !stencils[a][1].periodic
            selectdim(out, a, 1) .= zero(T)
            selectdim(out, a, size(out, a)) .= zero(T)
        end
    end
    return out
end

"""
    rk4_step(rhs, u, dt)

One classical Runge-Kutta step of `du/dt = rhs(u)` (port of `pde.rk4_step`).
"""
function rk4_step(rhs, u, dt)
    h = eltype(u)(dt)
    k1 = rhs(u)
    k2 = rhs(u .+ (h / 2) .* k1)
    k3 = rhs(u .+ (h / 2) .* k2)
    k4 = rhs(u .+ h .* k3)
    acc = (k1 .+ k4) .+ 2 .* (k2 .+ k3)
    return u .+ (h / 6) .* acc
end

"""
    burgers_rk4_step(u, dt, dx, nu, boundary, order=4)
    burgers_rk4_step(u, dt, stencils)

One RK4 step of [`burgers_rhs!`](@ref) (port of `pde.burgers_rk4_step`); the second form with
the stencils of [`burgers_stencils`](@ref).
"""
burgers_rk4_step(u, dt, dx, nu, boundary, order::Integer=4) =
    burgers_rk4_step(u, dt, burgers_stencils(eltype(u), dx, nu, boundary, order))

burgers_rk4_step(u, dt, stencils::Tuple) = rk4_step(v -> burgers_rhs!(similar(v), v, stencils), u, dt)

"""
    burgers_fd_run!(out, u0, dt, n_sub, dx, nu, boundary, order=4) -> out

The loop of `systems.solvers.integrate_burgers` (scheme "fd"): `out` is `(grid..., C, n_t, B)`
(torch `(B, n_t, C, *grid)`); `out[.., 1, :] = u0` and each further output follows `n_sub` RK4
steps of size `dt`. One call per simulation: the time loop stays in Julia, and the stencils are
built once for the whole run.
"""
function burgers_fd_run!(out::AbstractArray, u0::AbstractArray, dt::Real, n_sub::Integer, dx, nu::Real,
                         boundary, order::Integer=4)
    tdim = ndims(u0)                       # the time axis sits before the batch axis
    size(out) == (size(u0)[1:end-1]..., size(out, tdim), size(u0, tdim)) ||
        throw(DimensionMismatch("burgers_fd_run!: out has size $(size(out)) for u0 of size $(size(u0))"))
    fd_run_loop!(out, u0, dt, n_sub, burgers_stencils(eltype(u0), dx, nu, boundary, order))
    KernelAbstractions.synchronize(get_backend(out))
    return out
end

# The time loop of burgers_fd_run! behind a function barrier: `stencils` has a concrete type here.
function fd_run_loop!(out, u0, dt, n_sub, stencils)
    tdim = ndims(u0)
    u = copy(u0)
    selectdim(out, tdim, 1) .= u
    for i in 2:size(out, tdim)
        for _ in 1:n_sub
            u = burgers_rk4_step(u, dt, stencils)
        end
        selectdim(out, tdim, i) .= u
    end
    return out
end

# ------------------------------------------------------------------ pseudo-spectral ETDRK4

"""
    padded_square(v_hat, n)

rfft of `u²` without aliasing for `u = irfft(v_hat, n)`: the square is formed on `m = 3n/2`
(rounded up to even) points and truncated back (port of `spectral.padded_square`).
"""
function padded_square(v_hat::AbstractArray, n::Integer)
    m = 3n ÷ 2 + (3n ÷ 2) % 2
    M = size(v_hat, 1)
    vp = similar(v_hat, m ÷ 2 + 1, size(v_hat)[2:end]...)
    fill!(vp, 0)
    selectdim(vp, 1, 1:M) .= v_hat          # torch's irfft(v, n=m) pads with zeros the same way
    u = FFTW.irfft(vp, m, 1) .* (m / n)
    return selectdim(FFTW.rfft(u .* u, 1), 1, 1:n÷2+1) .* (n / m)
end

"""
    conservative_advection_hat(v_hat, k, mask, n, dealias="2/3")

rfft of `-(u²/2)_x` for `u = irfft(v_hat, n)`, zero outside `mask` (port of
`pde.conservative_advection_hat`); `k` the angular wavenumbers, `mask` 0/1 per mode.
"""
function conservative_advection_hat(v_hat::AbstractArray, k::AbstractVector, mask::AbstractVector, n::Integer,
                                    dealias::AbstractString="2/3")
    if dealias == "3/2"
        sq = padded_square(v_hat, n)
    else
        u = FFTW.irfft(v_hat, n, 1)
        sq = FFTW.rfft(u .* u, 1)
    end
    mult = ifelse.(mask .!= 0, ComplexF64(0, -0.5) .* k, zero(ComplexF64))
    return sq .* mult
end

"""
    etd_coefficients(lin, dt, n_contour=64) -> (E, E2, Q, f1, f2, f3)

ETDRK4 coefficients (Cox-Matthews, Kassam-Trefethen contour averages on the full unit circle)
for `v' = lin v + N(v)` with diagonal `lin` (port of `spectral.etd_coefficients`): with
`z = lin dt` and the `n_contour` points `r_j = exp(2πi (j - 1/2) / n_contour)` on the unit
circle, `Q = dt mean_j (exp(lr/2) - 1) / lr`, `f1 = dt mean_j (-4 - lr + e^lr (4 - 3lr + lr²)) / lr³`,
`f2 = dt mean_j (2 + lr + e^lr (lr - 2)) / lr³`, `f3 = dt mean_j (-4 - 3lr - lr² + e^lr (4 - lr)) / lr³`
(`lr = z + r_j`), `E = exp(z)`, `E2 = exp(z/2)`; all ComplexF64 vectors of `lin`'s length. The
full circle (not Kassam-Trefethen's upper half plus a real part) because KdV's `lin` is imaginary.
"""
function etd_coefficients(lin::AbstractVector, dt::Real, n_contour::Integer=64)
    z = ComplexF64.(lin) .* dt
    r = exp.(2im * pi .* ((1:n_contour) .- 0.5) ./ n_contour)
    lr = z .+ transpose(r)
    e_lr = exp.(lr)
    avg(x) = vec(sum(x; dims=2)) ./ n_contour
    q = dt .* avg((exp.(lr ./ 2) .- 1) ./ lr)
    f1 = dt .* avg((-4 .- lr .+ e_lr .* (4 .- 3 .* lr .+ lr .^ 2)) ./ lr .^ 3)
    f2 = dt .* avg((2 .+ lr .+ e_lr .* (-2 .+ lr)) ./ lr .^ 3)
    f3 = dt .* avg((-4 .- 3 .* lr .- lr .^ 2 .+ e_lr .* (4 .- lr)) ./ lr .^ 3)
    return exp.(z), exp.(z ./ 2), q, f1, f2, f3
end

"""
    etdrk4_step(v_hat, coeffs, nonlinear)

One ETDRK4 step of `v' = L v + N(v)` with the coefficients of [`etd_coefficients`](@ref)
(vectors over the modes, dimension 1 of `v_hat`); port of `pde.etdrk4_step`.
"""
function etdrk4_step(v_hat, coeffs, nonlinear)
    e, e2, q, f1, f2, f3 = coeffs
    nv = nonlinear(v_hat)
    a = e2 .* v_hat .+ q .* nv
    na = nonlinear(a)
    b = e2 .* v_hat .+ q .* na
    nb = nonlinear(b)
    c = e2 .* a .+ q .* (2 .* nb .- nv)
    nc = nonlinear(c)
    return e .* v_hat .+ f1 .* nv .+ 2 .* f2 .* (na .+ nb) .+ f3 .* nc
end

"""
    advection_etdrk4_step(v_hat, coeffs, k, mask, n, dealias="2/3")

One ETDRK4 step of pseudo-spectral `u_t + (u²/2)_x = L u` on one periodic axis (KdV or 1-D
Burgers; port of `pde.advection_etdrk4_step`). `v_hat` is `(n÷2+1, C, B)`.
"""
advection_etdrk4_step(v_hat, coeffs, k, mask, n::Integer, dealias::AbstractString="2/3") =
    etdrk4_step(v_hat, coeffs, w -> conservative_advection_hat(w, k, mask, n, dealias))

"""
    spectral_run!(out, v0_hat, E, E2, Q, f1, f2, f3, k, mask, n, dealias, n_sub) -> out

The loop of `systems.solvers._integrate_spectral`: `out` is `(n, C, n_t, B)` (torch
`(B, n_t, C, n)`); `out[:, :, 1, :] = irfft(v0_hat)`, each further output follows `n_sub`
ETDRK4 steps.
"""
function spectral_run!(out::AbstractArray, v0_hat::AbstractArray, E, E2, Q, f1, f2, f3, k, mask, n::Integer,
                       dealias::AbstractString, n_sub::Integer)
    coeffs = (E, E2, Q, f1, f2, f3)
    v = copy(v0_hat)
    selectdim(out, 3, 1) .= FFTW.irfft(v, n, 1)
    for i in 2:size(out, 3)
        for _ in 1:n_sub
            v = advection_etdrk4_step(v, coeffs, k, mask, n, dealias)
        end
        selectdim(out, 3, i) .= FFTW.irfft(v, n, 1)
    end
    KernelAbstractions.synchronize(get_backend(out))
    return out
end

# ------------------------------------------------------------------ Burgers, finite volume (coarse)

"""
    minmod(a, b)

The minmod limiter (port of `pde.minmod`): the argument of smaller magnitude when both have one
sign, else 0; `(sign(a) + sign(b)) / 2 * min(|a|, |b|)` (torch multiplies by 0.5, the same number).
"""
minmod(a, b) = (sign(a) + sign(b)) / 2 * min(abs(a), abs(b))

"""
    burgers_fv_rhs!(out, c, dx, nu, boundary, faces) -> out

Finite-volume `dc/dt` of `u_t + Σ_a (u²/2)_{x_a} = ν Δu` on cell averages (port of
`pde.burgers_fv_rhs`): MUSCL-minmod face states, Rusanov flux, central viscous flux. `c` is
`(cells..., C, B)`; `faces[a]` is `nothing` (periodic) or `(lo, hi)`, the fixed face values
shaped like `c` with dimension `a` of size 1.
"""
function burgers_fv_rhs!(out::AbstractArray{T}, c::AbstractArray{T}, dx, nu::Real, boundary, faces) where {T}
    bcs = parse_boundary(boundary)
    D = length(bcs)
    dx = as_tuple(dx, Float64)
    length(dx) == D || throw(ArgumentError("burgers_fv_rhs!: $(length(dx)) spacings for $D boundary types"))
    for a in D:-1:1                              # torch's axis order
        n = size(c, a)
        # the MUSCL stencil reaches two cells out (torch's narrow(dim, n - 2, 2) refuses n < 2)
        n >= 2 || throw(ArgumentError("burgers_fv_rhs!: dimension $a has $n cells; the MUSCL stencil needs at least 2"))
        sl(x, r) = selectdim(x, a, r)
        if bcs[a] === :periodic
            cp = cat(sl(c, n-1:n), c, sl(c, 1:2); dims=a)
        else
            lo, hi = faces[a]
            # torch: 2 u_b - flip(c[0:2]) and 2 u_b - flip(c[n-2:n]) (odd reflection)
            g_lo = 2 .* lo .- cat(sl(c, 2:2), sl(c, 1:1); dims=a)      # ghosts -2, -1
            g_hi = 2 .* hi .- cat(sl(c, n:n), sl(c, n-1:n-1); dims=a)  # ghosts n, n+1
            cp = cat(g_lo, c, g_hi; dims=a)
        end
        d = sl(cp, 2:n+4) .- sl(cp, 1:n+3)
        slope = minmod.(sl(d, 1:n+2), sl(d, 2:n+3))
        cc = sl(cp, 2:n+3)
        ul = sl(cc .+ T(0.5) .* slope, 1:n+1)
        ur = sl(cc .- T(0.5) .* slope, 2:n+2)
        flux = T(0.25) .* (ul .* ul .+ ur .* ur) .- T(0.5) .* max.(abs.(ul), abs.(ur)) .* (ur .- ul)
        flux = flux .- T(nu / dx[a]) .* sl(d, 2:n+2)
        term = (sl(flux, 1:n) .- sl(flux, 2:n+1)) .* T(1 / dx[a])
        if a == D
            out .= term
        else
            out .= out .+ term
        end
    end
    return out
end

"""
    burgers_fv_run!(out, c0, dt, n_sub, dx, nu, boundary, faces) -> out

The loop of `systems.coarse.solve_coarse` for Burgers (the coarse finite-volume solver): `out`
is `(cells..., C, n_t, B)` (torch `(B, n_t, C, *cells)`); `out[.., 1, :] = c0` and each further
output follows `n_sub` SSP-RK3 steps of size `dt` of [`burgers_fv_rhs!`](@ref) with the fixed
face values `faces` (per Julia dimension `nothing` or `(lo, hi)`). One call per solve.
"""
function burgers_fv_run!(out::AbstractArray, c0::AbstractArray, dt::Real, n_sub::Integer, dx, nu::Real,
                         boundary, faces::Tuple)
    tdim = ndims(c0)                       # the time axis sits before the batch axis
    size(out) == (size(c0)[1:end-1]..., size(out, tdim), size(c0, tdim)) ||
        throw(DimensionMismatch("burgers_fv_run!: out has size $(size(out)) for c0 of size $(size(c0))"))
    bcs = parse_boundary(boundary)
    dxs = as_tuple(dx, Float64)
    length(faces) == length(bcs) == length(dxs) ||
        throw(ArgumentError("burgers_fv_run!: $(length(faces)) face entries, $(length(dxs)) spacings for $(length(bcs)) boundary types"))
    rhs = v -> burgers_fv_rhs!(similar(v), v, dxs, nu, bcs, faces)
    c = copy(c0)
    selectdim(out, tdim, 1) .= c
    for i in 2:size(out, tdim)
        for _ in 1:n_sub
            c = ssprk3_step(rhs, c, dt)
        end
        selectdim(out, tdim, i) .= c
    end
    KernelAbstractions.synchronize(get_backend(out))
    return out
end

"""
    ssprk3_step(rhs, u, dt)

One strong-stability-preserving RK3 step (Shu-Osher; port of `pde.ssprk3_step`).
"""
function ssprk3_step(rhs, u, dt)
    T = eltype(u)
    h = T(dt)
    u1 = u .+ h .* rhs(u)
    u2 = T(0.75) .* u .+ T(0.25) .* (u1 .+ h .* rhs(u1))
    return u .* T(1 / 3) .+ T(2 / 3) .* (u2 .+ h .* rhs(u2))
end
