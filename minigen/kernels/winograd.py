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
position $(\xi, \nu)$ of the 4x4 grid are a matrix product: $M_{\xi\nu} = U_{\xi\nu} V_{\xi\nu}$
with $U_{\xi\nu} = (G g G^\top)_{\xi\nu}$ of shape (out, in) and $V_{\xi\nu} = (B^\top d B)_{\xi\nu}$
of shape (in, tiles). So a convolution is: transform the input tiles (Numba), 16 GEMMs
(NumPy's BLAS), transform back (Numba). Neighbouring 4x4 tiles overlap by two pixels, as
neighbouring 3x3 windows of two outputs each do.

Precision: the transforms add and subtract before multiplying, which can lose a little (more
so for larger tiles, F(4x4, 3x3) and up); for F(2x2, 3x3) the float32 error against the float64
direct convolution is of the order of float32's rounding, as im2col + GEMM's is (notebook 3
measures both; the tests bound it).
"""

from __future__ import annotations

import numpy as np

from ._numba import bias_or_empty, njit, prange, scratch

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
B_T = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
A_T = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])


def filter_transform(weight: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (out, in) pair of a (O, C, 3, 3) weight: shape (4, 4, O, C)."""
    return np.einsum("ai,ocij,bj->aboc", G, weight, G).astype(weight.dtype)


@njit(parallel=True, cache=True)
def _input_transform(xp, tiles_h, tiles_w, v):
    """v[:, :, c, (n, th, tw)] = B^T d B for the 4x4 tile d of the padded image xp[n, c] whose
    top-left corner is (2 th, 2 tw).

    A row of tiles at a time: first t = B^T d for the four image rows it covers, every column
    at once (neighbouring tiles share two columns, so this is done once for both), then
    t B for each tile, reading t's columns 2 tw ... 2 tw + 3."""
    batch, channels, _, width = xp.shape
    for c in prange(channels):
        t = np.empty((4, width), dtype=xp.dtype)
        for n in range(batch):
            for th in range(tiles_h):
                d = xp[n, c, 2 * th : 2 * th + 4]
                for w in range(width):
                    t[0, w] = d[0, w] - d[2, w]
                    t[1, w] = d[1, w] + d[2, w]
                    t[2, w] = d[2, w] - d[1, w]
                    t[3, w] = d[1, w] - d[3, w]
                first = (n * tiles_h + th) * tiles_w
                for i in range(4):
                    for tw in range(tiles_w):
                        w = 2 * tw
                        v[i, 0, c, first + tw] = t[i, w] - t[i, w + 2]
                        v[i, 1, c, first + tw] = t[i, w + 1] + t[i, w + 2]
                        v[i, 2, c, first + tw] = t[i, w + 2] - t[i, w + 1]
                        v[i, 3, c, first + tw] = t[i, w + 1] - t[i, w + 3]


@njit(parallel=True, cache=True)
def _output_transform(m, bias, tiles_h, tiles_w, y):
    """y[n, o, 2 th + a, 2 tw + b] = (A^T M A)[a, b] (+ bias[o], unless empty), cropped to y.

    A row of tiles at a time: r = A^T M (two rows per tile) for every tile of the row, then
    r A into the two image rows."""
    batch, channels, height, width = y.shape
    for o in prange(channels):
        shift = bias[o] if bias.size else 0.0
        r = np.empty((2, 4, tiles_w), dtype=y.dtype)
        for n in range(batch):
            for th in range(tiles_h):
                first = (n * tiles_h + th) * tiles_w
                for j in range(4):
                    for tw in range(tiles_w):
                        r[0, j, tw] = m[0, j, o, first + tw] + m[1, j, o, first + tw] + m[2, j, o, first + tw]
                        r[1, j, tw] = m[1, j, o, first + tw] - m[2, j, o, first + tw] - m[3, j, o, first + tw]
                for a in range(min(2, height - 2 * th)):
                    row = y[n, o, 2 * th + a]
                    for tw in range(tiles_w):
                        w = 2 * tw
                        row[w] = r[a, 0, tw] + r[a, 1, tw] + r[a, 2, tw] + shift
                        if w + 1 < width:
                            row[w + 1] = r[a, 1, tw] - r[a, 2, tw] - r[a, 3, tw] + shift


# Like im2col, the transforms work through the batch a few images at a time, so that the
# transformed tiles are still in the cache when the GEMMs read them.
CHUNK_BYTES = 4 << 20


def conv3x3(x: np.ndarray, weight: np.ndarray, bias, padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """y = conv(x, W) + b for a 3x3 kernel, stride 1, dilation 1: per chunk of images, input
    transform, 16 GEMMs, output transform. `out_hw` may crop the natural output (as
    `conv.conv2d`'s does)."""
    batch, channels, height, width = x.shape
    out_channels = weight.shape[0]
    tiles_h, tiles_w = (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2
    # zeros around x: the padding, and enough below and to the right for whole 4x4 tiles
    bottom, right = 2 * tiles_h + 2 - height - padding[0], 2 * tiles_w + 2 - width - padding[1]
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0], max(bottom, 0)), (padding[1], max(right, 0))))
    u = filter_transform(weight).reshape(16, out_channels, channels)
    bias = bias_or_empty(bias, x.dtype)
    y = np.empty((batch, out_channels, *out_hw), dtype=x.dtype)
    per_image = 16 * max(channels, out_channels) * tiles_h * tiles_w * x.itemsize
    step = max(1, CHUNK_BYTES // per_image)
    for start in range(0, batch, step):
        part = slice(start, min(start + step, batch))
        tiles = (part.stop - part.start) * tiles_h * tiles_w
        v = scratch("winograd_v", (4, 4, channels, tiles), x.dtype)
        _input_transform(xp[part], tiles_h, tiles_w, v)
        m = scratch("winograd_m", (16, out_channels, tiles), x.dtype)
        np.matmul(u, v.reshape(16, channels, tiles), out=m)
        _output_transform(m.reshape(4, 4, out_channels, tiles), bias, tiles_h, tiles_w, y[part])
    return y


def conv_transpose3x3(x: np.ndarray, weight: np.ndarray, bias, padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The transposed convolution of a 3x3 kernel, stride 1 (weight (in, out, 3, 3)): a
    convolution with the kernel turned by 180 degrees and in/out swapped, padded by 2 - p."""
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return conv3x3(x, flipped, bias, (2 - padding[0], 2 - padding[1]), out_hw)


# Below this output side the transforms cost more than the multiplications they save
# (measured with batch 64: 0.65-0.93x the time of im2col + GEMM at 14x14 and 28x28, 1.4-1.8x
# at 8x8 and 7x7; benchmarks/README.md).
MIN_SIDE = 14


def applies(kernel, stride, dilation, padding, out_hw) -> bool:
    """Whether a convolution of this geometry should use F(2x2, 3x3) (its transpose too)."""
    plain_3x3 = tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
    return plain_3x3 and max(padding) <= 2 and min(out_hw) >= MIN_SIDE
