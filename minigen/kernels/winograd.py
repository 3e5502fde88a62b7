r"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer
multiplications (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).

**In one dimension**, F(2, 3) gives two outputs of a 3-tap correlation,
$y_0 = d_0 g_0 + d_1 g_1 + d_2 g_2$ and $y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2$, from four inputs
with four multiplications instead of six:

$$m_1 = (d_0 - d_2)\, g_0, \quad m_2 = (d_1 + d_2)\, \tfrac{g_0 + g_1 + g_2}{2}, \quad
m_3 = (d_2 - d_1)\, \tfrac{g_0 - g_1 + g_2}{2}, \quad m_4 = (d_1 - d_3)\, g_2,$$
$$y_0 = m_1 + m_2 + m_3, \qquad y_1 = m_2 - m_3 - m_4.$$

(Expand: $m_2 + m_3 = d_1 g_1 + d_2 g_0 + d_2 g_2$, and so on.) In matrices,
$y = A^\top \big[(G g) \odot (B^\top d)\big]$ with $G$, $B^\top$, $A^\top$ below: the filter
goes through $G$ once, the data through $B^\top$ (additions only), they meet in four products,
and $A^\top$ (additions only) makes the outputs.

**In two dimensions** the same applied along rows and columns: a 4x4 tile $d$ of the input and
the 3x3 filter $g$ give a 2x2 tile of the output,

$$Y = A^\top \big[ (G g G^\top) \odot (B^\top d B) \big] A,$$

16 multiplications instead of 36. Summed over the input channels, the 16 products at each
position $k = (\xi, \nu)$ of the 4x4 grid are a matrix product: $M_k = V_k U_k$ with
$V_k = (B^\top d B)_k$ of shape (tiles, in) and $U_k = (G g G^\top)_k$ of shape (in, out). So a
convolution is: transform the input tiles (Numba), 16 GEMMs (NumPy's BLAS), transform back
(Numba). Neighbouring 4x4 tiles overlap by two pixels, as neighbouring 3x3 windows of two
outputs each do. The kernels hold images channels last, as `minigen.kernels.conv`'s do: a
pixel's channels are one contiguous run, and so is a row of each $V_k$ and $M_k$.

Precision: the transforms add and subtract before multiplying, which can lose a little (more
so for larger tiles, F(4x4, 3x3) and up); for F(2x2, 3x3) the float32 error against the float64
direct convolution is of the order of float32's rounding, as im2col + GEMM's is (notebook 3
measures both; the tests bound it).
"""

from __future__ import annotations

import numpy as np

from ._numba import njit, prange, scratch
from .conv import _as_nchw, channels_last

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
B_T = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
A_T = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])


def filter_transform(weight: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (out, in) pair of a (O, C, 3, 3) weight: shape (4, 4, O, C)."""
    return np.einsum("ai,ocij,bj->aboc", G, weight, G).astype(weight.dtype)


@njit(parallel=True, cache=True)
def _input_transform(x, ph, pw, tiles_h, tiles_w, v):
    """v[(i, j), (n, th, tw), c] = (B^T d B)[i, j] (at k = 4 i + j) for the 4x4 tile d of channel c
    of the channels-last image x[n] padded by (ph, pw) zeros, whose top-left corner in the
    padded image is (2 th, 2 tw).

    Tile by tile: copy d (each pixel's C channels as one run, zeros in the padding), then
    t = B^T d and t B, every channel at once."""
    batch, height, width, channels = x.shape
    for nt in prange(batch * tiles_h):
        n, th = nt // tiles_h, nt % tiles_h
        d = np.empty((4, 4, channels), dtype=x.dtype)
        t = np.empty((4, 4, channels), dtype=x.dtype)
        for tw in range(tiles_w):
            for r in range(4):
                top = 2 * th + r - ph
                for s in range(4):
                    left = 2 * tw + s - pw
                    if 0 <= top < height and 0 <= left < width:
                        for c in range(channels):
                            d[r, s, c] = x[n, top, left, c]
                    else:  # the padding
                        for c in range(channels):
                            d[r, s, c] = 0.0
            for s in range(4):
                for c in range(channels):
                    t[0, s, c] = d[0, s, c] - d[2, s, c]
                    t[1, s, c] = d[1, s, c] + d[2, s, c]
                    t[2, s, c] = d[2, s, c] - d[1, s, c]
                    t[3, s, c] = d[1, s, c] - d[3, s, c]
            tile = nt * tiles_w + tw
            for i in range(4):
                for c in range(channels):
                    v[4 * i, tile, c] = t[i, 0, c] - t[i, 2, c]
                    v[4 * i + 1, tile, c] = t[i, 1, c] + t[i, 2, c]
                    v[4 * i + 2, tile, c] = t[i, 2, c] - t[i, 1, c]
                    v[4 * i + 3, tile, c] = t[i, 1, c] - t[i, 3, c]


@njit(parallel=True, cache=True)
def _output_transform(m, bias, tiles_h, tiles_w, y):
    """y[n, 2 th + a, 2 tw + b, o] = (A^T M A)[a, b] + bias[o] for the tile (n, th, tw), cropped
    to the channels-last y.

    Tile by tile: r = A^T M (two rows), then r A, every channel at once."""
    batch, height, width, channels = y.shape
    for nt in prange(batch * tiles_h):
        n, th = nt // tiles_h, nt % tiles_h
        r = np.empty((2, 4, channels), dtype=y.dtype)
        for tw in range(tiles_w):
            tile = nt * tiles_w + tw
            for j in range(4):
                for o in range(channels):
                    r[0, j, o] = m[j, tile, o] + m[4 + j, tile, o] + m[8 + j, tile, o]
                    r[1, j, o] = m[4 + j, tile, o] - m[8 + j, tile, o] - m[12 + j, tile, o]
            for a in range(min(2, height - 2 * th)):
                left = y[n, 2 * th + a, 2 * tw]
                for o in range(channels):
                    left[o] = r[a, 0, o] + r[a, 1, o] + r[a, 2, o] + bias[o]
                if 2 * tw + 1 < width:
                    right = y[n, 2 * th + a, 2 * tw + 1]
                    for o in range(channels):
                        right[o] = r[a, 1, o] - r[a, 2, o] - r[a, 3, o] + bias[o]


# Like im2col, the transforms work through the batch a few images at a time, so that the
# transformed tiles are still in the cache when the GEMMs read them.
CHUNK_BYTES = 4 << 20


def conv3x3(x: np.ndarray, weight: np.ndarray, bias, padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """y = conv(x, W) + b for a 3x3 kernel, stride 1, dilation 1: per chunk of images, input
    transform, 16 GEMMs, output transform. `out_hw` may crop the natural output (as
    `conv.conv2d`'s does). y is channels last in memory."""
    x = channels_last(x)
    batch, channels = x.shape[0], x.shape[3]
    out_channels = weight.shape[0]
    tiles_h, tiles_w = (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2  # 2x2 tiles of the output, the last ones cropped
    u = np.ascontiguousarray(filter_transform(weight).reshape(16, out_channels, channels).transpose(0, 2, 1))  # U_k: (in, out)
    bias = np.zeros(out_channels, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    y = np.empty((batch, *out_hw, out_channels), dtype=x.dtype)
    per_image = 16 * tiles_h * tiles_w * max(channels, out_channels) * x.itemsize
    step = max(1, CHUNK_BYTES // per_image)
    for start in range(0, batch, step):
        part = slice(start, min(start + step, batch))
        tiles = (part.stop - part.start) * tiles_h * tiles_w
        v = scratch("winograd_v", (16, tiles, channels), x.dtype)
        _input_transform(x[part], *padding, tiles_h, tiles_w, v)
        m = scratch("winograd_m", (16, tiles, out_channels), x.dtype)
        np.matmul(v, u, out=m)
        _output_transform(m, bias, tiles_h, tiles_w, y[part])
    return _as_nchw(y)


def conv_transpose3x3(x: np.ndarray, weight: np.ndarray, bias, padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The transposed convolution of a 3x3 kernel, stride 1 (weight (in, out, 3, 3)): a
    convolution with the kernel turned by 180 degrees and in/out swapped, padded by 2 - p."""
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return conv3x3(x, flipped, bias, (2 - padding[0], 2 - padding[1]), out_hw)


# Below this output side the transforms cost more than the multiplications they save
# (measured with batch 64, channels last: 0.77-0.89x the time of im2col + GEMM at 14x14 to
# 28x28, 1.14-2.4x at 8x8 and below; benchmarks/README.md).
MIN_SIDE = 14


def applies(kernel, stride, dilation, padding, out_hw) -> bool:
    """Whether a convolution of this geometry should use F(2x2, 3x3) (its transpose too)."""
    plain_3x3 = tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
    return plain_3x3 and max(padding) <= 2 and min(out_hw) >= MIN_SIDE
