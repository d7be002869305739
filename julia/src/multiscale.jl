# The drift of the learned multiscale SDE: port of pymsde/model/drift.py.
#
# Latent states z are columns: z has size (D, B) with D = C n_cells + micro_dim; rows
# 1:C n_cells hold zM in torch's flat order (channel slowest, cells row-major over the torch
# axes), which is the column-major memory of a Julia array (coarse..., C) with the coarse
# dimensions reversed.

"""
    DriftParams(macro_layers, micro_layers, activation, radius, boundary, coarse, channels,
                micro_dim, n_mu, n_f; positional=false, linear=nothing)

Weights and metadata of the multiscale drift (port of `pymsde.model.drift.DriftParams`).
`macro_layers`/`micro_layers` are vectors of `(W, b)` in the Julia layout (`W` is `(in, out)`);
`boundary` and `coarse` are per Julia dimension (torch order reversed). With `positional`
the macroscale MLP's input is `[stencil; pos; zm; mu; f]`, `pos` the `2d` rows of
[`positional_features`](@ref) (torch's `positional`). `linear` is `nothing` or the
`(S (1 + n_mu), C)` matrix of the linear stencil term (torch's `linear`, `(C, S (1 + n_mu))`,
in the Julia layout), applied to [`linear_features`](@ref) and added to the MLP's output.
"""
struct DriftParams{L,M,F,W}
    macro_layers::L
    micro_layers::M
    act::F
    radius::Int
    boundary::Tuple
    coarse::Tuple
    channels::Int
    micro_dim::Int
    n_mu::Int
    n_f::Int
    positional::Bool
    linear::W

    # the only constructor (an inner one, so no default constructor competes with it)
    function DriftParams(macro_layers, micro_layers, activation_name::AbstractString, radius::Integer,
                         boundary, coarse, channels::Integer, micro_dim::Integer, n_mu::Integer=0,
                         n_f::Integer=0; positional::Bool=false, linear=nothing)
        bc = parse_boundary(boundary)
        cs = Tuple(Int.(coarse))
        length(bc) == length(cs) || throw(ArgumentError("DriftParams: $(length(bc)) boundary types for coarse size $cs"))
        S = channels * (2radius + 1)^length(cs)
        n_in = S + (positional ? 2length(cs) : 0) + micro_dim + n_mu + n_f
        isempty(macro_layers) && throw(ArgumentError("DriftParams: the macroscale MLP has no layers"))
        size(first(macro_layers)[1], 1) == n_in ||
            throw(DimensionMismatch("DriftParams: first macro layer takes $(size(first(macro_layers)[1], 1)) inputs, expected $n_in"))
        size(last(macro_layers)[1], 2) == channels ||
            throw(DimensionMismatch("DriftParams: last macro layer has $(size(last(macro_layers)[1], 2)) outputs, expected $channels"))
        micro_dim == 0 && !isempty(micro_layers) &&
            throw(ArgumentError("DriftParams: micro_dim is 0 but $(length(micro_layers)) micro layers were given"))
        if micro_dim > 0
            isempty(micro_layers) && throw(ArgumentError("DriftParams: micro_dim is $micro_dim but no micro layers were given"))
            q_in = micro_dim + channels * prod(cs) + 2 + n_mu + n_f
            size(first(micro_layers)[1], 1) == q_in ||
                throw(DimensionMismatch("DriftParams: first micro layer takes $(size(first(micro_layers)[1], 1)) inputs, expected $q_in"))
            size(last(micro_layers)[1], 2) == micro_dim ||
                throw(DimensionMismatch("DriftParams: last micro layer has $(size(last(micro_layers)[1], 2)) outputs, expected $micro_dim"))
        end
        linear === nothing || size(linear) == (S * (1 + n_mu), channels) ||
            throw(DimensionMismatch("DriftParams: linear term of size $(size(linear)), expected $((S * (1 + n_mu), channels))"))
        layers_m = collect(macro_layers)
        layers_q = isempty(micro_layers) ? similar(layers_m, 0) : collect(micro_layers)
        act = activation(activation_name)
        return new{typeof(layers_m),typeof(layers_q),typeof(act),typeof(linear)}(
            layers_m, layers_q, act, Int(radius), bc, cs, Int(channels), Int(micro_dim), Int(n_mu), Int(n_f),
            positional, linear)
    end
end

n_cells(p::DriftParams) = prod(p.coarse)
macro_dim(p::DriftParams) = p.channels * n_cells(p)
stencil_size(p::DriftParams) = p.channels * (2p.radius + 1)^length(p.coarse)
n_positional(p::DriftParams) = p.positional ? 2length(p.coarse) : 0

"""
    positional_features(T, coarse) -> Matrix{T}

Port of `pymsde.model.drift.positional_features` for the coarse size `coarse` per Julia
dimension: `(2d, n_cells)`, columns in the cells' linear order (torch's row-major order);
for torch axis `a = 0, ..., d-1` (Julia dimension `d - a`, `n` cells) rows `2a + 1, 2a + 2`
hold `cos(2π i / n)`, `sin(2π i / n)` of the cell's 0-based index `i` along it. Computed in
Float64 as torch does (`2π i / n` in that order), then converted to `T`.
"""
function positional_features(::Type{T}, coarse::Tuple) where {T}
    nd = length(coarse)
    out = Matrix{T}(undef, 2nd, prod(coarse))
    for (col, I) in enumerate(CartesianIndices(coarse))
        for a in 0:nd-1
            k = nd - a
            angle = 2.0 * pi * (I[k] - 1) / coarse[k]
            out[2a+1, col] = T(cos(angle))
            out[2a+2, col] = T(sin(angle))
        end
    end
    return out
end

"""
    linear_features(rows, mu, nc) -> Matrix

Port of `pymsde.model.drift.linear_features`: the stencils `rows` `(S, nc B)` (cell fastest,
as the MLP's columns) stacked with each parameter times them, `[rows; mu_1 rows; ...]`
`(S (1 + n_mu), nc B)`; `rows` itself when `mu` is `nothing`.
"""
function linear_features(rows::AbstractMatrix, mu, nc::Integer)
    mu === nothing && return rows
    S, B, n_mu = size(rows, 1), size(rows, 2) ÷ nc, size(mu, 1)
    # dense reshapes only (no strided views: a GPU array broadcasts them without scalar indexing);
    # row k S + s of the result is mu_k times stencil value s, as torch's order
    scaled = reshape(reshape(rows, S, 1, nc, B) .* reshape(mu, 1, n_mu, 1, B), S * n_mu, nc * B)
    return vcat(rows, scaled)
end

"""
    multiscale_drift!(out, p, t, z, mu=nothing, f=nothing) -> out

Port of `pymsde.model.drift.multiscale_drift`: `t` a scalar or a vector of `B` times
(torch: scalar or `(B,)`), `z` and `out` are `(D, B)`, `mu` `(n_mu, B)`, `f` `(n_f, B)`. Macroscale: stencil gather on the coarse mesh, then
the shared MLP as one dense product over all `n_cells * B` columns (the first layer's part on
the per-sample inputs `[zm; mu; f]` computed once per sample and broadcast over cells, its part
on the positional inputs once per cell, as in torch). Microscale: the MLP on `[zm; zM; sin t; cos t; mu; f]`.
"""
function multiscale_drift!(out::AbstractMatrix{T}, p::DriftParams, t::Union{Real,AbstractVector}, z::AbstractMatrix{T},
                           mu=nothing, f=nothing) where {T}
    B = size(z, 2)
    md, nc, S = macro_dim(p), n_cells(p), stencil_size(p)
    size(z, 1) == md + p.micro_dim || throw(DimensionMismatch("multiscale_drift!: z has $(size(z, 1)) rows, expected $(md + p.micro_dim)"))
    p.n_mu > 0 && mu === nothing && throw(ArgumentError("multiscale_drift!: the model takes n_mu = $(p.n_mu) parameters but mu is nothing"))
    p.n_f > 0 && f === nothing && throw(ArgumentError("multiscale_drift!: the model takes n_f = $(p.n_f) forcing values but f is nothing"))
    zM = z[1:md, :]                                   # contiguous copies: the gather wants a dense array
    zm = z[md+1:end, :]
    extras = Any[]
    p.n_mu > 0 && push!(extras, mu)
    p.n_f > 0 && push!(extras, f)

    st = similar(z, S, p.coarse..., B)
    gather_stencil!(st, reshape(zM, p.coarse..., p.channels, B), p.radius, p.boundary, :edge)
    rows = reshape(st, S, nc * B)
    W0, b0 = p.macro_layers[1]
    glob = p.micro_dim > 0 ? Any[zm, extras...] : extras
    P = n_positional(p)
    if !isempty(glob) || P > 0
        # first layer = W_s stencil + (W_p pos + W_g [zm; mu; f] + b): per sample and per cell
        H = size(W0, 2)
        if !isempty(glob)
            g = length(glob) > 1 ? reduce(vcat, glob) : glob[1]
            shift = reshape(transpose(view(W0, S+P+1:size(W0, 1), :)) * g .+ b0, H, 1, B)   # (H, 1, B)
        else
            shift = reshape(b0, H, 1, 1)
        end
        if P > 0
            pos = copyto!(similar(z, P, nc), positional_features(T, p.coarse))
            shift = shift .+ reshape(transpose(view(W0, S+1:S+P, :)) * pos, H, nc, 1)      # (H, n_cells, 1)
        end
        h = reshape(transpose(view(W0, 1:S, :)) * rows, H, nc, B) .+ shift
        h = reshape(h, H, nc * B)
    else
        h = transpose(W0) * rows .+ b0
    end
    if length(p.macro_layers) > 1
        h = mlp_apply(p.act.(h), p.macro_layers[2:end], p.act)
    end
    if p.linear !== nothing
        h = h .+ transpose(p.linear) * linear_features(rows, p.n_mu > 0 ? mu : nothing, nc)
    end
    # (C, n_cells, B) -> (n_cells, C, B): channel slowest within a sample, like zM
    out[1:md, :] .= reshape(permutedims(reshape(h, p.channels, nc, B), (2, 1, 3)), md, B)
    if p.micro_dim > 0
        # torch converts t to z's dtype first, then takes sin and cos (features [sin t, cos t])
        if t isa Real
            tt = T(t)
            st, ct = fill!(similar(z, 1, B), sin(tt)), fill!(similar(z, 1, B), cos(tt))
        else
            length(t) == B || throw(DimensionMismatch("multiscale_drift!: $(length(t)) times for $B samples"))
            tt = reshape(T.(t), 1, B)
            st, ct = sin.(tt), cos.(tt)
        end
        x = reduce(vcat, Any[zm, zM, st, ct, extras...])
        out[md+1:end, :] .= mlp_apply(x, p.micro_layers, p.act)
    end
    return out
end
