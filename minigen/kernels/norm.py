r"""Batch normalisation, optionally followed by a (leaky) ReLU, in one pass: Numba kernels beside
the NumPy twins that define them.

For each channel $c$, over the $M$ values it has in the batch (every image, every pixel):

$$\mu_c = \tfrac1M \textstyle\sum x, \quad \sigma^2_c = \tfrac1M \sum (x - \mu_c)^2, \quad
\hat x = \frac{x - \mu_c}{\sqrt{\sigma^2_c + \epsilon}}, \quad z = \gamma_c \hat x + \beta_c,
\quad y = \begin{cases} z & z > 0 \\ s\,z & z \le 0 \end{cases}$$

with $s$ the negative slope: 0 for a ReLU, 0.2 for DCGAN's LeakyReLU, 1 for no activation.
Backward, with $g = \bar y \cdot (1 \text{ if } z > 0 \text{ else } s)$ (which is $\bar z$) and
$\langle\cdot\rangle$ the mean over the channel's values:

$$\bar\beta_c = \textstyle\sum g, \qquad \bar\gamma_c = \sum g\,\hat x, \qquad
\bar x = \frac{\gamma_c}{\sqrt{\sigma^2_c + \epsilon}} \big(g - \langle g \rangle - \hat x\,\langle g\,\hat x\rangle\big).$$

Since $s \ge 0$, $y > 0$ exactly where $z > 0$, so the backward reads the mask from the output
and keeps no other array. Why fuse: NumPy runs each elementwise operation on one core and
makes a pass over the activations for each (mean, subtract, square, divide, scale, shift,
activate, and as many backward); the kernels make two passes forward and two backward, one
channel per thread. Sums accumulate in float64.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit, prange


def _by_channel(x: np.ndarray) -> np.ndarray:
    """(N, C, ...) as (N, C, M): every value of channel c is [:, c, :]."""
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


# fastmath "reassoc" lets LLVM split each sum over several registers (vector lanes), which a
# strict left-to-right sum forbids: 3x faster, and still the same numbers on every run.
@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _statistics(x, mean, var):
    batch, channels, size = x.shape
    count = batch * size
    for c in prange(channels):
        total = 0.0
        for n in range(batch):
            for m in range(size):
                total += x[n, c, m]
        mu = total / count
        squares = 0.0
        for n in range(batch):
            for m in range(size):
                d = x[n, c, m] - mu
                squares += d * d
        mean[c], var[c] = mu, squares / count


@njit(parallel=True, cache=True)
def _normalize(x, mean, var, gamma, beta, eps, slope, y):
    batch, channels, size = x.shape
    for c in prange(channels):
        scale = gamma[c] / np.sqrt(var[c] + eps)
        shift = beta[c] - mean[c] * scale  # z = x * scale + shift = gamma x_hat + beta
        for n in range(batch):
            for m in range(size):
                z = x[n, c, m] * scale + shift
                y[n, c, m] = z if z > 0 else slope * z


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _backward(grad_y, x, y, mean, var, gamma, eps, slope, grad_x, grad_gamma, grad_beta):
    batch, channels, size = x.shape
    count = batch * size
    for c in prange(channels):
        mu, inv_std = mean[c], 1.0 / np.sqrt(var[c] + eps)
        sum_g, sum_g_xhat = 0.0, 0.0
        for n in range(batch):
            for m in range(size):
                g = grad_y[n, c, m] if y[n, c, m] > 0 else slope * grad_y[n, c, m]
                sum_g += g
                sum_g_xhat += g * (x[n, c, m] - mu) * inv_std
        grad_beta[c], grad_gamma[c] = sum_g, sum_g_xhat
        k, mean_g, mean_g_xhat = gamma[c] * inv_std, sum_g / count, sum_g_xhat / count
        for n in range(batch):
            for m in range(size):
                g = grad_y[n, c, m] if y[n, c, m] > 0 else slope * grad_y[n, c, m]
                grad_x[n, c, m] = k * (g - mean_g - (x[n, c, m] - mu) * inv_std * mean_g_xhat)


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the biased variance of every channel (axis 1) of x, each of shape (C,)."""
    mean, var = np.empty(x.shape[1], dtype=x.dtype), np.empty(x.shape[1], dtype=x.dtype)
    _statistics(_by_channel(x), mean, var)
    return mean, var


def batch_norm(x, mean, var, gamma, beta, eps: float, slope: float) -> np.ndarray:
    """y = leaky_relu(gamma x_hat + beta, slope) for every channel, given its statistics."""
    y = np.empty_like(x, order="C")
    _normalize(_by_channel(x), mean, var, gamma, beta, eps, slope, y.reshape(x.shape[0], x.shape[1], -1))
    return y


def batch_norm_backward(grad_y, x, y, mean, var, gamma, eps: float, slope: float):
    """(grad_x, grad_gamma, grad_beta) of `batch_norm`, from the gradient of its output y."""
    grad_x = np.empty_like(x, order="C")
    grad_gamma, grad_beta = np.empty_like(gamma), np.empty_like(gamma)
    shape3 = (x.shape[0], x.shape[1], -1)
    _backward(
        _by_channel(grad_y), _by_channel(x), _by_channel(y), mean, var, gamma, eps, slope, grad_x.reshape(shape3), grad_gamma, grad_beta
    )
    return grad_x, grad_gamma, grad_beta


# --- the NumPy twins: the definitions, and the tests' oracle -----------------------------------


def batch_norm_reference(x, gamma, beta, eps: float, slope: float) -> np.ndarray:
    """The formulas above, one NumPy operation each."""
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    z = gamma.reshape(shape) * x_hat + beta.reshape(shape)
    return np.where(z > 0, z, slope * z)


def batch_norm_backward_reference(grad_y, x, gamma, beta, eps: float, slope: float):
    """(grad_x, grad_gamma, grad_beta), one NumPy operation each."""
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    inv_std = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) * inv_std
    z = gamma.reshape(shape) * x_hat + beta.reshape(shape)
    g = np.where(z > 0, grad_y, slope * grad_y)
    mean = lambda a: a.mean(axis=axes, keepdims=True)  # noqa: E731
    grad_x = gamma.reshape(shape) * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
    return grad_x, (g * x_hat).sum(axis=axes), g.sum(axis=axes)
