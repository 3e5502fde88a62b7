r"""The dense (fully connected) layer: $y = x W^\top + b$, with $W$ of shape (out, in) as in PyTorch.

There is no Numba here on purpose: a dense layer is a single matrix product, and NumPy's
BLAS already runs it near the machine's peak (`threads.matmul`: on BLAS's own threads, or,
once the process has run a convolution, split over minigen's). The fast version only avoids
temporaries (the bias is added in place); its gradients are matrix products too
($\bar x = \bar y W$, $\bar W = \bar y^\top x$, $\bar b = \sum_n \bar y_n$), in
`minigen.functional.layers`.
"""

from __future__ import annotations

import numpy as np

from .threads import matmul


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = matmul(x.reshape(-1, x.shape[-1]), weight.T).reshape(*x.shape[:-1], weight.shape[0])
    if bias is not None:
        y += bias
    return y


def linear_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """y[..., o] = sum over i of x[..., i] W[o, i], plus b[o]."""
    y = np.einsum("...i,oi->...o", x, weight)
    return y if bias is None else y + bias
