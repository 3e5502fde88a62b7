"""Compute kernels: Numba (and BLAS) fast paths, each beside the NumPy twin that defines it.

`conv` (conv2d, its transpose and its weight gradient), `pool` (average pooling, nearest
upsampling and their adjoints) and `dense`. These work on plain NumPy arrays; the
differentiable operations built on them are in `minigen.functional.layers`.
"""

from . import conv, dense, pool

__all__ = ["conv", "dense", "pool"]
