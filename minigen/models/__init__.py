"""The generative models: one file per family, each written to be read beside its papers."""

from .vae import ELBO, VAE, ConditionalVAE, ConvVAE

__all__ = ["ELBO", "VAE", "ConditionalVAE", "ConvVAE"]
