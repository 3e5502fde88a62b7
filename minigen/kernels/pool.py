r"""Average pooling and nearest-neighbour upsampling (NCHW; upsampling channels last too), each
with its adjoint.

Average pooling with kernel $k$, stride $s$ and zero padding $p$ (the padding counts in the
average, PyTorch's default `count_include_pad=True`):

$$y_{n,c,h,w} = \frac{1}{k_h k_w} \sum_{i<k_h,\, j<k_w} x^{\text{pad}}_{n,c,\,h s + i,\, w s + j}.$$

Nearest-neighbour upsampling by integer factors $(f_h, f_w)$ repeats each pixel into an
$f_h \times f_w$ block: $y_{n,c,h,w} = x_{n,c,\lfloor h/f_h\rfloor,\lfloor w/f_w\rfloor}$.

Each operation is linear, so its gradient is its adjoint (transpose): the adjoint of
pooling spreads each output gradient evenly back over its window; the adjoint of upsampling
sums each block. The Numba kernels work one (n, c) image at a time; the NumPy twins below
them are the definitions the tests compare against. Only the upsampling adjoint, whose sums
gain from a second core, runs on every core: the other three copy or add what they read and
are bound by memory, so on one core they run as fast (faster on a U-Net's small images, where
starting a parallel loop costs more than it saves; measured in benchmarks/README.md) and
compile in a fraction of the time.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit, prange

Pair = tuple[int, int]


@njit(cache=True)
def _avg_pool2d(x, kh, kw, sh, sw, ph, pw, y):
    batch, channels, height, width = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    scale = 1.0 / (kh * kw)
    for n in range(batch):
        for c in range(channels):
            for ho in range(out_h):
                for wo in range(out_w):
                    total = 0.0
                    for i in range(kh):
                        h = ho * sh + i - ph
                        if 0 <= h < height:
                            for j in range(kw):
                                w = wo * sw + j - pw
                                if 0 <= w < width:
                                    total += x[n, c, h, w]
                    y[n, c, ho, wo] = total * scale


@njit(cache=True)
def _avg_pool2d_adjoint(grad_y, kh, kw, sh, sw, ph, pw, grad_x):
    batch, channels, height, width = grad_x.shape
    out_h, out_w = grad_y.shape[2], grad_y.shape[3]
    scale = 1.0 / (kh * kw)
    for n in range(batch):
        for c in range(channels):
            for h in range(height):
                for w in range(width):
                    grad_x[n, c, h, w] = 0.0
            for ho in range(out_h):
                for wo in range(out_w):
                    share = grad_y[n, c, ho, wo] * scale
                    for i in range(kh):
                        h = ho * sh + i - ph
                        if 0 <= h < height:
                            for j in range(kw):
                                w = wo * sw + j - pw
                                if 0 <= w < width:
                                    grad_x[n, c, h, w] += share


@njit(cache=True)
def _upsample_nearest2d(x, fh, fw, y):
    """Each pixel of x written to its fh x fw block of y. (Reading y[h, w] = x[h // fh, w // fw]
    instead runs as fast but takes LLVM three times as long to compile.)"""
    batch, channels, height, width = x.shape
    for n in range(batch):
        for c in range(channels):
            for h in range(height):
                for i in range(fh):
                    row = y[n, c, h * fh + i]
                    for w in range(width):
                        value = x[n, c, h, w]
                        for j in range(fw):
                            row[w * fw + j] = value


@njit(parallel=True, cache=True)
def _upsample_nearest2d_adjoint(grad_y, fh, fw, grad_x):
    """Each row of grad_x the sum of its fh rows of grad_y, each of those summed in blocks of fw.
    (Summing each fh x fw block into one pixel at a time runs as fast but takes twice as long to
    compile.)"""
    batch, channels, height, width = grad_x.shape
    for plane in prange(batch * channels):
        n = plane // channels
        c = plane % channels
        for h in range(height):
            out = grad_x[n, c, h]
            out[:] = 0.0
            for i in range(fh):
                row = grad_y[n, c, h * fh + i]
                for w in range(width):
                    for j in range(fw):
                        out[w] += row[w * fw + j]


def avg_pool2d(x, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    y = np.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
    _avg_pool2d(np.ascontiguousarray(x), *kernel, *stride, *padding, y)
    return y


def avg_pool2d_adjoint(grad_y, x_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    grad_x = np.empty((*grad_y.shape[:2], *x_hw), dtype=grad_y.dtype)
    _avg_pool2d_adjoint(np.ascontiguousarray(grad_y), *kernel, *stride, *padding, grad_x)
    return grad_x


def _channels_last_rows(x: np.ndarray) -> np.ndarray | None:
    """The (N, H, W, C) view of x when its memory is channels last (a convolution's output), else None."""
    rows = x.transpose(0, 2, 3, 1)
    return rows if rows.flags.c_contiguous else None


# A channels-last image (what the convolutions write) is upsampled and summed as it is laid
# out, by NumPy: each pixel's C channels are one run to copy or add, and the next convolution
# reads the result without a copy. The kernels above would first copy it to NCHW memory, and
# the convolution after them back.


def upsample_nearest2d(x, factor: Pair) -> np.ndarray:
    """y, laid out channels last when x is, else NCHW."""
    rows = _channels_last_rows(x)
    if rows is not None:
        (n, h, w, c), (fh, fw) = rows.shape, factor
        repeated = np.broadcast_to(rows[:, :, None, :, None, :], (n, h, fh, w, fw, c))  # a view: no copy yet
        return repeated.reshape(n, h * fh, w * fw, c).transpose(0, 3, 1, 2)  # one copy
    y = np.empty((*x.shape[:2], x.shape[2] * factor[0], x.shape[3] * factor[1]), dtype=x.dtype)
    _upsample_nearest2d(np.ascontiguousarray(x), *factor, y)
    return y


def upsample_nearest2d_adjoint(grad_y, factor: Pair) -> np.ndarray:
    """The sum of each block of grad_y, laid out channels last when grad_y is, else NCHW."""
    n, c, h, w = grad_y.shape
    rows = _channels_last_rows(grad_y)
    if rows is not None:
        return rows.reshape(n, h // factor[0], factor[0], w // factor[1], factor[1], c).sum(axis=(2, 4)).transpose(0, 3, 1, 2)
    grad_x = np.empty((n, c, h // factor[0], w // factor[1]), dtype=grad_y.dtype)
    _upsample_nearest2d_adjoint(np.ascontiguousarray(grad_y), *factor, grad_x)
    return grad_x


# --- the NumPy twins ---------------------------------------------------------------------------


def avg_pool2d_reference(x, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    """The mean of the k_h x k_w window of the zero-padded x under each output pixel."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    y = np.zeros((*x.shape[:2], *out_hw), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y += xp[:, :, i : i + stride[0] * (out_hw[0] - 1) + 1 : stride[0], j : j + stride[1] * (out_hw[1] - 1) + 1 : stride[1]]
    return y / (kernel[0] * kernel[1])


def avg_pool2d_adjoint_reference(grad_y, x_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """Each output gradient, divided by the window size, added back over its window."""
    out_h, out_w = grad_y.shape[2:]
    full = [max(x_hw[a] + 2 * padding[a], stride[a] * ((out_h, out_w)[a] - 1) + kernel[a]) for a in (0, 1)]
    grad_xp = np.zeros((*grad_y.shape[:2], *full), dtype=grad_y.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            grad_xp[:, :, i : i + stride[0] * (out_h - 1) + 1 : stride[0], j : j + stride[1] * (out_w - 1) + 1 : stride[1]] += grad_y
    grad_xp /= kernel[0] * kernel[1]
    return grad_xp[:, :, padding[0] : padding[0] + x_hw[0], padding[1] : padding[1] + x_hw[1]].copy()


def upsample_nearest2d_reference(x, factor: Pair) -> np.ndarray:
    return x.repeat(factor[0], axis=2).repeat(factor[1], axis=3)


def upsample_nearest2d_adjoint_reference(grad_y, factor: Pair) -> np.ndarray:
    n, c, h, w = grad_y.shape
    return grad_y.reshape(n, c, h // factor[0], factor[0], w // factor[1], factor[1]).sum(axis=(3, 5))
