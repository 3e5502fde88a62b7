r"""The operations behind the layers: linear, convolutions, pooling, upsampling and normalisation.

Arguments and weight layouts are PyTorch's (`conv2d` weight (out, in, kh, kw),
`conv_transpose2d` weight (in, out, kh, kw), `linear` weight (out, in)), so weights move
between the two libraries unchanged.

Every backward rule here is written with the operations of this same family: the input
gradient of a convolution is a transposed convolution, the input gradient of a transposed
convolution is a convolution, and the weight gradient is `Conv2dWeightGrad`, whose own
gradients are again a convolution and a transposed convolution. So gradients of gradients
flow through them (a WGAN-GP penalty through a convolutional critic needs this).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..engine.function import Function
from ..engine.tensor import Tensor, is_grad_enabled
from ..kernels import conv as conv_kernels
from ..kernels import dense as dense_kernels
from ..kernels import norm as norm_kernels
from ..kernels import pool as pool_kernels
from ..kernels import threads, winograd

__all__ = ["linear", "conv2d", "conv_transpose2d", "avg_pool2d", "upsample_nearest2d", "batch_norm", "group_norm"]


# --- dense -----------------------------------------------------------------------------------


class Linear(Function):
    r"""$y = x W^\top + b$; $\bar x = \bar y W$, $\bar W = \bar y^\top x$, $\bar b = \sum_n \bar y_n$
    (leading axes of $x$ are flattened into $n$)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        return dense_kernels.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs[:2]
        grad_rows, x_rows = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        grad_x, grad_w = _products(
            (grad_rows, weight) if x.requires_grad else None, (grad_rows.T, x_rows) if weight.requires_grad else None
        )
        grad_b = grad_rows.sum(axis=0) if len(ctx.inputs) == 3 and ctx.inputs[2].requires_grad else None
        return None if grad_x is None else grad_x.reshape(x.shape), grad_w, grad_b


def _products(*pairs: tuple[Tensor, Tensor] | None) -> list[Tensor | None]:
    """a @ b for each pair of matrices (None for None): the engine's differentiable products
    while the backward is being recorded, else `threads.matmuls` on the arrays, all at once
    on minigen's threads (a dense layer's two gradients: one start of the helpers for both)."""
    if is_grad_enabled():
        return [None if pair is None else pair[0] @ pair[1] for pair in pairs]
    products = iter(threads.matmuls([(a.data, b.data) for a, b in filter(None, pairs)]))
    return [None if pair is None else Tensor._make(next(products), None) for pair in pairs]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b for x of shape (..., in), W of shape (out, in), b of shape (out,)."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features, "
            f"but weight {weight.shape} expects {weight.shape[1]}"
        )
    _check_bias("linear", bias, weight.shape[0])
    _check_dtypes("linear", x, weight, bias)
    return Linear.apply(*_present(x, weight, bias))


# --- argument checks shared by the layers ----------------------------------------------------


def pair_of_ints(value, name: str, op: str, minimum: int) -> tuple[int, int]:
    """`value` as (height, width): an int stands for both; each at least `minimum`, or ValueError naming op and name."""
    pair = (value, value) if isinstance(value, Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, Integral) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return pair


def _check_image(op: str, x: Tensor, what: str = "input"):
    if x.ndim != 4:
        raise ValueError(f"{op}: {what} must have shape (N, C, H, W), got {x.shape}")


def _check_bias(op: str, bias, channels: int, name: str = "bias"):
    """A per-channel vector (a bias, or batch norm's weight) of shape (channels,), or None."""
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{op}: {name} must have shape ({channels},), got {bias.shape}")


def _check_dtypes(op: str, *tensors):
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: input, weight and bias must share one dtype, got {sorted(str(d) for d in dtypes)}")


def _present(*tensors):
    return tuple(t for t in tensors if t is not None)


# --- convolutions ----------------------------------------------------------------------------


# Winograd's transforms stream 4 (C_in + C_out) values per output pixel, im2col's columns
# 9 C_in and col2im's GEMM product 9 C_out (3x3 kernel): measured at stride 1 (float32, batch
# 64-128, 14x14 to 32x32), Winograd is fastest while neither channel count is more than this
# many times the other (16 -> 48 and 48 -> 16 included), and beyond it the kernel that streams
# the smaller count: 1 -> 16 at 28x28 im2col 3.0-3.3 ms against Winograd 11.0-11.7 and col2im
# 25-32, 64 -> 3 at 32x32 col2im 4.2-4.7 ms against Winograd 11.8-12.6 and im2col 18.6-19.0
# (`python benchmarks/stride_one.py`, benchmarks/README.md).
CHANNEL_RATIO = 3


def _route(weight_shape, dtype, transposed: bool, stride, padding, dilation, out_hw) -> str:
    """Which kernel runs a convolution (`transposed`: a transposed convolution) with a weight of
    this shape and dtype and this geometry: "im2col" (columns, then a GEMM), "col2im" (a GEMM,
    then col2im) or "winograd".

    Each operation has its own (a convolution im2col, a transposed one col2im), but at stride 1
    either is the other with the `turned` kernel, so the channel counts choose (CHANNEL_RATIO),
    and Winograd where it `applies`."""
    c_in, c_out = weight_shape[:2] if transposed else weight_shape[1::-1]
    own = "col2im" if transposed else "im2col"
    if not conv_kernels.has_turned(weight_shape[2:], stride, padding, dilation):
        return own
    if c_out > CHANNEL_RATIO * c_in:
        return "im2col"
    if c_in > CHANNEL_RATIO * c_out:
        return "col2im"
    return "winograd" if winograd.applies(weight_shape[2:], dtype, stride, dilation, padding, out_hw, min(c_in, c_out)) else own


class Conv2d(Function):
    r"""$y_{n,o,h,w} = b_o + \sum_{c,i,j} W_{o,c,i,j}\, x^\text{pad}_{n,c,hs+id,ws+jd}$ (see `minigen.kernels.conv`).

    $\bar x = \mathrm{conv}^\top(\bar y, W)$, $\bar W = $ `Conv2dWeightGrad`$(x, \bar y)$,
    $\bar b_o = \sum_{n,h,w} \bar y_{n,o,h,w}$.

    The forward copies the receptive fields of x into column matrices (im2col), and so does
    the weight gradient. With `keep=True` (when W requires grad and the matrices fit
    `KEEP_COLUMNS_BYTES`) the forward keeps them for it, until the backward has gone through
    (`conv2d_keeping_columns`: each chunk's copied and multiplied by one thread, as `conv2d`
    does with its scratch); `kept` gives the forward columns copied already. At stride 1
    `_route` may pick another kernel: Winograd's F(2x2, 3x3) for a 3x3 kernel with enough
    channels on a large enough float32 image (`minigen.kernels.winograd`), or the transposed
    convolution of the turned kernel when there are many fewer output channels than input
    ones. Then there are no columns to keep: the weight gradient takes Winograd too, or copies
    the columns itself.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride, padding, dilation, out_hw, keep=False, kept=None):
        ctx.geometry = dict(stride=stride, padding=padding, dilation=dilation)
        ctx.kept = None
        if keep:  # (`conv2d` asks for it only where the route is im2col)
            ctx.route = "im2col"
            y, ctx.kept = conv_kernels.conv2d_keeping_columns(x, weight, bias, stride, padding, dilation, out_hw)
            return y
        route = ctx.route = "im2col" if kept is not None else _route(weight.shape, weight.dtype, False, stride, padding, dilation, out_hw)
        if route == "winograd":
            return winograd.conv3x3(x, weight, bias, padding, out_hw)
        if route == "col2im":
            turned_padding = conv_kernels.turned_padding(weight.shape[2:], padding, dilation)
            return conv_kernels.conv_transpose2d(x, conv_kernels.turned(weight), bias, stride, turned_padding, dilation, out_hw)
        return conv_kernels.conv2d(x, weight, bias, stride, padding, dilation, out_hw, kept)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs[:2]
        if x.requires_grad and weight.requires_grad and not is_grad_enabled() and ctx.route != "winograd":
            # both gradients read it channels last: one copy of the whole instead of two of each chunk
            # (without it conv 1->64 took 1.09x the time; with it Winograd's layers were slower,
            # so they copy per chunk; benchmarks/README.md)
            grad = _channels_last(grad)
        grad_x = ConvTranspose2d.apply(grad, weight, **ctx.geometry, out_hw=x.shape[2:]) if x.requires_grad else None
        grad_w = Conv2dWeightGrad.apply(x, grad, **ctx.geometry, kernel=weight.shape[2:], kept=ctx.kept) if weight.requires_grad else None
        grad_b = _bias_grad(grad) if len(ctx.inputs) == 3 and ctx.inputs[2].requires_grad else None
        return grad_x, grad_w, grad_b

    def release(self):
        super().release()
        self.kept = None


def _bias_grad(grad: Tensor) -> Tensor:
    r"""$\bar b_o = \sum_{n,h,w} \bar y_{n,o,h,w}$: a differentiable sum while the backward is
    being recorded, else `conv_kernels.bias_grad` on the arrays."""
    if is_grad_enabled():
        return grad.sum(axis=(0, 2, 3))
    return Tensor._make(conv_kernels.bias_grad(grad.data), None)


def _channels_last(t: Tensor) -> Tensor:
    """A tensor of t's values whose memory is channels last (t itself when it is already);
    outside the graph, so only for a backward pass that is not being recorded."""
    data = conv_kernels.channels_last(t.data)
    return t if np.shares_memory(data, t.data) else Tensor._make(data.transpose(0, 3, 1, 2), None)


class ConvTranspose2d(Function):
    r"""The adjoint of `Conv2d` in $x$: $\langle \mathrm{conv}(u, W), x\rangle = \langle u, \mathrm{conv}^\top(x, W)\rangle$.

    $\bar x = \mathrm{conv}(\bar y, W)$, $\bar W = $ `Conv2dWeightGrad`$(\bar y, x)$,
    $\bar b_o = \sum_{n,h,w} \bar y_{n,o,h,w}$. Both gradients read the column matrices of
    $\bar y$: the backward copies them once for the two. The forward is a GEMM, then col2im;
    at stride 1 `_route` may run it instead as the convolution of the `turned` kernel, by
    Winograd's F(2x2, 3x3) or, with many more output channels than input ones, by im2col.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride, padding, dilation, out_hw):
        ctx.geometry = dict(stride=stride, padding=padding, dilation=dilation)
        route = _route(weight.shape, weight.dtype, True, stride, padding, dilation, out_hw)
        if route == "winograd":
            return winograd.conv_transpose3x3(x, weight, bias, padding, out_hw)
        if route == "im2col":
            turned_padding = conv_kernels.turned_padding(weight.shape[2:], padding, dilation)
            return conv_kernels.conv2d(x, conv_kernels.turned(weight), bias, stride, turned_padding, dilation, out_hw)
        return conv_kernels.conv_transpose2d(x, weight, bias, stride, padding, dilation, out_hw)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.inputs[:2]
        kept = None
        if x.requires_grad and weight.requires_grad and _fits(grad.shape, weight.shape[2:], x.shape[2:], grad.data.itemsize):
            kept = conv_kernels.columns(grad.data, weight.shape[2:], **ctx.geometry, out_hw=x.shape[2:])
        grad_x = Conv2d.apply(grad, weight, **ctx.geometry, out_hw=x.shape[2:], kept=kept) if x.requires_grad else None
        grad_w = Conv2dWeightGrad.apply(grad, x, **ctx.geometry, kernel=weight.shape[2:], kept=kept) if weight.requires_grad else None
        grad_b = _bias_grad(grad) if len(ctx.inputs) == 3 and ctx.inputs[2].requires_grad else None
        return grad_x, grad_w, grad_b


class Conv2dWeightGrad(Function):
    r"""The weight gradient of a convolution, as an operation of its own so it can be differentiated:
    $G_{o,c,i,j} = \sum_{n,h,w} \delta_{n,o,h,w}\, x^\text{pad}_{n,c,hs+id,ws+jd}$.

    $G$ is linear in each argument, so $\bar x = \mathrm{conv}^\top(\delta, \bar G)$ and
    $\bar\delta = \mathrm{conv}(x, \bar G)$. Computed by Winograd's transforms where the
    convolution's own forward takes them (`winograd.conv3x3_weight_grad`), else from the column
    matrices of x (`kept` by the forward, or copied now) and one GEMM per chunk.
    """

    @staticmethod
    def forward(ctx, x, delta, *, stride, padding, dilation, kernel, kept=None):
        ctx.geometry = dict(stride=stride, padding=padding, dilation=dilation)
        out_hw, weight_shape = delta.shape[2:], (delta.shape[1], x.shape[1], *kernel)
        if kept is None and _route(weight_shape, x.dtype, False, stride, padding, dilation, out_hw) == "winograd":
            return winograd.conv3x3_weight_grad(x, delta, padding)
        return conv_kernels.conv2d_weight_grad(x, delta, kernel, stride, padding, dilation, kept)

    @staticmethod
    def backward(ctx, grad):
        x, delta = ctx.inputs
        grad_x = ConvTranspose2d.apply(delta, grad, **ctx.geometry, out_hw=x.shape[2:]) if x.requires_grad else None
        grad_delta = Conv2d.apply(x, grad, **ctx.geometry, out_hw=delta.shape[2:]) if delta.requires_grad else None
        return grad_x, grad_delta


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library) of NCHW images."""
    op = "conv2d"
    _check_image(op, x)
    _check_image(op, weight, "weight (out, in, kh, kw)")
    stride, padding, dilation = (
        pair_of_ints(stride, "stride", op, 1),
        pair_of_ints(padding, "padding", op, 0),
        pair_of_ints(dilation, "dilation", op, 1),
    )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{op}: input {x.shape} has {x.shape[1]} channels, but weight {weight.shape} expects {weight.shape[1]}")
    _check_bias(op, bias, weight.shape[0])
    _check_dtypes(op, x, weight, bias)
    out_hw = tuple(conv_kernels.conv_output_size(x.shape[2 + a], weight.shape[2 + a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: the output would be {out_hw[0]}x{out_hw[1]}: the {x.shape[2]}x{x.shape[3]} input padded by "
            f"{padding} is smaller than the {weight.shape[2]}x{weight.shape[3]} kernel dilated by {dilation}"
        )
    # only im2col makes columns to keep (Winograd and col2im beat it where `_route` picks them)
    keep = (
        weight.requires_grad
        and is_grad_enabled()
        and _route(weight.shape, weight.dtype, False, stride, padding, dilation, out_hw) == "im2col"
    )
    keep = keep and _fits(x.shape, weight.shape[2:], out_hw, x.data.itemsize)
    return Conv2d.apply(*_present(x, weight, bias), stride=stride, padding=padding, dilation=dilation, out_hw=out_hw, keep=keep)


def _fits(x_shape, kernel, out_hw, itemsize: int) -> bool:
    """Whether the column matrices of a convolution of x may be kept (see `Conv2d`)."""
    return conv_kernels.column_bytes(x_shape, kernel, out_hw, itemsize) <= conv_kernels.KEEP_COLUMNS_BYTES


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, output_padding=0, dilation=1) -> Tensor:
    """Transposed convolution ("deconvolution"): the gradient of conv2d with respect to its input."""
    op = "conv_transpose2d"
    _check_image(op, x)
    _check_image(op, weight, "weight (in, out, kh, kw)")
    stride, padding, dilation = (
        pair_of_ints(stride, "stride", op, 1),
        pair_of_ints(padding, "padding", op, 0),
        pair_of_ints(dilation, "dilation", op, 1),
    )
    output_padding = pair_of_ints(output_padding, "output_padding", op, 0)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"{op}: input {x.shape} has {x.shape[1]} channels, but weight {weight.shape} expects {weight.shape[0]}")
    for a in (0, 1):
        if output_padding[a] >= max(stride[a], dilation[a]):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than the stride {stride} or the dilation {dilation}")
    _check_bias(op, bias, weight.shape[1])
    _check_dtypes(op, x, weight, bias)
    out_hw = tuple(
        conv_kernels.conv_transpose_output_size(x.shape[2 + a], weight.shape[2 + a], stride[a], padding[a], dilation[a], output_padding[a])
        for a in (0, 1)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: the output would be {out_hw[0]}x{out_hw[1]}: padding {padding} removes more than "
            f"the {x.shape[2]}x{x.shape[3]} input spreads to"
        )
    return ConvTranspose2d.apply(*_present(x, weight, bias), stride=stride, padding=padding, dilation=dilation, out_hw=out_hw)


# --- pooling and upsampling ------------------------------------------------------------------


class AvgPool2d(Function):
    r"""$y_{n,c,h,w} = \frac{1}{k_h k_w} \sum_{i,j} x^\text{pad}_{n,c,hs+i,ws+j}$; $\bar x$ = the adjoint, `AvgPool2dAdjoint`$(\bar y)$."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, out_hw):
        ctx.geometry = dict(kernel=kernel, stride=stride, padding=padding)
        return pool_kernels.avg_pool2d(x, kernel, stride, padding, out_hw)

    @staticmethod
    def backward(ctx, grad):
        return AvgPool2dAdjoint.apply(grad, **ctx.geometry, x_hw=ctx.inputs[0].shape[2:])


class AvgPool2dAdjoint(Function):
    r"""Spread each value evenly over its pooling window (the gradient of `AvgPool2d`); $\bar g = $ `AvgPool2d`$(\bar y)$."""

    @staticmethod
    def forward(ctx, grad_y, kernel, stride, padding, x_hw):
        ctx.geometry = dict(kernel=kernel, stride=stride, padding=padding)
        return pool_kernels.avg_pool2d_adjoint(grad_y, x_hw, kernel, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        return AvgPool2d.apply(grad, **ctx.geometry, out_hw=ctx.inputs[0].shape[2:])


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Average pooling; `stride` defaults to `kernel_size`, and zero padding counts in the mean."""
    op = "avg_pool2d"
    _check_image(op, x)
    kernel = pair_of_ints(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else pair_of_ints(stride, "stride", op, 1)
    padding = pair_of_ints(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    out_hw = tuple(conv_kernels.conv_output_size(x.shape[2 + a], kernel[a], stride[a], padding[a], 1) for a in (0, 1))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the {x.shape[2]}x{x.shape[3]} input padded by {padding} is smaller than the {kernel} kernel")
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding, out_hw=out_hw)


class UpsampleNearest2d(Function):
    r"""$y_{n,c,h,w} = x_{n,c,\lfloor h/f_h \rfloor,\lfloor w/f_w \rfloor}$; $\bar x$ = the sum of $\bar y$ over each block."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return pool_kernels.upsample_nearest2d(x, factor)

    @staticmethod
    def backward(ctx, grad):
        return UpsampleNearest2dAdjoint.apply(grad, factor=ctx.factor)


class UpsampleNearest2dAdjoint(Function):
    r"""Sum each $f_h \times f_w$ block (the gradient of `UpsampleNearest2d`); $\bar g$ = the upsampled $\bar y$."""

    @staticmethod
    def forward(ctx, grad_y, factor):
        ctx.factor = factor
        return pool_kernels.upsample_nearest2d_adjoint(grad_y, factor)

    @staticmethod
    def backward(ctx, grad):
        return UpsampleNearest2d.apply(grad, factor=ctx.factor)


def upsample_nearest2d(x: Tensor, scale_factor=2) -> Tensor:
    """Repeat every pixel into a scale_factor x scale_factor block (integer factors)."""
    op = "upsample_nearest2d"
    _check_image(op, x)
    return UpsampleNearest2d.apply(x, factor=pair_of_ints(scale_factor, "scale_factor", op, 1))


# --- batch normalisation ---------------------------------------------------------------------


class BatchNorm(Function):
    r"""Batch normalisation with the batch's own statistics, per channel (axis 1), and optionally
    the (leaky) ReLU that follows it, as one operation:

    $$\hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad z = \gamma \hat x + \beta, \qquad
    y = z \text{ where } z > 0, \text{ else } s z,$$

    with $\mu_B, \sigma_B^2$ the mean and (biased) variance over the batch and spatial axes, and
    $s$ the negative slope (1: no activation; 0: ReLU). With $g = \bar z$ ($\bar y$ where $z > 0$,
    else $s \bar y$), $\bar{\hat x} = \gamma g$ and $\langle\cdot\rangle$ the mean over those axes,
    $\bar x = \frac{1}{\sqrt{\sigma_B^2 + \epsilon}}\big(\bar{\hat x} - \langle \bar{\hat x} \rangle
    - \hat x \langle \bar{\hat x}\, \hat x \rangle\big)$, $\bar\gamma = \sum g\, \hat x$, $\bar\beta = \sum g$.

    One operation instead of a dozen small ones (mean, subtract, variance, divide, ...): the
    kernels of `minigen.kernels.norm` make two passes over the activations each way, on every
    core. When the backward pass is itself being recorded (`create_graph=True`), the rule is
    written with differentiable operations from x, so that second derivatives are right too.
    """

    name = "batch_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, negative_slope):
        ctx.mean, ctx.var, ctx.eps, ctx.slope = mean, var, eps, negative_slope
        return norm_kernels.batch_norm(x, mean, var, weight, bias, eps, negative_slope)

    @staticmethod
    def backward(ctx, grad):
        x, weight, _ = ctx.inputs
        if not is_grad_enabled():
            grads = norm_kernels.batch_norm_backward(grad.data, x.data, ctx.output.data, ctx.mean, ctx.var, weight.data, ctx.eps, ctx.slope)
            return tuple(Tensor._make(g, None) for g in grads)
        # recording: the same rule in differentiable operations, x_hat recomputed from x
        axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
        x_hat, inv_std = _standardise(x, axes, ctx.eps)
        if ctx.slope != 1.0:  # through the activation: a constant factor, 1 or s (y > 0 exactly where z > 0)
            grad = grad * Tensor._make(np.where(ctx.output.data > 0, 1.0, ctx.slope).astype(grad.dtype), None)
        grad_x = _standardise_backward(grad * weight.reshape(shape), x_hat, inv_std, axes)
        return grad_x, (grad * x_hat).sum(axis=axes), grad.sum(axis=axes)


def _standardise(x, axes, eps: float):
    """x_hat = (x - mean) / sqrt(variance + eps) over `axes`, and 1 / sqrt(variance + eps) (kept
    dimensions): on arrays or on tensors alike. Batch norm's and group norm's core."""
    centred = x - x.mean(axis=axes, keepdims=True)
    inv_std = ((centred * centred).mean(axis=axes, keepdims=True) + eps) ** -0.5
    return centred * inv_std, inv_std


def _standardise_backward(grad_x_hat, x_hat, inv_std, axes):
    r"""The gradient through `_standardise` over `axes`, with $\langle\cdot\rangle$ the mean over them:
    $\bar x = \frac{1}{\sqrt{\sigma^2 + \epsilon}}\big(\bar{\hat x} - \langle \bar{\hat x} \rangle
    - \hat x \langle \bar{\hat x}\, \hat x \rangle\big)$."""
    return inv_std * (grad_x_hat - grad_x_hat.mean(axis=axes, keepdims=True) - x_hat * (grad_x_hat * x_hat).mean(axis=axes, keepdims=True))


def batch_norm_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel mean and biased variance over every axis but 1, each of shape (C,), in float64."""
    return norm_kernels.batch_statistics(x)


def batch_norm(
    x: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    statistics: tuple[np.ndarray, np.ndarray] | None = None,
    negative_slope: float | None = None,
) -> Tensor:
    """Normalise x (N, C, ...) per channel with its batch statistics (training-mode batch norm),
    then scale by `weight` and shift by `bias` (each (C,), or None for 1 and 0). `statistics`
    passes the (mean, variance) from `batch_norm_statistics(x.data)` when the caller needs them too.
    With `negative_slope` (between 0 and 1) the result goes through
    `leaky_relu(., negative_slope)` in the same pass (0 is a ReLU): the numbers are those of the
    two operations one after the other."""
    op = "batch_norm"
    if x.ndim < 2:
        raise ValueError(f"{op}: input must have shape (N, C, ...), got {x.shape}")
    channels = x.shape[1]
    if x.size == 0:
        raise ValueError(f"{op}: input {x.shape} has no values per channel to take the batch statistics of")
    if negative_slope is not None and not 0.0 <= negative_slope <= 1.0:
        raise ValueError(f"{op}: negative_slope must be between 0 and 1 to be fused, got {negative_slope}")
    _check_bias(op, weight, channels, "weight")
    _check_bias(op, bias, channels)
    weight = weight if weight is not None else Tensor._make(np.ones(channels, dtype=x.dtype), None)
    bias = bias if bias is not None else Tensor._make(np.zeros(channels, dtype=x.dtype), None)
    mean, var = statistics if statistics is not None else batch_norm_statistics(x.data)
    slope = 1.0 if negative_slope is None else float(negative_slope)
    return BatchNorm.apply(x, weight, bias, mean=mean.reshape(-1), var=var.reshape(-1), eps=eps, negative_slope=slope)


# --- group normalisation ---------------------------------------------------------------------


class GroupNorm(Function):
    r"""Group normalisation, per example and group of channels, then scaled and shifted per channel:

    $$\hat x = \frac{x - \mu_{n,g}}{\sqrt{\sigma_{n,g}^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta,$$

    with $\mu_{n,g}, \sigma_{n,g}^2$ the mean and (biased) variance over the group's channels and
    positions of example n. The backward rule is batch norm's with other axes: with
    $\bar{\hat x} = \gamma \bar y$ and $\langle\cdot\rangle$ the mean over a group,
    $$\bar x = \frac{1}{\sqrt{\sigma^2 + \epsilon}}\big(\bar{\hat x} - \langle \bar{\hat x} \rangle
    - \hat x \langle \bar{\hat x}\, \hat x \rangle\big),$$

    $\bar\gamma = \sum \bar y\, \hat x$, $\bar\beta = \sum \bar y$ (over examples and positions).

    One operation instead of about thirty small ones (means, differences, products, their
    backward rules): the kernels of `minigen.kernels.norm`, batch norm's, two passes over the
    activations each way, channels last. When the backward pass is itself being recorded
    (`create_graph=True`), the same rule runs on tensors with $\hat x$ recomputed from x, so
    second derivatives are right."""

    name = "group_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps):
        ctx.num_groups, ctx.eps = num_groups, eps
        y, ctx.mean, ctx.inv_std = norm_kernels.group_norm(x, num_groups, weight, bias, eps)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, _ = ctx.inputs
        if is_grad_enabled():  # recording: the same rule on tensors, x_hat recomputed from x
            x_hat, inv_std = _normalise_groups(x, ctx.num_groups, ctx.eps)
            return _group_norm_backward(grad, weight, x_hat, inv_std)
        grads = norm_kernels.group_norm_backward(grad.data, x.data, ctx.mean, ctx.inv_std, weight.data, ctx.num_groups)
        return tuple(Tensor._make(g, None) for g in grads)


def _normalise_groups(x, num_groups: int, eps: float):
    """`_standardise` per example and group, on tensors: x_hat shaped (N, groups, values per group), and
    1 / sqrt(variance + eps) per (N, group)."""
    return _standardise(x.reshape(x.shape[0], num_groups, -1), 2, eps)


def _group_norm_backward(grad, weight, x_hat, inv_std):
    """The gradients with respect to x, the weight and the bias (GroupNorm's docstring), on
    tensors; x_hat and inv_std as `_normalise_groups` gives them."""
    shape, axes = (1, grad.shape[1]) + (1,) * (grad.ndim - 2), (0,) + tuple(range(2, grad.ndim))
    grad_x = _standardise_backward((grad * weight.reshape(shape)).reshape(x_hat.shape), x_hat, inv_std, 2)
    return grad_x.reshape(grad.shape), (grad * x_hat.reshape(grad.shape)).sum(axis=axes), grad.sum(axis=axes)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    r"""Normalise each example on its own: split its C channels into `num_groups` groups and give
    each group (its channels and every position) mean 0 and variance 1, then scale by `weight`
    and shift by `bias` per channel (each (C,), or None for 1 and 0) (Wu and He, 2018; the
    formulas are `GroupNorm`'s).

    Unlike batch norm it does not depend on the other examples of the batch, so training and
    evaluation compute the same thing; diffusion U-Nets use it."""
    op = "group_norm"
    if x.ndim < 2:
        raise ValueError(f"{op}: input must have shape (N, C, ...), got {x.shape}")
    channels = x.shape[1]
    if x.size == 0:
        raise ValueError(f"{op}: input {x.shape} has no values to take the groups' statistics of")
    if isinstance(num_groups, bool) or not isinstance(num_groups, Integral) or num_groups < 1 or channels % num_groups:
        raise ValueError(f"{op}: num_groups must be a positive whole number that divides the {channels} channels, got {num_groups!r}")
    _check_bias(op, weight, channels, "weight")
    _check_bias(op, bias, channels)
    weight = weight if weight is not None else Tensor._make(np.ones(channels, dtype=x.dtype), None)
    bias = bias if bias is not None else Tensor._make(np.zeros(channels, dtype=x.dtype), None)
    return GroupNorm.apply(x, weight, bias, num_groups=int(num_groups), eps=eps)
