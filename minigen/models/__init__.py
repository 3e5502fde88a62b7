"""The generative models: one file per family, each written to be read beside its papers."""

from . import diffusion, gan, vae
from .vae import ELBO, VAE, ConditionalVAE, ConvVAE

__all__ = ["ELBO", "VAE", "ConditionalVAE", "ConvVAE", "vae", "gan", "diffusion"]
