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

import numpy as np

from ._numba import njit, prange, scratch

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


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols):
    """cols[(c, i, j), (n, h, w)] = x_pad[n, c, h*sh + i*dh, w*sw + j*dw] (0 in the padding)."""
    batch, channels, height, width = x.shape
    pixels = out_h * out_w
    for row in prange(channels * kh * kw):
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        for n in range(batch):
            for ho in range(out_h):
                h = ho * sh + i * dh - ph
                start = n * pixels + ho * out_w
                if h < 0 or h >= height:
                    for wo in range(out_w):
                        cols[row, start + wo] = 0.0
                    continue
                for wo in range(out_w):
                    w = wo * sw + j * dw - pw
                    if 0 <= w < width:
                        cols[row, start + wo] = x[n, c, h, w]
                    else:
                        cols[row, start + wo] = 0.0


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, x):
    """The adjoint of _im2col: x[n, c, h, w] = sum of the cols entries _im2col copied it to."""
    batch, channels, height, width = x.shape
    pixels = out_h * out_w
    for plane in prange(batch * channels):  # one (n, c) image each: no two threads write alike
        n = plane // channels
        c = plane % channels
        for h in range(height):
            for w in range(width):
                x[n, c, h, w] = 0.0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for ho in range(out_h):
                    h = ho * sh + i * dh - ph
                    if h < 0 or h >= height:
                        continue
                    start = n * pixels + ho * out_w
                    for wo in range(out_w):
                        w = wo * sw + j * dw - pw
                        if 0 <= w < width:
                            x[n, c, h, w] += cols[row, start + wo]


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The (C kh kw, N H_out W_out) matrix of receptive fields; a reused scratch buffer."""
    x = np.ascontiguousarray(x)  # one compiled version per dtype, not per memory layout
    batch, channels = x.shape[:2]
    cols = scratch("cols", (channels * kernel[0] * kernel[1], batch * out_hw[0] * out_hw[1]), x.dtype)
    _im2col(x, *kernel, *stride, *padding, *dilation, *out_hw, cols)
    return cols


def col2im(cols: np.ndarray, x_shape, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    x = np.empty(x_shape, dtype=cols.dtype)
    _col2im(cols, *kernel, *stride, *padding, *dilation, *out_hw, x)
    return x


def _channels_first(y: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N H W), the layout of a GEMM result, in a scratch buffer."""
    out = scratch("channels_first", (y.shape[1], y.shape[0], y.shape[2], y.shape[3]), y.dtype)
    np.copyto(out, y.transpose(1, 0, 2, 3))
    return out.reshape(y.shape[1], -1)


def _batch_first(y2: np.ndarray, batch: int, out_hw: Pair, bias) -> np.ndarray:
    """(C, N H W) -> a new (N, C, H, W) array, adding the bias on the way."""
    channels = y2.shape[0]
    y = np.empty((batch, channels, *out_hw), dtype=y2.dtype)
    source = y2.reshape(channels, batch, *out_hw).transpose(1, 0, 2, 3)
    if bias is None:
        np.copyto(y, source)
    else:
        np.add(source, bias.reshape(1, -1, 1, 1), out=y)
    return y


# --- the fast operations ---------------------------------------------------------------------


def conv2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """y = conv(x, W) + b, as im2col then one GEMM. `out_hw` may crop the natural output."""
    out_channels, _, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding, dilation, out_hw)
    product = scratch("gemm", (out_channels, cols.shape[1]), x.dtype)
    np.matmul(weight.reshape(out_channels, -1), cols, out=product)
    return _batch_first(product, x.shape[0], out_hw, bias)


def conv_transpose2d(x, weight, bias, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """y = conv^T(x, W) + b for W of shape (in, out, kh, kw): one GEMM, then col2im."""
    in_channels, out_channels, kh, kw = weight.shape
    x2 = _channels_first(x)
    product = scratch("gemm", (out_channels * kh * kw, x2.shape[1]), x.dtype)
    np.matmul(weight.reshape(in_channels, -1).T, x2, out=product)
    y = col2im(product, (x.shape[0], out_channels, *out_hw), (kh, kw), stride, padding, dilation, x.shape[2:])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv2d_weight_grad(x, grad_y, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """dL/dW[o, c, i, j] = sum over n, h, w of grad_y[n, o, h, w] x_pad[n, c, h s + i d, w s + j d]."""
    cols = im2col(x, kernel, stride, padding, dilation, grad_y.shape[2:])
    grad_y2 = _channels_first(grad_y)
    return (grad_y2 @ cols.T).reshape(grad_y.shape[1], x.shape[1], *kernel)


# --- the NumPy twins: the definitions, and the tests' oracle -----------------------------------


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
