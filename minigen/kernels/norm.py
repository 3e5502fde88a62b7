r"""Batch normalisation (optionally followed by a (leaky) ReLU, in the same pass) and group
normalisation: Numba kernels beside the NumPy twins that define them.

**Batch norm.** For each channel $c$, over the $M$ values it has in the batch (every image,
every pixel):

$$\mu_c = \tfrac1M \textstyle\sum x, \quad \sigma^2_c = \tfrac1M \sum (x - \mu_c)^2, \quad
\hat x = \frac{x - \mu_c}{\sqrt{\sigma^2_c + \epsilon}}, \quad z = \gamma_c \hat x + \beta_c,
\quad y = \begin{cases} z & z > 0 \\ s\,z & z \le 0 \end{cases}$$

with $s$ the negative slope: 0 for a ReLU, 0.2 for DCGAN's LeakyReLU, 1 for no activation.
Backward, with $g = \bar y \cdot (1 \text{ if } z > 0 \text{ else } s)$ (which is $\bar z$) and
$\langle\cdot\rangle$ the mean over the channel's values:

$$\bar\beta_c = \textstyle\sum g, \qquad \bar\gamma_c = \sum g\,\hat x, \qquad
\bar x = \frac{\gamma_c}{\sqrt{\sigma^2_c + \epsilon}} \big(g - \langle g \rangle - \hat x\,\langle g\,\hat x\rangle\big).$$

Since $s \ge 0$, $y > 0$ exactly where $z > 0$, so the backward reads the mask from the output
and keeps no other array.

**Group norm** is the same with other statistics: $\mu$ and $\sigma^2$ per image and group of
channels (its channels and positions), no activation, and since $\gamma_c$ varies inside a
group, the means of the backward are of $\gamma \bar y$ (the gradient of $\hat x$):
$\bar x = \frac{1}{\sqrt{\sigma^2 + \epsilon}} \big(\gamma_c \bar y - \langle \gamma \bar y \rangle
- \hat x\,\langle \gamma \bar y\,\hat x\rangle\big)$.

Why kernels: NumPy runs each elementwise operation on one core and makes a pass over the
activations for each (mean, subtract, square, divide, scale, shift, activate, and as many
backward); the kernels make two passes forward and two backward (on every core for large
arrays). They read images channels last, as the convolutions write them (a row of C channels
per pixel), and write them so. Sums and the normalisation run in float64.
"""

from __future__ import annotations

import numpy as np

from ._numba import block_range, njit, prange


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


# The kernels serve both normalisations. Their per-channel numbers (mean, scale, ...) come as
# (images, C) arrays, and row p of x reads row p // (rows / images) of them: one row for the
# whole batch in batch norm, one per image in group norm.
#
# Each kernel works through blocks of rows, `first` to `last`: all of them in one call on the
# calling thread, or one block at a time per thread in its `_threaded` twin (`_blockwise`
# picks). The sums go into one partial sum (float64) per block: for batch norm BLOCKS blocks,
# for group norm one block per image. The blocks are the same on any number of threads, so
# are the numbers. A threaded kernel is one parallel loop and nothing else: in a parallel
# Numba function every array expression outside the prange (np.zeros, a[:] = b, a.sum())
# becomes a parallel loop of its own, and starting one costs about 80 us here.
BLOCKS = 32

# From this many values on, the kernels run on every core. Below it one core is faster: waking
# Numba's sleeping threads takes about 80 us a loop, more than a small array's work. Forward +
# backward, one core against two: a group norm of 131,072 values (the digits U-Net's) 0.14 +
# 0.24 ms against 0.40 + 0.51; a batch norm of 802,816 (the DCGAN generator's) 0.42 + 0.80
# against 0.67 + 0.67; of 1,605,632 values 0.78 + 1.69 against 1.00 + 1.24.
THREADED_FROM = 1 << 20


# fastmath "reassoc" lets LLVM split each sum over several registers (vector lanes), which a
# strict left-to-right sum forbids: several times faster, and still the same numbers on every run.
@njit(cache=True, fastmath={"reassoc"})
def _block_sums(x, shift, sums, squares, first, last):
    """sums[b, c] = the sum of d = x[p, c] - shift[image of p, c], squares[b, c] that of d^2,
    over block b's rows p, for the blocks b from first to last."""
    rows, channels = x.shape
    blocks, per_image = sums.shape[0], rows // shift.shape[0]
    for b in range(first, last):
        total, total_squares = np.zeros(channels), np.zeros(channels)
        start, stop = block_range(b, blocks, rows)
        for p in range(start, stop):
            i = p // per_image
            for c in range(channels):
                d = x[p, c] - shift[i, c]
                total[c] += d
                total_squares[c] += d * d
        for c in range(channels):
            sums[b, c], squares[b, c] = total[c], total_squares[c]


@njit(parallel=True, cache=True)
def _block_sums_threaded(x, shift, sums, squares):
    for b in prange(sums.shape[0]):
        _block_sums(x, shift, sums, squares, b, b + 1)


@njit(cache=True)
def _normalize(x, mean, scale, beta, slope, y, first, last):
    """y = leaky_relu((x - mean) * scale + beta, slope) (in float64), with mean and scale those
    of the row's image and beta per channel, on the rows of blocks first to last (of BLOCKS)."""
    rows, channels = x.shape
    per_image = rows // mean.shape[0]
    start, stop = block_range(first, BLOCKS, rows)[0], block_range(last - 1, BLOCKS, rows)[1]
    for p in range(start, stop):
        i = p // per_image
        for c in range(channels):
            z = (x[p, c] - mean[i, c]) * scale[i, c] + beta[c]
            y[p, c] = z if z > 0 else slope * z


@njit(parallel=True, cache=True)
def _normalize_threaded(x, mean, scale, beta, slope, y):
    for b in prange(BLOCKS):
        _normalize(x, mean, scale, beta, slope, y, b, b + 1)


@njit(cache=True, fastmath={"reassoc"})
def _backward_sums(grad_y, x, y, mean, inv_std, slope, sums_g, sums_g_xhat, first, last):
    """Per block of rows (from first to last) and channel: the sums of g and of g x_hat."""
    rows, channels = x.shape
    blocks, per_image = sums_g.shape[0], rows // mean.shape[0]
    for b in range(first, last):
        total_g, total_g_xhat = np.zeros(channels), np.zeros(channels)
        start, stop = block_range(b, blocks, rows)
        for p in range(start, stop):
            i = p // per_image
            for c in range(channels):
                g = grad_y[p, c] if y[p, c] > 0 else slope * grad_y[p, c]
                total_g[c] += g
                total_g_xhat[c] += g * (x[p, c] - mean[i, c]) * inv_std[i, c]
        for c in range(channels):
            sums_g[b, c], sums_g_xhat[b, c] = total_g[c], total_g_xhat[c]


@njit(parallel=True, cache=True)
def _backward_sums_threaded(grad_y, x, y, mean, inv_std, slope, sums_g, sums_g_xhat):
    for b in prange(sums_g.shape[0]):
        _backward_sums(grad_y, x, y, mean, inv_std, slope, sums_g, sums_g_xhat, b, b + 1)


@njit(cache=True)
def _backward_apply(grad_y, x, y, mean, inv_std, slope, k, a, b, grad_x, first, last):
    """grad_x = k g - a - x_hat b, with each factor that of the row's image: batch norm's
    k (g - <g> - x_hat <g x_hat>) with k = gamma / sqrt(var + eps), a = k <g>, b = k <g x_hat>;
    on the rows of blocks first to last (of BLOCKS)."""
    rows, channels = x.shape
    per_image = rows // mean.shape[0]
    start, stop = block_range(first, BLOCKS, rows)[0], block_range(last - 1, BLOCKS, rows)[1]
    for p in range(start, stop):
        i = p // per_image
        for c in range(channels):
            g = grad_y[p, c] if y[p, c] > 0 else slope * grad_y[p, c]
            grad_x[p, c] = k[i, c] * g - a[i, c] - (x[p, c] - mean[i, c]) * inv_std[i, c] * b[i, c]


@njit(parallel=True, cache=True)
def _backward_apply_threaded(grad_y, x, y, mean, inv_std, slope, k, a, b, grad_x):
    for block in prange(BLOCKS):
        _backward_apply(grad_y, x, y, mean, inv_std, slope, k, a, b, grad_x, block, block + 1)


_THREADED = {
    _block_sums: _block_sums_threaded,
    _normalize: _normalize_threaded,
    _backward_sums: _backward_sums_threaded,
    _backward_apply: _backward_apply_threaded,
}


def _blockwise(kernel, blocks: int, *arrays) -> None:
    """kernel(*arrays) over its `blocks` blocks of rows: on every core for THREADED_FROM values
    or more (its `_threaded` twin), else in one call on this thread."""
    if arrays[0].size >= THREADED_FROM:
        _THREADED[kernel](*arrays)
    else:
        kernel(*arrays, 0, blocks)


def _sums_per_block(kernel, blocks: int, shape: tuple[int, int], *arrays) -> tuple[np.ndarray, np.ndarray]:
    """The two (blocks, C) arrays of sums (float64) that `kernel` makes over the blocks of rows
    of a (rows, C) `shape`."""
    first, second = np.empty((blocks, shape[1])), np.empty((blocks, shape[1]))
    _blockwise(kernel, blocks, *arrays, first, second)
    return first, second


def _per_image(*vectors) -> list[np.ndarray]:
    """Per-channel vectors as the (1, C) float64 arrays the kernels read for a whole batch."""
    return [np.ascontiguousarray(v, dtype=np.float64).reshape(1, -1) for v in vectors]


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the biased variance of every channel (axis 1) of x, each of shape (C,) and
    float64, in one pass over d = x - x_0, with x_0 the channel's first value: mean = x_0 + <d>,
    variance = <d^2> - <d>^2. Shifted so, d is of the order of the spread rather than of the
    mean, and the subtraction loses no digits that matter (the sums are float64)."""
    x_rows = _rows(x)
    (shift,) = _per_image(x_rows[0])
    total, squares = _sums_per_block(_block_sums, min(BLOCKS, x_rows.shape[0]), x_rows.shape, x_rows, shift)
    mean_d = total.sum(axis=0) / x_rows.shape[0]
    return shift[0] + mean_d, np.maximum(squares.sum(axis=0) / x_rows.shape[0] - mean_d**2, 0.0)


def batch_norm(x, mean, var, gamma, beta, eps: float, slope: float) -> np.ndarray:
    """y = leaky_relu(gamma x_hat + beta, slope) for every channel, given its statistics; y is
    channels last in memory.

    The mean is subtracted before scaling, in float64: folded into one multiply-add,
    x * scale + (beta - mean * scale), two large terms would cancel and lose the digits of a
    channel whose mean is far larger than its spread."""
    x_rows = _rows(x)
    mean, scale, beta = _per_image(mean, gamma / np.sqrt(np.asarray(var, dtype=np.float64) + eps), beta)
    y = np.empty_like(x_rows)
    _blockwise(_normalize, BLOCKS, x_rows, mean, scale, beta[0], slope, y)
    return _like(y, x)


def batch_norm_backward(grad_y, x, y, mean, var, gamma, eps: float, slope: float):
    """(grad_x, grad_gamma, grad_beta) of `batch_norm`, from the gradient of its output y."""
    x_rows, grad_rows, y_rows = _rows(x), _rows(grad_y), _rows(y)
    rows = x_rows.shape[0]
    mean, inv_std = _per_image(mean, 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps))
    sums_g, sums_g_xhat = _sums_per_block(_backward_sums, min(BLOCKS, rows), x_rows.shape, grad_rows, x_rows, y_rows, mean, inv_std, slope)
    grad_beta, grad_gamma = sums_g.sum(axis=0), sums_g_xhat.sum(axis=0)
    k = gamma * inv_std
    grad_x = np.empty_like(x_rows)
    _blockwise(
        _backward_apply, BLOCKS, grad_rows, x_rows, y_rows, mean, inv_std, slope, k, k * grad_beta / rows, k * grad_gamma / rows, grad_x
    )
    return _like(grad_x, x), grad_gamma.astype(gamma.dtype), grad_beta.astype(gamma.dtype)


def _each_channel(per_group: np.ndarray, size: int) -> np.ndarray:
    """An (N, groups) array as (N, C): each group's value for each of its `size` channels."""
    return np.repeat(per_group, size, axis=1)


def _group_sums(per_channel: np.ndarray, groups: int) -> np.ndarray:
    """An (N, C) array's sums over each group of channels: (N, groups)."""
    return per_channel.reshape(per_channel.shape[0], groups, -1).sum(axis=2)


def group_norm(x, groups: int, gamma, beta, eps: float):
    """(y, mean, inv_std): y = gamma x_hat + beta with each image's groups of channels normalised
    by their own mean and variance, and those statistics as (N, groups) float64 arrays (the mean
    and 1 / sqrt(variance + eps)) for the backward. y is channels last in memory.

    The sums are shifted as batch_statistics's are, by each image's first value of each group."""
    x_rows = _rows(x)
    images, size = x.shape[0], x.shape[1] // groups
    per_image = x_rows.shape[0] // images
    shift = x_rows[::per_image, ::size].astype(np.float64)  # (N, groups): each image's first value of each group
    total, squares = _sums_per_block(_block_sums, images, x_rows.shape, x_rows, _each_channel(shift, size))  # one block per image
    count = per_image * size  # values per group
    mean_d = _group_sums(total, groups) / count
    var = np.maximum(_group_sums(squares, groups) / count - mean_d**2, 0.0)
    mean, inv_std = shift + mean_d, 1.0 / np.sqrt(var + eps)
    y = np.empty_like(x_rows)
    scale = _each_channel(inv_std, size) * gamma
    _blockwise(_normalize, BLOCKS, x_rows, _each_channel(mean, size), scale, np.asarray(beta, dtype=np.float64), 1.0, y)
    return _like(y, x), mean, inv_std


def group_norm_backward(grad_y, x, mean, inv_std, gamma, groups: int):
    """(grad_x, grad_gamma, grad_beta) of `group_norm`, from the gradient of its output and the
    statistics it returned. With no activation (slope 1) the kernels' mask is 1 everywhere, so
    x's rows, which they read anyway, stand in for the output's."""
    x_rows, grad_rows = _rows(x), _rows(grad_y)
    images, size = x.shape[0], x.shape[1] // groups
    count = x_rows.shape[0] // images * size
    mean_c, inv_std_c = _each_channel(mean, size), _each_channel(inv_std, size)
    # per image and channel: the sums of grad_y and of grad_y x_hat over the positions
    sums_g, sums_g_xhat = _sums_per_block(_backward_sums, images, x_rows.shape, grad_rows, x_rows, x_rows, mean_c, inv_std_c, 1.0)
    mean_gamma_g = _group_sums(gamma * sums_g, groups) / count  # <gamma grad_y> per image and group
    mean_gamma_g_xhat = _group_sums(gamma * sums_g_xhat, groups) / count
    grad_x = np.empty_like(x_rows)
    a, b = _each_channel(inv_std * mean_gamma_g, size), _each_channel(inv_std * mean_gamma_g_xhat, size)
    _blockwise(_backward_apply, BLOCKS, grad_rows, x_rows, x_rows, mean_c, inv_std_c, 1.0, gamma * inv_std_c, a, b, grad_x)
    return _like(grad_x, x), sums_g_xhat.sum(axis=0).astype(gamma.dtype), sums_g.sum(axis=0).astype(gamma.dtype)


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


def group_norm_reference(x, groups: int, gamma, beta, eps: float) -> np.ndarray:
    """The formulas above, one NumPy operation each: statistics over each image's groups."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    grouped = x.reshape(x.shape[0], groups, -1)
    x_hat = (grouped - grouped.mean(axis=2, keepdims=True)) / np.sqrt(grouped.var(axis=2, keepdims=True) + eps)
    return gamma.reshape(shape) * x_hat.reshape(x.shape) + beta.reshape(shape)


def group_norm_backward_reference(grad_y, x, groups: int, gamma, eps: float):
    """(grad_x, grad_gamma, grad_beta), one NumPy operation each."""
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    grouped = x.reshape(x.shape[0], groups, -1)
    inv_std = 1.0 / np.sqrt(grouped.var(axis=2, keepdims=True) + eps)
    x_hat = (grouped - grouped.mean(axis=2, keepdims=True)) * inv_std
    g = (gamma.reshape(shape) * grad_y).reshape(x_hat.shape)  # the gradient of x_hat
    mean = lambda a: a.mean(axis=2, keepdims=True)  # noqa: E731
    grad_x = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
    return grad_x.reshape(x.shape), (grad_y * x_hat.reshape(x.shape)).sum(axis=axes), grad_y.sum(axis=axes)
