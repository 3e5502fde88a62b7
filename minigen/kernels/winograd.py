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
pixel's channels are one contiguous run, and so is a row of each $V_k$ and $M_k$. An NCHW
input is copied so one chunk of images at a time, by the thread that transforms it.

**The gradients.** With respect to the input: the transposed convolution, which at stride 1
is the convolution of the turned kernel, so Winograd again (`conv_transpose3x3`). With
respect to the weight: a tile of the output is $A^\top M A$ with $M_k = V_k U_k$, so the
gradient with respect to $M$ is $\bar M = A \bar Y A^\top$, with respect to $U_k$ it is
$V_k^\top \bar M_k$ summed over the tiles (16 GEMMs again), and with respect to the filter,
since $U = G g G^\top$, it is $G^\top \bar U G$ (`conv3x3_weight_grad`).

Precision: the transforms add and subtract before multiplying, which can lose a little (more
so for larger tiles, F(4x4, 3x3) and up); for F(2x2, 3x3) the float32 error against the float64
direct convolution is of the order of float32's rounding, as im2col + GEMM's is (notebook 3
measures both; the tests bound it).
"""

from __future__ import annotations

import numpy as np

from ._numba import njit, scratch
from .conv import _as_nchw, chunk_channels_last, turned, turned_padding
from .threads import batch_chunks, map_chunks

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
B_T = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
A_T = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])


# G g G^T as one matrix on the 9 values of g: row 4a + b, column 3i + j holds G[a, i] G[b, j],
# so G_KRON_G @ g.ravel() is (G g G^T).ravel(). For every (out, in) pair of a weight at once it
# is one small GEMM (an einsum over the four indices took 13-19 times as long: 156 against 12 us
# for 32x32 channels, 2.5 against 0.13 ms for 128x128; same numbers).
G_KRON_G = np.kron(G, G)


def filter_transform(weight: np.ndarray) -> np.ndarray:
    """U_k = (G g G^T)_k for every (out, in) pair of a (O, C, 3, 3) weight, as the 16 matrices
    (in, out) the GEMMs take: shape (16, C, O), computed in float64."""
    out_channels, channels = weight.shape[:2]
    g = weight.transpose(1, 0, 2, 3).reshape(channels * out_channels, 9)
    return (G_KRON_G @ g.T).astype(weight.dtype).reshape(16, channels, out_channels)


def filter_gradient(u_bar: np.ndarray, dtype) -> np.ndarray:
    """dL/dg = G^T U-bar G for every (out, in) pair, from the 16 matrices U-bar_k (in, out): the
    adjoint of `filter_transform`, shape (O, C, 3, 3)."""
    channels, out_channels = u_bar.shape[1:]
    g_bar = G_KRON_G.T @ u_bar.reshape(16, channels * out_channels)
    return np.ascontiguousarray(g_bar.astype(dtype).reshape(3, 3, channels, out_channels).transpose(3, 2, 0, 1))


# Each row of B^T is a +1 and one more non-zero: (B^T d)_i = d_p + s d_q, for these (p, q, s)
# (a test checks them against B_T). Its transform then adds two rows instead of four.
B_T_TERMS = np.array([[0, 2], [1, 2], [2, 1], [1, 3]])
B_T_SIGNS = np.array([-1.0, 1.0, -1.0, -1.0], dtype=np.float32)  # float32: times float32 stays float32


@njit(cache=True)
def _a_t(m0, m1, m2, m3):
    """A^T m for a column m of four values."""
    return m0 + m1 + m2, m1 - m2 - m3


def _tile_positions(tiles: int, padding: int, size: int, dtype):
    """The 4 positions (rows, or columns) of each tile in the image, 2 t - padding + k, clamped
    into [0, size), and 1 where the position was inside the image, else 0: (tiles, 4) each."""
    positions = 2 * np.arange(tiles)[:, None] - padding + np.arange(4)
    inside = ((0 <= positions) & (positions < size)).astype(dtype)
    return np.clip(positions, 0, size - 1), inside


@njit(nogil=True, cache=True)
def _input_transform(x, rows, rows_inside, columns, columns_inside, v):
    """v[(i, j), (n, th, tw), c] = (B^T d B)[i, j] (at k = 4 i + j) for the 4x4 tile d of channel c
    of the channels-last image x[n] padded with zeros, whose rows are rows[th] and columns
    columns[tw] (`_tile_positions`); rows of v past the last tile are left alone.

    Tile by tile, one row i of the result at a time, every channel at once: row i of B^T d is
    d_p + s d_q (`B_T_TERMS`, `B_T_SIGNS`), four values t0..t3 (one per column of the tile),
    and row i of B^T d B is B^T (t0, t1, t2, t3). The tile's positions are clamped into the
    image and its pixels in the padding multiplied by 0 (f, g), so the loop over channels has
    no branches. One row at a time, because the loop then writes 4 arrays: writing all 16 at
    once, LLVM did not vectorise it (too many pairs of arrays that might overlap to check)
    and the transform took 2 to 12 times as long. One thread's work (nogil: the threads of
    `map_chunks` run it on their chunks of images side by side)."""
    batch, channels = x.shape[0], x.shape[3]
    tiles_h, tiles_w = rows.shape[0], columns.shape[0]
    for nt in range(batch * tiles_h):
        n, th = nt // tiles_h, nt % tiles_h
        for tw in range(tiles_w):
            tile = nt * tiles_w + tw
            s0, s1, s2, s3 = columns[tw, 0], columns[tw, 1], columns[tw, 2], columns[tw, 3]
            g0, g1, g2, g3 = columns_inside[tw, 0], columns_inside[tw, 1], columns_inside[tw, 2], columns_inside[tw, 3]
            for i in range(4):
                p, q = rows[th, B_T_TERMS[i, 0]], rows[th, B_T_TERMS[i, 1]]
                fp, fq = rows_inside[th, B_T_TERMS[i, 0]], rows_inside[th, B_T_TERMS[i, 1]] * B_T_SIGNS[i]
                for c in range(channels):
                    t0 = x[n, p, s0, c] * (fp * g0) + x[n, q, s0, c] * (fq * g0)
                    t1 = x[n, p, s1, c] * (fp * g1) + x[n, q, s1, c] * (fq * g1)
                    t2 = x[n, p, s2, c] * (fp * g2) + x[n, q, s2, c] * (fq * g2)
                    t3 = x[n, p, s3, c] * (fp * g3) + x[n, q, s3, c] * (fq * g3)
                    v[4 * i, tile, c] = t0 - t2  # B^T (t0, t1, t2, t3), written out
                    v[4 * i + 1, tile, c] = t1 + t2
                    v[4 * i + 2, tile, c] = t2 - t1
                    v[4 * i + 3, tile, c] = t1 - t3


# Row a of A^T M is M_a + s (M_(a+1) + M_(a+2)) with this s, since A^T's rows are (1, 1, 1, 0)
# and (0, 1, -1, -1) (a test checks it against A_T).
A_T_SIGNS = np.array([1.0, -1.0], dtype=np.float32)


@njit(cache=True)
def _a_t_row(m, a, tile, o):
    """Row a of A^T M for channel o of a tile, one value per column of M (whose entry (i, j) is
    m[4 i + j])."""
    k, s = 4 * a, A_T_SIGNS[a]
    return (
        m[k, tile, o] + s * (m[k + 4, tile, o] + m[k + 8, tile, o]),
        m[k + 1, tile, o] + s * (m[k + 5, tile, o] + m[k + 9, tile, o]),
        m[k + 2, tile, o] + s * (m[k + 6, tile, o] + m[k + 10, tile, o]),
        m[k + 3, tile, o] + s * (m[k + 7, tile, o] + m[k + 11, tile, o]),
    )


@njit(nogil=True, cache=True)
def _output_transform(m, bias, tiles_h, tiles_w, y):
    """y[n, 2 th + a, 2 tw + b, o] = (A^T M A)[a, b] + bias[o] for the tile (n, th, tw), cropped
    to the channels-last y (rows of m past the last tile are not read).

    Tile by tile, one row a of the output tile at a time, every channel at once: row a of A^T M
    (`_a_t_row`), then A^T of it. Whether the tile's second column is cropped (an odd width) is
    decided outside the loop over channels, which then stores to one or two arrays: with that
    test inside it, and all four outputs of the tile in one loop, it ran 3 times slower. One
    thread's work, as _input_transform's."""
    batch, height, width, channels = y.shape
    for nt in range(batch * tiles_h):
        n, th = nt // tiles_h, nt % tiles_h
        for tw in range(tiles_w):
            tile, left = nt * tiles_w + tw, 2 * tw
            for a in range(min(2, height - 2 * th)):  # the tile's rows of y: one where an odd height crops it
                top = 2 * th + a
                if left + 1 < width:
                    for o in range(channels):
                        y0, y1 = _a_t(*_a_t_row(m, a, tile, o))
                        y[n, top, left, o] = y0 + bias[o]
                        y[n, top, left + 1, o] = y1 + bias[o]
                else:
                    for o in range(channels):
                        y[n, top, left, o] = _a_t(*_a_t_row(m, a, tile, o))[0] + bias[o]


# The rows of A = (A^T)^T, float32 as B_T_SIGNS is: the gradient transform multiplies by them.
A_ROWS = A_T.T.astype(np.float32)


@njit(nogil=True, cache=True)
def _gradient_transform(grad_y, tiles_h, tiles_w, m):
    """m[(i, j), (n, th, tw), o] = (A Y A^T)[i, j] (at k = 4 i + j) for the 2x2 tile Y of channel o
    of the channels-last output gradient grad_y[n] at row 2 th and column 2 tw, 0 past its edge:
    the gradient of the loss with respect to the tile's product M, since the tile of the output
    is A^T M A, linear in M (rows of m past the last tile are left alone).

    Tile by tile, one row i of the result at a time, every channel at once, as _input_transform:
    row i of A Y is t = A[i, 0] Y[0] + A[i, 1] Y[1] (two values, one per column of Y), and row i
    of A Y A^T is A t = (t0, t0 + t1, t0 - t1, -t1). A tile's row or column past the output's
    edge (an odd size) reads the last one and multiplies it by 0. One thread's work."""
    batch, height, width, channels = grad_y.shape
    for nt in range(batch * tiles_h):
        n, th = nt // tiles_h, nt % tiles_h
        top = 2 * th
        below = min(top + 1, height - 1)
        f1 = np.float32(top + 1 < height)  # 1, or 0 where the tile's second row is cropped
        for tw in range(tiles_w):
            tile, left = nt * tiles_w + tw, 2 * tw
            right = min(left + 1, width - 1)
            g1 = np.float32(left + 1 < width)
            for i in range(4):
                a0, a1 = A_ROWS[i, 0], A_ROWS[i, 1] * f1
                for o in range(channels):
                    t0 = a0 * grad_y[n, top, left, o] + a1 * grad_y[n, below, left, o]
                    t1 = (a0 * grad_y[n, top, right, o] + a1 * grad_y[n, below, right, o]) * g1
                    m[4 * i, tile, o] = t0  # A (t0, t1), written out
                    m[4 * i + 1, tile, o] = t0 + t1
                    m[4 * i + 2, tile, o] = t0 - t1
                    m[4 * i + 3, tile, o] = -t1


# Like im2col, the transforms work through the batch a few images at a time, each chunk on one
# of minigen's threads, so that the transformed tiles are still in that core's cache when the
# GEMMs read them: 1 MB, a core's L2 where it was measured (the 32-channel 28x28 layer's
# forward + backward: 20.8-21.8 ms, against 23.1-23.3 with 2 MB and 42.6-43.1 with 4 MB; on a
# machine with 2 MB of L2 per core, 0.5, 1 and 2 MB measured the same; benchmarks/README.md).
CHUNK_BYTES = 1 << 20


def _sixteen_matrices(name: str, tiles: int, channels: int, dtype) -> np.ndarray:
    """This thread's scratch for the 16 matrices (tiles, channels) of a chunk, V_k or M_k, as one
    (16, rows, channels) array whose first `tiles` rows of each are the matrices.

    Usually rows = tiles. But the transforms read or write one row of all 16 at once, and when
    the matrices lie a multiple of 4 KB apart those 16 rows fall in one set of the L1 cache,
    which holds 8 to 12 lines per set on x86 CPUs, so they evict each other: then one row more.
    (Measured, per image: the output transform of 2 images of 16x16 with 128 channels 30
    against 43 us, of 8 images of 28x28 with 32 channels 23 against 33 us, and their 16 GEMMs
    33 against 39 us.)"""
    row_bytes = channels * np.dtype(dtype).itemsize
    rows = tiles + ((tiles * row_bytes) % 4096 == 0 and row_bytes % 4096 != 0)
    return scratch(name, (16, rows, channels), dtype)


def _tiling(x_hw, out_hw, padding, dtype):
    """The output's 2x2 tiles, down and across (the last ones cropped), and the input rows and
    columns each reads (`_tile_positions`)."""
    tiles_h, tiles_w = (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2
    return tiles_h, tiles_w, _tile_positions(tiles_h, padding[0], x_hw[0], dtype), _tile_positions(tiles_w, padding[1], x_hw[1], dtype)


def _chunks(batch: int, tiles_per_image: int, channels: int, itemsize: int) -> list[slice]:
    """The chunks of images the transforms work through: CHUNK_BYTES of the wider of V and M each."""
    return batch_chunks(batch, 16 * tiles_per_image * channels * itemsize, CHUNK_BYTES)


def _input_matrices(x, rows, columns, tiles: int) -> np.ndarray:
    """V for a chunk of channels-last images x: this thread's scratch, filled by the input transform."""
    v = _sixteen_matrices("winograd_v", tiles, x.shape[3], x.dtype)
    _input_transform(x, *rows, *columns, v)
    return v


def conv3x3(x: np.ndarray, weight: np.ndarray, bias, padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """y = conv(x, W) + b for a 3x3 kernel, stride 1, dilation 1: per chunk of images (on
    minigen's threads), input transform, 16 GEMMs, output transform. `out_hw` may crop the natural output (as
    `conv.conv2d`'s does). x may lie in memory in any order; y is channels last."""
    batch, channels = x.shape[:2]
    out_channels = weight.shape[0]
    tiles_h, tiles_w, rows, columns = _tiling(x.shape[2:], out_hw, padding, x.dtype)
    u = filter_transform(weight)
    bias = np.zeros(out_channels, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    y = np.empty((batch, *out_hw, out_channels), dtype=x.dtype)

    def chunk(part):
        tiles = (part.stop - part.start) * tiles_h * tiles_w
        v = _input_matrices(chunk_channels_last("images", x, part), rows, columns, tiles)
        m = _sixteen_matrices("winograd_m", tiles, out_channels, x.dtype)
        np.matmul(v[:, :tiles], u, out=m[:, :tiles])
        _output_transform(m, bias, tiles_h, tiles_w, y[part])

    map_chunks(chunk, _chunks(batch, tiles_h * tiles_w, max(channels, out_channels), x.itemsize))
    return _as_nchw(y)


def conv_transpose3x3(x: np.ndarray, weight: np.ndarray, bias, padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The transposed convolution of a 3x3 kernel, stride 1 (weight (in, out, 3, 3)): the
    convolution with the `turned` kernel, padded by 2 - p."""
    return conv3x3(x, turned(weight), bias, turned_padding((3, 3), padding, (1, 1)), out_hw)


def conv3x3_weight_grad(x: np.ndarray, grad_y: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """dL/dW of `conv3x3` (its float32 layers' weight gradient, shape (out, in, 3, 3)), by the same
    transforms: each output tile is A^T M A with M_k = V_k U_k, so with M-bar = A Y-bar A^T
    (`_gradient_transform`) the gradient of U_k is V_k^T M-bar_k, 16 GEMMs (in, tiles) @ (tiles,
    out) per chunk, the chunks' sums added in their order; and U = G W G^T per (out, in) pair
    (`filter_transform`), so dL/dW = G^T U-bar G. 2.25 times fewer multiplications than
    im2col + GEMM, as the forward; the 16 products are narrow ((in, out) results, summed over
    every tile), which BLAS runs slower per multiplication (benchmarks/README.md measures both)."""
    batch, channels = x.shape[:2]
    out_channels = grad_y.shape[1]
    tiles_h, tiles_w, rows, columns = _tiling(x.shape[2:], grad_y.shape[2:], padding, x.dtype)

    def chunk(part):
        tiles = (part.stop - part.start) * tiles_h * tiles_w
        v = _input_matrices(chunk_channels_last("images", x, part), rows, columns, tiles)
        m_bar = _sixteen_matrices("winograd_m", tiles, out_channels, x.dtype)
        _gradient_transform(chunk_channels_last("gradient", grad_y, part), tiles_h, tiles_w, m_bar)
        return np.matmul(v[:, :tiles].transpose(0, 2, 1), m_bar[:, :tiles])  # U-bar_k: (in, out)

    u_bar = np.zeros((16, channels, out_channels), dtype=x.dtype)
    for part in map_chunks(chunk, _chunks(batch, tiles_h * tiles_w, max(channels, out_channels), x.itemsize)):
        u_bar += part
    return filter_gradient(u_bar, x.dtype)


# Where the transforms cost less than the multiplications they save: (channels, side) for
# layers with at least that many channels (the fewer of in and out) and outputs at least that
# side. Measured, forward against im2col + GEMM, batch 64-128, with both of OpenBLAS's kernels
# (benchmarks/README.md): 32 channels or more 0.53-0.91x the time from 6x6 to 12x12; 16
# channels 0.87-0.97x at 14x14 but 1.02-1.19x at 6x6 and 7x7; 8 channels 1.1-1.3x at 8x8 and
# 14x14, 4 channels 0.97-1.01x at 28x28; below 6x6 mostly ties or losses (4x4 with 64 channels
# or more won, left out for a simpler rule). The weight gradient's transforms, measured
# likewise, win (0.51-0.98x) wherever this rule sends the forward.
SMALLEST = ((32, 6), (16, 14))


def applies(kernel, dtype, stride, dilation, padding, out_hw, channels: int) -> bool:
    """Whether a convolution with this kernel size, dtype and geometry and this many channels
    (the fewer of its input's and output's) should use F(2x2, 3x3), its transpose and its
    weight gradient too (`SMALLEST`).

    Only in float32, where speed is what matters: float64 is what gradient checks and precision
    studies run in, and there the layers take im2col + GEMM (exact to float64's rounding), so no
    Winograd kernel is compiled for float64 at all (about 3 s less of a cold start)."""
    plain_3x3 = tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
    large_enough = any(channels >= fewest and min(out_hw) >= side for fewest, side in SMALLEST)
    return dtype == np.float32 and plain_3x3 and max(padding) <= 2 and large_enough
