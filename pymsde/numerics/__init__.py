"""Numerical building blocks on ``(B, C, *grid)`` tensors, pure functions of torch tensors:
boundary padding and stencil gathers (``padding``), finite differences (``stencils``),
spectral helpers and ETDRK4 coefficients (``spectral``), PDE right-hand sides and time steps
(``pde``). The Julia package ``julia/`` mirrors them one to one."""
