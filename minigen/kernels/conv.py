r"""2-D convolution and its transpose: fast kernels beside the NumPy twins that define them.

Shapes are NCHW, weights as in PyTorch: a convolution's weight is (out, in, kh, kw), a
transposed convolution's (in, out, kh, kw). With stride $s$, padding $p$ and dilation $d$
(each a pair: rows, columns), a convolution computes

$$y_{n,o,h,w} = b_o + \sum_{c,i,j} W_{o,c,i,j}\; x^{\text{pad}}_{n,\,c,\,h s + i d,\,w s + j d},
\qquad H_\text{out} = \left\lfloor \frac{H + 2p - d(k - 1) - 1}{s} \right\rfloor + 1.$$

The transposed convolution is its adjoint with respect to $x$: it spreads every input pixel
over the positions that pixel would have been read from, so $\langle \mathrm{conv}(x, W), y\rangle
= \langle x, \mathrm{conv}^\top(y, W)\rangle$. The gradient of a convolution with respect to its
input is therefore a transposed convolution, and vice versa.

How the fast kernels work (im2col): copy every receptive field into a column of a matrix
`cols` of shape (C kh kw, N H_out W_out), so the whole convolution becomes one matrix
product `W.reshape(O, -1) @ cols`, done by NumPy's BLAS. The copying runs in Numba; the
transposed convolution multiplies first and scatters the columns back (col2im).
"""

from __future__ import annotations

import itertools

import numpy as np

from ._numba import bias_or_empty, njit, prange, scratch

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (the formula above)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    """Output length of a transposed convolution: the input length of the convolution it undoes.

    Several input lengths give the same convolution output (the floor above); output_padding
    picks which one, as in PyTorch."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


# --- im2col and col2im (Numba) ----------------------------------------------------------------


@njit(cache=True)
def _valid_range(size, out_size, stride, offset):
    """The outputs o in [lo, hi) whose input position o * stride + offset lies inside [0, size);
    the others read the zero padding."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = max(lo, min(out_size, (size - offset + stride - 1) // stride))
    return lo, hi


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols):
    """cols[(c, i, j), (n, h, w)] = x_pad[n, c, h*sh + i*dh, w*sw + j*dw] (0 in the padding).

    Row (c, i, j) of cols holds, for every image n, the H_out x W_out grid of pixels that
    kernel offset (i, j) reads from channel c: one strided slice of x, copied whole.
    """
    batch, channels, height, width = x.shape
    for row in prange(channels * kh * kw):
        c, i, j = row // (kh * kw), (row // kw) % kh, row % kw
        ho_lo, ho_hi = _valid_range(height, out_h, sh, i * dh - ph)
        wo_lo, wo_hi = _valid_range(width, out_w, sw, j * dw - pw)
        grids = cols[row].reshape((batch, out_h, out_w))
        grids[:, :ho_lo, :] = 0.0  # positions that read the zero padding
        grids[:, ho_hi:, :] = 0.0
        grids[:, ho_lo:ho_hi, :wo_lo] = 0.0
        grids[:, ho_lo:ho_hi, wo_hi:] = 0.0
        if ho_hi > ho_lo and wo_hi > wo_lo:
            h0, w0 = ho_lo * sh + i * dh - ph, wo_lo * sw + j * dw - pw  # the first pixel read
            h1, w1 = h0 + (ho_hi - ho_lo - 1) * sh + 1, w0 + (wo_hi - wo_lo - 1) * sw + 1  # one past the last
            grids[:, ho_lo:ho_hi, wo_lo:wo_hi] = x[:, c, h0:h1:sh, w0:w1:sw]


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, x):
    """The adjoint of _im2col: x[n, c, h, w] = the sum of the cols entries _im2col copied it to."""
    batch, channels, height, width = x.shape
    for c in prange(channels):  # each thread owns whole channels: no two threads write alike
        x[:, c] = 0.0
        for i in range(kh):
            ho_lo, ho_hi = _valid_range(height, out_h, sh, i * dh - ph)
            for j in range(kw):
                wo_lo, wo_hi = _valid_range(width, out_w, sw, j * dw - pw)
                grids = cols[(c * kh + i) * kw + j].reshape((batch, out_h, out_w))
                for n in range(batch):
                    image = x[n, c]
                    for ho in range(ho_lo, ho_hi):
                        image_row = image[ho * sh + i * dh - ph]
                        w = wo_lo * sw + j * dw - pw
                        for wo in range(wo_lo, wo_hi):  # a plain loop: a strided slice += allocates here
                            image_row[w] += grids[n, ho, wo]
                            w += sw


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The (C kh kw, N H_out W_out) matrix of receptive fields, as a new array."""
    x = np.ascontiguousarray(x)
    cols = np.empty((x.shape[1] * kernel[0] * kernel[1], x.shape[0] * out_hw[0] * out_hw[1]), dtype=x.dtype)
    _im2col(x, *kernel, *stride, *padding, *dilation, *out_hw, cols)
    return cols


def col2im(cols: np.ndarray, x_shape, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The image of shape `x_shape` whose every pixel is the sum of the `cols` entries im2col
    would have copied it to (the adjoint of im2col), as a new array."""
    x = np.empty(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), *kernel, *stride, *padding, *dilation, *out_hw, x)
    return x


# The fast operations work through the batch a few images at a time, so that each chunk's
# im2col matrix stays in the processor's cache between being written (by Numba) and read
# (by the GEMM): the whole matrix for a batch of 64 can be 50 MB, and streaming it through
# main memory twice costs more than the arithmetic. See benchmarks/README.md.
CHUNK_BYTES = 16 << 20

# A convolution's forward may keep its column matrices for the weight gradient, which reads
# the same ones: one im2col fewer per layer and step, for this much memory at most per layer
# (above it, the backward copies them again).
KEEP_COLUMNS_BYTES = 64 << 20


def _chunks(batch: int, bytes_per_image: int):
    """Slices of the batch, each with about CHUNK_BYTES of im2col matrix (at least one image)."""
    step = max(1, CHUNK_BYTES // max(1, bytes_per_image))
    return [slice(n, min(n + step, batch)) for n in range(0, batch, step)]


def column_bytes(x_shape, kernel: Pair, out_hw: Pair, itemsize: int) -> int:
    """The size of the whole im2col matrix of a batch."""
    return x_shape[0] * x_shape[1] * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * itemsize


def columns(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> list[np.ndarray]:
    """im2col of `x` chunk by chunk (the chunks of conv2d and conv2d_weight_grad), as new arrays
    that either can be given instead of copying the receptive fields again."""
    per_image = column_bytes((1, *x.shape[1:]), kernel, out_hw, x.itemsize)
    return [im2col(x[part], kernel, stride, padding, dilation, out_hw) for part in _chunks(x.shape[0], per_image)]


def _columns_of_chunk(x, part, k: int, kept, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair):
    """The im2col matrix of the k-th chunk of the batch: the kept one, or copied now into scratch."""
    if kept is not None:
        return kept[k]
    rows = x.shape[1] * kernel[0] * kernel[1]
    cols = scratch("cols", (rows, (part.stop - part.start) * out_hw[0] * out_hw[1]), x.dtype)
    _im2col(x[part], *kernel, *stride, *padding, *dilation, *out_hw, cols)
    return cols


def conv2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair, kept=None) -> np.ndarray:
    """y = conv(x, W) + b: per chunk of images, im2col (or the `kept` columns of x) then one GEMM.
    `out_hw` may crop the natural output."""
    x = np.ascontiguousarray(x)
    batch, channels = x.shape[:2]
    out_channels, _, kh, kw = weight.shape
    rows, pixels = channels * kh * kw, out_hw[0] * out_hw[1]
    w2 = np.ascontiguousarray(weight.reshape(out_channels, rows))
    y = np.empty((batch, out_channels, *out_hw), dtype=x.dtype)
    for k, part in enumerate(_chunks(batch, rows * pixels * x.itemsize)):
        cols = _columns_of_chunk(x, part, k, kept, (kh, kw), stride, padding, dilation, out_hw)
        product = scratch("gemm", (out_channels, cols.shape[1]), x.dtype)
        np.matmul(w2, cols, out=product)
        _to_batch_first(product, bias, y[part])
    return y


def conv_transpose2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """y = conv^T(x, W) + b for W of shape (in, out, kh, kw): per chunk, one GEMM then col2im."""
    x = np.ascontiguousarray(x)
    batch, in_channels, height, width = x.shape
    _, out_channels, kh, kw = weight.shape
    rows, pixels = out_channels * kh * kw, height * width
    w2t = np.ascontiguousarray(weight.reshape(in_channels, rows).T)
    y = np.empty((batch, out_channels, *out_hw), dtype=x.dtype)
    for part in _chunks(batch, rows * pixels * x.itemsize):
        images = part.stop - part.start
        x2 = _to_channels_first(x[part])
        product = scratch("gemm", (rows, images * pixels), x.dtype)
        np.matmul(w2t, x2, out=product)
        _col2im(product, kh, kw, *stride, *padding, *dilation, height, width, y[part])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv2d_weight_grad(x, grad_y, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, kept=None) -> np.ndarray:
    """dL/dW[o, c, i, j] = sum over n, h, w of grad_y[n, o, h, w] x_pad[n, c, h s + i d, w s + j d]:
    per chunk, the columns of x (copied now, or `kept` by the forward) times grad_y."""
    x, grad_y = np.ascontiguousarray(x), np.ascontiguousarray(grad_y)
    batch, channels = x.shape[:2]
    out_channels, out_hw = grad_y.shape[1], grad_y.shape[2:]
    rows, pixels = channels * kernel[0] * kernel[1], out_hw[0] * out_hw[1]
    grad_w = np.zeros((out_channels, rows), dtype=x.dtype)
    for k, part in enumerate(_chunks(batch, rows * pixels * x.itemsize)):
        cols = _columns_of_chunk(x, part, k, kept, kernel, stride, padding, dilation, out_hw)
        grad_w += _to_channels_first(grad_y[part]) @ cols.T
    return grad_w.reshape(out_channels, channels, *kernel)


@njit(parallel=True, cache=True)
def _swap_first_two(source, bias, out):
    """out[b, a, k] = source[a, b, k] (+ bias[a], unless `bias` is empty) for 3-D arrays."""
    for b in prange(source.shape[1]):
        for a in range(source.shape[0]):
            shift = bias[a] if bias.size else 0.0
            for k in range(source.shape[2]):
                out[b, a, k] = source[a, b, k] + shift


def _to_channels_first(y: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N H W), the layout of a GEMM operand, in a scratch buffer."""
    batch, channels = y.shape[:2]
    out = scratch("channels_first", (channels, batch, y.shape[2] * y.shape[3]), y.dtype)
    _swap_first_two(np.ascontiguousarray(y).reshape(batch, channels, -1), bias_or_empty(None, y.dtype), out)
    return out.reshape(channels, -1)


def _to_batch_first(product: np.ndarray, bias, out: np.ndarray) -> None:
    """Write a (C, N H W) GEMM result into the (N, C, H, W) array `out`, adding the bias."""
    batch, channels = out.shape[:2]
    source = product.reshape(channels, batch, -1)
    target = out.reshape(batch, channels, -1)  # a view: `out` is a contiguous slice of the batch
    _swap_first_two(source, bias_or_empty(bias, out.dtype), target)


# --- the NumPy twins: the definitions, and the tests' oracle -----------------------------------


def receptive_fields(x_shape, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair):
    """The definition im2col and col2im share, as plain loops: every entry (row, column) of the
    column matrix with the pixel (n, c, top, left) of x it holds. Row (c, i, j) is channel c seen
    at kernel offset (i, j); column (n, h, w) is output position (h, w) of image n; entries that
    fall in the zero padding are left out."""
    batch, channels, height, width = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (out_h, out_w) = kernel, stride, padding, dilation, out_hw
    for c, i, j in itertools.product(range(channels), range(kh), range(kw)):
        for n, h, w in itertools.product(range(batch), range(out_h), range(out_w)):
            top, left = h * sh + i * dh - ph, w * sw + j * dw - pw
            if 0 <= top < height and 0 <= left < width:
                yield (c * kh + i) * kw + j, (n * out_h + h) * out_w + w, (n, c, top, left)


def im2col_reference(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """im2col one entry at a time: copy each pixel to the entries that read it (0 in the padding)."""
    cols = np.zeros((x.shape[1] * kernel[0] * kernel[1], x.shape[0] * out_hw[0] * out_hw[1]), dtype=x.dtype)
    for row, column, pixel in receptive_fields(x.shape, kernel, stride, padding, dilation, out_hw):
        cols[row, column] = x[pixel]
    return cols


def col2im_reference(cols, x_shape, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """col2im one entry at a time: add each entry back to the pixel it was copied from."""
    x = np.zeros(x_shape, dtype=cols.dtype)
    for row, column, pixel in receptive_fields(x_shape, kernel, stride, padding, dilation, out_hw):
        x[pixel] += cols[row, column]
    return x


def _padded(x, padding: Pair):
    return np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))


def _window(xp, i, j, stride: Pair, dilation: Pair, out_hw: Pair):
    """x_pad[:, :, h s + i d, w s + j d] for every output position (h, w): shape (N, C, H_out, W_out)."""
    top, left = i * dilation[0], j * dilation[1]
    return xp[:, :, top : top + stride[0] * (out_hw[0] - 1) + 1 : stride[0], left : left + stride[1] * (out_hw[1] - 1) + 1 : stride[1]]


def conv2d_reference(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """y[n, o] = b[o] + sum over kernel offsets (i, j) of W[o, :, i, j] . (shifted, strided x)."""
    xp = _padded(x, padding)
    y = np.zeros((x.shape[0], weight.shape[0], *out_hw), dtype=x.dtype)
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            y += np.einsum("nchw,oc->nohw", _window(xp, i, j, stride, dilation, out_hw), weight[:, :, i, j])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv_transpose2d_reference(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Scatter: every x[n, c, h, w] adds W[c, o, i, j] x[n, c, h, w] to y_pad[n, o, h s + i d, w s + j d]."""
    batch, _, height, width = x.shape
    _, out_channels, kh, kw = weight.shape
    full = [max(out_hw[a] + 2 * padding[a], (x.shape[2 + a] - 1) * stride[a] + dilation[a] * ((kh, kw)[a] - 1) + 1) for a in (0, 1)]
    yp = np.zeros((batch, out_channels, *full), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = _window(yp, i, j, stride, dilation, (height, width))
            window += np.einsum("nchw,co->nohw", x, weight[:, :, i, j])
    y = yp[:, :, padding[0] : padding[0] + out_hw[0], padding[1] : padding[1] + out_hw[1]].copy()
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv2d_weight_grad_reference(x, grad_y, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """dL/dW[:, :, i, j] = sum over n, h, w of grad_y (outer) the window of x that offset (i, j) read."""
    xp = _padded(x, padding)
    grad_w = np.zeros((grad_y.shape[1], x.shape[1], *kernel), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            grad_w[:, :, i, j] = np.einsum("nohw,nchw->oc", grad_y, _window(xp, i, j, stride, dilation, grad_y.shape[2:]))
    return grad_w
