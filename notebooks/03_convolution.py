# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Convolution, from loops to Numba
#
# A convolution layer slides a small kernel over an image. Written as loops it is six lines
# and hopelessly slow in Python; written as *im2col* plus one matrix product it runs at a good
# fraction of the machine's speed. This notebook goes from one to the other, shows why the
# gradient of a convolution is a *transposed* convolution, and measures the speed-ups here.

# %%
import time

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from minigen import functional as F
from minigen.exercises import check
from minigen.kernels import conv as K

# %% [markdown]
# ## The definition, as loops
#
# For an image $x$ of shape (N, C, H, W) and a weight $W$ of shape (O, C, $k_h$, $k_w$), with
# stride $s$ and zero padding $p$:
#
# $$y_{n,o,h,w} = \sum_{c,i,j} W_{o,c,i,j}\; x^{\text{pad}}_{n,\,c,\,h s + i,\,w s + j},
# \qquad H_\text{out} = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1.$$


# %%
def conv2d_loops(x, w, stride=1, padding=0):
    n_images, channels, height, width = x.shape
    out_channels, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = (height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    y = np.zeros((n_images, out_channels, out_h, out_w))
    for n in range(n_images):
        for o in range(out_channels):
            for h in range(out_h):
                for v in range(out_w):
                    patch = xp[n, :, h * stride : h * stride + kh, v * stride : v * stride + kw]
                    y[n, o, h, v] = np.sum(patch * w[o])
    return y


rng = np.random.default_rng(0)
x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
print("loops agree with minigen:", np.allclose(conv2d_loops(x, w, 2, 1), F.conv2d(mg.Tensor(x), mg.Tensor(w), stride=2, padding=1).numpy()))

# %% [markdown]
# ## im2col: a convolution is a matrix product
#
# Copy the $C k_h k_w$ pixels under each output position into one column of a matrix. With
# all columns side by side, for every image, the whole convolution is
# `W.reshape(O, C*kh*kw) @ cols`: a single matrix product, which BLAS runs near the machine's
# peak. minigen's layout: row $(c, i, j)$, column $(n, h, w)$, both in that order.
#
# **Exercise 3.1 (im2col).** Return `cols` of shape (C·kh·kw, N·H_out·W_out) for an image
# batch `x`, a kernel size `(kh, kw)`, a stride and a padding. Hint: for fixed $(c, i, j)$,
# the pixels for all output positions form one strided slice of the padded image.


# %%
def im2col(x, kernel, stride, padding):
    ### BEGIN SOLUTION
    n_images, channels, height, width = x.shape
    kh, kw = kernel
    out_h, out_w = (height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.zeros((channels * kh * kw, n_images * out_h * out_w))
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                window = xp[:, c, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
                cols[(c * kh + i) * kw + j] = window.reshape(-1)
    return cols
    ### END SOLUTION


# %%
check("ex03_im2col", im2col)

# %% [markdown]
# With the columns, the convolution is one product and a reshape. minigen keeps im2col in
# `minigen/kernels/conv.py` twice: `im2col_reference`, the definition as plain loops over
# every element, and `im2col`, built by a Numba kernel whose matrix goes to NumPy's BLAS. The
# tests check that the two agree exactly. Here both, with every argument named (each is a
# pair: rows, columns; `out_hw` is the output's height and width):

# %%
geometry = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), out_hw=(3, 3))
cols = K.im2col(x, **geometry)
print("Numba im2col equals the loops:", np.array_equal(cols, K.im2col_reference(x, **geometry)))
y = (w.reshape(4, -1) @ cols).reshape(4, 2, 3, 3).transpose(1, 0, 2, 3)
print("im2col + one matrix product agrees with the convolution:", np.allclose(y, conv2d_loops(x, w, 2, 1)))

# %% [markdown]
# The jitted kernel itself builds the same matrix transposed, for images stored *channels
# last*, (N, H, W, C), as PyTorch's `channels_last` memory format stores them: one row per
# output position $(n, h, w)$, one column per $(i, j, c)$. The C channels of a pixel are then
# one contiguous run, copied whole, and the product `cols @ W_rows.T` has one row of O
# channels per output pixel: the next layer's channels-last image, with no reordering in
# between. (`K.im2col` transposes it back to the textbook layout above.) The kernels work
# through a batch a few images at a time, each chunk on one of minigen's threads
# (`minigen/kernels/threads.py`): the chunk's columns are still in the cache of the core that
# copied them when the product reads them. So `K.columns` gives the matrix in blocks of rows.

# %%
import inspect

print(inspect.getsource(getattr(K._im2col, "py_func", K._im2col)))  # py_func: the Python source Numba compiled
rows = np.concatenate(K.columns(x, **geometry))  # the kernel's matrix for x: (N H_out W_out, kh kw C)
textbook = rows.reshape(-1, 3, 3, x.shape[1]).transpose(3, 1, 2, 0).reshape(-1, rows.shape[0])  # rows (c, i, j), columns (n, h, w)
print(f"kernel's matrix {rows.shape}, textbook's {cols.shape}; the same entries:", np.array_equal(textbook, cols))

# %% [markdown]
# ## The gradient of a convolution is a transposed convolution
#
# A convolution is linear in $x$: $y = A x$ for some big sparse matrix $A$. The gradient with
# respect to $x$ is $\bar x = A^\top \bar y$, the *adjoint*, which spreads every output
# gradient back over the pixels it was computed from. That operation is the transposed
# convolution (`conv_transpose2d`), and the defining identity of an adjoint holds:
#
# $$\langle \mathrm{conv}(x, W), y \rangle = \langle x, \mathrm{conv}^\top(y, W) \rangle.$$

# %%
y_probe = rng.standard_normal((2, 4, 3, 3))
left = np.vdot(F.conv2d(mg.Tensor(x), mg.Tensor(w), stride=2, padding=1).numpy(), y_probe)
right = np.vdot(x, F.conv_transpose2d(mg.Tensor(y_probe), mg.Tensor(w), stride=2, padding=1, output_padding=1).numpy())
print(f"<conv(x, W), y> = {left:.10f}\n<x, conv^T(y, W)> = {right:.10f}")

# %% [markdown]
# That is how minigen writes the backward rule of `Conv2d` (`minigen/functional/layers.py`):
# the input gradient is `ConvTranspose2d.apply(grad, weight, ...)`, and the weight gradient
# is `Conv2dWeightGrad`, whose own gradients are again a convolution and a transposed one. So
# gradients of gradients flow through convolutions too (notebook 7 needs that), and
# `gradgradcheck` confirms it:

# %%
small_x, small_w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3))
print(mg.gradgradcheck(lambda a, b: F.conv2d(a, b, stride=2, padding=1), [small_x, small_w]))

# %% [markdown]
# At stride 1 the two are the same kind of operation: a convolution is the transposed
# convolution of its kernel turned by 180 degrees, with the in and out channels swapped
# (`K.turned`) and the padding $d(k-1) - p$ (`K.turned_padding`); each output reads the same
# inputs through the same weights, the kernel walked from the other end. So a stride-1 layer
# may run on either kernel, and minigen's layers pick the one that moves fewer values through
# memory: im2col copies $9 C_\text{in}$ values per output pixel, col2im's product holds
# $9 C_\text{out}$. For a U-Net's first layer (1 channel in, 16 out) im2col is about 8 times
# faster than col2im, and for its last layer (16 in, 1 out) col2im about 2 times faster than
# im2col (`python benchmarks/stride_one.py`). The weight gradient too: it sums products of x's
# pixels and the output gradient's, and at stride 1 it can copy the columns of whichever has
# fewer channels (`K.conv2d_weight_grad`).

# %%
image, kernel_w = rng.standard_normal((2, 1, 9, 9)), rng.standard_normal((16, 1, 3, 3))
as_conv = K.conv2d_reference(image, kernel_w, None, (1, 1), (1, 1), (1, 1), (9, 9))
turned_padding = K.turned_padding((3, 3), (1, 1), (1, 1))
as_transposed = K.conv_transpose2d_reference(image, K.turned(kernel_w), None, (1, 1), turned_padding, (1, 1), (9, 9))
print("largest difference:", np.abs(as_conv - as_transposed).max())

# %% [markdown]
# ## How much faster
#
# The same convolution (a batch of 8 images of 4 channels, 8 output channels, 3x3 kernel)
# three ways, timed here, now: the loops, the NumPy twin (an einsum per kernel offset, the
# readable definition the tests compare against) and the Numba + BLAS kernel.

# %%
x, w = rng.standard_normal((8, 4, 16, 16)).astype(np.float32), rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
geometry, out_hw = ((1, 1), (1, 1), (1, 1)), (16, 16)
ways = {
    "Python loops": lambda: conv2d_loops(x, w, 1, 1),
    "NumPy twin": lambda: K.conv2d_reference(x, w, None, *geometry, out_hw),
    "Numba + BLAS": lambda: K.conv2d(x, w, None, *geometry, out_hw),
}
seconds = {}
for name, run in ways.items():
    run()  # warm up (and compile)
    times = []
    for _ in range(3 if name == "Python loops" else 20):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    seconds[name] = float(np.median(times))
fig = Figure(figsize=(6, 3))
ax = fig.add_subplot()
ax.barh(list(seconds), [1e3 * s for s in seconds.values()])
ax.set_xscale("log")
ax.set_xlabel("milliseconds (median, log scale)")
for i, s in enumerate(seconds.values()):
    ax.text(1e3 * s, i, f"  {seconds['Python loops'] / s:,.0f}x", va="center")
fig.tight_layout()
fig

# %% [markdown]
# The factor printed beside each bar is its speed-up over the loops, measured on this
# machine just now. `python benchmarks/kernels.py` measures the layers of a real DCGAN, against
# PyTorch too; `benchmarks/README.md` explains where the remaining time goes.
#
# To explore further: run a kernel with `NUMBA_DISABLE_JIT=1` set before starting Python, and
# step through `_im2col` in `minigen/kernels/conv.py` with a debugger: the same numbers, slowly.

# %% [markdown]
# ## Fewer multiplications: Winograd's F(2x2, 3x3)
#
# A 3x3 convolution spends 9 multiplications per output pixel and input channel. Winograd's
# minimal filtering (Lavin and Gray, 2015) does better. In one dimension, two outputs of a
# 3-tap filter, $y_0 = d_0 g_0 + d_1 g_1 + d_2 g_2$ and $y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2$,
# need six multiplications written out, but four suffice:
#
# $$m_1 = (d_0 - d_2)\, g_0, \quad m_2 = (d_1 + d_2)\, \tfrac{g_0 + g_1 + g_2}{2}, \quad
# m_3 = (d_2 - d_1)\, \tfrac{g_0 - g_1 + g_2}{2}, \quad m_4 = (d_1 - d_3)\, g_2,$$
# $$y_0 = m_1 + m_2 + m_3, \qquad y_1 = m_2 - m_3 - m_4.$$
#
# The filter's combinations are computed once per filter, and the data's are only additions.
# In matrices, $y = A^\top [(G g) \odot (B^\top d)]$:

# %%
from minigen.kernels import winograd as WG

print("G =", WG.G, "B^T =", WG.B_T, "A^T =", WG.A_T, sep="\n")
d, g = rng.standard_normal(4), rng.standard_normal(3)
print("written out (6 multiplications):", np.array([d[0:3] @ g, d[1:4] @ g]))
print("Winograd    (4 multiplications):", WG.A_T @ ((WG.G @ g) * (WG.B_T @ d)))

# %% [markdown]
# In two dimensions the same along rows and columns: a 4x4 tile $d$ of the image and the
# kernel $g$ give a 2x2 tile of the output, $Y = A^\top [(G g G^\top) \odot (B^\top d B)] A$,
# with 16 multiplications instead of 4 x 9 = 36: 2.25 times fewer. Summed over the input
# channels, the 16 elementwise products become 16 matrix products, one per position of the
# 4x4 grid, so BLAS still does the arithmetic.

# %%
tile, kernel = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
direct = np.array([[np.sum(tile[h : h + 3, w : w + 3] * kernel) for w in range(2)] for h in range(2)])
winograd = WG.A_T @ ((WG.G @ kernel @ WG.G.T) * (WG.B_T @ tile @ WG.B_T.T)) @ WG.A_T.T
print(direct, winograd, f"largest difference {np.abs(direct - winograd).max():.1e}", sep="\n")

# %% [markdown]
# `minigen.kernels.winograd.conv3x3` does this for a whole batch: the input transform in
# Numba, the 16 GEMMs in NumPy, the output transform in Numba. `minigen.functional.conv2d`
# uses it for float32 3x3 stride-1 layers where it was measured faster (`WG.SMALLEST`: at
# least 32 channels and 6x6 outputs, or 16 channels and 14x14) and whose channel counts are
# within a factor 3 of each other (with fewer channels or smaller images the transforms cost
# more than they save; with 1 input channel and 16 outputs its GEMMs are outer products, and
# im2col is 4 times faster; in float64, the dtype of gradient checks, the layers keep to
# im2col + GEMM). Timed here against im2col + GEMM, on a layer of a small U-Net (64 images,
# 32 channels, 28x28), with the error of each against the direct convolution in float64.
# The layer's gradients take the same road: the input's gradient is the convolution of the
# turned kernel (Winograd again), and the weight's multiplies the transformed tiles V_k by
# the transformed output gradient A Y-bar A^T (`WG.conv3x3_weight_grad`: 16 GEMMs, then
# G^T U-bar G).

# %%
x = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
w = (rng.standard_normal((32, 32, 3, 3)) / 17).astype(np.float32)
exact = K.conv2d_reference(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), (1, 1), (28, 28))
for name, run in {
    "im2col + GEMM": lambda: K.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), (28, 28)),
    "Winograd F(2x2, 3x3)": lambda: WG.conv3x3(x, w, None, (1, 1), (28, 28)),
}.items():
    error = np.abs(run() - exact).max()  # also the warm-up
    times = []
    for _ in range(10):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(f"{name:22s} {1e3 * np.median(times):6.1f} ms   largest error {error:.1e}")

# %% [markdown]
# Fewer multiplications do not make it 2.25 times faster: the transforms read and write every
# tile, and at this size a convolution is bound by memory as much as by arithmetic. Precision:
# the transforms add and subtract before multiplying, which can lose a little; measured above,
# both errors are of the order of float32's rounding (each output of im2col + GEMM sums 288
# products, each of Winograd's 32). `benchmarks/README.md` gives the measured figures.
