"""
    PyMSDEKernels

Julia kernels of pymsde, mirroring its torch kernels one to one: boundary padding and
stencil gathers, finite-difference derivatives, the right-hand sides, time steps and whole runs
of the benchmark PDEs (finite-difference Burgers + RK4, pseudo-spectral ETDRK4 for KdV and 1-D
Burgers, the finite-volume coarse-grid Burgers + SSP-RK3), the two flow solvers' whole runs (shallow water:
MUSCL, HLL, SSP-RK; flow past a cylinder: MAC projection, immersed disc, SSP-RK3), the functional
MLP, the drift of the learned multiscale SDE and whole ensemble rollouts (Euler-Maruyama,
stochastic Heun, SRA1).

Array layout. pymsde's torch tensors are row-major; Julia sees a C-contiguous tensor of shape
`(d_1, ..., d_n)` as a column-major array of size `(d_n, ..., d_1)` over the same memory. So a
field batch `(B, C, N)` arrives as `(N, C, B)`, a 2-D field `(B, C, Nx, Ny)` as
`(Ny, Nx, C, B)`, a latent batch `(B, D)` as `(D, B)`, a weight matrix `(out, in)` as
`(in, out)`. Every function here takes arrays in this Julia layout, with `boundary` and
widths given per *Julia* spatial dimension (dimension 1 first). Julia index `[j, c, b]` is
torch index `[b-1, c-1, j-1]`.

Kernels run through KernelAbstractions on CPU threads (`Array`) and, when CUDA.jl is loaded
(package extension `PyMSDEKernelsCUDAExt`), on NVIDIA GPUs (`CuArray`). Dense products go
through `*` (BLAS on the CPU, CUBLAS on the GPU), FFTs through the AbstractFFTs calls of
FFTW.jl (FFTW on the CPU, CUFFT for `CuArray`s).
"""
module PyMSDEKernels

using KernelAbstractions
using LinearAlgebra
using Random
import DLPack
import FFTW

export pad!, gather_stencil!, apply_central!, derivative!, fd_weights, central_weights, extrapolation_weights,
       mlp_forward!, mlp_apply, DriftParams, multiscale_drift!, em_step, heun_step, sra1_step,
       rollout!, parse_boundary, burgers_rhs!, rk4_step, burgers_rk4_step, burgers_fd_run!,
       padded_square, conservative_advection_hat, etd_coefficients, etdrk4_step,
       advection_etdrk4_step, spectral_run!, burgers_fv_rhs!, burgers_fv_run!, ssprk3_step, minmod,
       CentralStencil, central_stencil, burgers_stencils, hll_flux, swe_rhs!, swe_wave_rate, swe_ssp_step,
       swe_run!, cylinder_momentum, dct2_forward, dct2_inverse, neumann_poisson, poisson_solve, cylinder_project!,
       cylinder_rk3_step, cylinder_output_field!, cylinder_run!

include("stencils.jl")
include("mlp.jl")
include("multiscale.jl")
include("sde.jl")
include("pde.jl")
include("swe.jl")
include("cylinder.jl")
include("bridge.jl")

end # module PyMSDEKernels
