"""pymsde: learn stochastic multiscale models of physical systems from data.

The layers, in the one direction data flows (each imports only the ones before it):

``util`` -> ``kernels`` (torch / Julia backends for stencils and SDE steps) ->
``systems`` (fine-grid simulators, coarse-grid solver) and ``data`` (containers, files,
windows) -> ``model`` (encoder, decoder, drift, diffusion, posterior) -> ``inference``
(ELBO, training, checkpoints) -> ``forecast`` (SDE integrators, ensembles) -> ``evaluate``
(metrics, baselines, plots, report) -> ``cli``.
"""
__version__ = "0.1.0"
