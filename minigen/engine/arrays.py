"""The array operations as they are called: `reshape`, `matmul`, `where`, ... Each one checks
its arguments, says what is wrong in the words of the call, and applies the rule of
`ops.py` (where every operation is one `Function`: its forward and backward, side by side).
At the end, the Tensor's operators and array methods (`a + b`, `x.sum()`), which call the same
operations.
"""

from __future__ import annotations

import numpy as np

from .function import as_tensors
from .ops import (
    Abs,
    Add,
    AsType,
    BroadcastTo,
    Clip,
    Concatenate,
    Div,
    Exp,
    GetItem,
    Log,
    MatMul,
    Max,
    Maximum,
    Mean,
    Minimum,
    Mul,
    Neg,
    Pad,
    Pow,
    PowScalar,
    Reshape,
    Sqrt,
    Stack,
    Sub,
    Sum,
    Transpose,
    Var,
    Where,
)
from .tensor import DEFAULT_DTYPE, FLOAT_DTYPES, Tensor


def clip(x: Tensor, min=None, max=None) -> Tensor:
    """Limit every element to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) is larger than max ({max})")
    return Clip.apply(x, low=min, high=max)


def maximum(a, b) -> Tensor:
    a, b = _tensors("maximum", (a, b))
    return Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    a, b = _tensors("minimum", (a, b))
    return Minimum.apply(a, b)


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands act as a row or column vector."""
    a, b = _tensors("matmul", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least one dimension")
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if a.shape[-1] != inner_b:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner sizes {a.shape[-1]} and {inner_b} differ")
    a2 = a.reshape(1, *a.shape) if a.ndim == 1 else a
    b2 = b.reshape(*b.shape, 1) if b.ndim == 1 else b
    out = MatMul.apply(a2, b2)
    if b.ndim == 1:  # drop the column axis that made b a matrix
        out = out.reshape(out.shape[:-1])
    if a.ndim == 1:  # drop the row axis that made a a matrix
        out = out.reshape(out.shape[:-2] + out.shape[-1:] if b.ndim > 1 else out.shape[:-1])
    return out


def normalize_axis(axis, ndim: int, op: str) -> tuple[int, ...] | None:
    """`axis` as a sorted tuple of non-negative axes (None stays None: every axis)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalized = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        normalized.append(int(ax) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis} names the same axis twice")
    return tuple(sorted(normalized))


def _shape_args(args) -> tuple[int, ...]:
    """Accept both `x.reshape(2, 3)` and `x.reshape((2, 3))`, as NumPy and PyTorch do."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def reshape(x: Tensor, *shape) -> Tensor:
    shape = _shape_args(shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def transpose(x: Tensor, *axes) -> Tensor:
    """Reverse the axes, or put them in the order given (`x.permute(0, 2, 1)`)."""
    axes = _shape_args(axes) or tuple(range(x.ndim))[::-1]
    if sorted(int(a) % max(x.ndim, 1) for a in axes) != list(range(x.ndim)) or len(axes) != x.ndim:
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of a tensor of shape {x.shape}")
    return Transpose.apply(x, axes=tuple(int(a) % x.ndim for a in axes))


def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    return x if shape == x.shape else BroadcastTo.apply(x, shape=shape)


def astype(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"astype: dtype {dtype} is not supported; minigen computes in float32 or float64")
    return x if dtype == x.dtype else AsType.apply(x, dtype=dtype)


def _index_part(i):
    if isinstance(i, Tensor):
        i = i.data
    if isinstance(i, list):
        i = np.asarray(i)
    if isinstance(i, np.ndarray) and i.dtype.kind == "f":
        raise IndexError(f"getitem: an index array must hold integers or booleans, not {i.dtype}")
    return i


def getitem(x: Tensor, index) -> Tensor:
    index = tuple(_index_part(i) for i in index) if isinstance(index, tuple) else (_index_part(index),)
    return GetItem.apply(x, index=index)


def _tensors(op: str, tensors) -> tuple[Tensor, ...]:
    """At least one operand, all as tensors of one dtype (`as_tensors`: arrays and numbers are constants)."""
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    return as_tensors(op, tensors)


def concatenate(tensors, axis: int = 0) -> Tensor:
    tensors = _tensors("concatenate", tensors)
    (axis,) = normalize_axis(axis, tensors[0].ndim, "concatenate")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    tensors = _tensors("stack", tensors)
    (axis,) = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    return Stack.apply(*tensors, axis=axis)


def pad(x: Tensor, pad_width, constant_values: float = 0.0) -> Tensor:
    """NumPy's `np.pad(x, pad_width)` in constant mode: `pad_width` is an int, a pair
    (before, after) for every axis, or one pair per axis."""
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width {pad_width} does not fit a tensor of shape {x.shape}; give one (before, after) pair per axis"
        ) from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad widths must be non-negative, got {pad_width}")
    widths = tuple((int(b), int(a)) for b, a in widths)
    return Pad.apply(x, pad_width=widths, constant_values=constant_values)


def where(condition, x, y) -> Tensor:
    """`x` where `condition` is true, `y` elsewhere (the condition is a boolean array)."""
    condition = np.asarray(condition.data if isinstance(condition, Tensor) else condition, dtype=bool)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = Tensor(np.asarray(x, dtype=DEFAULT_DTYPE))
    x, y = _tensors("where", (x, y))
    return Where.apply(x, y, condition=condition)


# --- the Tensor's operators and array methods --------------------------------------------------


class _TensorMethods:
    """Python's operators and NumPy's method names for `Tensor`, each one operation above.

    They are written here, as the body of a class, and then put on `Tensor` (the loop below),
    because `tensor.py` is the bottom of the engine: the operations are built on the Tensor,
    so the Tensor cannot import them. Operands may be tensors, NumPy arrays or Python numbers,
    on either side: `2 * x`, `x - array`.
    """

    def __add__(self, other):
        return Add.apply(self, self._lift(other))

    def __radd__(self, other):
        return Add.apply(self._lift(other), self)

    def __sub__(self, other):
        return Sub.apply(self, self._lift(other))

    def __rsub__(self, other):
        return Sub.apply(self._lift(other), self)

    def __mul__(self, other):
        return Mul.apply(self, self._lift(other))

    def __rmul__(self, other):
        return Mul.apply(self._lift(other), self)

    def __truediv__(self, other):
        return Div.apply(self, self._lift(other))

    def __rtruediv__(self, other):
        return Div.apply(self._lift(other), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return Pow.apply(self, exponent)
        return PowScalar.apply(self, exponent=float(exponent))

    def __rpow__(self, base):
        return Pow.apply(self._lift(base), self)

    def __matmul__(self, other):
        return matmul(self, self._lift(other))

    def __rmatmul__(self, other):
        return matmul(self._lift(other), self)

    def __neg__(self):
        return Neg.apply(self)

    def __getitem__(self, index):
        return getitem(self, index)

    # NumPy's (and PyTorch's) method names

    def sum(self, axis=None, keepdims: bool = False):
        return Sum.apply(self, axis=normalize_axis(axis, self.ndim, "sum"), keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return Mean.apply(self, axis=normalize_axis(axis, self.ndim, "mean"), keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return Max.apply(self, axis=normalize_axis(axis, self.ndim, "max"), keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return -((-self).max(axis=axis, keepdims=keepdims))

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0):
        return Var.apply(self, axis=normalize_axis(axis, self.ndim, "var"), keepdims=keepdims, ddof=ddof)

    def reshape(self, *shape):
        return reshape(self, *shape)

    def view(self, *shape):
        """PyTorch's name for reshape (minigen copies when NumPy must; the values are the same)."""
        return reshape(self, *shape)

    def unsqueeze(self, dim: int):
        """A new axis of size 1 at position `dim` (negative counts from the end of the result)."""
        ndim = self.ndim + 1
        if not -ndim <= dim < ndim:
            raise IndexError(f"unsqueeze: dim must be in [{-ndim}, {ndim - 1}] for a tensor of shape {self.shape}, got {dim}")
        dim %= ndim
        return reshape(self, *self.shape[:dim], 1, *self.shape[dim:])

    def squeeze(self, dim: int | None = None):
        """Drop the axes of size 1 (or only `dim`, if it has size 1), as torch.squeeze."""
        if dim is None:
            return reshape(self, *[n for n in self.shape if n != 1])
        dim = normalize_axis(dim, self.ndim, "squeeze")[0]
        return self if self.shape[dim] != 1 else reshape(self, *self.shape[:dim], *self.shape[dim + 1 :])

    def transpose(self, *axes):
        return transpose(self, *axes)

    def permute(self, *axes):
        return transpose(self, *axes)

    @property
    def T(self):
        return transpose(self)

    def broadcast_to(self, shape):
        return broadcast_to(self, shape)

    def astype(self, dtype):
        return astype(self, dtype)

    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def abs(self):
        return Abs.apply(self)

    def clip(self, min=None, max=None):
        return clip(self, min, max)

    def relu(self):
        """max(x, 0), written as x times the constant mask x > 0 (`functional.relu` is the same
        rule as one named operation)."""
        return self * (self.data > 0)

    def float(self):
        """This tensor as float32 (differentiable, like astype)."""
        return self if self.dtype == np.float32 else astype(self, np.float32)

    def double(self):
        """This tensor as float64 (differentiable, like astype)."""
        return self if self.dtype == np.float64 else astype(self, np.float64)


for _name, _member in vars(_TensorMethods).items():
    if callable(_member) or isinstance(_member, property):
        if callable(_member):
            _member.__qualname__ = f"Tensor.{_name}"
        setattr(Tensor, _name, _member)
