"""The autograd engine: `Tensor`, the operations (`Function`s) and gradient checking."""

# tensor first: it imports ops (for its operators), which imports function, which needs Tensor.
from .tensor import Tensor, enable_grad, grad, is_grad_enabled, no_grad, unbroadcast  # isort: skip
from .function import Function
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import broadcast_to, clip, concatenate, matmul, maximum, minimum, pad, reshape, stack, transpose, where

__all__ = [
    "tensor", "function", "ops", "gradcheck",  # the modules, to read (and for pdoc)
    "Function", "GradcheckError", "Tensor", "broadcast_to", "clip", "concatenate", "enable_grad",
    "grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "matmul", "maximum", "minimum",
    "no_grad", "pad", "reshape", "stack", "transpose", "unbroadcast", "where",
]
