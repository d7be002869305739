# Each kernel against a plain-loop Julia reference (CPU). Run with
#     julia --project=julia -e 'using Pkg; Pkg.test()'
using Test
using Random
using LinearAlgebra
using PyMSDEKernels
import FFTW
using PyMSDEKernels: activation, drift_params_from_python, central_stencil, CentralStencil

# ---------------------------------------------------------------- tolerances

# Two evaluations of the same dense products that differ only in how BLAS orders each dot
# product (gemm over many columns against gemm/gemv over one: other blocking, other kernels,
# other threads) do not agree bit for bit. A length-n dot product summed in any order is within
# γ_n Σ|w_i x_i| of the exact value, γ_n = n u / (1 - n u), u = eps/2 the unit roundoff
# (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1), so two orders differ
# by at most 2γ_n Σ|w_i x_i|. `depth` such products in a row (1-Lipschitz activations, weights
# scaled by 1/sqrt(fan-in)) add their errors; `margin` allows a norm-wise ratio
# Σ|w_i x_i| / |Σ w_i x_i| of up to `margin` (cancellation). For n = 10, depth 2: 3.6e-14.
function blas_rtol(n, depth; margin=8, T=Float64)
    u = eps(T) / 2
    return margin * depth * 2 * (n * u / (1 - n * u))
end

# ---------------------------------------------------------------- plain-loop references

ref_src(i, n, bc) = bc === :periodic ? (mod1(i, n), true) : bc === :edge ? (clamp(i, 1, n), true) :
                    (clamp(i, 1, n), 1 <= i <= n)

function ref_pad(x, w, bcs)
    D = length(bcs)
    out = zeros(eltype(x), (size(x)[1:D] .+ 2 .* w)..., size(x)[D+1:end]...)
    for I in CartesianIndices(out)
        ok = true
        J = collect(Tuple(I))
        for k in 1:D
            j, v = ref_src(I[k] - w[k], size(x, k), bcs[k])
            J[k] = j
            ok &= v
        end
        out[I] = ok ? x[J...] : 0
    end
    return out
end

function ref_gather(x, r, bcs)
    D = length(bcs)
    C, B = size(x, D + 1), size(x, D + 2)
    K = (2r + 1)^D
    out = zeros(eltype(x), C * K, size(x)[1:D]..., B)
    offs = vec(collect(CartesianIndices(ntuple(_ -> -r:r, D))))   # dimension 1 fastest
    for b in 1:B, P in CartesianIndices(size(x)[1:D]), c in 1:C, (k, o) in enumerate(offs)
        ok = true
        J = zeros(Int, D)
        for a in 1:D
            J[a], v = ref_src(P[a] + o[a], size(x, a), bcs[a])
            ok &= v
        end
        out[(c - 1) * K + k, Tuple(P)..., b] = ok ? x[J..., c, b] : 0
    end
    return out
end

ref_mlp(x, layers, act) = begin
    h = x
    for (k, (W, b)) in enumerate(layers)
        y = zeros(eltype(x), size(W, 2), size(h, 2))
        for j in axes(h, 2), o in axes(W, 2)
            s = b[o]
            for i in axes(W, 1)
                s += W[i, o] * h[i, j]
            end
            y[o, j] = s
        end
        h = k < length(layers) ? act.(y) : y
    end
    h
end

# The multiscale drift cell by cell, sample by sample, with explicit stencil loops.
function ref_drift(p, t, z, mu, f)
    _, B = size(z)
    C, nc, r, dm = p.channels, prod(p.coarse), p.radius, p.micro_dim
    md = C * nc
    out = similar(z)
    offs = vec(collect(CartesianIndices(ntuple(_ -> -r:r, length(p.coarse)))))
    cells = vec(collect(CartesianIndices(p.coarse)))
    for b in 1:B
        zM = reshape(z[1:md, b], p.coarse..., C)
        extra = vcat(z[md+1:end, b], mu === nothing ? eltype(z)[] : mu[:, b], f === nothing ? eltype(z)[] : f[:, b])
        for (ci, P) in enumerate(cells)
            st = eltype(z)[]
            for c in 1:C, o in offs
                J = [ref_src(P[a] + o[a], p.coarse[a], p.boundary[a] === :periodic ? :periodic : :edge)[1]
                     for a in eachindex(p.coarse)]
                push!(st, zM[J..., c])
            end
            y = ref_mlp(reshape(vcat(st, extra), :, 1), p.macro_layers, p.act)
            for c in 1:C
                out[(c - 1) * nc + ci, b] = y[c, 1]
            end
        end
        if dm > 0
            x = vcat(z[md+1:end, b], z[1:md, b], sin(t), cos(t),
                     mu === nothing ? eltype(z)[] : mu[:, b], f === nothing ? eltype(z)[] : f[:, b])
            out[md+1:end, b] = ref_mlp(reshape(x, :, 1), p.micro_layers, p.act)[:, 1]
        end
    end
    return out
end

randlayers(rng, sizes) = [(randn(rng, sizes[k], sizes[k+1]) ./ sqrt(sizes[k]), randn(rng, sizes[k+1]) ./ 10)
                          for k in 1:length(sizes)-1]

# ---------------------------------------------------------------- tests

@testset "PyMSDEKernels" begin
    rng = Xoshiro(42)

    @testset "pad!" begin
        for (shape, bcs, w) in (((7, 2, 3), (:periodic,), (3,)), ((7, 2, 3), (:dirichlet,), (2,)),
                                ((5, 6, 2, 2), (:periodic, :dirichlet), (2, 1)))
            x = randn(rng, shape...)
            D = length(bcs)
            for mode in (:edge, :zeros)
                out = similar(x, (size(x)[1:D] .+ 2 .* w)..., size(x)[D+1:end]...)
                pad!(out, x, w, bcs, mode)
                codes = map(bc -> bc === :periodic ? :periodic : mode, bcs)
                @test out == ref_pad(x, w, codes)
            end
        end
        @test_throws ArgumentError pad!(zeros(13, 1, 1), zeros(3, 1, 1), (5,), (:periodic,))
        @test_throws ArgumentError pad!(zeros(1, 1, 1), zeros(3, 1, 1), (-1,), (:dirichlet,))
        @test_throws ArgumentError pad!(zeros(7, 1, 1), zeros(3, 1, 1), (2,), (:neumann,))
        # the Python bridge's string form
        x = randn(rng, 6, 1, 2)
        out1 = similar(x, 10, 1, 2); out2 = similar(out1)
        @test pad!(out1, x, "2", "dirichlet", "edge") == pad!(out2, x, (2,), (:dirichlet,), :edge)
    end

    @testset "gather_stencil!" begin
        for (shape, bcs, r) in (((9, 2, 3), (:periodic,), 2), ((9, 1, 2), (:dirichlet,), 1),
                                ((6, 5, 2, 2), (:periodic, :dirichlet), 1), ((4, 4, 1, 1), (:periodic, :periodic), 2))
            x = randn(rng, shape...)
            D = length(bcs)
            out = similar(x, size(x, D + 1) * (2r + 1)^D, size(x)[1:D]..., size(x, D + 2))
            gather_stencil!(out, x, r, bcs)
            @test out == ref_gather(x, r, map(bc -> bc === :periodic ? :periodic : :edge, bcs))
        end
        # the centre of the stencil is the point itself
        x = randn(rng, 8, 3, 2)
        out = similar(x, 3 * 5, 8, 2)
        gather_stencil!(out, x, 2, (:periodic,))
        @test out[3, :, :] == x[:, 1, :] && out[5 + 3, :, :] == x[:, 2, :]
        # offset +1 along the (only) axis is the next point, wrapping around
        @test out[4, :, 1] == circshift(x[:, 1, 1], -1)
        # a periodic radius wider than the axis is refused, as torch's pad refuses it (mod1
        # would wrap around twice); radius = n is still one wrap, allowed by both
        x = randn(rng, 2, 1, 1)
        @test_throws ArgumentError gather_stencil!(similar(x, 7, 2, 1), x, 3, (:periodic,))
        @test gather_stencil!(similar(x, 5, 2, 1), x, 2, (:periodic,)) == ref_gather(x, 2, (:periodic,))
        # Dirichlet axes clamp: any radius
        @test gather_stencil!(similar(x, 7, 2, 1), x, 3, (:dirichlet,)) == ref_gather(x, 3, (:edge,))
        # the output must not share memory with the input the kernel reads
        y = zeros(5, 1, 1)
        @test_throws ArgumentError pad!(y, view(y, 2:4, :, :), (1,), (:periodic,))
    end

    @testset "finite differences" begin
        @test fd_weights(1, -1:1) ≈ [-0.5, 0, 0.5]
        @test fd_weights(1, -2:2) ≈ [1 / 12, -2 / 3, 0, 2 / 3, -1 / 12]
        @test fd_weights(2, -1:1) ≈ [1, -2, 1]
        @test extrapolation_weights(2)[1, :] ≈ [3, -3, 1]     # quadratic extrapolation, one point out
        # Dirichlet: exact (to round-off) on polynomials of the stencil's degree, up to the boundary
        n = 21
        x = range(0, 1; length=n)
        dx = step(x)
        for order in (2, 4, 6)
            u = reshape(collect(x .^ order), n, 1, 1)
            du = similar(u)
            derivative!(du, u, 1, 1, dx, :dirichlet, order)
            @test maximum(abs.(du[:, 1, 1] .- order .* x .^ (order - 1))) < 1e-9
        end
        # periodic sin: fourth-order convergence of the first and second derivative
        errs1, errs2 = Float64[], Float64[]
        for n in (32, 64)
            xs = 2π .* (0:n-1) ./ n
            u = reshape(sin.(xs), n, 1, 1)
            d1, d2 = similar(u), similar(u)
            derivative!(d1, u, 1, 1, 2π / n, "periodic", 4)
            derivative!(d2, u, 1, 2, 2π / n, "periodic", 4)
            push!(errs1, maximum(abs.(d1[:, 1, 1] .- cos.(xs))))
            push!(errs2, maximum(abs.(d2[:, 1, 1] .+ sin.(xs))))
        end
        @test 3.8 < log2(errs1[1] / errs1[2]) < 4.2
        @test 3.8 < log2(errs2[1] / errs2[2]) < 4.2
        # along dimension 2 of a 2-D field equals along dimension 1 of the transposed field
        u = randn(rng, 10, 12, 1, 2)
        a, b = similar(u), similar(permutedims(u, (2, 1, 3, 4)))
        derivative!(a, u, 2, 2, 0.1, :dirichlet, 4)
        derivative!(b, permutedims(u, (2, 1, 3, 4)), 1, 2, 0.1, :dirichlet, 4)
        @test a ≈ permutedims(b, (2, 1, 3, 4)) rtol = 1e-13
        # the stencil has static lengths (weights 2r + 1, ghost rows r x (order + 1)): the
        # kernel launch and its loops are resolved at compile time
        s4 = @inferred central_stencil(Float64, central_weights(1, 4), :dirichlet, Val(4))
        @test s4 isa CentralStencil{5,2,5,Float64}
        @test collect(s4.weights) == central_weights(1, 4)
        @test [s4.ghosts[g][i] for g in 1:2, i in 1:5] == extrapolation_weights(4)
        @test central_stencil(Float32, central_weights(2, 2), "periodic", 2) isa CentralStencil{3,1,3,Float32}
        @test_throws ArgumentError central_stencil(Float64, central_weights(1, 4), :dirichlet, 2)   # 5 weights, order 2
        # one stencil applied twice gives what the weights form gives
        u = randn(rng, 9, 2, 1)
        a, b = similar(u), similar(u)
        s = central_stencil(Float64, central_weights(1, 4) ./ 0.1, :dirichlet, 4)
        apply_central!(a, u, 1, s)
        apply_central!(b, u, 1, central_weights(1, 4) ./ 0.1, :dirichlet, 4)
        @test a == b
        # as torch's pad_axis: a periodic axis shorter than the radius and a Dirichlet axis
        # shorter than order + 1 are refused; radius = n is allowed (one wrap)
        @test_throws ArgumentError derivative!(zeros(2, 1, 1), zeros(2, 1, 1), 1, 1, 0.1, :periodic, 6)
        @test derivative!(zeros(2, 1, 1), ones(2, 1, 1), 1, 1, 0.1, :periodic, 4) ≈ zeros(2, 1, 1) atol = 1e-12
        @test_throws ArgumentError derivative!(zeros(4, 1, 1), zeros(4, 1, 1), 1, 1, 0.1, :dirichlet, 4)
        @test_throws ArgumentError derivative!(zeros(4, 1, 1), zeros(4, 1, 1), 1, 1, 0.1, :neumann, 4)
        # in place (out === u) would let the kernel read values it has already overwritten
        u = randn(rng, 8, 1, 1)
        @test_throws ArgumentError derivative!(u, u, 1, 1, 0.1, :periodic, 4)
    end

    @testset "mlp" begin
        layers = randlayers(rng, (6, 16, 16, 3))
        x = randn(rng, 6, 11)
        for name in ("tanh", "silu", "softplus", "relu")
            out = zeros(3, 11)
            mlp_forward!(out, x, name, Iterators.flatten(layers)...)
            @test out ≈ ref_mlp(x, layers, activation(name)) rtol = 1e-12
        end
        @test PyMSDEKernels.softplus(30.0) == 30.0 && PyMSDEKernels.softplus(0.0) ≈ log(2)
        @test PyMSDEKernels.silu(1.0) ≈ 1 / (1 + exp(-1))
        @test_throws ArgumentError activation("gelu")
    end

    @testset "multiscale drift" begin
        for (coarse, bc, C, dm, nmu, nf) in (((10,), :periodic, 1, 3, 0, 0), ((10,), :dirichlet, 2, 0, 1, 0),
                                             ((4, 5), :periodic, 1, 2, 1, 1))
            r = 2
            S = C * (2r + 1)^length(coarse)
            macro_layers = randlayers(rng, (S + dm + nmu + nf, 12, C))
            micro_layers = dm > 0 ? randlayers(rng, (dm + C * prod(coarse) + 2 + nmu + nf, 12, dm)) : similar(macro_layers, 0)
            p = DriftParams(macro_layers, micro_layers, "tanh", r, ntuple(_ -> bc, length(coarse)), coarse, C, dm, nmu, nf)
            B = 3
            z = randn(rng, C * prod(coarse) + dm, B)
            mu = nmu > 0 ? randn(rng, nmu, B) : nothing
            f = nf > 0 ? randn(rng, nf, B) : nothing
            out = similar(z)
            multiscale_drift!(out, p, 0.3, z, mu, f)
            @test out ≈ ref_drift(p, 0.3, z, mu, f) rtol = 1e-12
        end
        # the bridge form builds the same parameters from positional arguments
        coarse, C, dm = (8,), 1, 2
        ml = randlayers(rng, (C * 5 + dm, 8, C)); ql = randlayers(rng, (dm + 8 + 2, 8, dm))
        p = DriftParams(ml, ql, "silu", 2, (:periodic,), coarse, C, dm)
        z = randn(rng, 8 + dm, 4)
        a, b = similar(z), similar(z)
        multiscale_drift!(a, p, 1.0, z)
        # n_macro = the number of macroscale layers, as Python passes len(params.macro_weights)
        multiscale_drift!(b, 1.0, z, nothing, nothing, "silu", 2, "periodic", "8", C, dm, 0, 0, length(ml),
                          Iterators.flatten(ml)..., Iterators.flatten(ql)...)
        @test a == b
        flat = (Iterators.flatten(ml)..., Iterators.flatten(ql)...)
        q = drift_params_from_python("silu", 2, "periodic", "8", C, dm, 0, 0, length(ml), flat...)
        @test length(q.macro_layers) == length(ml) && length(q.micro_layers) == length(ql)
        # a wrong split of the layers is refused, not silently misread
        @test_throws DimensionMismatch drift_params_from_python("silu", 2, "periodic", "8", C, dm, 0, 0, 1, flat...)
        @test_throws ArgumentError drift_params_from_python("silu", 2, "periodic", "8", C, dm, 0, 0, 0, flat...)
        @test_throws ArgumentError drift_params_from_python("silu", 2, "periodic", "8", C, dm, 0, 0, 5, flat...)
        # micro layers without a microscale, as torch's DriftParams refuses them
        @test_throws ArgumentError DriftParams(randlayers(rng, (C * 5, 8, C)), ql, "silu", 2, (:periodic,), coarse, C, 0)
        # the stencil radius must fit a periodic coarse axis (torch's gather_stencil refuses it)
        pw = DriftParams(randlayers(rng, (C * 9, 8, C)), similar(ml, 0), "tanh", 4, (:periodic,), (3,), C, 0)
        @test_throws ArgumentError multiscale_drift!(zeros(3, 2), pw, 0.0, randn(rng, 3, 2))
        # the linear stencil term: with the MLP's last layer zero, the drift is nu D2 z - mu D1 z
        n, h, nu = 12, 1 / 12, 0.01
        ll = randlayers(rng, (5 + 1, 8, 1))
        ll[end] = (zeros(8, 1), zeros(1))
        lin = reshape(vcat(nu .* [0, 1, -2, 1, 0] ./ h^2, -[0, -0.5, 0, 0.5, 0] ./ h), 10, 1)
        pl = DriftParams(ll, similar(ll, 0), "tanh", 2, (:periodic,), (n,), 1, 0, 1; linear=lin)
        x = (0:n-1) .* h
        zl = hcat(sin.(2pi .* x), cos.(4pi .* x))
        mul = [0.7 1.3]
        gl = similar(zl)
        multiscale_drift!(gl, pl, 0.0, zl, mul)
        right, left = circshift(zl, (-1, 0)), circshift(zl, (1, 0))
        @test gl ≈ nu .* (right .- 2 .* zl .+ left) ./ h^2 .- mul .* (right .- left) ./ (2h) atol = 1e-12
        # the bridge form: the flag, then the linear term, then n_macro
        gb = similar(zl)
        multiscale_drift!(gb, 0.0, zl, mul, nothing, "tanh", 2, "periodic", "12", 1, 0, 1, 0, false, lin,
                          length(ll), Iterators.flatten(ll)...)
        @test gb == gl
        @test_throws DimensionMismatch DriftParams(ll, similar(ll, 0), "tanh", 2, (:periodic,), (n,), 1, 0, 1;
                                                   linear=zeros(5, 1))
    end

    @testset "sde steps and rollout" begin
        # linear test equation dz = -z dt + s dW with given increments: EM by hand
        f = (t, z) -> -z
        s = [0.3, 0.5]
        z0 = randn(rng, 2, 4)
        n, dt = 50, 0.02
        dW = sqrt(dt) .* randn(rng, 2, 4, n)
        zs = zeros(2, 4, n ÷ 10 + 1)
        PyMSDEKernels.integrate!(zs, f, s, z0, 0.0, dt, n; scheme="em", save_every=10, dW=dW)
        z = copy(z0)
        for k in 1:n
            z = z .+ (-z) .* dt .+ s .* dW[:, :, k]
            k % 10 == 0 && @test zs[:, :, k ÷ 10 + 1] == z
        end
        @test zs[:, :, 1] == z0
        # deterministic orders (no noise): EM 1, Heun 2, SRA1 2 on z' = -z
        for (scheme, order) in (("em", 1), ("heun", 2), ("sra1", 2))
            errs = Float64[]
            for n in (40, 80)
                zs = zeros(1, 1, 2)
                PyMSDEKernels.integrate!(zs, f, [0.0], ones(1, 1), 0.0, 1 / n, n; scheme=scheme, save_every=n,
                                         dW=zeros(1, 1, n), dI=zeros(1, 1, n))
                push!(errs, abs(zs[1, 1, 2] - exp(-1)))
            end
            @test order - 0.2 < log2(errs[1] / errs[2]) < order + 0.2
        end
        # increments drawn in Julia: Ornstein-Uhlenbeck variance after t = 2 steps of EM
        # (exact for the scheme: dt (1 - (1-dt)^(2n)) / (1 - (1-dt)^2)), within 4 Monte Carlo sigmas
        B = 20_000
        zs = zeros(1, B, 2)
        PyMSDEKernels.integrate!(zs, f, [1.0], zeros(1, B), 0.0, 0.01, 200; scheme="em", save_every=200,
                                 rng=Xoshiro(7))
        v = sum(abs2, zs[1, :, 2]) / B
        v_em = 0.01 * (1 - 0.99^400) / (1 - 0.99^2)
        @test abs(v - v_em) < 4 * v_em * sqrt(2 / B)
        # the whole-rollout function: the drift is the multiscale drift
        coarse, C, dm = (6,), 1, 2
        p = DriftParams(randlayers(rng, (C * 5 + dm, 8, C)), randlayers(rng, (dm + 6 + 2, 8, dm)), "tanh", 2,
                        (:periodic,), coarse, C, dm)
        z0 = randn(rng, 6 + dm, 3)
        dW = 0.1 .* randn(rng, 6 + dm, 3, 5)
        zs = zeros(6 + dm, 3, 6)
        rollout!(zs, z0, fill(0.2, 6 + dm), 0.0, 0.01, 5, "em", 1, dW, nothing, nothing, nothing, -1, p)
        z = copy(z0)
        for k in 1:5
            z = z .+ ref_drift(p, 0.01 * (k - 1), z, nothing, nothing) .* 0.01 .+ 0.2 .* dW[:, :, k]
            @test zs[:, :, k + 1] ≈ z rtol = 1e-12
        end
    end
end

# ---------------------------------------------------------------- the PDE kernels

function ref_burgers_rhs_periodic2(u, dx, nu)      # order 2, one periodic axis, loops
    n = length(u)
    out = similar(u)
    for i in 1:n
        ip, im = mod1(i + 1, n), mod1(i - 1, n)
        adv = (u[ip]^2 - u[im]^2) / (2dx) + u[i] * (u[ip] - u[im]) / (2dx)
        out[i] = nu * (u[ip] - 2u[i] + u[im]) / dx^2 - adv / 3
    end
    out
end

# MUSCL-minmod Rusanov right-hand side of one axis, with loops; `at(i)` reads cell i,
# ghost cells included (the two boundary types differ only there).
function ref_fv(at, n, dx, nu)
    mm(a, b) = (sign(a) + sign(b)) / 2 * min(abs(a), abs(b))
    slope(i) = mm(at(i) - at(i - 1), at(i + 1) - at(i))
    function flux(f)                                 # face between cells f and f+1
        ul = at(f) + slope(f) / 2
        ur = at(f + 1) - slope(f + 1) / 2
        (ul^2 + ur^2) / 4 - max(abs(ul), abs(ur)) * (ur - ul) / 2 - nu * (at(f + 1) - at(f)) / dx
    end
    [(flux(i - 1) - flux(i)) / dx for i in 1:n]
end

ref_fv_periodic(c, dx, nu) = ref_fv(i -> c[mod1(i, length(c))], length(c), dx, nu)

function ref_fv_dirichlet(c, dx, nu, lo, hi)         # ghosts 2 u_b - c (odd reflection)
    n = length(c)
    ref_fv(i -> i < 1 ? 2lo - c[1-i] : i > n ? 2hi - c[2n+1-i] : c[i], n, dx, nu)
end

@testset "PDE kernels" begin
    rng = Xoshiro(5)
    @testset "Burgers finite differences" begin
        n = 40
        u = reshape(randn(rng, n), n, 1, 1)
        out = similar(u)
        burgers_rhs!(out, u, (0.025,), 0.01, (:periodic,), 2)
        @test out[:, 1, 1] ≈ ref_burgers_rhs_periodic2(u[:, 1, 1], 0.025, 0.01) rtol = 1e-12
        burgers_rhs!(out, u, (0.025,), 0.01, (:periodic,), 4)
        @test abs(sum(out)) < 1e-10 * sum(abs, out)      # skew-symmetric form conserves sum(u)
        v = randn(rng, 9, 7, 1, 2)
        o = similar(v)
        burgers_rhs!(o, v, (0.1, 0.2), 0.05, (:dirichlet, :dirichlet), 4)
        @test all(iszero, o[1, :, :, :]) && all(iszero, o[end, :, :, :]) && all(iszero, o[:, 1, :, :])
        # the stencils built once (what the run loops use) give the same numbers
        st = PyMSDEKernels.burgers_stencils(Float64, (0.1, 0.2), 0.05, (:dirichlet, :dirichlet), 4)
        @test st isa NTuple{2,NTuple{2,CentralStencil{5,2,5,Float64}}}
        o2 = similar(v)
        @test burgers_rhs!(o2, v, st) == o
        @test burgers_rhs!(similar(v), v, "0.2,0.1", 0.05, "dirichlet,periodic", 4) ==
              burgers_rhs!(similar(v), v, PyMSDEKernels.burgers_stencils(Float64, "0.2,0.1", 0.05, "dirichlet,periodic", 4))
        # RK4 is fourth order on u' = -u
        errs = [abs(foldl((w, _) -> rk4_step(x -> -x, w, 1 / m), 1:m; init=[1.0])[1] - exp(-1)) for m in (10, 20)]
        @test 3.8 < log2(errs[1] / errs[2]) < 4.2
        # the run loop stores u0 and every n_sub-th state
        u0 = reshape(0.1 .* sin.(2π .* (0:31) ./ 32), 32, 1, 1)
        out = zeros(32, 1, 3, 1)
        burgers_fd_run!(out, u0, 1e-3, 5, (1 / 32,), 0.01, (:periodic,), 4)
        w = copy(u0)
        for _ in 1:5
            w = burgers_rk4_step(w, 1e-3, (1 / 32,), 0.01, (:periodic,), 4)
        end
        @test out[:, :, 1, :] == u0 && out[:, 1, 2, 1] == w[:, 1, 1]
    end
    @testset "pseudo-spectral ETDRK4" begin
        n = 48
        x = 2π .* (0:n-1) ./ n
        k = collect(0.0:n÷2)
        u = reshape(sin.(x), n, 1, 1)
        v = FFTW.rfft(u, 1)
        for (rule, mask) in (("2/3", Int.(3 .* (0:n÷2) .< n)), ("3/2", [fill(1, n ÷ 2); 0]))
            got = conservative_advection_hat(v, k, mask, n, rule)
            @test got ≈ FFTW.rfft(reshape(-sin.(2 .* x) ./ 2, n, 1, 1), 1) atol = 1e-12
        end
        # contour-integral coefficients equal the direct formulas away from z = 0
        z, h = [-1.0 + 0im, 0.5im], 0.1
        E, E2, Q, f1, f2, f3 = etd_coefficients(z ./ h, h)
        @test Q ≈ h .* (exp.(z ./ 2) .- 1) ./ z rtol = 1e-12
        @test f1 ≈ h .* (-4 .- z .+ exp.(z) .* (4 .- 3z .+ z .^ 2)) ./ z .^ 3 rtol = 1e-10
        @test f2 ≈ h .* (2 .+ z .+ exp.(z) .* (z .- 2)) ./ z .^ 3 rtol = 1e-10
        @test f3 ≈ h .* (-4 .- 3z .- z .^ 2 .+ exp.(z) .* (4 .- z)) ./ z .^ 3 rtol = 1e-10
        @test E ≈ exp.(z) && E2 ≈ exp.(z ./ 2)
        # tiny-amplitude Burgers is the heat equation: mode 1 decays as exp(-nu t)
        nu, dt, nsub = 0.1, 0.01, 10
        lin = ComplexF64.(-nu .* k .^ 2)
        coeffs = etd_coefficients(lin, dt)
        mask = Int.(3 .* (0:n÷2) .< n)
        out = zeros(n, 1, 3, 1)
        spectral_run!(out, FFTW.rfft(1e-8 .* u, 1), coeffs..., k, mask, n, "2/3", nsub)
        @test out[:, 1, 3, 1] ≈ 1e-8 .* exp(-nu * 2 * nsub * dt) .* sin.(x) rtol = 1e-6
    end
    @testset "finite volume + SSP-RK3" begin
        n = 24
        c = reshape(randn(rng, n), n, 1, 1)
        out = similar(c)
        burgers_fv_rhs!(out, c, (0.1,), 0.02, (:periodic,), (nothing,))
        @test out[:, 1, 1] ≈ ref_fv_periodic(c[:, 1, 1], 0.1, 0.02) rtol = 1e-12
        @test abs(sum(out)) < 1e-12 * sum(abs, out)              # conservative
        # one cell is too few for the MUSCL stencil (torch's narrow refuses it too)
        @test_throws ArgumentError burgers_fv_rhs!(zeros(1, 1, 1), zeros(1, 1, 1), (0.1,), 0.02, (:periodic,), (nothing,))
        cst = fill(0.7, 6, 5, 1, 1)
        o = similar(cst)
        lo, hi = fill(0.7, 1, 5, 1, 1), fill(0.7, 1, 5, 1, 1)
        burgers_fv_rhs!(o, cst, (0.1, 0.1), 0.02, (:dirichlet, :periodic), ((lo, hi), nothing))
        @test maximum(abs, o) < 1e-13                            # a constant state is steady
        errs = [abs(foldl((w, _) -> ssprk3_step(x -> -x, w, 1 / m), 1:m; init=[1.0])[1] - exp(-1)) for m in (10, 20)]
        @test 2.8 < log2(errs[1] / errs[2]) < 3.2
        # Dirichlet ghosts 2 u_b - c, against the loop reference
        d = reshape(0.3 .+ 0.1 .* randn(rng, n), n, 1, 1)
        od = similar(d)
        burgers_fv_rhs!(od, d, (0.1,), 0.02, (:dirichlet,), ((fill(0.25, 1, 1, 1), fill(0.35, 1, 1, 1)),))
        @test od[:, 1, 1] ≈ ref_fv_dirichlet(d[:, 1, 1], 0.1, 0.02, 0.25, 0.35) rtol = 1e-12
        # the bridge's flat face form is the tuple form
        od2 = similar(d)
        burgers_fv_rhs!(od2, d, "0.1", 0.02, "dirichlet", fill(0.25, 1, 1, 1), fill(0.35, 1, 1, 1))
        @test od2 == od
        # the run loop: c0 first, then every n_sub-th SSP-RK3 state
        out = zeros(n, 1, 3, 1)
        burgers_fv_run!(out, c, 0.01, 4, (0.1,), 0.02, (:periodic,), (nothing,))
        w = copy(c)
        for _ in 1:8
            w = ssprk3_step(v -> burgers_fv_rhs!(similar(v), v, (0.1,), 0.02, (:periodic,), (nothing,)), w, 0.01)
        end
        @test out[:, :, 1, :] == c && out[:, 1, 3, 1] == w[:, 1, 1]
        out2 = zeros(n, 1, 3, 1)
        burgers_fv_run!(out2, c, 0.01, 4, "0.1", 0.02, "periodic", nothing, nothing)
        @test out2 == out
        # TVD: no new extrema
        @test minimum(c) - 1e-12 <= minimum(out) && maximum(out) <= maximum(c) + 1e-12
    end
    @testset "bridge forms" begin
        # apply_central! with torch's pre-scaled weights is derivative!
        u = randn(rng, 12, 1, 2)
        a, b = similar(u), similar(u)
        derivative!(a, u, 1, 2, 0.1, :periodic, 4)
        apply_central!(b, u, 1, central_weights(2, 4) ./ 0.1^2, :periodic, 4)
        @test a == b
        # mlp_forward! in torch's argument order equals the bridge's varargs form
        layers = randlayers(rng, (5, 8, 2))
        x = randn(rng, 5, 7)
        o1, o2 = zeros(2, 7), zeros(2, 7)
        mlp_forward!(o1, x, [l[1] for l in layers], [l[2] for l in layers], "softplus")
        mlp_forward!(o2, x, "softplus", Iterators.flatten(layers)...)
        @test o1 == o2
        # per-sample times: column b uses t[b]
        p = DriftParams(randlayers(rng, (5 + 2, 8, 1)), randlayers(rng, (2 + 6 + 2, 8, 2)), "tanh", 2,
                        (:periodic,), (6,), 1, 2)
        z = randn(rng, 8, 3)
        ts = [0.0, 0.7, 2.0]
        ov = similar(z)
        multiscale_drift!(ov, p, ts, z)
        for j in 1:3
            oj = similar(z[:, j:j])
            multiscale_drift!(oj, p, ts[j], z[:, j:j])
            # batched vs one column: other BLAS calls (gemm over 3 columns vs 1), other
            # summation orders; inner dimensions up to 10, two layers per network
            @test ov[:, j] ≈ oj[:, 1] rtol = blas_rtol(10, 2)
        end
        # etd_coefficients! fills the six vectors of etd_coefficients
        lin = ComplexF64.(0.02im .* (0.0:8) .^ 3)
        outs = [zeros(ComplexF64, 9) for _ in 1:6]
        PyMSDEKernels.etd_coefficients!(outs..., lin, 1e-3, 64)
        @test all(outs .== collect(etd_coefficients(lin, 1e-3, 64)))
    end
end

# ---------------------------------------------------------------- the flow solvers

include("flows.jl")
