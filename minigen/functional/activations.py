r"""Activations: each one a `Function` with its forward and backward rule side by side.

Notation as in `minigen.engine.ops`: $\bar y = \partial L/\partial y$. The log-domain ones are
written so that they never overflow: `softplus`, `log_sigmoid` and `logsumexp` give finite
values and gradients for inputs as large as $\pm 10^4$, in float32 too.
"""

from __future__ import annotations

import numpy as np

from ..engine.arrays import normalize_axis
from ..engine.function import Function
from ..engine.ops import _constant, _unreduce
from ..engine.tensor import Tensor, is_grad_enabled
from ..kernels import activation as activation_kernels

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "silu", "softplus", "log_sigmoid", "logsumexp", "softmax", "log_softmax"]


class Relu(Function):
    r"""$y = \max(a, 0)$; $\bar a = \bar y\, [a > 0]$."""

    @staticmethod
    def forward(ctx, a):
        return np.maximum(a, 0)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        return grad * _constant(a.data > 0, grad.dtype)


def relu(x: Tensor) -> Tensor:
    return Relu.apply(x)


class LeakyRelu(Function):
    r"""$y = a$ for $a > 0$, else $s\,a$; $\bar a = \bar y$ for $a > 0$, else $s\,\bar y$ (`minigen.kernels.activation`)."""

    @staticmethod
    def forward(ctx, a, negative_slope):
        ctx.negative_slope = negative_slope
        return activation_kernels.leaky_relu(a, negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        if not is_grad_enabled():
            return Tensor._make(activation_kernels.leaky_relu_backward(grad.data, a.data, ctx.negative_slope), None)
        # recording: a product with a constant factor (1 or s), differentiable in grad
        return grad * _constant(activation_kernels.leaky_relu_backward(np.ones_like(grad.data), a.data, ctx.negative_slope), grad.dtype)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """LeakyReLU; DCGAN uses `negative_slope=0.2` in its discriminator."""
    return LeakyRelu.apply(x, negative_slope=negative_slope)


def _one_plus_exp_minus(a: np.ndarray) -> np.ndarray:
    r"""$1 + e^{-a}$, a new array of a's dtype (an array even for a 0-d a), $+\infty$ where
    $e^{-a}$ overflows (see `minigen.kernels.activation.exp_minus`)."""
    e = activation_kernels.exp_minus(a, out=np.empty_like(a))
    e += 1
    return e


class Sigmoid(Function):
    r"""$y = \sigma(a) = 1 / (1 + e^{-a})$; $\bar a = \bar y\, y (1 - y)$.

    Computed as written, in place on one new array: where $\sigma(a)$ is tiny, $1 + e^{-a}$
    is $e^{-a}$ to full relative precision, and so is its reciprocal (see `_one_plus_exp_minus`
    for where it overflows).
    """

    @staticmethod
    def forward(ctx, a):
        e = _one_plus_exp_minus(a)
        return np.divide(1, e, out=e)

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return grad * y * (1.0 - y)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


class Tanh(Function):
    r"""$y = \tanh a$; $\bar a = \bar y\, (1 - y^2)$."""

    @staticmethod
    def forward(ctx, a):
        return np.tanh(a)

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return grad * (1.0 - y * y)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


class Silu(Function):
    r"""$y = a\, \sigma(a) = a / (1 + e^{-a})$ (SiLU, or swish; the activation of DDPM's U-Net);
    $\bar a = \bar y\, \sigma(a)\big(1 + a (1 - \sigma(a))\big)$.

    The forward in place on one new array (a U-Net calls it on every activation twice a step),
    the backward by `minigen.kernels.activation.silu_backward`, its $\sigma(a)$ recomputed
    from a, as PyTorch's is, rather than kept."""

    @staticmethod
    def forward(ctx, a):
        e = _one_plus_exp_minus(a)
        return np.divide(a, e, out=e)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        if is_grad_enabled():  # recording: differentiable operations, for second derivatives
            s = sigmoid(a)
            return grad * (s * (1.0 + a * (1.0 - s)))
        return Tensor._make(activation_kernels.silu_backward(grad.data, a.data), None)


def silu(x: Tensor) -> Tensor:
    return Silu.apply(x)


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


class Softplus(Function):
    r"""$y = \ln(1 + e^a)$; $\bar a = \bar y\, \sigma(a)$.

    Computed as $\max(a, 0) + \ln(1 + e^{-|a|})$: no overflow for large $|a|$ (and ten times
    faster than NumPy's `logaddexp`, measured on 100,000 values).
    """

    @staticmethod
    def forward(ctx, a):
        return _softplus(a)

    @staticmethod
    def backward(ctx, grad):
        return grad * sigmoid(ctx.inputs[0])


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(x)


class LogSigmoid(Function):
    r"""$y = \ln \sigma(a) = -\mathrm{softplus}(-a)$; $\bar a = \bar y\, \sigma(-a)$."""

    @staticmethod
    def forward(ctx, a):
        return -_softplus(-a)

    @staticmethod
    def backward(ctx, grad):
        return grad * sigmoid(-ctx.inputs[0])


def log_sigmoid(x: Tensor) -> Tensor:
    return LogSigmoid.apply(x)


def _stable_logsumexp(a: np.ndarray, axis) -> np.ndarray:
    """$\\ln \\sum_i e^{a_i} = m + \\ln \\sum_i e^{a_i - m}$ with $m = \\max_i a_i$, keeping dims."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # a row of -inf stays -inf instead of becoming nan
    return np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m


class LogSumExp(Function):
    r"""$y = \ln \sum_i e^{a_i}$ over `axis`; $\bar a_i = \bar y\, \mathrm{softmax}(a)_i$."""

    name = "logsumexp"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.axis, ctx.keepdims = axis, keepdims
        out = _stable_logsumexp(a, axis)
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        return _unreduce(grad, a.shape, ctx.axis, ctx.keepdims) * Softmax.apply(a, axis=ctx.axis)


def logsumexp(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return LogSumExp.apply(x, axis=normalize_axis(axis, x.ndim, "logsumexp"), keepdims=keepdims)


class Softmax(Function):
    r"""$y_i = e^{a_i} / \sum_j e^{a_j}$ over `axis`; $\bar a = y \odot (\bar y - \sum_j \bar y_j y_j)$."""

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        e = np.exp(a - np.max(a, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax.apply(x, axis=normalize_axis(axis, x.ndim, "softmax"))


class LogSoftmax(Function):
    r"""$y_i = a_i - \ln \sum_j e^{a_j}$ over `axis`; $\bar a = \bar y - e^{y} \sum_j \bar y_j$."""

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return a - _stable_logsumexp(a, axis)

    @staticmethod
    def backward(ctx, grad):
        return grad - ctx.output.exp() * grad.sum(axis=ctx.axis, keepdims=True)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=normalize_axis(axis, x.ndim, "log_softmax"))
