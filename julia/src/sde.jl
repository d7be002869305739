# Fixed-step SDE integrators and the whole-rollout loop: port of pymsde/sde/integrator.py.
#
# Itô SDE with diagonal noise on states z of size (D, B) (torch (B, D)):
#     dz = f(t, z) dt + g .* dW
# g is the diffusion: an array broadcastable to z ((D,) or (D, B)) or a function g(t, z).

_g(g::AbstractArray, t, z) = g
_g(g, t, z) = g(t, z)

"""
    em_step(f, g, t, z, dt, dW)

One Euler-Maruyama step `z + f(t, z) dt + g dW` (port of `sde.integrator.em_step`).
"""
em_step(f, g, t, z, dt, dW) = z .+ f(t, z) .* dt .+ _g(g, t, z) .* dW

"""
    heun_step(f, g, t, z, dt, dW)

One stochastic Heun step: Euler predictor, trapezoidal corrector on `f` and `g` (port of
`sde.integrator.heun_step`; converges to the Stratonovich solution, equal to Itô for additive noise).
"""
function heun_step(f, g, t, z, dt, dW)
    T = eltype(z)                        # Python float constants act in z's dtype in torch
    f1 = f(t, z)
    g1 = _g(g, t, z)
    z_pred = z .+ f1 .* dt .+ g1 .* dW
    t1 = t + dt
    f2 = f(t1, z_pred)
    g2 = _g(g, t1, z_pred)
    return z .+ (T(0.5) * dt) .* (f1 .+ f2) .+ T(0.5) .* (g1 .+ g2) .* dW
end

"""
    sra1_step(f, g, t, z, dt, dW, dI)

One step of Rößler's SRA1 (strong order 1.5 for additive noise; port of `sde.integrator.sra1_step`).
`dI` is `∫_t^{t+dt} (W(s) - W(t)) ds` of the same Brownian path as `dW`.
"""
function sra1_step(f, g, t, z, dt, dW, dI, dt34=eltype(z)(0.75 * Float64(dt)))
    # dt34 = 3/4 dt rounded once from the Float64 step, as torch rounds `0.75 * dt` (a Python
    # float) to z's dtype; integrate! passes it from the unrounded dt
    T = eltype(z)
    chi = dI ./ dt
    k1 = f(t, z)
    g_end = _g(g, t + dt, z)
    g_start = _g(g, t, z)
    h2 = z .+ dt34 .* k1 .+ T(1.5) .* g_end .* chi
    k2 = f(t + dt34, h2)
    return z .+ dt .* (k1 ./ T(3) .+ T(2 / 3) .* k2) .+ g_end .* (dW .- chi) .+ g_start .* chi
end

"""
    device_rng(z, seed)

Random number generator for Brownian increments on `z`'s device: `Random.Xoshiro(seed)` on
the CPU (the task-local default RNG when `seed < 0`); the CUDA extension returns a
`CUDA.RNG` for `CuArray`s.
"""
device_rng(z::AbstractArray, seed::Integer) = seed < 0 ? Random.default_rng() : Random.Xoshiro(seed)

"""
    integrate!(zs, f, g, z0, t0, dt, n_steps; scheme="em", save_every=1, dW=nothing,
               dI=nothing, rng=device_rng(z0, -1)) -> zs

The loop of `sde.integrator.integrate`: `n_steps` steps of `scheme` ("em", "heun", "sra1") from `z0`
(`(D, B)`), storing every `save_every`-th state (starting with `z0`) in
`zs[:, :, k]` (`(D, B, n_saved)`, torch `(n_saved, B, D)`). Increments are `dW[:, :, k]`
(`(D, B, n_steps)`) when given, else drawn from `rng` (`dW = sqrt(dt) N(0, 1)`,
`dI = dt/2 (dW + dZ/√3)` with an independent `dZ ~ N(0, dt)`, as torch draws them).
Step times are `t0 + dt k` computed in Float64, then converted to the element type.
"""
function integrate!(zs::AbstractArray{T,3}, f, g, z0::AbstractMatrix{T}, t0::Real, dt::Real,
                    n_steps::Integer; scheme::AbstractString="em", save_every::Integer=1,
                    dW=nothing, dI=nothing, rng=device_rng(z0, -1)) where {T}
    scheme in ("em", "heun", "sra1") || throw(ArgumentError("unknown scheme $(repr(scheme)); expected em, heun or sra1"))
    save_every >= 1 || throw(ArgumentError("save_every must be >= 1, found $save_every"))
    size(zs, 3) == n_steps ÷ save_every + 1 ||
        throw(DimensionMismatch("zs holds $(size(zs, 3)) states, expected $(n_steps ÷ save_every + 1)"))
    dW === nothing || size(dW) == (size(z0)..., n_steps) ||
        throw(DimensionMismatch("dW has size $(size(dW)), expected $((size(z0)..., n_steps))"))
    scheme == "sra1" && dW !== nothing && (dI === nothing || size(dI) != size(dW)) &&
        throw(ArgumentError("scheme sra1 with given dW needs dI of the same size"))
    h = T(dt)
    h34 = T(0.75 * Float64(dt))
    sq = sqrt(T(dt))
    nw = similar(z0)
    nz = similar(z0)
    z = copy(z0)
    zs[:, :, 1] .= z0
    for k in 0:n_steps-1
        t = T(Float64(t0) + Float64(dt) * k)
        if dW === nothing
            randn!(rng, nw)
            nw .*= sq
            w = nw
            if scheme == "sra1"
                randn!(rng, nz)
                nz .= (T(0.5) * h) .* (nw .+ (nz .* sq) ./ sqrt(T(3)))
            end
            wi = nz
        else
            w = view(dW, :, :, k + 1)
            wi = dI === nothing ? nothing : view(dI, :, :, k + 1)
        end
        z = scheme == "em" ? em_step(f, g, t, z, h, w) :
            scheme == "heun" ? heun_step(f, g, t, z, h, w) : sra1_step(f, g, t, z, h, w, wi, h34)
        if (k + 1) % save_every == 0
            zs[:, :, (k + 1) ÷ save_every + 1] .= z
        end
    end
    return zs
end

"""
    rollout!(zs, z0, sigma, t0, dt, n_steps, scheme, save_every, dW, dI, mu, f, seed, p::DriftParams) -> zs

A whole ensemble rollout of the learned SDE `dz = multiscale_drift(p, t, z, mu, f) dt +
sigma dW` in one call (the loop stays in Julia). `sigma` is `(D,)` or `(D, B)`; `mu`, `f`
constant per sample or `nothing`; `dW`/`dI` `(D, B, n_steps)` or `nothing` (then drawn from
`device_rng(z0, seed)`). Waits for the device before returning.
"""
function rollout!(zs, z0, sigma, t0, dt, n_steps, scheme, save_every, dW, dI, mu, f, seed::Integer,
                  p::DriftParams)
    drift = (t, z) -> multiscale_drift!(similar(z), p, t, z, mu, f)
    integrate!(zs, drift, sigma, z0, t0, dt, n_steps; scheme=scheme, save_every=save_every,
               dW=dW, dI=dI, rng=device_rng(z0, seed))
    KernelAbstractions.synchronize(get_backend(zs))
    return zs
end
