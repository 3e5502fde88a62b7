"""Functions of tensors, as in `torch.nn.functional` (also reachable as `minigen.nn.functional`).

- `activations`: relu, leaky_relu, sigmoid, tanh, softplus, log_sigmoid, logsumexp,
  softmax, log_softmax;
- `layers`: linear, conv2d, conv_transpose2d, avg_pool2d, upsample_nearest2d.

The array operations NumPy users expect are here too: matmul, maximum, minimum,
concatenate, stack, pad, where.
"""

from ..engine.ops import concatenate, matmul, maximum, minimum, pad, stack, where
from .activations import leaky_relu, log_sigmoid, log_softmax, logsumexp, relu, sigmoid, softmax, softplus, tanh
from .layers import avg_pool2d, conv2d, conv_transpose2d, linear, upsample_nearest2d

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "log_sigmoid", "logsumexp", "softmax", "log_softmax",
    "linear", "conv2d", "conv_transpose2d", "avg_pool2d", "upsample_nearest2d",
    "matmul", "maximum", "minimum", "concatenate", "stack", "pad", "where",
]
