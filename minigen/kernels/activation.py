r"""The leaky ReLU and SiLU's gradient: Numba kernels beside the NumPy twins that define them.

$$y = \begin{cases} a & a > 0 \\ s\,a & a \le 0 \end{cases} \qquad
\bar a = \begin{cases} \bar y & a > 0 \\ s\,\bar y & a \le 0 \end{cases}$$

with $s$ the negative slope (0.2 in DCGAN's discriminator). NumPy makes several passes over the
activations for this (compare, scale, select), and as many backward; a kernel makes one, on
one core: LLVM turns its loop into SIMD instructions, and it is then bound by memory, so a
second core would save less than waking Numba's sleeping threads costs (about 80 us). Measured
up to 1,605,632 values: the forward 158 us on one core against 297 on two, the backward 305
against 428; the twin 525 and 927.

SiLU, $y = a\,\sigma(a)$ (the U-Net's activation), has the gradient
$\bar a = \bar y\, \sigma(a)\big(1 + a (1 - \sigma(a))\big)$: nine NumPy passes, or NumPy's
$e^{-a}$ (two passes, vectorised: Numba's exp takes one value at a time and is slower than all
nine) and one kernel pass for the rest, also on one core. Its forward, $a / (1 + e^{-a})$, is
four NumPy passes, as fast as any kernel here, so it has none.

An elementwise map does not care how its array is laid out, only that the input and the output
are laid out alike: the kernels run through memory in its own order (a convolution's output is
channels last) and return that layout. Arrays of fewer than KERNEL_FROM values stay with the
NumPy twins.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit

# From this many values the kernels beat NumPy's passes (the leaky ReLU's at 16,384: 4.4 against
# 4.7 us, at 65,536: 8.8 against 15.2; SiLU's gradient at 65,536: 46 against 81); below,
# calling a kernel costs more than the work.
KERNEL_FROM = 1 << 14


@njit(cache=True)
def _leaky_relu(a, slope, y):
    for k in range(a.size):
        y[k] = a[k] if a[k] > 0 else slope * a[k]


@njit(cache=True)
def _leaky_relu_backward(grad_y, a, slope, grad_a):
    for k in range(a.size):
        grad_a[k] = grad_y[k] if a[k] > 0 else slope * grad_y[k]


@njit(cache=True, error_model="numpy")
def _silu_backward(grad_y, a, e, one):
    """e = e^-a on the way in, grad_a on the way out: ((1 - s) a + 1) s grad_y with s = 1 / (1 + e),
    in the twin's order of operations. `one` is 1 in the arrays' dtype (a literal 1 would make
    Numba compute float32 in float64). With NumPy's rules for a division by zero (which cannot
    happen here: 1 + e >= 1) rather than Python's, whose check in the loop keeps LLVM from
    vectorising it: 1,605,632 values (with NumPy's e^-a) 1.29 ms on one core, against 1.48 ms
    threaded with the check, and the twin's 2.38."""
    for k in range(a.size):
        s = one / (one + e[k])
        e[k] = ((one - s) * a[k] + one) * s * grad_y[k]


def _in_memory_order(*arrays) -> list[np.ndarray] | None:
    """Each array as the 1-D view of its memory, when they are all laid out alike with no gaps
    (the same strides, each contiguous in some order of its axes); else None."""
    first = arrays[0]
    if any(a.strides != first.strides or a.dtype != first.dtype for a in arrays):
        return None
    flat = [a.ravel(order="K") for a in arrays]  # a view, unless the array has gaps
    return flat if all(np.may_share_memory(f, a) for f, a in zip(flat, arrays)) else None


def leaky_relu(a: np.ndarray, slope: float) -> np.ndarray:
    """y = leaky_relu(a, slope), laid out in memory as a is."""
    if a.size >= KERNEL_FROM:
        y = np.empty_like(a)  # a's layout ("K" order)
        flat = _in_memory_order(a, y)
        if flat is not None:
            a_flat, y_flat = flat
            _leaky_relu(a_flat, a.dtype.type(slope), y_flat)
            return y
    return leaky_relu_reference(a, slope)


def leaky_relu_backward(grad_y: np.ndarray, a: np.ndarray, slope: float) -> np.ndarray:
    """The gradient with respect to a, given grad_y (the gradient of y = leaky_relu(a, slope))."""
    if a.size >= KERNEL_FROM:
        grad_a = np.empty_like(grad_y)
        flat = _in_memory_order(grad_y, a, grad_a)
        if flat is not None:
            grad_y_flat, a_flat, grad_a_flat = flat
            _leaky_relu_backward(grad_y_flat, a_flat, grad_y.dtype.type(slope), grad_a_flat)
            return grad_a
    return leaky_relu_backward_reference(grad_y, a, slope)


def silu_backward(grad_y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The gradient with respect to a, given grad_y (the gradient of y = silu(a))."""
    if a.size >= KERNEL_FROM:
        grad_a = np.empty_like(grad_y)
        flat = _in_memory_order(grad_y, a, grad_a)
        if flat is not None:
            grad_y_flat, a_flat, grad_a_flat = flat
            exp_minus(a_flat, out=grad_a_flat)
            _silu_backward(grad_y_flat, a_flat, grad_a_flat, a.dtype.type(1))
            return grad_a
    return silu_backward_reference(grad_y, a)


def exp_minus(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    r"""$e^{-a}$ into `out`, without a temporary -a. It is $+\infty$ where it overflows
    ($a < -88.7$ in float32); the callers divide by $1 + e^{-a}$, and $1/\infty = 0$ and
    $a/\infty = 0$ are the limits (the exact values there are below float32's smallest normal
    number)."""
    np.negative(a, out=out)
    with np.errstate(over="ignore"):
        return np.exp(out, out=out)


# --- the NumPy twins: the definitions, and the tests' oracle -----------------------------------


def leaky_relu_reference(a: np.ndarray, slope: float) -> np.ndarray:
    """max(a, s a) for s <= 1, min(a, s a) for s > 1: arithmetic, which NumPy runs more than ten
    times faster than np.where on a mask of random signs."""
    scaled = a.dtype.type(slope) * a
    return np.maximum(a, scaled) if slope <= 1 else np.minimum(a, scaled)


def leaky_relu_backward_reference(grad_y: np.ndarray, a: np.ndarray, slope: float) -> np.ndarray:
    """grad_y times 1 where a > 0, else s (the factor in grad_y's dtype: no float64 temporary)."""
    slope = grad_y.dtype.type(slope)
    return grad_y * ((a > 0) * (1 - slope) + slope)


def silu_backward_reference(grad_y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """grad_y s (1 + a (1 - s)) with s = sigmoid(a) = 1 / (1 + e^-a), in place on two new arrays."""
    s = exp_minus(a, out=np.empty_like(a))
    s += 1
    np.divide(1, s, out=s)
    grad_a = np.subtract(1, s)
    grad_a *= a
    grad_a += 1
    grad_a *= s
    grad_a *= grad_y
    return grad_a
