"""Fixed-step SDE integration (Itô, diagonal noise): the step functions and the one time loop
(``integrator``), diffrax-style solver objects (``solvers``), forcing interpolation in time
(``forcing``) and the torchsde view of the learned latent SDE (``torchsde_view``)."""
from pymsde.sde.forcing import LinearForcing, interp_linear
from pymsde.sde.integrator import SCHEMES, brownian_increments, coarsen_increments, integrate, noise_chunk
from pymsde.sde.solvers import SRA1, EulerMaruyama, Solver, StochasticHeun, get_solver, solve
from pymsde.sde.torchsde_view import LatentSDE

__all__ = ["SCHEMES", "integrate", "brownian_increments", "coarsen_increments", "noise_chunk", "Solver",
           "EulerMaruyama", "StochasticHeun", "SRA1", "get_solver", "solve", "LinearForcing",
           "interp_linear", "LatentSDE"]
