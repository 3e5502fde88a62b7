"""The registry of every differentiable operation: what the gradient tests run over.

Each `OpCase` names the minigen function, a NumPy reference for its forward, and a
hypothesis strategy that draws its inputs (inside the operation's domain) and parameters.
`test_ops.py` runs every case through forward == reference, gradcheck and gradgradcheck, and
fails when a `Function` in minigen has no case here: a new op cannot skip the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import arrays, axes, bools, shapes

import minigen as mg
from minigen import functional as F
from minigen.engine import ops
from minigen.functional import activations as A
from minigen.functional import layers as L
from minigen.kernels import conv as K
from minigen.kernels import dense as D
from minigen.kernels import pool as P
from minigen.kernels.conv import conv_output_size, conv_transpose_output_size


@dataclass(frozen=True)
class OpCase:
    name: str
    functions: tuple  # the Function classes this case exercises
    fn: Callable  # (*tensors, **params) -> Tensor
    ref: Callable  # (*arrays, **params) -> np.ndarray
    inputs: Callable  # dtype -> strategy of (list of arrays, params dict)
    double_backward: bool = True
    gradcheck_options: dict = field(default_factory=dict)


# --- input strategies ------------------------------------------------------------------------


def unary(low=-2.0, high=2.0, kink=None, random_sign=False, min_dims=0, min_side=0):
    @st.composite
    def draw_inputs(draw, dtype):
        shape = draw(shapes(min_dims=min_dims, min_side=min_side))
        return [draw(arrays(shape, dtype, low, high, kink, random_sign))], {}

    return draw_inputs


def binary(a=(-2.0, 2.0), b=(-2.0, 2.0), b_random_sign=False):
    @st.composite
    def draw_inputs(draw, dtype):
        shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)).input_shapes
        return [draw(arrays(shape_a, dtype, *a)), draw(arrays(shape_b, dtype, *b, random_sign=b_random_sign, stream=1))], {}

    return draw_inputs


def reduction(nonempty=False, with_keepdims=True, low=-2.0, high=2.0):
    @st.composite
    def draw_inputs(draw, dtype):
        shape = draw(shapes(min_side=1 if nonempty else 0))
        params = {"axis": draw(axes(len(shape)))}
        if with_keepdims:
            params["keepdims"] = draw(st.booleans())
        return [draw(arrays(shape, dtype, low, high))], params

    return draw_inputs


@st.composite
def var_inputs(draw, dtype):
    shape = draw(shapes(min_side=1))
    axis = draw(axes(len(shape)))
    reduced = range(len(shape)) if axis is None else np.atleast_1d(axis)
    count = int(np.prod([shape[a] for a in reduced]))
    ddof = draw(st.integers(0, 1)) if count > 1 else 0
    return [draw(arrays(shape, dtype))], {"axis": axis, "keepdims": draw(st.booleans()), "ddof": ddof}


@st.composite
def matmul_inputs(draw, dtype):
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    shape_a = draw(st.sampled_from([(k,), batch_a + (n, k)]))
    shape_b = draw(st.sampled_from([(k,), batch_b + (k, m)]))
    return [draw(arrays(shape_a, dtype)), draw(arrays(shape_b, dtype, stream=1))], {}


@st.composite
def reshape_inputs(draw, dtype):
    shape = draw(shapes())
    size = int(np.prod(shape))
    target = draw(st.sampled_from([(size,), (-1,), (1, size), shape[::-1], shape + (1,)]))
    return [draw(arrays(shape, dtype))], {"shape": target}


@st.composite
def transpose_inputs(draw, dtype):
    shape = draw(shapes())
    return [draw(arrays(shape, dtype))], {"axes": tuple(draw(st.permutations(range(len(shape)))))}


@st.composite
def broadcast_to_inputs(draw, dtype):
    target = draw(shapes(max_side=3))
    kept = target[len(target) - draw(st.integers(0, len(target))) :]  # trailing axes the input has
    shape = tuple(1 if draw(st.booleans()) else n for n in kept)  # some of them stretched from 1
    return [draw(arrays(shape, dtype))], {"shape": target}


@st.composite
def basic_index_inputs(draw, dtype):
    shape = draw(shapes(min_dims=1, min_side=1))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return [draw(arrays(shape, dtype))], {"index": index}


@st.composite
def integer_index_inputs(draw, dtype):
    shape = draw(shapes(min_dims=1, min_side=1))
    index = draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    return [draw(arrays(shape, dtype))], {"index": index}


@st.composite
def index_add_inputs(draw, dtype):
    shape = draw(shapes(min_dims=1, min_side=1))
    index = draw(
        st.one_of(
            hnp.basic_indices(shape),
            hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)),
        )
    )
    picked_shape = np.empty(shape)[index].shape
    return [draw(arrays(picked_shape, dtype))], {"index": index, "shape": shape}


@st.composite
def concatenate_inputs(draw, dtype):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    count = draw(st.integers(1, 3))
    parts = []
    for _ in range(count):
        part_shape = list(shape)
        part_shape[axis] = draw(st.integers(0, 3))
        parts.append(draw(arrays(tuple(part_shape), dtype)))
    return parts, {"axis": axis}


@st.composite
def stack_inputs(draw, dtype):
    shape = draw(shapes())
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return [draw(arrays(shape, dtype)) for _ in range(draw(st.integers(1, 3)))], {"axis": axis}


@st.composite
def pad_inputs(draw, dtype):
    shape = draw(shapes(min_dims=1))
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    return [draw(arrays(shape, dtype))], {"pad_width": widths, "constant_values": draw(st.sampled_from([0.0, 1.5]))}


@st.composite
def where_inputs(draw, dtype):
    shape_c, shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3)).input_shapes
    return [draw(arrays(shape_a, dtype)), draw(arrays(shape_b, dtype, stream=1))], {"condition": draw(bools(shape_c))}


@st.composite
def clip_inputs(draw, dtype):
    shape = draw(shapes())
    low, high = sorted(draw(st.lists(st.floats(-1.5, 1.5), min_size=2, max_size=2)))
    low, high = draw(st.sampled_from([(low, high), (low, None), (None, high)]))
    kink = low if low is not None else high  # keep values off the bound that is set
    return [draw(arrays(shape, dtype, kink=kink))], {"min": low, "max": high}


@st.composite
def pow_scalar_inputs(draw, dtype):
    shape = draw(shapes())
    exponent = draw(st.sampled_from([2.0, 3.0, 0.5, -1.0, -1.5, 0.0, 1.0]))
    return [draw(arrays(shape, dtype, 0.5, 2.0))], {"exponent": exponent}


@st.composite
def axis_inputs(draw, dtype):
    """For softmax-like ops: one axis, of size at least 1."""
    shape = draw(shapes(min_dims=1, min_side=1))
    return [draw(arrays(shape, dtype, -3.0, 3.0))], {"axis": draw(st.integers(-len(shape), len(shape) - 1))}


@st.composite
def astype_inputs(draw, dtype):
    shape = draw(shapes())
    return [draw(arrays(shape, dtype))], {"dtype": draw(st.sampled_from([np.float32, np.float64]))}


@st.composite
def _conv_geometry(draw, transposed=False):
    """Channels, kernel, stride, padding, dilation and an input size that gives an output of at
    least 1x1; hypothesis reaches the edges: 1x1 images, a kernel as large as the padded input,
    a stride larger than the kernel, a batch of 1."""
    g = dict(
        batch=draw(st.integers(1, 2)),
        c_in=draw(st.integers(1, 2)),
        c_out=draw(st.integers(1, 2)),
        kernel=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(draw(st.integers(0, 2)), draw(st.integers(0, 2))),
        dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
    )
    hw = []
    for a in (0, 1):
        reach = g["dilation"][a] * (g["kernel"][a] - 1) + 1
        smallest = 1 if transposed else max(1, reach - 2 * g["padding"][a])
        hw.append(draw(st.integers(smallest, smallest + 3)))
    g["hw"] = tuple(hw)
    return g


@st.composite
def conv2d_inputs(draw, dtype):
    g = draw(_conv_geometry())
    x = draw(arrays((g["batch"], g["c_in"], *g["hw"]), dtype))
    w = draw(arrays((g["c_out"], g["c_in"], *g["kernel"]), dtype, stream=1))
    arrays_ = [x, w] + ([draw(arrays((g["c_out"],), dtype, stream=2))] if draw(st.booleans()) else [])
    return arrays_, {"stride": g["stride"], "padding": g["padding"], "dilation": g["dilation"]}


@st.composite
def conv_transpose2d_inputs(draw, dtype):
    g = draw(_conv_geometry(transposed=True))
    output_padding = tuple(draw(st.integers(0, max(g["stride"][a], g["dilation"][a]) - 1)) for a in (0, 1))
    for a in (0, 1):  # the output must be at least 1 pixel
        size = (g["hw"][a] - 1) * g["stride"][a] - 2 * g["padding"][a] + g["dilation"][a] * (g["kernel"][a] - 1) + output_padding[a] + 1
        assume(size >= 1)
    x = draw(arrays((g["batch"], g["c_in"], *g["hw"]), dtype))
    w = draw(arrays((g["c_in"], g["c_out"], *g["kernel"]), dtype, stream=1))
    arrays_ = [x, w] + ([draw(arrays((g["c_out"],), dtype, stream=2))] if draw(st.booleans()) else [])
    params = {"stride": g["stride"], "padding": g["padding"], "output_padding": output_padding, "dilation": g["dilation"]}
    return arrays_, params


@st.composite
def conv2d_weight_grad_inputs(draw, dtype):
    g = draw(_conv_geometry())
    out_hw = tuple(conv_output_size(g["hw"][a], g["kernel"][a], g["stride"][a], g["padding"][a], g["dilation"][a]) for a in (0, 1))
    x = draw(arrays((g["batch"], g["c_in"], *g["hw"]), dtype))
    delta = draw(arrays((g["batch"], g["c_out"], *out_hw), dtype, stream=1))
    return [x, delta], {"stride": g["stride"], "padding": g["padding"], "dilation": g["dilation"], "kernel": g["kernel"]}


@st.composite
def _pool_geometry(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    hw = tuple(draw(st.integers(max(1, k - 2 * p), max(1, k - 2 * p) + 3)) for k, p in zip(kernel, padding))
    out_hw = tuple(conv_output_size(hw[a], kernel[a], stride[a], padding[a], 1) for a in (0, 1))
    return dict(
        batch=draw(st.integers(1, 2)), channels=draw(st.integers(1, 2)), kernel=kernel, stride=stride, padding=padding, hw=hw, out_hw=out_hw
    )


@st.composite
def avg_pool2d_inputs(draw, dtype):
    g = draw(_pool_geometry())
    x = draw(arrays((g["batch"], g["channels"], *g["hw"]), dtype))
    return [x], {"kernel_size": g["kernel"], "stride": g["stride"], "padding": g["padding"]}


@st.composite
def avg_pool2d_adjoint_inputs(draw, dtype):
    g = draw(_pool_geometry())
    grad_y = draw(arrays((g["batch"], g["channels"], *g["out_hw"]), dtype))
    return [grad_y], {"kernel": g["kernel"], "stride": g["stride"], "padding": g["padding"], "x_hw": g["hw"]}


@st.composite
def upsample_inputs(draw, dtype, adjoint=False):
    factor = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if adjoint:
        hw = (hw[0] * factor[0], hw[1] * factor[1])
    x = draw(arrays((draw(st.integers(1, 2)), draw(st.integers(1, 2)), *hw), dtype))
    return [x], {"factor": factor} if adjoint else {"scale_factor": factor}


@st.composite
def linear_inputs(draw, dtype):
    batch = draw(shapes(max_dims=2))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    arrays_ = [draw(arrays(batch + (n_in,), dtype)), draw(arrays((n_out, n_in), dtype, stream=1))]
    if draw(st.booleans()):
        arrays_.append(draw(arrays((n_out,), dtype, stream=2)))
    return arrays_, {}


def loss_inputs(target_low=-2.0, target_high=2.0, input_low=-2.0, input_high=2.0, extra=None):
    """An input, a target of the same shape (and a third array, e.g. a variance), and a reduction."""

    @st.composite
    def draw_inputs(draw, dtype):
        shape = draw(shapes(min_side=1))
        arrays_ = [draw(arrays(shape, dtype, input_low, input_high)), draw(arrays(shape, dtype, target_low, target_high, stream=1))]
        if extra is not None:
            arrays_.append(draw(arrays(shape, dtype, *extra, stream=2)))
        return arrays_, {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}

    return draw_inputs


@st.composite
def cross_entropy_inputs(draw, dtype):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    target = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, c, size=n)
    return [draw(arrays((n, c), dtype))], {"target": target, "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}


def _np_reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


@st.composite
def batch_norm_inputs(draw, dtype):
    batch, channels = draw(st.integers(2, 3)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    x = draw(arrays((batch, channels, *spatial), dtype))
    return [x, draw(arrays((channels,), dtype, 0.5, 2.0, stream=1)), draw(arrays((channels,), dtype, stream=2))], {}


def _np_batch_norm(x, w, b):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    return x_hat * w.reshape(shape) + b.reshape(shape)


@st.composite
def batch_norm_activation_inputs(draw, dtype):
    """batch_norm_inputs and a negative slope, kept where z = gamma x_hat + beta is clear of the
    activation's kink at 0, so that finite differences do not step over it."""
    inputs, _ = draw(batch_norm_inputs(dtype))
    assume(np.abs(_np_batch_norm(*(a.astype(np.float64) for a in inputs))).min() > 0.05)
    return inputs, {"negative_slope": draw(st.sampled_from([0.0, 0.2]))}


def _np_batch_norm_activation(x, w, b, negative_slope):
    z = _np_batch_norm(x, w, b)
    return np.where(z > 0, z, negative_slope * z)


@st.composite
def group_norm_inputs(draw, dtype):
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    channels, spatial = groups * per_group, tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    assume(per_group * math.prod(spatial) >= 2)  # a variance over one value is 0: x_hat is 0 and flat
    x = draw(arrays((draw(st.integers(1, 3)), channels, *spatial), dtype))
    weight, bias = draw(arrays((channels,), dtype, 0.5, 2.0, stream=1)), draw(arrays((channels,), dtype, stream=2))
    return [x, weight, bias], {"num_groups": groups}


def _np_group_norm(x, w, b, num_groups):
    groups = x.reshape(x.shape[0], num_groups, -1)
    x_hat = ((groups - groups.mean(axis=2, keepdims=True)) / np.sqrt(groups.var(axis=2, keepdims=True) + 1e-5)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x_hat * w.reshape(shape) + b.reshape(shape)


def _pairs(**params):
    """Normalise int-or-pair arguments the way minigen.functional does, for the references."""
    return {k: (v, v) if isinstance(v, int) else tuple(v) for k, v in params.items()}


def _conv2d_reference(x, w, b=None, **params):
    p = _pairs(**params)
    out_hw = tuple(conv_output_size(x.shape[2 + a], w.shape[2 + a], p["stride"][a], p["padding"][a], p["dilation"][a]) for a in (0, 1))
    return K.conv2d_reference(x, w, b, p["stride"], p["padding"], p["dilation"], out_hw)


def _conv_transpose2d_reference(x, w, b=None, **params):
    p = _pairs(**params)
    out_hw = tuple(
        conv_transpose_output_size(
            x.shape[2 + a], w.shape[2 + a], p["stride"][a], p["padding"][a], p["dilation"][a], p["output_padding"][a]
        )
        for a in (0, 1)
    )
    return K.conv_transpose2d_reference(x, w, b, p["stride"], p["padding"], p["dilation"], out_hw)


def _avg_pool2d_reference(x, kernel_size, stride, padding):
    out_hw = tuple(conv_output_size(x.shape[2 + a], kernel_size[a], stride[a], padding[a], 1) for a in (0, 1))
    return P.avg_pool2d_reference(x, kernel_size, stride, padding, out_hw)


# --- references for the forward --------------------------------------------------------------


def _np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_index_add(a, index, shape):
    out = np.zeros(shape, dtype=a.dtype)
    np.add.at(out, index, a)
    return out


def _tensor_method(name):
    return lambda x, **params: getattr(x, name)(**params)


# --- the registry ----------------------------------------------------------------------------

# fmt: off
REGISTRY = [
    OpCase("add", (ops.Add,), lambda a, b: a + b, np.add, binary()),
    OpCase("sub", (ops.Sub,), lambda a, b: a - b, np.subtract, binary()),
    OpCase("mul", (ops.Mul,), lambda a, b: a * b, np.multiply, binary()),
    OpCase("div", (ops.Div,), lambda a, b: a / b, np.divide, binary(b=(0.5, 2.0), b_random_sign=True)),
    OpCase("neg", (ops.Neg,), lambda a: -a, np.negative, unary()),
    OpCase("pow", (ops.Pow,), lambda a, b: a**b, np.power, binary(a=(0.5, 2.0))),
    OpCase("pow_scalar", (ops.PowScalar,), lambda a, exponent: a**exponent, lambda a, exponent: np.power(a, exponent), pow_scalar_inputs),
    OpCase("exp", (ops.Exp,), lambda a: a.exp(), np.exp, unary()),
    OpCase("log", (ops.Log,), lambda a: a.log(), np.log, unary(0.3, 3.0)),
    OpCase("sqrt", (ops.Sqrt,), lambda a: a.sqrt(), np.sqrt, unary(0.3, 3.0)),
    OpCase("abs", (ops.Abs,), lambda a: a.abs(), np.abs, unary(kink=0.0)),
    OpCase("maximum", (ops.Maximum,), mg.maximum, np.maximum, binary()),
    OpCase("minimum", (ops.Minimum,), mg.minimum, np.minimum, binary()),
    OpCase("clip", (ops.Clip,), lambda a, min, max: a.clip(min, max), lambda a, min, max: np.clip(a, min, max), clip_inputs),
    OpCase("matmul", (ops.MatMul,), lambda a, b: a @ b, np.matmul, matmul_inputs),
    OpCase("sum", (ops.Sum,), _tensor_method("sum"), np.sum, reduction()),
    OpCase("mean", (ops.Mean,), _tensor_method("mean"), np.mean, reduction(nonempty=True)),
    OpCase("max", (ops.Max,), _tensor_method("max"), np.max, reduction(nonempty=True)),
    OpCase("min", (ops.Max, ops.Neg), _tensor_method("min"), np.min, reduction(nonempty=True)),
    OpCase("var", (ops.Var,), _tensor_method("var"), np.var, var_inputs),
    OpCase("reshape", (ops.Reshape,), lambda a, shape: a.reshape(shape), np.reshape, reshape_inputs),
    OpCase("transpose", (ops.Transpose,), lambda a, axes: a.permute(*axes), np.transpose, transpose_inputs),
    OpCase("broadcast_to", (ops.BroadcastTo,), mg.broadcast_to, np.broadcast_to, broadcast_to_inputs),
    OpCase("astype", (ops.AsType,), lambda a, dtype: a.astype(dtype), lambda a, dtype: a.astype(dtype), astype_inputs,
           gradcheck_options={"eps": 1e-2, "atol": 1e-4}),  # a float32 round trip is exact only to ~1e-7
    OpCase("getitem_basic", (ops.GetItem,), lambda a, index: a[index], lambda a, index: a[index], basic_index_inputs),
    OpCase("getitem_integer", (ops.GetItem,), lambda a, index: a[index], lambda a, index: a[index], integer_index_inputs),
    OpCase("index_add", (ops.IndexAdd,), lambda a, index, shape: ops.IndexAdd.apply(a, index=index, shape=shape),
           _np_index_add, index_add_inputs),
    OpCase("concatenate", (ops.Concatenate,), lambda *xs, axis: mg.concatenate(xs, axis=axis),
           lambda *xs, axis: np.concatenate(xs, axis=axis), concatenate_inputs),
    OpCase("stack", (ops.Stack,), lambda *xs, axis: mg.stack(xs, axis=axis), lambda *xs, axis: np.stack(xs, axis=axis), stack_inputs),
    OpCase("pad", (ops.Pad,), mg.pad, lambda a, pad_width, constant_values: np.pad(a, pad_width, constant_values=constant_values),
           pad_inputs),
    OpCase("where", (ops.Where,), lambda a, b, condition: mg.where(condition, a, b),
           lambda a, b, condition: np.where(condition, a, b), where_inputs),
    OpCase("relu", (A.Relu,), F.relu, lambda a: np.maximum(a, 0), unary(kink=0.0)),
    OpCase("leaky_relu", (A.LeakyRelu,), lambda a: F.leaky_relu(a, 0.2), lambda a: np.where(a > 0, a, 0.2 * a), unary(kink=0.0)),
    OpCase("sigmoid", (A.Sigmoid,), F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), unary(-4.0, 4.0)),
    OpCase("tanh", (A.Tanh,), F.tanh, np.tanh, unary(-3.0, 3.0)),
    OpCase("silu", (A.Silu,), F.silu, lambda a: a / (1.0 + np.exp(-a)), unary(-4.0, 4.0)),
    OpCase("softplus", (A.Softplus,), F.softplus, lambda a: np.log1p(np.exp(a)), unary(-4.0, 4.0)),
    OpCase("log_sigmoid", (A.LogSigmoid,), F.log_sigmoid, lambda a: -np.log1p(np.exp(-a)), unary(-4.0, 4.0)),
    OpCase("logsumexp", (A.LogSumExp,), F.logsumexp, _np_logsumexp, reduction(nonempty=True, low=-3.0, high=3.0)),
    OpCase("softmax", (A.Softmax,), F.softmax, _np_softmax, axis_inputs),
    OpCase("log_softmax", (A.LogSoftmax,), F.log_softmax, lambda a, axis: np.log(_np_softmax(a, axis)), axis_inputs),
    OpCase("linear", (L.Linear,), F.linear, lambda x, w, b=None: D.linear_reference(x, w, b), linear_inputs),
    OpCase("conv2d", (L.Conv2d,), F.conv2d, _conv2d_reference, conv2d_inputs),
    OpCase("conv_transpose2d", (L.ConvTranspose2d,), F.conv_transpose2d, _conv_transpose2d_reference, conv_transpose2d_inputs),
    OpCase("conv2d_weight_grad", (L.Conv2dWeightGrad,), lambda x, d, **p: L.Conv2dWeightGrad.apply(x, d, **p),
           lambda x, d, stride, padding, dilation, kernel: K.conv2d_weight_grad_reference(x, d, kernel, stride, padding, dilation),
           conv2d_weight_grad_inputs),
    OpCase("avg_pool2d", (L.AvgPool2d,), F.avg_pool2d, _avg_pool2d_reference, avg_pool2d_inputs),
    OpCase("avg_pool2d_adjoint", (L.AvgPool2dAdjoint,), lambda g, **p: L.AvgPool2dAdjoint.apply(g, **p),
           lambda g, kernel, stride, padding, x_hw: P.avg_pool2d_adjoint_reference(g, x_hw, kernel, stride, padding),
           avg_pool2d_adjoint_inputs),
    OpCase("upsample_nearest2d", (L.UpsampleNearest2d,), F.upsample_nearest2d,
           lambda x, scale_factor: P.upsample_nearest2d_reference(x, scale_factor), upsample_inputs),
    OpCase("upsample_nearest2d_adjoint", (L.UpsampleNearest2dAdjoint,),
           lambda g, factor: L.UpsampleNearest2dAdjoint.apply(g, factor=factor),
           P.upsample_nearest2d_adjoint_reference, lambda dtype: upsample_inputs(dtype, adjoint=True)),
    OpCase("binary_cross_entropy_with_logits", (), F.binary_cross_entropy_with_logits,
           lambda x, y, reduction: _np_reduce(np.logaddexp(0, x) - x * y, reduction), loss_inputs(0.0, 1.0, -4.0, 4.0)),
    OpCase("binary_cross_entropy", (), F.binary_cross_entropy,
           lambda p, y, reduction: _np_reduce(-(y * np.log(p) + (1 - y) * np.log(1 - p)), reduction), loss_inputs(0.0, 1.0, 0.05, 0.95)),
    OpCase("mse_loss", (), F.mse_loss, lambda x, y, reduction: _np_reduce((x - y) ** 2, reduction), loss_inputs()),
    OpCase("cross_entropy", (), F.cross_entropy,
           lambda x, target, reduction: _np_reduce(-np.log(_np_softmax(x, 1))[np.arange(len(target)), target], reduction),
           cross_entropy_inputs),
    OpCase("gaussian_nll_loss", (), lambda x, y, v, reduction: F.gaussian_nll_loss(x, y, v, reduction=reduction),
           lambda x, y, v, reduction: _np_reduce(0.5 * (np.log(v) + (x - y) ** 2 / v), reduction), loss_inputs(extra=(0.2, 2.0))),
    OpCase("kl_standard_normal", (), F.kl_standard_normal,
           lambda mu, logvar, reduction: _np_reduce(0.5 * (mu**2 + np.exp(logvar) - 1 - logvar), reduction), loss_inputs()),
    OpCase("batch_norm", (L.BatchNorm,), F.batch_norm, _np_batch_norm, batch_norm_inputs),
    OpCase("batch_norm_leaky_relu", (L.BatchNorm,), lambda x, w, b, negative_slope: F.batch_norm(x, w, b, negative_slope=negative_slope),
           _np_batch_norm_activation, batch_norm_activation_inputs),
    OpCase("group_norm", (L.GroupNorm,), lambda x, w, b, num_groups: F.group_norm(x, num_groups, w, b), _np_group_norm, group_norm_inputs),
]
# fmt: on
