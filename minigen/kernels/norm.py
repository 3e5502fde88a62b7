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
activate, and as many backward); the kernels make two passes forward and two backward, on
every core. They read images channels last, as the convolutions write them (a row of C
channels per pixel), and write them so. Sums and the normalisation run in float64.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit, prange


def _rows(x: np.ndarray) -> np.ndarray:
    """(N, C, ...) as the (positions, C) matrix of its channels-last memory: row p holds every
    channel of one position (one image's pixel). A view when x is channels last already, as a
    convolution's output is; else a copy."""
    if x.ndim == 2:
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)).reshape(-1, x.shape[1])


def _like(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A (positions, C) matrix as the (N, C, ...) array of x's shape (channels-last memory)."""
    if x.ndim == 2:
        return rows
    return np.moveaxis(rows.reshape(x.shape[0], *x.shape[2:], x.shape[1]), -1, 1)


# The sums run over blocks of rows, one block at a time per thread, each into its own partial
# sum (float64); the blocks are the same on any number of threads, so are the numbers. Each
# kernel is one parallel loop and nothing else: in a parallel Numba function every array
# expression outside the prange (np.zeros, a[:] = b, a.sum()) becomes a parallel loop of its
# own, and starting one costs about 0.1 ms, so the arithmetic on (C,) vectors is NumPy's.
BLOCKS = 32


@njit(cache=True)
def _block(b, blocks, rows):
    """The rows [start, stop) of block b of `blocks`."""
    return b * rows // blocks, (b + 1) * rows // blocks


# fastmath "reassoc" lets LLVM split each sum over several registers (vector lanes), which a
# strict left-to-right sum forbids: several times faster, and still the same numbers on every run.
@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _block_sums(x, shift, sums, squares):
    """sums[b, c] = the sum of x[p, c] - shift[c], squares[b, c] that of its square, over block b's rows p."""
    rows, channels = x.shape
    blocks = sums.shape[0]
    for b in prange(blocks):
        total, total_squares = np.zeros(channels), np.zeros(channels)
        start, stop = _block(b, blocks, rows)
        for p in range(start, stop):
            for c in range(channels):
                d = x[p, c] - shift[c]
                total[c] += d
                total_squares[c] += d * d
        for c in range(channels):
            sums[b, c], squares[b, c] = total[c], total_squares[c]


@njit(parallel=True, cache=True)
def _normalize(x, mean, scale, beta, slope, y):
    """y = leaky_relu((x - mean) * scale + beta, slope), channel by channel (in float64)."""
    rows, channels = x.shape
    for b in prange(BLOCKS):
        start, stop = _block(b, BLOCKS, rows)
        for p in range(start, stop):
            for c in range(channels):
                z = (x[p, c] - mean[c]) * scale[c] + beta[c]
                y[p, c] = z if z > 0 else slope * z


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def _backward_sums(grad_y, x, y, mean, inv_std, slope, sums_g, sums_g_xhat):
    """Per block of rows and channel: the sums of g and of g x_hat."""
    rows, channels = x.shape
    blocks = sums_g.shape[0]
    for b in prange(blocks):
        total_g, total_g_xhat = np.zeros(channels), np.zeros(channels)
        start, stop = _block(b, blocks, rows)
        for p in range(start, stop):
            for c in range(channels):
                g = grad_y[p, c] if y[p, c] > 0 else slope * grad_y[p, c]
                total_g[c] += g
                total_g_xhat[c] += g * (x[p, c] - mean[c]) * inv_std[c]
        for c in range(channels):
            sums_g[b, c], sums_g_xhat[b, c] = total_g[c], total_g_xhat[c]


@njit(parallel=True, cache=True)
def _backward_apply(grad_y, x, y, mean, inv_std, slope, k, mean_g, mean_g_xhat, grad_x):
    """grad_x = k (g - <g> - x_hat <g x_hat>), channel by channel, with k = gamma / sqrt(var + eps)."""
    rows, channels = x.shape
    for b in prange(BLOCKS):
        start, stop = _block(b, BLOCKS, rows)
        for p in range(start, stop):
            for c in range(channels):
                g = grad_y[p, c] if y[p, c] > 0 else slope * grad_y[p, c]
                grad_x[p, c] = k[c] * (g - mean_g[c] - (x[p, c] - mean[c]) * inv_std[c] * mean_g_xhat[c])


def _sums_over_rows(kernel, shape: tuple[int, int], *arrays) -> tuple[np.ndarray, np.ndarray]:
    """The two per-channel sums `kernel` makes over the rows of a (rows, C) `shape` (float64):
    it writes them per block of rows, and the blocks' sums are added here."""
    blocks = min(BLOCKS, shape[0])
    first, second = np.empty((blocks, shape[1])), np.empty((blocks, shape[1]))
    kernel(*arrays, first, second)
    return first.sum(axis=0), second.sum(axis=0)


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the biased variance of every channel (axis 1) of x, each of shape (C,) and
    float64, in one pass over d = x - x_0, with x_0 the channel's first value: mean = x_0 + <d>,
    variance = <d^2> - <d>^2. Shifted so, d is of the order of the spread rather than of the
    mean, and the subtraction loses no digits that matter (the sums are float64)."""
    x_rows = _rows(x)
    shift = x_rows[0].astype(np.float64)
    total, squares = _sums_over_rows(_block_sums, x_rows.shape, x_rows, shift)
    mean_d = total / x_rows.shape[0]
    return shift + mean_d, np.maximum(squares / x_rows.shape[0] - mean_d**2, 0.0)


def batch_norm(x, mean, var, gamma, beta, eps: float, slope: float) -> np.ndarray:
    """y = leaky_relu(gamma x_hat + beta, slope) for every channel, given its statistics; y is
    channels last in memory.

    The mean is subtracted before scaling, in float64: folded into one multiply-add,
    x * scale + (beta - mean * scale), two large terms would cancel and lose the digits of a
    channel whose mean is far larger than its spread."""
    x_rows = _rows(x)
    scale = gamma / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    y = np.empty_like(x_rows)
    _normalize(x_rows, np.asarray(mean, dtype=np.float64), scale, np.asarray(beta, dtype=np.float64), slope, y)
    return _like(y, x)


def batch_norm_backward(grad_y, x, y, mean, var, gamma, eps: float, slope: float):
    """(grad_x, grad_gamma, grad_beta) of `batch_norm`, from the gradient of its output y."""
    x_rows, grad_rows, y_rows = _rows(x), _rows(grad_y), _rows(y)
    rows = x_rows.shape[0]
    mean, inv_std = np.asarray(mean, dtype=np.float64), 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    grad_beta, grad_gamma = _sums_over_rows(_backward_sums, x_rows.shape, grad_rows, x_rows, y_rows, mean, inv_std, slope)
    grad_x = np.empty_like(x_rows)
    _backward_apply(grad_rows, x_rows, y_rows, mean, inv_std, slope, gamma * inv_std, grad_beta / rows, grad_gamma / rows, grad_x)
    return _like(grad_x, x), grad_gamma.astype(gamma.dtype), grad_beta.astype(gamma.dtype)


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
