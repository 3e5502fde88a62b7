"""Neural-network building blocks, named as in `torch.nn`. So far: `functional`."""

from . import functional

__all__ = ["functional"]
