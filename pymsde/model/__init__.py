"""The stochastic multiscale model (docs/method.md sections 2-5): coarse-graining kernel,
encoder, Product-of-Experts decoder, multiscale drift, diffusion, GP path posterior."""
from pymsde.model.config import ModelConfig
from pymsde.model.decoder import Decoder, MicroDecoder
from pymsde.model.diffusion import Diffusion
from pymsde.model.drift import MultiscaleDrift
from pymsde.model.encoder import Encoder, MicroEncoder
from pymsde.model.coarse_graining import CoarseGrainingKernel
from pymsde.model.multiscale import MultiscaleModel
from pymsde.model.posterior import GPPosterior, GPWindow, posterior_drift

__all__ = ["ModelConfig", "MultiscaleModel", "CoarseGrainingKernel", "Encoder", "MicroEncoder", "Decoder",
           "MicroDecoder", "MultiscaleDrift", "Diffusion", "GPPosterior", "GPWindow", "posterior_drift"]
