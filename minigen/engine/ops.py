r"""The rules: every array operation as one `Function`, its forward and backward side by side.
The functions that call them with checked arguments (`reshape`, `matmul`, ...) are in
`arrays.py`; the Tensor's operators (`+`, `@`, `x.sum()`, ...) call them too.

Notation in the docstrings: $y$ is the result, $\bar y = \partial L/\partial y$ the gradient
arriving from the loss $L$, and $\bar a, \bar b$ the gradients the rule returns for the
inputs $a, b$. Products are elementwise unless written with $@$. Inputs that were broadcast
get their gradient summed back to their own shape by the engine (`unbroadcast`), so the
rules below are written as if every operand had the result's shape.
"""

from __future__ import annotations

from math import prod

import numpy as np

from .function import Function
from .tensor import Tensor, unbroadcast


def _constant(array, dtype) -> Tensor:
    """A tensor with no gradient (a mask or a fixed factor inside a backward rule)."""
    return Tensor._make(np.asarray(array, dtype=dtype), None)


# --- elementwise arithmetic ------------------------------------------------------------------


class Add(Function):
    r"""$y = a + b$; $\bar a = \bar y$, $\bar b = \bar y$."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    r"""$y = a - b$; $\bar a = \bar y$, $\bar b = -\bar y$."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    r"""$y = a b$; $\bar a = \bar y\, b$, $\bar b = \bar y\, a$."""

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs  # skip the product an input without requires_grad would not use
        return (grad * b if a.requires_grad else None), (grad * a if b.requires_grad else None)


class Div(Function):
    r"""$y = a / b$; $\bar a = \bar y / b$, $\bar b = -\bar y\, a / b^2$."""

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs
        return (grad / b if a.requires_grad else None), (-grad * a / (b * b) if b.requires_grad else None)


class Neg(Function):
    r"""$y = -a$; $\bar a = -\bar y$."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    r"""$y = a^b$ for tensors $a > 0$ and $b$; $\bar a = \bar y\, b\, a^{b-1}$, $\bar b = \bar y\, y \ln a$."""

    @staticmethod
    def forward(ctx, a, b):
        return np.power(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs
        grad_a = grad * b * a ** (b - 1) if a.requires_grad else None
        grad_b = grad * ctx.output * a.log() if b.requires_grad else None
        return grad_a, grad_b


class PowScalar(Function):
    r"""$y = a^p$ for a fixed number $p$; $\bar a = \bar y\, p\, a^{p-1}$."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.exponent = exponent
        return np.power(a, exponent)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        p = ctx.exponent
        if p == 0:
            return grad * 0.0
        return grad * p * a ** (p - 1)


class Exp(Function):
    r"""$y = e^a$; $\bar a = \bar y\, y$."""

    @staticmethod
    def forward(ctx, a):
        return np.exp(a)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.output


class Log(Function):
    r"""$y = \ln a$ for $a > 0$; $\bar a = \bar y / a$."""

    @staticmethod
    def forward(ctx, a):
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        return grad / a


class Sqrt(Function):
    r"""$y = \sqrt a$ for $a > 0$; $\bar a = \bar y / (2 y)$."""

    @staticmethod
    def forward(ctx, a):
        return np.sqrt(a)

    @staticmethod
    def backward(ctx, grad):
        return grad / (ctx.output * 2.0)


class Abs(Function):
    r"""$y = |a|$; $\bar a = \bar y\, \mathrm{sign}(a)$ (0 at $a = 0$, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        return grad * _constant(np.sign(a.data), a.dtype)


class Maximum(Function):
    r"""$y = \max(a, b)$ elementwise; the gradient goes to the larger input (split evenly on a tie).

    $\bar a = \bar y\, m$, $\bar b = \bar y\, (1 - m)$ with $m = [a > b] + \tfrac12 [a = b]$.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.share_a = (a > b) + 0.5 * (a == b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        share_a = _constant(ctx.share_a, grad.dtype)
        return grad * share_a, grad * (1.0 - share_a)


class Minimum(Function):
    r"""$y = \min(a, b)$ elementwise; $\bar a = \bar y\, m$, $\bar b = \bar y\,(1 - m)$ with $m = [a < b] + \tfrac12 [a = b]$."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.share_a = (a < b) + 0.5 * (a == b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        share_a = _constant(ctx.share_a, grad.dtype)
        return grad * share_a, grad * (1.0 - share_a)


class Clip(Function):
    r"""$y = \min(\max(a, lo), hi)$; $\bar a = \bar y\, [lo \le a \le hi]$ (edges included, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a, low, high):
        inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a >= low
        if high is not None:
            inside &= a <= high
        ctx.inside = inside
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        return grad * _constant(ctx.inside, grad.dtype)


# --- matrix product --------------------------------------------------------------------------


def _swap_last_two(x: Tensor) -> Tensor:
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return Transpose.apply(x, axes=tuple(axes))


class MatMul(Function):
    r"""$Y = A @ B$ over the last two axes (earlier axes are a broadcast batch).

    $\bar A = \bar Y @ B^\top$, $\bar B = A^\top @ \bar Y$.
    """

    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.inputs
        grad_a = grad @ _swap_last_two(b) if a.requires_grad else None
        grad_b = _swap_last_two(a) @ grad if b.requires_grad else None
        return grad_a, grad_b


# --- reductions ------------------------------------------------------------------------------


def _kept_shape(shape, axis) -> tuple[int, ...]:
    """The shape of a reduction with keepdims=True: reduced axes become 1."""
    return tuple(1 if axis is None or i in axis else n for i, n in enumerate(shape))


def _unreduce(grad: Tensor, shape, axis, keepdims: bool) -> Tensor:
    """Spread the gradient of a reduction back over the axes it reduced."""
    if not keepdims:
        grad = grad.reshape(_kept_shape(shape, axis))
    return grad.broadcast_to(shape)


class Sum(Function):
    r"""$y = \sum_{i \in \text{axis}} a_i$; $\bar a_i = \bar y$ (each summand gets the whole gradient)."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.axis, ctx.keepdims = axis, keepdims
        return np.sum(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _unreduce(grad, ctx.inputs[0].shape, ctx.axis, ctx.keepdims)


class Mean(Function):
    r"""$y = \frac1N \sum_{i \in \text{axis}} a_i$; $\bar a_i = \bar y / N$."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.axis, ctx.keepdims = axis, keepdims
        ctx.count = a.size // max(1, prod(_kept_shape(a.shape, axis)))
        return np.mean(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _unreduce(grad, ctx.inputs[0].shape, ctx.axis, ctx.keepdims) / float(ctx.count)


class Max(Function):
    r"""$y = \max_{i \in \text{axis}} a_i$; $\bar a_i = \bar y\, [a_i = y] / \#\{j: a_j = y\}$ (ties share)."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        if a.size == 0:
            raise ValueError(f"max: cannot take the maximum of an empty tensor of shape {a.shape}")
        ctx.axis, ctx.keepdims = axis, keepdims
        top = np.max(a, axis=axis, keepdims=True)
        winners = a == top
        ctx.share = winners / winners.sum(axis=axis, keepdims=True)
        return top if keepdims else np.max(a, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        spread = _unreduce(grad, ctx.inputs[0].shape, ctx.axis, ctx.keepdims)
        return spread * _constant(ctx.share, grad.dtype)


class Var(Function):
    r"""$y = \frac{1}{N - \mathrm{ddof}} \sum_i (a_i - \bar a)^2$; $\bar a_i = \bar y\, \frac{2 (a_i - \bar a)}{N - \mathrm{ddof}}$.

    ($\bar a$ on the right is the mean. The mean's own dependence on $a_i$ drops out,
    because the deviations sum to zero.)
    """

    @staticmethod
    def forward(ctx, a, axis, keepdims, ddof):
        ctx.axis, ctx.keepdims = axis, keepdims
        ctx.dof = a.size // max(1, prod(_kept_shape(a.shape, axis))) - ddof
        return np.var(a, axis=axis, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        deviation = a - a.mean(axis=ctx.axis, keepdims=True)
        return _unreduce(grad, a.shape, ctx.axis, ctx.keepdims) * deviation * (2.0 / ctx.dof)


# --- shapes ----------------------------------------------------------------------------------


class Reshape(Function):
    r"""The same elements in a new shape; $\bar a = \mathrm{reshape}(\bar y, \text{shape of } a)$."""

    @staticmethod
    def forward(ctx, a, shape):
        return np.reshape(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.inputs[0].shape)


class Transpose(Function):
    r"""Permute the axes: $y_{i_{p(0)} \dots} = a_{i_0 \dots}$; $\bar a$ is $\bar y$ permuted back."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, grad):
        return Transpose.apply(grad, axes=tuple(np.argsort(ctx.axes).tolist()))


class BroadcastTo(Function):
    r"""Repeat along stretched axes (NumPy broadcasting); $\bar a = \sum_\text{copies} \bar y$."""

    @staticmethod
    def forward(ctx, a, shape):
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast a tensor of shape {a.shape} to {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.inputs[0].shape, ctx.name)


class AsType(Function):
    r"""Change the float width; $\bar a = \bar y$ in $a$'s dtype."""

    name = "astype"

    @staticmethod
    def forward(ctx, a, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.inputs[0].dtype)


# --- indexing --------------------------------------------------------------------------------


def _is_basic(index) -> bool:
    """Basic indexing (ints, slices, None, ...) picks each element at most once."""
    index = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in index)


class GetItem(Function):
    r"""$y = a[\text{index}]$; $\bar a$ is zero except $\bar a[\text{index}] \mathrel{+}= \bar y$.

    With an integer-array index an element can be picked twice: its gradients add up.
    """

    name = "getitem"

    @staticmethod
    def forward(ctx, a, index):
        ctx.index = index
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, index=ctx.index, shape=ctx.inputs[0].shape)


class IndexAdd(Function):
    r"""The adjoint of indexing: $y = 0$ of `shape`, then $y[\text{index}] \mathrel{+}= a$; $\bar a = \bar y[\text{index}]$."""

    @staticmethod
    def forward(ctx, a, index, shape):
        ctx.index = index
        out = np.zeros(shape, dtype=a.dtype)
        if _is_basic(index):
            out[index] = a
        else:
            np.add.at(out, index, a)
        return out

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, index=ctx.index)


# --- joining and padding ---------------------------------------------------------------------


class Concatenate(Function):
    r"""Join along an existing axis; $\bar a_k$ is the slice of $\bar y$ where $a_k$ landed."""

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        grads, start = [], 0
        for x in ctx.inputs:
            stop = start + x.shape[ctx.axis]
            grads.append(grad[(slice(None),) * ctx.axis + (slice(start, stop),)])
            start = stop
        return tuple(grads)


class Stack(Function):
    r"""Join along a new axis; $\bar a_k = \bar y[\dots, k, \dots]$."""

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        before = (slice(None),) * ctx.axis
        return tuple(grad[before + (k,)] for k in range(len(ctx.inputs)))


class Pad(Function):
    r"""Surround with a constant; $\bar a$ is the middle of $\bar y$ (the padding gets no gradient)."""

    @staticmethod
    def forward(ctx, a, pad_width, constant_values):
        ctx.pad_width = pad_width
        return np.pad(a, pad_width, mode="constant", constant_values=constant_values)

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.inputs[0].shape
        return grad[tuple(slice(before, before + n) for (before, _), n in zip(ctx.pad_width, shape))]


class Where(Function):
    r"""$y = a$ where the condition holds, else $b$; $\bar a = [c]\,\bar y$, $\bar b = [\lnot c]\,\bar y$."""

    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition = condition
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        zero = _constant(0.0, grad.dtype)
        return (
            Where.apply(grad, zero, condition=ctx.condition),
            Where.apply(zero, grad, condition=ctx.condition),
        )
