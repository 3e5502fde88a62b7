"""The layer operations in minigen.functional.layers: errors, and gradients of gradients."""

import numpy as np
import pytest

import minigen as mg
from minigen import functional as F


def t(*shape, seed=0, dtype=np.float64, requires_grad=False):
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def test_wgan_gp_penalty_through_a_conv_critic_gradgradchecks():
    """The penalty (||d critic / dx|| - 1)^2 differentiates through the critic's own gradient."""
    w1, w2 = t(3, 1, 3, 3, seed=1), t(1, 3 * 2 * 2, seed=2)

    def penalty(x, w1, w2):
        h = F.leaky_relu(F.conv2d(x, w1, stride=2, padding=1), 0.2)
        h = F.avg_pool2d(h, 2)
        score = F.linear(h.reshape(x.shape[0], -1), w2).sum()
        (grad_x,) = mg.grad(score, x, create_graph=True)
        norm = (grad_x * grad_x).sum(axis=(1, 2, 3)).sqrt()
        return ((norm - 1.0) ** 2).mean()

    x = t(2, 1, 8, 8, seed=3)
    assert mg.gradcheck(penalty, [x, w1, w2])


def test_transposed_conv_generator_gradgradchecks():
    x, w = t(1, 2, 3, 3), t(2, 1, 4, 4, seed=1)
    assert mg.gradgradcheck(lambda x, w: F.tanh(F.conv_transpose2d(x, w, stride=2, padding=1)), [x, w])


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: F.conv2d(t(1, 3, 8, 8), t(4, 2, 3, 3)),
            r"conv2d: input \(1, 3, 8, 8\) has 3 channels, but weight \(4, 2, 3, 3\) expects 2",
        ),
        (
            lambda: F.conv2d(t(1, 1, 2, 2), t(1, 1, 4, 4)),
            r"conv2d: the output would be -1x-1: the 2x2 input padded by \(0, 0\) is smaller than the 4x4 kernel",
        ),
        (lambda: F.conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), padding=-1), r"conv2d: padding must be at least 0, got -1"),
        (lambda: F.conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), stride=0), r"conv2d: stride must be at least 1"),
        (lambda: F.conv2d(t(8, 8), t(1, 1, 3, 3)), r"conv2d: input must have shape \(N, C, H, W\), got \(8, 8\)"),
        (lambda: F.conv2d(t(1, 1, 8, 8), t(2, 1, 3, 3), t(3)), r"conv2d: bias must have shape \(2,\), got \(3,\)"),
        (lambda: F.batch_norm(t(4, 3, 2, 2), t(2)), r"batch_norm: weight must have shape \(3,\), got \(2,\)"),
        (lambda: F.batch_norm(t(4, 3), None, t(4)), r"batch_norm: bias must have shape \(3,\), got \(4,\)"),
        (lambda: F.batch_norm(t(4, 3), negative_slope=2.0), r"batch_norm: negative_slope must be between 0 and 1 to be fused, got 2.0"),
        (
            lambda: F.batch_norm(t(0, 3, 4, 4)),
            r"batch_norm: input \(0, 3, 4, 4\) has no values per channel to take the batch statistics of",
        ),
        (lambda: F.batch_norm(t(4)), r"batch_norm: input must have shape \(N, C, ...\), got \(4,\)"),
        (lambda: F.group_norm(t(0, 4, 3, 3), 2), r"group_norm: input \(0, 4, 3, 3\) has no values to take the groups' statistics of"),
        (lambda: F.group_norm(t(2, 4, 0, 3), 2), r"group_norm: input \(2, 4, 0, 3\) has no values"),
        (
            lambda: F.conv_transpose2d(t(1, 3, 4, 4), t(2, 1, 4, 4)),
            r"conv_transpose2d: input \(1, 3, 4, 4\) has 3 channels, but weight \(2, 1, 4, 4\) expects 2",
        ),
        (
            lambda: F.conv_transpose2d(t(1, 1, 4, 4), t(1, 1, 4, 4), stride=2, output_padding=2),
            r"output_padding \(2, 2\) must be smaller than the stride",
        ),
        (lambda: F.conv_transpose2d(t(1, 1, 1, 1), t(1, 1, 1, 1), padding=1), r"conv_transpose2d: the output would be -1x-1"),
        (lambda: F.avg_pool2d(t(1, 1, 2, 2), 3), r"avg_pool2d: the 2x2 input padded by \(0, 0\) is smaller than the \(3, 3\) kernel"),
        (lambda: F.avg_pool2d(t(1, 1, 8, 8), 2, padding=2), r"avg_pool2d: padding \(2, 2\) must be at most half the kernel size"),
        (lambda: F.linear(t(4, 5), t(3, 6)), r"linear: input of shape \(4, 5\) has 5 features, but weight \(3, 6\) expects 6"),
    ],
)
def test_impossible_configurations_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mixed_dtypes_are_refused():
    with pytest.raises(TypeError, match="conv2d: input, weight and bias must share one dtype"):
        F.conv2d(t(1, 1, 4, 4, dtype=np.float32), t(1, 1, 3, 3))


def test_layers_keep_float32():
    x, w = t(2, 3, 8, 8, dtype=np.float32, requires_grad=True), t(4, 3, 3, 3, dtype=np.float32, requires_grad=True)
    y = F.upsample_nearest2d(F.avg_pool2d(F.conv2d(x, w, padding=1), 2), 2)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float32
