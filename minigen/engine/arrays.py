"""The array operations as they are called: `reshape`, `matmul`, `where`, ... Each one checks
its arguments, says what is wrong in the words of the call, and applies the rule of
`ops.py` (where every operation is one `Function`: its forward and backward, side by side).
"""

from __future__ import annotations

import numpy as np

from .function import as_tensors
from .ops import (
    AsType,
    BroadcastTo,
    Clip,
    Concatenate,
    GetItem,
    MatMul,
    Maximum,
    Minimum,
    Pad,
    Reshape,
    Stack,
    Transpose,
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
        raise ValueError(f"pad: pad_width {pad_width} does not fit a tensor of shape {x.shape}; give one (before, after) pair per axis") from None
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
