"""Compute kernels: Numba (and BLAS) fast paths, each beside the NumPy twin that defines it.

`conv` (conv2d, its transpose and its weight gradient, by im2col and col2im), `winograd` (3x3
stride-1 convolutions with Winograd's F(2x2, 3x3)), `norm` (batch norm and the activation after
it, in one pass, and group norm on the same kernels), `activation` (LeakyReLU), `pool` (average pooling, nearest upsampling and
their adjoints), `dense`, and `optim` (the Adam update in one pass). These work on plain NumPy
arrays; the differentiable operations built on them are in `minigen.functional`. `threads`
runs the convolutions chunk by chunk of images on minigen's threads (`set_num_threads`).
"""

from . import activation, conv, dense, norm, optim, pool, threads, winograd

__all__ = ["activation", "conv", "dense", "norm", "optim", "pool", "threads", "winograd"]
