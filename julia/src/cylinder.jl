# Flow past a cylinder: port of the time loop of pymsde/systems/cylinder.py (cylinder_run and
# what it calls). Staggered (MAC) grid of square cells of side h, advection in flux form with
# third-order upwind-biased face values, the 5-point Laplacian, SSP-RK3 with a CFL step, the
# immersed disc (each control volume keeps 1 - chi of its velocity) and, after every stage, the
# exact projection: the Neumann Poisson problem solved by cosine transforms built on real FFTs.
#
# Julia layout: torch's u (nx + 1, ny) (x-faces) arrives as (ny, nx + 1), v (nx, ny + 1)
# (y-faces) as (ny + 1, nx), a cell field (nx, ny) as (ny, nx): Julia dimension 1 is y,
# dimension 2 is x. Inside the kernels the torch indices are used (0-based, i along x, j along
# y: Julia u[j + 1, i + 1] is torch u[i, j]), so each formula reads as the torch code.

#: explicit diffusion: dt nu / h^2 <= 0.3 (torch's VISCOUS_LIMIT)
const VISCOUS_LIMIT = 0.3
#: SSP-RK3 in Shu-Osher form (stage s: a_s u^n + (1 - a_s) (u_{s-1} + dt R(u_{s-1}))) and the
#: weight of stage s's forcing impulse, as torch's _RK3_A, _RK3_W
const RK3_A = (0.0, 0.75, 1.0 / 3.0)
const RK3_W = (0.25 * (2.0 / 3.0), 2.0 / 3.0, 1.0)

# torch's _pad_u: u at x-face i (-2 <= i <= nx + 2) and y-cell j (-2 <= j <= ny + 1): the inflow
# value upstream, zero gradient downstream, mirrored (slip) across the walls.
@inline function u_ghost(u, i, j, u_in)
    i < 0 && return u_in
    ny, nf = size(u, 1), size(u, 2)
    jj = j < 0 ? -1 - j : (j >= ny ? 2ny - 1 - j : j)
    return @inbounds u[jj+1, min(i, nf - 1)+1]
end

# torch's _pad_v: v at x-cell i (-2 <= i <= nx + 1) and y-face j (-2 <= j <= ny + 2): odd across
# the inflow face and the walls (v = 0 there), zero gradient downstream.
@inline function v_ghost(v, i, j)
    nf, nx = size(v, 1), size(v, 2)
    ny = nf - 1
    neg = false
    if i < 0
        i, neg = -1 - i, !neg
    elseif i >= nx
        i = nx - 1
    end
    if j < 0
        j, neg = -j, !neg
    elseif j > ny
        j, neg = 2ny - j, !neg
    end
    x = @inbounds v[j+1, i+1]
    return neg ? -x : x
end

# torch's _upwind3: the third-order upwind-biased face value between a1 and a2.
@inline upwind3(a0, a1, a2, a3, vel) = vel >= 0 ? (-a0 + 5 * a1 + 2 * a2) / 6 : (2 * a1 + 5 * a2 - a3) / 6

# x-flux of u at cell centre c (between x-faces c and c + 1), y-flux of u at the corner of x-face
# i and y-face k; the same two for v (x-face k, y-face j; cell centre c between y-faces c, c + 1).
@inline function u_flux_x(u, c, j, u_in)
    uc = eltype(u)(0.5) * (@inbounds(u[j+1, c+1]) + @inbounds(u[j+1, c+2]))
    return uc * upwind3(u_ghost(u, c - 1, j, u_in), u_ghost(u, c, j, u_in), u_ghost(u, c + 1, j, u_in),
                        u_ghost(u, c + 2, j, u_in), uc)
end

@inline function u_flux_y(u, v, i, k, u_in)
    vn = eltype(v)(0.5) * (@inbounds(v[k+1, i]) + @inbounds(v[k+1, i+1]))
    return vn * upwind3(u_ghost(u, i, k - 2, u_in), u_ghost(u, i, k - 1, u_in), u_ghost(u, i, k, u_in),
                        u_ghost(u, i, k + 1, u_in), vn)
end

@inline function v_flux_x(u, v, k, j)
    un = eltype(u)(0.5) * (@inbounds(u[j, k+1]) + @inbounds(u[j+1, k+1]))
    return un * upwind3(v_ghost(v, k - 2, j), v_ghost(v, k - 1, j), v_ghost(v, k, j), v_ghost(v, k + 1, j), un)
end

@inline function v_flux_y(v, i, c)
    vc = eltype(v)(0.5) * (@inbounds(v[c+1, i+1]) + @inbounds(v[c+2, i+1]))
    return vc * upwind3(v_ghost(v, i, c - 1), v_ghost(v, i, c), v_ghost(v, i, c + 1), v_ghost(v, i, c + 2), vc)
end

# du/dt on every x-face: zero on the inflow face, the convective outflow on the last face.
@kernel function u_momentum_kernel!(ru, @Const(u), @Const(v), nu_h, h, u_in)
    I = @index(Global, Cartesian)
    j, i = I[1] - 1, I[2] - 1
    nx = size(u, 2) - 1
    if i == 0
        r = zero(eltype(ru))
    elseif i == nx
        r = -u_in * (@inbounds(u[j+1, nx+1]) - @inbounds(u[j+1, nx])) / h
    else
        lap = u_ghost(u, i + 1, j, u_in) + u_ghost(u, i - 1, j, u_in) + u_ghost(u, i, j + 1, u_in) +
              u_ghost(u, i, j - 1, u_in) - 4 * @inbounds(u[j+1, i+1])
        dfx = u_flux_x(u, i, j, u_in) - u_flux_x(u, i - 1, j, u_in)
        dfy = u_flux_y(u, v, i, j + 1, u_in) - u_flux_y(u, v, i, j, u_in)
        r = (nu_h * lap - dfx - dfy) / h
    end
    @inbounds ru[I] = r
end

# dv/dt on every y-face: zero on the walls.
@kernel function v_momentum_kernel!(rv, @Const(u), @Const(v), nu_h, h)
    I = @index(Global, Cartesian)
    j, i = I[1] - 1, I[2] - 1
    ny = size(v, 1) - 1
    if j == 0 || j == ny
        r = zero(eltype(rv))
    else
        lap = v_ghost(v, i + 1, j) + v_ghost(v, i - 1, j) + v_ghost(v, i, j + 1) + v_ghost(v, i, j - 1) -
              4 * @inbounds(v[j+1, i+1])
        dfx = v_flux_x(u, v, i + 1, j) - v_flux_x(u, v, i, j)
        dfy = v_flux_y(v, i, j) - v_flux_y(v, i, j - 1)
        r = (nu_h * lap - dfx - dfy) / h
    end
    @inbounds rv[I] = r
end

"""
    cylinder_momentum(u, v, nu, h, u_in) -> (ru, rv)

`(du/dt, dv/dt)` without the pressure (port of `cylinder.momentum_rhs`): advection in flux form
with third-order upwind-biased face values plus `nu` times the 5-point Laplacian on the interior
faces, the convective outflow `-u_in u_x` on the last x-face, zero on the inflow face and the
walls. `u` is `(ny, nx + 1)`, `v` `(ny + 1, nx)` (torch's `(nx + 1, ny)`, `(nx, ny + 1)`).
"""
function cylinder_momentum(u::AbstractMatrix{T}, v::AbstractMatrix{T}, nu::Real, h::Real, u_in::Real) where {T}
    size(u, 1) + 1 == size(v, 1) && size(u, 2) == size(v, 2) + 1 ||
        throw(DimensionMismatch("cylinder: u $(size(u)) and v $(size(v)); expected (ny, nx + 1) and (ny + 1, nx)"))
    ru, rv = similar(u), similar(v)
    backend = get_backend(u)
    u_momentum_kernel!(backend)(ru, u, v, T(nu / h), T(h), T(u_in); ndrange=size(ru))
    v_momentum_kernel!(backend)(rv, u, v, T(nu / h), T(h); ndrange=size(rv))
    launched(backend)
    return ru, rv
end

# ------------------------------------------------------------------ cosine transforms, Poisson

# Makhoul's reordering along `dim` (n even): forward x[0], x[2], ..., x[n-2], x[n-1], ..., x[1].
@kernel function dct_reorder_kernel!(out, @Const(x), dim, forward)
    I = @index(Global, Cartesian)
    n = size(x, dim)
    K = I[dim]
    src = forward ? (K <= n ÷ 2 ? 2K - 1 : 2n - 2K + 2) : (isodd(K) ? (K + 1) ÷ 2 : n - K ÷ 2 + 1)
    @inbounds out[I] = x[Base.setindex(Tuple(I), src, dim)...]
end

# X_k = 2 Re z_k (k <= n/2), -2 Im z_{n-k} (k > n/2), k 0-based.
@kernel function dct_pack_kernel!(X, @Const(z), dim)
    I = @index(Global, Cartesian)
    n = size(X, dim)
    K = I[dim]
    if K <= n ÷ 2 + 1
        @inbounds X[I] = 2 * real(z[I])
    else
        @inbounds X[I] = -2 * imag(z[Base.setindex(Tuple(I), n + 2 - K, dim)...])
    end
end

# V_k = (0.5 conj(w_k)) (X_k - i X_{n-k}), X_n read as 0 (k = 0 .. n/2, 0-based).
@kernel function dct_unpack_kernel!(V, @Const(X), @Const(w), dim)
    I = @index(Global, Cartesian)
    n = size(X, dim)
    K = I[dim]
    T = eltype(X)
    rev = K == 1 ? zero(T) : @inbounds(X[Base.setindex(Tuple(I), n - K + 2, dim)...])
    @inbounds V[I] = (T(0.5) * conj(w[K])) * complex(X[I], -rev)
end

# The twiddles exp(-i pi k / (2 n)), k = 0 .. n/2, as torch builds them, on the device of `like`.
function dct_twiddles(like::AbstractArray, n::Integer)
    k = collect(0.0:n÷2)
    w = exp.(complex.(0.0, (-0.5 * pi) .* k ./ n))
    return copyto!(similar(like, ComplexF64, length(w)), w)
end

function dct_reordered(x, dim, forward::Bool)
    out = similar(x)
    backend = get_backend(x)
    dct_reorder_kernel!(backend)(out, x, Int(dim), forward; ndrange=size(x))
    launched(backend)
    return out
end

"""
    dct2_forward(x, w, dim) -> X

The unnormalised DCT-II `X_k = 2 Σ_n x_n cos(π k (2n + 1) / (2N))` along dimension `dim`
(even length `N`) by one real FFT of length `N` (Makhoul's reordering; port of
`cylinder._CosineTransform.forward`). `w` the twiddles `exp(-iπk/(2N))`, `k = 0 .. N/2`, on the
array's device (`dct_twiddles`).
"""
function dct2_forward(x::AbstractArray, w::AbstractVector, dim::Integer)
    iseven(size(x, dim)) ||
        throw(ArgumentError("dct2: $(size(x, dim)) points along dimension $dim; expected an even number"))
    shape = ntuple(d -> d == dim ? length(w) : 1, ndims(x))
    z = FFTW.rfft(dct_reordered(x, dim, true), dim) .* reshape(w, shape)
    X = similar(x)
    backend = get_backend(x)
    dct_pack_kernel!(backend)(X, z, Int(dim); ndrange=size(X))
    launched(backend)
    return X
end

"""
    dct2_inverse(X, w, dim) -> x

The inverse of [`dct2_forward`](@ref) along dimension `dim`, by one inverse real FFT (port of
`cylinder._CosineTransform.inverse`).
"""
function dct2_inverse(X::AbstractArray, w::AbstractVector, dim::Integer)
    n = size(X, dim)
    iseven(n) || throw(ArgumentError("dct2: $n points along dimension $dim; expected an even number"))
    V = similar(X, complex(eltype(X)), ntuple(d -> d == dim ? n ÷ 2 + 1 : size(X, d), ndims(X)))
    backend = get_backend(X)
    dct_unpack_kernel!(backend)(V, X, w, Int(dim); ndrange=size(V))
    launched(backend)
    return dct_reordered(FFTW.irfft(V, n, dim), dim, false)
end

"""
    neumann_poisson(like, nx, ny, h) -> NamedTuple

The exact solver of the 5-point `lap psi = d` on `(ny, nx)` cells of side `h` (both even) with
zero normal gradient on every side (port of `cylinder.NeumannPoisson`): `inv = h^2 / λ` with
`λ = (2 cos(πk_x/n_x) - 2) + (2 cos(πk_y/n_y) - 2)` (0 for the mean) and the twiddles `wx`,
`wy` of both cosine transforms, on the device of `like`. Solve with [`poisson_solve`](@ref).
"""
function neumann_poisson(like::AbstractArray, nx::Integer, ny::Integer, h::Real)
    (iseven(nx) && iseven(ny)) || throw(ArgumentError("cylinder: $nx x $ny cells; expected even numbers"))
    lx = 2 .* cos.(pi .* collect(0.0:nx-1) ./ nx) .- 2
    ly = 2 .* cos.(pi .* collect(0.0:ny-1) ./ ny) .- 2
    lam = transpose(lx) .+ ly                      # (ny, nx): torch's lam[kx, ky] = lx[kx] + ly[ky]
    lam[1, 1] = 1.0
    inv = (h * h) ./ lam
    inv[1, 1] = 0.0
    return (inv=copyto!(similar(like, Float64, ny, nx), inv), wx=dct_twiddles(like, nx), wy=dct_twiddles(like, ny))
end

"""
    poisson_solve(solver, d) -> psi

`psi` `(ny, nx)` of mean zero with the 5-point `lap psi = d` and zero normal gradient (the mean
of `d` is ignored), as torch: `tx.inverse(ty.inverse(ty.forward(tx.forward(d)) * inv))`, x being
Julia dimension 2.
"""
poisson_solve(s, d::AbstractMatrix) =
    dct2_inverse(dct2_inverse(dct2_forward(dct2_forward(d, s.wx, 2), s.wy, 1) .* s.inv, s.wy, 1), s.wx, 2)

# ------------------------------------------------------------------ projection, forcing, one step

@kernel function mac_divergence_kernel!(div, @Const(u), @Const(v), h)
    I = @index(Global, Cartesian)
    j, i = I[1], I[2]
    @inbounds div[I] = (u[j, i+1] - u[j, i] + v[j+1, i] - v[j, i]) / h
end

function mac_divergence!(div, u, v, h)
    backend = get_backend(div)
    mac_divergence_kernel!(backend)(div, u, v, eltype(div)(h); ndrange=size(div))
    launched(backend)
    return div
end

"""
    cylinder_project!(u, v, solver, h, div) -> (u, v)

Make `(u, v)` discretely divergence-free in place, the boundary normal velocities kept (port of
`cylinder.project`): the outflow face is first shifted so that its flux equals the inflow's,
then the gradient of the Poisson solution ([`poisson_solve`](@ref)) of the divergence is
subtracted on the interior faces. `div` is a `(ny, nx)` work array.
"""
function cylinder_project!(u::AbstractMatrix, v::AbstractMatrix, solver, h::Real, div::AbstractMatrix)
    ny, nf = size(u)
    nx = nf - 1
    col = view(u, :, nf)
    col .+= (sum(view(u, :, 1)) - sum(col)) / ny
    psi = poisson_solve(solver, mac_divergence!(div, u, v, h))
    view(u, :, 2:nx) .-= (view(psi, :, 2:nx) .- view(psi, :, 1:nx-1)) ./ h
    view(v, 2:ny, :) .-= (view(psi, 2:ny, :) .- view(psi, 1:ny-1, :)) ./ h
    return u, v
end

# The bounding box of the disc in one volume-fraction array and the fractions on it (torch's
# disc_masks), found on the host.
function disc_mask(chi::AbstractMatrix)
    idx = findall(!iszero, Array(chi))
    isempty(idx) && throw(ArgumentError("cylinder: a volume fraction is zero everywhere; expected the disc"))
    box = (minimum(i -> i[1], idx):maximum(i -> i[1], idx), minimum(i -> i[2], idx):maximum(i -> i[2], idx))
    return (box, copy(view(chi, box...)))
end

# Keep 1 - chi of the velocity on the box (in place); the momentum removed, sum chi w.
function immersed_forcing!(w, mask)
    box, cb = mask
    part = view(w, box...)
    m = sum(cb .* part)
    part .*= (1 .- cb)
    return m
end

# torch.lerp(s, e, wt) as its vectorised CPU kernel computes it (fmadd).
@inline torch_lerp(s, e, wt) = abs(wt) < 0.5 ? fma(wt, e - s, s) : fma(wt - 1, e - s, e)

"""
    cylinder_rk3_step(u, v, dt, nu, u_in, h, masks, solver, div) -> (u, v, fx, fy)

One SSP-RK3 step with the immersed forcing and the projection after every stage (port of
`cylinder.rk3_step`; torch's `add(u, r, alpha=dt)` is `fma(dt, r, u)`, as its vectorised
kernel). `(fx, fy)` is the force on the body per unit span averaged over the step.
"""
function cylinder_rk3_step(u, v, dt::Real, nu::Real, u_in::Real, h::Real, masks, solver, div)
    un, vn = u, v
    T = eltype(u)
    fx = fy = 0.0
    for (a, w) in zip(RK3_A, RK3_W)
        ru, rv = cylinder_momentum(u, v, nu, h, u_in)
        u, v = fma.(T(dt), ru, u), fma.(T(dt), rv, v)
        if !iszero(a)
            u, v = torch_lerp.(u, un, T(a)), torch_lerp.(v, vn, T(a))
        end
        selectdim(u, 2, 1) .= T(u_in)
        mx = immersed_forcing!(u, masks[1])
        my = immersed_forcing!(v, masks[2])
        fx += w * mx * h * h / dt
        fy += w * my * h * h / dt
        cylinder_project!(u, v, solver, h, div)
    end
    return u, v, fx, fy
end

@kernel function output_field_kernel!(frame, @Const(u), @Const(v), r)
    I = @index(Global, Cartesian)
    oy, ox, c = I[1] - 1, I[2] - 1, I[3]
    T = eltype(frame)
    acc = zero(T)
    for a in 0:r-1, b in 0:r-1
        x, y = ox * r + a, oy * r + b
        acc += c == 1 ? T(0.5) * (@inbounds(u[y+1, x+1]) + @inbounds(u[y+1, x+2])) :
               T(0.5) * (@inbounds(v[y+1, x+1]) + @inbounds(v[y+2, x+1]))
    end
    @inbounds frame[I] = acc / (r * r)
end

"""
    cylinder_output_field!(frame, u, v, refine) -> frame

The cell-centred velocity block-averaged by `refine` and cropped to `frame`'s
`(ny ÷ refine, nx_out, 2)` (port of `cylinder.output_field`; torch `(2, nx_out, ny_out)`).
"""
function cylinder_output_field!(frame::AbstractArray, u::AbstractMatrix, v::AbstractMatrix, refine::Integer)
    size(frame, 1) * refine == size(u, 1) && size(frame, 2) * refine <= size(v, 2) && size(frame, 3) == 2 ||
        throw(DimensionMismatch("cylinder: frame $(size(frame)) for u $(size(u)) at refine $refine"))
    check_no_alias("cylinder_output_field!", frame, u)
    check_no_alias("cylinder_output_field!", frame, v)
    backend = get_backend(frame)
    output_field_kernel!(backend)(frame, u, v, Int(refine); ndrange=size(frame))
    launched(backend)
    return frame
end

probe_value(v, i, j) = (p = Array(view(v, j + 1, i:i+1)); 0.5 * (p[1] + p[2]))

"""
    cylinder_run!(frames, forces, probe_v, max_div, stats, u0, v0, chi_u, chi_v, h, nu, u_in, dt_out, cfl,
                  refine, probe_i, probe_j) -> Int

The time loop of `cylinder.cylinder_run`, from the forced and projected faces `u0` `(ny, nx + 1)`
and `v0` `(ny + 1, nx)` (not modified) with the volume fractions `chi_u`, `chi_v` of the same
sizes: `n_out - 1` output intervals, each of `n_sub = max(1, ceil(dt_out rate - 1e-9))` steps
of [`cylinder_rk3_step`](@ref), `rate = max(speed / (cfl h), nu / (0.3 h^2))` and `speed =
max|u| + max|v|` at its start. Fills `frames` `(ny ÷ refine, nx_out, 2, n_out)` (torch
`(n_out, 2, nx_out, ny_out)`), `forces` `(2, n_out - 1)` (`Fx, Fy` averaged over each interval),
`probe_v` (`v` averaged over the y-faces `(probe_i - 1, probe_j)` and `(probe_i, probe_j)`,
torch indices), `max_div` (`max |div u|` of the MAC field) and `stats = (steps, speed)`.
Returns 0; `i > 0` when the speed was not finite or exceeded `20 u_in` before output interval
`i` (then `stats[2]` is that speed); -1 when the final state is not finite (the Python side
raises the torch loop's StabilityErrors).
"""
function cylinder_run!(frames::AbstractArray, forces::AbstractMatrix, probe_v::AbstractVector, max_div::AbstractVector,
                       stats::AbstractVector, u0::AbstractMatrix, v0::AbstractMatrix, chi_u::AbstractMatrix,
                       chi_v::AbstractMatrix, h::Real, nu::Real, u_in::Real, dt_out::Real, cfl::Real, refine::Integer,
                       probe_i::Integer, probe_j::Integer)
    ny, nf = size(u0)
    nx, n_out = nf - 1, size(frames, 4)
    size(v0) == (ny + 1, nx) && size(chi_u) == size(u0) && size(chi_v) == size(v0) ||
        throw(DimensionMismatch("cylinder_run!: u0 $(size(u0)), v0 $(size(v0)), chi $(size(chi_u)), $(size(chi_v))"))
    n_out >= 2 && size(forces) == (2, n_out - 1) && length(probe_v) == n_out && length(max_div) == n_out - 1 &&
        length(stats) == 2 || throw(DimensionMismatch("cylinder_run!: outputs for $n_out frames"))
    1 <= probe_i < nx && 0 <= probe_j <= ny ||
        throw(ArgumentError("cylinder_run!: probe ($probe_i, $probe_j) outside the grid"))
    masks = (disc_mask(chi_u), disc_mask(chi_v))
    solver = neumann_poisson(u0, nx, ny, h)
    div = similar(u0, ny, nx)
    pv, fs, md = zeros(n_out), zeros(2, n_out - 1), zeros(n_out - 1)      # on the host, copied once
    u, v = copy(u0), copy(v0)
    cylinder_output_field!(view(frames, :, :, :, 1), u, v, refine)
    pv[1] = probe_value(v, probe_i, probe_j)
    steps, status, stop_speed = 0, 0, 0.0
    for i in 2:n_out
        speed = maximum(abs, u) + maximum(abs, v)
        if !isfinite(speed) || speed > 20 * u_in
            status, stop_speed = i - 1, Float64(speed)
            break
        end
        rate = max(speed / (cfl * h), nu / (VISCOUS_LIMIT * h * h))
        n_sub = max(1, ceil(Int, dt_out * rate - 1e-9))
        dt = dt_out / n_sub
        fx = fy = 0.0
        for _ in 1:n_sub
            u, v, f0, f1 = cylinder_rk3_step(u, v, dt, nu, u_in, h, masks, solver, div)
            fx, fy = fx + f0 / n_sub, fy + f1 / n_sub
        end
        steps += n_sub
        fs[1, i-1], fs[2, i-1] = fx, fy
        pv[i] = probe_value(v, probe_i, probe_j)
        md[i-1] = maximum(abs, mac_divergence!(div, u, v, h))
        cylinder_output_field!(view(frames, :, :, :, i), u, v, refine)
    end
    status == 0 && !(all(isfinite, u) && all(isfinite, v)) && (status = -1)
    copyto!(forces, fs)
    copyto!(probe_v, pv)
    copyto!(max_div, md)
    copyto!(stats, [Float64(steps), stop_speed])
    KernelAbstractions.synchronize(get_backend(frames))
    return status
end
