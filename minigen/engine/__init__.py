"""The autograd engine: `Tensor`, the operations (`Function`s) and gradient checking.

Each file imports only those before it:

    tensor.py     the Tensor and the backward sweep
    function.py   the `Function` base: `apply`, which records an operation in the graph
    ops.py        every operation's forward and backward rule, one `Function` each
    arrays.py     the operations as they are called, with their arguments checked; and
                  the Tensor's operators and methods (`a + b`, `x.sum()`), put on it here
    gradcheck.py  finite differences against the backward rules
"""

from .arrays import (
    broadcast_to,
    clip,
    concatenate,
    matmul,
    maximum,
    minimum,
    pad,
    reshape,
    stack,
    transpose,
    where,
)
from .function import Function
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor import Tensor, enable_grad, grad, is_grad_enabled, no_grad, unbroadcast

# fmt: off
__all__ = [
    "tensor", "function", "ops", "arrays", "gradcheck",  # the modules, to read (and for pdoc)
    "Function", "GradcheckError", "Tensor", "broadcast_to", "clip", "concatenate", "enable_grad",
    "grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "matmul", "maximum", "minimum",
    "no_grad", "pad", "reshape", "stack", "transpose", "unbroadcast", "where",
]
# fmt: on
