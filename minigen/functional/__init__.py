"""Functions of tensors, as in `torch.nn.functional` (also reachable as `minigen.nn.functional`).

- `activations`: relu, leaky_relu, sigmoid, tanh, silu, softplus, log_sigmoid, logsumexp,
  softmax, log_softmax;
- `layers`: linear, conv2d, conv_transpose2d, avg_pool2d, upsample_nearest2d, batch_norm,
  group_norm;
- `losses`: binary_cross_entropy_with_logits, binary_cross_entropy, mse_loss,
  cross_entropy, gaussian_nll_loss, kl_standard_normal.

The array operations NumPy users expect are here too: matmul, maximum, minimum,
concatenate, stack, pad, where.
"""

from ..engine.arrays import concatenate, matmul, maximum, minimum, pad, stack, where
from .activations import (
    leaky_relu,
    log_sigmoid,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from .layers import (
    avg_pool2d,
    batch_norm,
    batch_norm_statistics,
    conv2d,
    conv_transpose2d,
    group_norm,
    linear,
    pair_of_ints,
    upsample_nearest2d,
)
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    kl_standard_normal,
    mse_loss,
)

# fmt: off
__all__ = [
    "activations", "layers", "losses",  # the modules
    "relu", "leaky_relu", "sigmoid", "tanh", "silu", "softplus", "log_sigmoid", "logsumexp", "softmax", "log_softmax",
    "linear", "conv2d", "conv_transpose2d", "avg_pool2d", "upsample_nearest2d", "batch_norm", "batch_norm_statistics", "group_norm",
    "binary_cross_entropy_with_logits", "binary_cross_entropy", "mse_loss", "cross_entropy",
    "gaussian_nll_loss", "kl_standard_normal",
    "matmul", "maximum", "minimum", "concatenate", "stack", "pad", "where",
    "pair_of_ints",  # the layers' (height, width) argument check, shared with minigen.nn
]
# fmt: on
