"""Compute kernels: Numba (and BLAS) fast paths, each beside the NumPy twin that defines it.

`conv` (conv2d, its transpose and its weight gradient), `pool` (average pooling, nearest
upsampling and their adjoints), `dense`, and `optim` (the Adam update in one pass). These work on plain NumPy arrays; the
differentiable operations built on them are in `minigen.functional.layers`.
"""

from . import conv, dense, optim, pool

__all__ = ["conv", "dense", "optim", "pool"]
