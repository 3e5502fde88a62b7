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
transposed convolution multiplies first and adds the columns back into the image (col2im).
Inside, the kernels hold images channels last and build that matrix transposed (see below).
"""

from __future__ import annotations

import itertools

import numpy as np

from ._numba import njit, scratch
from .threads import batch_chunks, map_chunks

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (the formula above)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    """Output length of a transposed convolution: the input length of the convolution it undoes.

    Several input lengths give the same convolution output (the floor above); output_padding
    picks which one, as in PyTorch."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


# --- im2col and col2im (Numba), channels last ------------------------------------------------
#
# The kernels keep images channels last, (N, H, W, C), as PyTorch's `channels_last` memory
# format does: the C values of one pixel are one contiguous run. The column matrix is then the
# textbook's transposed, one row per output position (n, h, w) and one column per (i, j, c),
# so each kernel offset's C channels are one contiguous copy, and the GEMM's product,
# (N H W, O), is already the next layer's channels-last image: no reordering between layers.
# The public API stays NCHW: a result is an (N, C, H, W) view of channels-last memory, and an
# input in NCHW memory is copied channels last a chunk of images at a time, by the thread that
# reads it (`chunk_channels_last`).


def channels_last(x: np.ndarray) -> np.ndarray:
    """The (N, H, W, C) contiguous array of an (N, C, H, W) image batch: a view when x's memory
    is channels last already (a kernel's output), else a copy."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def chunk_channels_last(name: str, x: np.ndarray, part: slice) -> np.ndarray:
    """Images `part` of the (N, C, H, W) batch x as an (n, H, W, C) contiguous array: a view when
    x's memory is channels last already, else a copy in this thread's scratch `name`. The
    chunk threads copy their own images so, just before reading them: the copy runs on every
    core and stays in the reader's cache (a copy of the whole batch first ran on one thread and
    went through main memory)."""
    images = x[part].transpose(0, 2, 3, 1)
    if images.flags.c_contiguous:
        return images
    copy = scratch(name, images.shape, x.dtype)
    np.copyto(copy, images)
    return copy


def _as_nchw(x: np.ndarray) -> np.ndarray:
    """The (N, C, H, W) view of a channels-last (N, H, W, C) array."""
    return x.transpose(0, 3, 1, 2)


@njit(nogil=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols):
    """cols[(n, h, w), (i, j, c)] = x_pad[n, h*sh + i*dh - ph, w*sw + j*dw - pw, c] for a channels-last
    x (0 in the padding).

    Row (n, h, w) of cols is the receptive field of output position (h, w) of image n, kernel
    offset by kernel offset, each offset's C channels copied as one run. One thread's work
    (nogil: the threads of `map_chunks` run it on their chunks of images side by side).
    """
    batch, height, width, channels = x.shape
    for nh in range(batch * out_h):
        n, h = nh // out_h, nh % out_h
        for w in range(out_w):
            row = cols[nh * out_w + w]
            for i in range(kh):
                top = h * sh + i * dh - ph
                for j in range(kw):
                    left = w * sw + j * dw - pw
                    start = (i * kw + j) * channels
                    if 0 <= top < height and 0 <= left < width:
                        pixel = x[n, top, left]
                        for c in range(channels):
                            row[start + c] = pixel[c]
                    else:  # the window reads the zero padding
                        for c in range(channels):
                            row[start + c] = 0.0


def _readers(size: int, kernel: int, stride: int, padding: int, dilation: int, out_size: int) -> np.ndarray:
    """readers[t, i] = the output position o whose kernel offset i reads input position t, that
    is t = o * stride + i * dilation - padding; -1 where none does. Shape (size, kernel)."""
    t, i = np.arange(size)[:, None], np.arange(kernel)[None, :]
    o, rest = np.divmod(t + padding - i * dilation, stride)
    return np.where((rest == 0) & (0 <= o) & (o < out_size), o, -1)


@njit(nogil=True, cache=True)
def _col2im(cols, row_readers, column_readers, out_h, out_w, bias, x):
    """The adjoint of _im2col: x[n, top, left, c] = bias[c] + the sum of the cols entries _im2col
    copied it to (bias 0 for the adjoint itself; a transposed convolution's bias for free).

    Gathered pixel by pixel: the pixel (top, left) was copied to output position (h, w) at kernel
    offset (i, j) where h = row_readers[top, i] and w = column_readers[left, j] (`_readers` of
    the geometry). One thread's work, as _im2col's.
    """
    batch, height, width, channels = x.shape
    kh, kw = row_readers.shape[1], column_readers.shape[1]
    for nt in range(batch * height):
        n, top = nt // height, nt % height
        for left in range(width):
            for c in range(channels):
                x[n, top, left, c] = bias[c]
            for i in range(kh):
                h = row_readers[top, i]
                if h < 0:
                    continue
                for j in range(kw):
                    w = column_readers[left, j]
                    if w < 0:
                        continue
                    row, start = (n * out_h + h) * out_w + w, (i * kw + j) * channels
                    for c in range(channels):
                        x[n, top, left, c] += cols[row, start + c]


def _readers_of(x_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair):
    """The row and column `_readers` of a geometry, for _col2im."""
    return tuple(_readers(x_hw[a], kernel[a], stride[a], padding[a], dilation[a], out_hw[a]) for a in (0, 1))


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The textbook's (C kh kw, N H_out W_out) matrix of receptive fields (notebook 3; the twin
    `im2col_reference`), as a new array: the kernel's channels-last matrix, transposed."""
    channels = x.shape[1]
    rows = _im2col_rows(channels_last(x), kernel, stride, padding, dilation, out_hw)
    return np.ascontiguousarray(rows.reshape(-1, *kernel, channels).transpose(3, 1, 2, 0)).reshape(channels * kernel[0] * kernel[1], -1)


def col2im(cols: np.ndarray, x_shape, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The (N, C, H, W) image whose every pixel is the sum of the entries of the textbook's `cols`
    that im2col would have copied it to (the adjoint of im2col), as a new array."""
    batch, channels, height, width = x_shape
    rows = np.ascontiguousarray(cols.reshape(channels, *kernel, -1).transpose(3, 1, 2, 0)).reshape(-1, channels * kernel[0] * kernel[1])
    x = np.empty((batch, height, width, channels), dtype=cols.dtype)
    _col2im(rows, *_readers_of((height, width), kernel, stride, padding, dilation, out_hw), *out_hw, np.zeros(channels, cols.dtype), x)
    return _as_nchw(x)


def _im2col_rows(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair, out=None) -> np.ndarray:
    """The (N H_out W_out, kh kw C) column matrix of a channels-last batch x, in `out` or a new array."""
    if out is None:
        out = np.empty((x.shape[0] * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * x.shape[3]), dtype=x.dtype)
    _im2col(x, *kernel, *stride, *padding, *dilation, *out_hw, out)
    return out


# The fast operations work through the batch a few images at a time, each chunk on one of
# minigen's threads (`threads.map_chunks`): copying its receptive fields, multiplying and
# writing its output, so that the chunk's column matrix stays in the cache of the core that
# wrote it until the GEMM has read it. 2 MB measured best of 1, 2, 4 and 16 MB (by a little;
# benchmarks/README.md, "Threads").
CHUNK_BYTES = 2 << 20

# A convolution's forward may keep its column matrices for the weight gradient, which reads
# the same ones: one im2col fewer per layer and step, for this much memory at most per layer
# (above it, the backward copies them again).
KEEP_COLUMNS_BYTES = 64 << 20


def _chunks(batch: int, bytes_per_image: int) -> list[slice]:
    """The chunks of the batch (`threads.batch_chunks`), each with at most about CHUNK_BYTES of
    column matrix."""
    return batch_chunks(batch, bytes_per_image, CHUNK_BYTES)


def _pixels(part: slice, hw: Pair) -> slice:
    """The rows of a (N H W, ...) matrix that belong to the images in `part`."""
    return slice(part.start * hw[0] * hw[1], part.stop * hw[0] * hw[1])


def column_bytes(x_shape, kernel: Pair, out_hw: Pair, itemsize: int) -> int:
    """The size of the whole column matrix of a batch."""
    return x_shape[0] * x_shape[1] * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * itemsize


def columns(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> list[np.ndarray]:
    """The channels-last column matrices of `x`, chunk by chunk (the chunks of conv2d and
    conv2d_weight_grad), as new arrays that either can be given instead of copying the
    receptive fields again."""

    def chunk(part):
        return _im2col_rows(chunk_channels_last("images", x, part), kernel, stride, padding, dilation, out_hw)

    return map_chunks(chunk, _chunks(x.shape[0], column_bytes((1, x.shape[1]), kernel, out_hw, x.itemsize)))


def _columns_of_chunk(x, part, k: int, kept, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair, keep=False):
    """The column matrix of the k-th chunk (images `part`) of the batch x: the kept one, or
    copied now, into this thread's scratch (or, to `keep`, into a new array)."""
    if kept is not None:
        return kept[k]
    rows = (part.stop - part.start) * out_hw[0] * out_hw[1]
    cols = None if keep else scratch("cols", (rows, kernel[0] * kernel[1] * x.shape[1]), x.dtype)
    return _im2col_rows(chunk_channels_last("images", x, part), kernel, stride, padding, dilation, out_hw, out=cols)


def _weight_rows(weight: np.ndarray) -> np.ndarray:
    """A (A, B, kh, kw) weight as the (A, kh kw B) matrix whose columns follow the column
    matrix's (i, j, c) order."""
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(weight.shape[0], -1)


def conv2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair, kept=None) -> np.ndarray:
    """y = conv(x, W) + b: per chunk of images, im2col (or the `kept` columns of x) then one GEMM
    whose product is y's channels-last rows. `out_hw` may crop the natural output."""
    return _conv2d(x, weight, bias, stride, padding, dilation, out_hw, kept, keep=False)[0]


def conv2d_keeping_columns(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair):
    """(y, columns): `conv2d`, and the column matrices of its chunks as new arrays, which the
    weight gradient can be given (`kept`). Each chunk's are multiplied by the thread that
    copied them, while they are in its core's cache."""
    return _conv2d(x, weight, bias, stride, padding, dilation, out_hw, None, keep=True)


def _conv2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair, kept, keep: bool):
    batch, channels = x.shape[:2]
    out_channels, _, kh, kw = weight.shape
    w_rows = _weight_rows(weight)
    y = np.empty((batch, *out_hw, out_channels), dtype=weight.dtype)
    y_rows = y.reshape(-1, out_channels)

    def chunk(k_part):
        k, part = k_part
        cols = _columns_of_chunk(x, part, k, kept, (kh, kw), stride, padding, dilation, out_hw, keep)
        y_chunk = np.matmul(cols, w_rows.T, out=y_rows[_pixels(part, out_hw)])
        if bias is not None:
            y_chunk += bias  # while the chunk's rows are in this core's cache
        return cols if keep else None

    columns = map_chunks(chunk, list(enumerate(_chunks(batch, column_bytes((1, channels), (kh, kw), out_hw, weight.itemsize)))))
    return _as_nchw(y), (columns if keep else None)


def conv_transpose2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """y = conv^T(x, W) + b for W of shape (in, out, kh, kw): per chunk, one GEMM of x's channels-last
    rows, then col2im, which starts each pixel from the bias."""
    batch, in_channels, height, width = x.shape
    _, out_channels, kh, kw = weight.shape
    w_rows = _weight_rows(weight)  # (in, kh kw out)
    y = np.empty((batch, *out_hw, out_channels), dtype=x.dtype)
    readers = _readers_of(out_hw, (kh, kw), stride, padding, dilation, (height, width))
    bias = np.zeros(out_channels, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)

    def chunk(part):
        x_rows = chunk_channels_last("images", x, part).reshape(-1, in_channels)
        product = scratch("gemm", (x_rows.shape[0], w_rows.shape[1]), x.dtype)
        np.matmul(x_rows, w_rows, out=product)
        _col2im(product, *readers, height, width, bias, y[part])  # adds the bias as it writes y

    map_chunks(chunk, _chunks(batch, column_bytes((1, out_channels), (kh, kw), (height, width), x.itemsize)))
    return _as_nchw(y)


def conv2d_weight_grad(x, grad_y, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, kept=None) -> np.ndarray:
    """dL/dW[o, c, i, j] = sum over n, h, w of grad_y[n, o, h, w] x_pad[n, c, h s + i d, w s + j d]:
    per chunk, grad_y's channels-last rows (transposed) times the columns of x (copied now, or
    `kept` by the forward); the chunks' products are added in their order.

    At stride 1 the sum pairs the same pixels of x and grad_y if grad_y is seen as the input
    and x as the output gradient, with the `turned` geometry: then the columns copied are
    grad_y's, 9 C_out values per pixel (3x3) instead of 9 C_in. So with fewer output than
    input channels, and nothing kept, it is computed that way (48 -> 16 at 28x28, batch 128:
    17.5 against 25.0 ms; 16 -> 1: 4.1 against 8.5 ms; benchmarks/README.md)."""
    if kept is None and grad_y.shape[1] < x.shape[1] and has_turned(kernel, stride, padding, dilation):
        # (grad_y has fewer channels: the call cannot swap back)
        return turned(conv2d_weight_grad(grad_y, x, kernel, stride, turned_padding(kernel, padding, dilation), dilation))
    batch, channels = x.shape[:2]
    out_channels, out_hw = grad_y.shape[1], grad_y.shape[2:]

    def chunk(k_part):
        k, part = k_part
        cols = _columns_of_chunk(x, part, k, kept, kernel, stride, padding, dilation, out_hw)
        return chunk_channels_last("gradient", grad_y, part).reshape(-1, out_channels).T @ cols

    grad_w = np.zeros((out_channels, kernel[0] * kernel[1] * channels), dtype=grad_y.dtype)
    for product in map_chunks(chunk, list(enumerate(_chunks(batch, column_bytes((1, channels), kernel, out_hw, grad_y.itemsize))))):
        grad_w += product
    return np.ascontiguousarray(grad_w.reshape(out_channels, *kernel, channels).transpose(0, 3, 1, 2))


def bias_grad(grad_y: np.ndarray) -> np.ndarray:
    """dL/db[o] = the sum of grad_y[n, o, h, w] over n, h and w (the twin: `grad_y.sum(axis=(0, 2, 3))`),
    as a matrix-vector product with a vector of ones: BLAS sums a (pixels, C) channels-last
    matrix (or the (N C, H W) rows of an NCHW one) 5-12 times faster than NumPy's sum over
    three axes, and in float32 more precisely, in blocks rather than one running total per
    channel."""
    batch, channels = grad_y.shape[:2]
    rows = grad_y.transpose(0, 2, 3, 1)
    if rows.flags.c_contiguous:  # channels last in memory: (N H W, C)
        rows = rows.reshape(-1, channels)
        return np.ones(rows.shape[0], dtype=grad_y.dtype) @ rows
    planes = np.ascontiguousarray(grad_y).reshape(batch * channels, -1)  # (N C, H W)
    return (planes @ np.ones(planes.shape[1], dtype=grad_y.dtype)).reshape(batch, channels).sum(axis=0)


# --- at stride 1 a convolution is a transposed convolution, and the other way round ------------


def turned(weight: np.ndarray) -> np.ndarray:
    """W turned by 180 degrees with its two channel axes swapped: a convolution's (out, in, kh, kw)
    weight as the (in, out, kh, kw) weight of the transposed convolution that computes the same
    map at stride 1 (`turned_padding`), and a transposed convolution's as a convolution's.

    Why: y[h] = sum over i of W[i] x[h + i d - p] reads, for each output, the inputs at
    offsets -p .. d (k - 1) - p; a transposed convolution with padding p' spreads x[h] to the
    outputs h - p' .. h + d (k - 1) - p', the same offsets walked backwards from the other end.
    So the two meet when p' = d (k - 1) - p and the kernel is walked backwards."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def turned_padding(kernel: Pair, padding: Pair, dilation: Pair) -> Pair:
    """The padding d (k - 1) - p that goes with `turned` (negative when p is larger than the
    dilated kernel: then there is no such operation)."""
    return tuple(d * (k - 1) - p for k, p, d in zip(kernel, padding, dilation))


def has_turned(kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> bool:
    """Whether a layer of this geometry has the `turned` twin: at stride 1, unless the padding
    is larger than the dilated kernel (`turned_padding` would be negative)."""
    return tuple(stride) == (1, 1) and min(turned_padding(kernel, padding, dilation)) >= 0


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
