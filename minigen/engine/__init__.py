"""The autograd engine: `Tensor`, the operations (`Function`s) and gradient checking.

Each file builds on those before it: `tensor.py` (the Tensor and the backward sweep),
`function.py` (the `Function` base: `apply`), `ops.py` (every operation's forward and
backward rule), `arrays.py` (the operations as they are called, with their arguments
checked), `gradcheck.py`. The one reference back down the list: the Tensor's operators
(`a + b`, `x.sum()`) call `ops.py` and `arrays.py`, imported at the end of `tensor.py`.
"""

from .tensor import Tensor, enable_grad, grad, is_grad_enabled, no_grad, unbroadcast  # isort: skip
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

__all__ = [
    "tensor", "function", "ops", "arrays", "gradcheck",  # the modules, to read (and for pdoc)
    "Function", "GradcheckError", "Tensor", "broadcast_to", "clip", "concatenate", "enable_grad",
    "grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "matmul", "maximum", "minimum",
    "no_grad", "pad", "reshape", "stack", "transpose", "unbroadcast", "where",
]
