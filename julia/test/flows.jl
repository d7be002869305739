# The two flow solvers (src/swe.jl, src/cylinder.jl) against loop references and the properties
# the torch tests check. Included from runtests.jl (never run: no Julia where it was written).
using PyMSDEKernels: dct_twiddles, disc_mask, mac_divergence!, u_ghost, v_ghost

# ---------------------------------------------------------------- shallow water

# The radial dam break at rest in the Julia layout (n, n, 3, 1): h_in within `radius` of the
# centre of [-2.5, 2.5]^2 (cell centres), h_out outside.
function dam_state(n, radius; h_in=2.0, h_out=1.0)
    x = -2.5 .+ ((0:n-1) .+ 0.5) .* (5.0 / n)
    q = zeros(n, n, 3, 1)
    for i in 1:n, j in 1:n
        q[j, i, 1, 1] = hypot(x[i], x[j]) <= radius ? h_in : h_out
    end
    return q
end

# dq/dt line by line: primitives with two ghost cells, limited slopes, HLL fluxes.
function ref_swe_rhs(q, dx, bcs, g, mc)
    out = zeros(size(q))
    for b in axes(q, 4), dim in 1:2
        nrm = dim == 2 ? 2 : 3
        tng = 5 - nrm
        n = size(q, dim)
        for o in axes(q, 3 - dim)
            function cell(j)
                jj, s = j, 1.0
                if !(1 <= j <= n)
                    if bcs[dim] === :periodic
                        jj = mod1(j, n)
                    elseif bcs[dim] === :outflow
                        jj = clamp(j, 1, n)
                    else
                        jj, s = (j < 1 ? 1 - j : 2n + 1 - j), -1.0
                    end
                end
                at(c) = dim == 1 ? q[jj, o, c, b] : q[o, jj, c, b]
                return (at(1), s * at(nrm) / at(1), at(tng) / at(1))
            end
            lim(a, c) = mc ? (sign(a) + sign(c)) * min(abs(a), abs(c), abs(a + c) / 4) :
                        (sign(a) + sign(c)) / 2 * min(abs(a), abs(c))
            slope(j, k) = lim(cell(j)[k] - cell(j - 1)[k], cell(j + 1)[k] - cell(j)[k])
            state(j, side) = ntuple(k -> cell(j)[k] + side * slope(j, k) / 2, 3)
            F = [hll_flux(state(f - 1, 1)..., state(f, -1)..., g) for f in 1:n+1]
            for i in 1:n, (c, k) in ((1, 1), (nrm, 2), (tng, 3))
                I = dim == 1 ? (i, o, c, b) : (o, i, c, b)
                out[I...] -= (F[i+1][k] - F[i][k]) / dx[dim]
            end
        end
    end
    return out
end

@testset "shallow water" begin
    rng = Xoshiro(11)
    # HLL of equal states is the physical flux; mirrored states give the mirrored flux
    for (h, un, ut) in ((1.3, 0.4, -0.2), (0.7, -1.1, 0.5))
        f = hll_flux(h, un, ut, h, un, ut, 9.81)
        @test collect(f) ≈ [h * un, h * un^2 + 9.81 * h^2 / 2, h * un * ut] rtol = 1e-13
    end
    fa = hll_flux(1.2, 0.3, 0.1, 0.9, -0.2, 0.4, 1.0)
    fb = hll_flux(0.9, 0.2, 0.4, 1.2, -0.3, 0.1, 1.0)
    @test fa[1] ≈ -fb[1] rtol = 1e-13
    @test fa[2] ≈ fb[2] rtol = 1e-13
    @test fa[3] ≈ -fb[3] rtol = 1e-13
    # the right-hand side against the loop reference, every boundary pair and both limiters
    q = zeros(7, 6, 3, 2)
    q[:, :, 1, :] .= 1 .+ 0.5 .* rand(rng, 7, 6, 2)
    q[:, :, 2:3, :] .= 0.3 .* randn(rng, 7, 6, 2, 2)
    for b1 in (:outflow, :reflective, :periodic), b2 in (:outflow, :reflective, :periodic), lim in ("mc", "minmod")
        got = swe_rhs!(similar(q), q, (0.3, 0.2), (b1, b2), 1.3, lim)
        @test got ≈ ref_swe_rhs(q, (0.3, 0.2), (b1, b2), 1.3, lim == "mc") rtol = 1e-12
    end
    @test swe_rhs!(similar(q), q, "0.3,0.2", "outflow,periodic", 1.3, "mc") ==
          swe_rhs!(similar(q), q, (0.3, 0.2), (:outflow, :periodic), 1.3, "mc")
    @test_throws ArgumentError swe_rhs!(similar(q), q, (0.3, 0.2), (:wall, :periodic))
    @test_throws ArgumentError swe_rhs!(q, q, (0.3, 0.2), (:outflow, :periodic))
    # a lake at rest stays exactly at rest
    rest = zeros(6, 5, 3, 1)
    rest[:, :, 1, :] .= 1.5
    for bc in (:outflow, :reflective, :periodic)
        @test all(iszero, swe_rhs!(similar(rest), rest, (0.1, 0.1), (bc, bc)))
    end
    # the whole run: the first frame is q0; closed walls conserve mass; a centred dam stays
    # symmetric under transposition (y <-> x, hv <-> hu)
    n, t = 24, collect(range(0.0, 0.6; length=4))
    q0 = dam_state(n, 0.8)
    out, steps = zeros(n, n, 3, 4, 1), zeros(Int, 1)
    @test swe_run!(out, steps, q0, t, (5 / n, 5 / n), 1.0, "reflective,reflective", 0.4, "mc", 2) == 4
    @test out[:, :, :, 1, 1] == q0[:, :, :, 1] && steps[1] >= 3
    mass = [sum(out[:, :, 1, k, 1]) for k in 1:4]
    @test maximum(abs.(mass ./ mass[1] .- 1)) < 1e-13
    @test maximum(abs.(out[:, :, 1, 4, 1] .- q0[:, :, 1, 1])) > 0.05
    for k in 1:4
        @test maximum(abs.(out[:, :, 1, k, 1] .- transpose(out[:, :, 1, k, 1]))) < 1e-13
        @test maximum(abs.(out[:, :, 2, k, 1] .- transpose(out[:, :, 3, k, 1]))) < 1e-13
    end
    # per-trajectory steps: a deeper dam takes more steps, and the batch does not change a sample
    qb = cat(dam_state(n, 0.4), dam_state(n, 0.7; h_in=3.0); dims=4)
    ob, sb = zeros(n, n, 1, 4, 2), zeros(Int, 2)
    swe_run!(ob, sb, qb, t, (5 / n, 5 / n), 1.0, "outflow,outflow", 0.4, "minmod", 3)
    o1, s1 = zeros(n, n, 1, 4, 1), zeros(Int, 1)
    swe_run!(o1, s1, qb[:, :, :, 1:1], t, (5 / n, 5 / n), 1.0, "outflow,outflow", 0.4, "minmod", 3)
    @test sb[2] > sb[1] && s1[1] == sb[1] && o1[:, :, :, :, 1] == ob[:, :, :, :, 1]
    @test_throws ArgumentError swe_run!(ob, sb, qb, t, (5 / n, 5 / n), 1.0, "outflow,outflow", 0.4, "superbee", 2)
end

# ---------------------------------------------------------------- the cylinder

# DCT-II by its definition
ref_dct(x) = [2 * sum(x[m+1] * cos(pi * k * (2m + 1) / (2length(x))) for m in 0:length(x)-1) for k in 0:length(x)-1]

# Volume fractions of the faces inside the disc, by 8 x 8 sampling of every control volume:
# u-faces at (i h, (j + 1/2) h) as (ny, nx + 1), v-faces at ((i + 1/2) h, j h) as (ny + 1, nx).
function ref_fractions(nx, ny, h, centre, radius)
    off = ((0:7) .+ 0.5) ./ 8 .- 0.5
    frac(xc, yc) = sum((xc + h * a - centre[1])^2 + (yc + h * b - centre[2])^2 < radius^2 for a in off, b in off) / 64
    chi_u = [frac(i * h, (j + 0.5) * h) for j in 0:ny-1, i in 0:nx]
    chi_v = [frac((i + 0.5) * h, j * h) for j in 0:ny, i in 0:nx-1]
    return chi_u, chi_v
end

@testset "cylinder" begin
    rng = Xoshiro(12)
    # cosine transforms: the definition, and the inverse, along both dimensions
    x = randn(rng, 6, 8)
    for dim in (1, 2)
        w = dct_twiddles(x, size(x, dim))
        X = dct2_forward(x, w, dim)
        @test X ≈ mapslices(ref_dct, x; dims=dim) rtol = 1e-12
        @test dct2_inverse(X, w, dim) ≈ x rtol = 1e-13
    end
    # the Poisson solve: 5-point Laplacian with zero normal gradient gives d minus its mean
    nx, ny, h = 12, 8, 0.1
    d = randn(rng, ny, nx)
    psi = poisson_solve(neumann_poisson(d, nx, ny, h), d)
    p = [psi[clamp(j, 1, ny), clamp(i, 1, nx)] for j in 0:ny+1, i in 0:nx+1]
    lap = (p[3:end, 2:end-1] .+ p[1:end-2, 2:end-1] .+ p[2:end-1, 3:end] .+ p[2:end-1, 1:end-2] .- 4 .* psi) ./ h^2
    @test maximum(abs.(lap .- (d .- sum(d) / length(d)))) < 1e-10
    # the ghost layers are torch's _pad_u / _pad_v (built here with cat and reverse as torch does)
    nx, ny = 10, 6
    u = 1 .+ 0.3 .* randn(rng, ny, nx + 1)
    v = 0.3 .* randn(rng, ny + 1, nx)
    ux = hcat(fill(1.0, ny, 2), u, u[:, end], u[:, end])
    up = vcat(reverse(ux[1:2, :]; dims=1), ux, reverse(ux[end-1:end, :]; dims=1))
    @test all(u_ghost(u, i, j, 1.0) == up[j+3, i+3] for i in -2:nx+2, j in -2:ny+1)
    vx = hcat(-reverse(v[:, 1:2]; dims=2), v, v[:, end], v[:, end])
    vp = vcat(-reverse(vx[2:3, :]; dims=1), vx, -reverse(vx[end-2:end-1, :]; dims=1))
    @test all(v_ghost(v, i, j) == vp[j+3, i+3] for i in -2:nx+1, j in -2:ny+2)
    # the interior faces against the torch formula written out (no ghost cells reached)
    U(i, j) = u[j+1, i+1]
    V(i, j) = v[j+1, i+1]
    upw(a0, a1, a2, a3, c) = c >= 0 ? (-a0 + 5a1 + 2a2) / 6 : (2a1 + 5a2 - a3) / 6
    FXu(c, j) = (uc = (U(c, j) + U(c + 1, j)) / 2; uc * upw(U(c - 1, j), U(c, j), U(c + 1, j), U(c + 2, j), uc))
    FYu(i, k) = (vn = (V(i - 1, k) + V(i, k)) / 2; vn * upw(U(i, k - 2), U(i, k - 1), U(i, k), U(i, k + 1), vn))
    FXv(k, j) = (un = (U(k, j - 1) + U(k, j)) / 2; un * upw(V(k - 2, j), V(k - 1, j), V(k, j), V(k + 1, j), un))
    FYv(i, c) = (vc = (V(i, c) + V(i, c + 1)) / 2; vc * upw(V(i, c - 1), V(i, c), V(i, c + 1), V(i, c + 2), vc))
    nu, h = 0.01, 0.1
    ru, rv = cylinder_momentum(u, v, nu, h, 1.0)
    for i in 2:nx-2, j in 2:ny-3
        lap = U(i + 1, j) + U(i - 1, j) + U(i, j + 1) + U(i, j - 1) - 4U(i, j)
        @test ru[j+1, i+1] ≈ (nu / h * lap - (FXu(i, j) - FXu(i - 1, j)) - (FYu(i, j + 1) - FYu(i, j))) / h rtol = 1e-12
    end
    for i in 2:nx-3, j in 2:ny-2
        lap = V(i + 1, j) + V(i - 1, j) + V(i, j + 1) + V(i, j - 1) - 4V(i, j)
        @test rv[j+1, i+1] ≈ (nu / h * lap - (FXv(i + 1, j) - FXv(i, j)) - (FYv(i, j) - FYv(i, j - 1))) / h rtol = 1e-12
    end
    @test all(iszero, ru[:, 1]) && ru[:, end] ≈ -(u[:, end] .- u[:, end-1]) ./ h
    @test all(iszero, rv[1, :]) && all(iszero, rv[end, :])
    # uniform flow is steady
    r0 = cylinder_momentum(fill(1.0, ny, nx + 1), zeros(ny + 1, nx), nu, h, 1.0)
    @test all(iszero, r0[1]) && all(iszero, r0[2])
    # the projection: divergence-free, every column carries the inflow, boundary velocities kept
    u[:, 1] .= 1.0
    v[1, :] .= 0.0
    v[end, :] .= 0.0
    div = zeros(ny, nx)
    cylinder_project!(u, v, neumann_poisson(u, nx, ny, h), h, div)
    @test maximum(abs, mac_divergence!(div, u, v, h)) < 1e-12
    @test maximum(abs.(vec(sum(u; dims=1)) .- ny)) < 1e-12
    @test all(==(1.0), u[:, 1]) && all(iszero, v[1, :]) && all(iszero, v[end, :])
    # a short run on a coarse channel (8 cells per unit, 3 x 1, the disc of radius 1/8 at (0.5, 0.5))
    nx, ny, h = 24, 8, 1 / 8
    chi_u, chi_v = ref_fractions(nx, ny, h, (0.5, 0.5), 0.125)
    u0, v0 = fill(1.0, ny, nx + 1), zeros(ny + 1, nx)
    v0[2:end-1, 9:11] .= 0.1                                  # a blob behind the disc
    PyMSDEKernels.immersed_forcing!(u0, disc_mask(chi_u))
    PyMSDEKernels.immersed_forcing!(v0, disc_mask(chi_v))
    cylinder_project!(u0, v0, neumann_poisson(u0, nx, ny, h), h, zeros(ny, nx))
    keep = (copy(u0), copy(v0))
    n_out = 5
    frames, forces = zeros(ny, nx, 2, n_out), zeros(2, n_out - 1)
    probe, maxdiv, stats = zeros(n_out), zeros(n_out - 1), zeros(2)
    status = cylinder_run!(frames, forces, probe, maxdiv, stats, u0, v0, chi_u, chi_v, h, 1 / 1280, 1.0, 0.05, 0.8,
                           1, 12, 4)
    @test status == 0 && (u0, v0) == keep
    @test frames[:, :, :, 1] == cylinder_output_field!(zeros(ny, nx, 2), u0, v0, 1)
    @test maximum(abs.(vec(sum(frames[:, 1, 1, :]; dims=1)) ./ ny .- 1)) < 1e-12   # the inflow, every frame
    @test maximum(maxdiv) < 1e-11 && stats[1] >= n_out - 1 && all(isfinite, forces) && all(isfinite, probe)
    @test forces[1, end] > 0                                                     # drag
    # block averages of a refined field; a runaway start is reported, not run
    f2 = cylinder_output_field!(zeros(ny ÷ 2, nx ÷ 2, 2), u0, v0, 2)
    @test f2[1, 1, 1] ≈ sum(frames[1:2, 1:2, 1, 1]) / 4 rtol = 1e-14
    status = cylinder_run!(frames, forces, probe, maxdiv, stats, 100 .* u0, v0, chi_u, chi_v, h, 1 / 1280, 1.0,
                           0.05, 0.8, 1, 12, 4)
    @test status == 1 && stats[2] ≈ 100 * maximum(abs, u0) + maximum(abs, v0)
end
