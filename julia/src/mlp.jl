# The functional MLP: port of pymsde/model/mlp.py.
#
# torch: y_{k+1} = act(y_k W_k^T + b_k) on rows, W_k of shape (out, in).
# Julia: the same memory is W (in, out) and inputs are columns, so the layer is
#        y_{k+1} = act(transpose(W) * y_k .+ b): one dense product per layer over all columns
#        (BLAS gemm on the CPU, CUBLAS on the GPU).

"""
    silu(x)

`x σ(x) = x / (1 + exp(-x))`, torch's `F.silu`.
"""
silu(x) = x / (one(x) + exp(-x))

"""
    softplus(x)

`log(1 + exp(x))` with torch's default switch to the identity above `x = 20` (`F.softplus`,
beta 1, threshold 20).
"""
softplus(x) = x > 20 ? x : log1p(exp(x))

"""
    relu(x)

`max(x, 0)`.
"""
relu(x) = max(x, zero(x))

"""
    activation(name) -> Function

The elementwise activation for a name used by pymsde (`"tanh"`, `"silu"`, `"softplus"`,
`"relu"`); `ArgumentError` otherwise.
"""
function activation(name::AbstractString)
    name == "tanh" && return tanh
    name == "silu" && return silu
    name == "softplus" && return softplus
    name == "relu" && return relu
    throw(ArgumentError("activation $(repr(name)); expected one of relu, silu, softplus, tanh"))
end

"""
    mlp_apply(x, layers, act) -> y

Evaluate the MLP on the columns of `x` (`(in, rows)`); `layers` is a vector of `(W, b)` with
`W` of size `(in_k, out_k)` (torch's `(out, in)` weight seen from Julia) and `b` of length
`out_k`. `act` is applied between layers, not after the last. Returns `(out, rows)`.
"""
function mlp_apply(x::AbstractMatrix, layers, act)
    h = x
    n = length(layers)
    for (k, (W, b)) in enumerate(layers)
        y = transpose(W) * h .+ b
        h = k < n ? act.(y) : y
    end
    return h
end

"""
    mlp_forward!(out, x, weights, biases, activation_name) -> out

Port of `pymsde.model.mlp.mlp_forward(x, weights, biases, activation)` in torch's argument
order: `x` is `(in, rows)` (torch `(rows, in)`), `weights[k]` `(in_k, out_k)` (torch's
`(out, in)` memory), `biases[k]` of length `out_k`, `out` is `(out, rows)`.
"""
function mlp_forward!(out::AbstractMatrix, x::AbstractMatrix, weights::AbstractVector, biases::AbstractVector,
                      activation_name::AbstractString)
    length(weights) == length(biases) > 0 ||
        throw(ArgumentError("mlp_forward!: $(length(weights)) weight matrices and $(length(biases)) bias vectors"))
    copyto!(out, mlp_apply(x, collect(zip(weights, biases)), activation(activation_name)))
    return out
end

"""
    mlp_forward!(out, x, activation_name, W1, b1, W2, b2, ...) -> out

Bridge form (what `pymsde.backends.julia.mlp_forward` calls): the activation name first, then
the weights and biases alternating as positional arguments.

Port of `pymsde.model.mlp.mlp_forward` for a batch of rows: `x` is `(in, rows)` (torch
`(rows, in)`), the weights and biases alternate as positional arguments, `out` is
`(out, rows)`.
"""
function mlp_forward!(out::AbstractMatrix, x::AbstractMatrix, activation_name::AbstractString, wb::AbstractArray...)
    iseven(length(wb)) || throw(ArgumentError("mlp_forward!: weights and biases must alternate"))
    layers = [(wb[2k-1], wb[2k]) for k in 1:length(wb)÷2]
    copyto!(out, mlp_apply(x, layers, activation(activation_name)))
    return out
end
