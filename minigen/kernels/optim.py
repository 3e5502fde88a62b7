r"""The Adam update as one pass over memory, beside the NumPy twin that defines it.

Written with NumPy, one Adam step makes about a dozen passes over each parameter-sized
array (every `*`, `+`, `sqrt` and `/` reads and writes a whole temporary); for the 628,000
parameters of a 784-400-20 VAE that was 40% of a training step. The Numba kernel reads each
element of $\theta, g, m, v$ once and writes it back once:

$$m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
\theta \leftarrow \theta - \frac{\eta}{1 - \beta_1^t} \cdot \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}$$

(the bias corrections folded into the step size and the denominator, as PyTorch does), with
L2 weight decay added to $g$ first, or decoupled (AdamW) applied to $\theta$ first.

It computes in the parameters' dtype, float32 for float32 weights, as the twin and PyTorch
do, and with NumPy's rules for a division by zero (`error_model="numpy"`: inf or nan, as the
twin gives, rather than Python's ZeroDivisionError, whose check in the loop kept LLVM from
vectorising it): then the loop is SIMD code and runs at the speed of memory. Per update of
313,600 float32 values on the benchmark machine: 460-480 us on one core with float64 scalars
and Python's division; 240 us now on one core, 220 us on two.
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import block_range, njit, prange

# From this many values an update runs on every core (in BLOCKS blocks), below it on the
# calling thread: waking Numba's threads costs about 80 us. 65,536 values: 53 us on one core,
# 106 on two; 313,600: 242 against 221. (The twin: 20 us for 8,192 values, 529 for 65,536.)
THREADED_FROM = 1 << 18
BLOCKS = 32


@njit(cache=True, error_model="numpy")
def _adam(theta, grad, m, v, scalars):
    """The step on flat arrays, every scalar in their dtype. Weight decay without a branch in
    the loop: l2 = lambda and shrink = 1 for L2 decay, l2 = 0 and shrink = 1 - lr lambda for
    decoupled decay (l2 = 0 and shrink = 1: none)."""
    beta1, beta2, one_minus_beta1, one_minus_beta2, eps, step_size, root_correction2, l2, shrink = scalars
    for i in range(theta.size):
        t = theta[i] * shrink
        g = grad[i] + l2 * t
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        v[i] = beta2 * v[i] + one_minus_beta2 * g * g
        theta[i] = t - step_size * m[i] / (np.sqrt(v[i]) / root_correction2 + eps)


@njit(parallel=True, cache=True)
def _adam_threaded(theta, grad, m, v, scalars):
    """_adam on BLOCKS slices of the arrays, on Numba's threads (each element's arithmetic the same)."""
    for b in prange(BLOCKS):
        start, stop = block_range(b, BLOCKS, theta.size)
        _adam(theta[start:stop], grad[start:stop], m[start:stop], v[start:stop], scalars)


def adam_update(theta, grad, m, v, *, lr, beta1, beta2, eps, weight_decay, decoupled, step) -> None:
    """One Adam step in place (the optimizer has checked that the gradient is finite)."""
    if not all(a.flags.c_contiguous for a in (theta, m, v)):
        raise ValueError("adam_update: theta, m and v must be contiguous arrays (they are updated in place)")
    flat = [a.reshape(-1) for a in (theta, np.ascontiguousarray(grad, dtype=theta.dtype), m, v)]
    l2, shrink = (0.0, 1.0 - lr * weight_decay) if decoupled else (weight_decay, 1.0)
    step_size, root_correction2 = lr / (1.0 - beta1**step), math.sqrt(1.0 - beta2**step)
    scalars = (beta1, beta2, 1.0 - beta1, 1.0 - beta2, eps, step_size, root_correction2, l2, shrink)
    kernel = _adam_threaded if theta.size >= THREADED_FROM else _adam
    kernel(*flat, tuple(map(theta.dtype.type, scalars)))


def adam_update_reference(theta, grad, m, v, *, lr, beta1, beta2, eps, weight_decay, decoupled, step) -> None:
    """The same step in NumPy, one equation per line."""
    if weight_decay and decoupled:
        theta *= 1 - lr * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * theta
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    theta -= lr * m_hat / (np.sqrt(v_hat) + eps)
