"""Stride-1 3x3 convolutions three ways: which kernel is fastest, and which one the layers pick.

At stride 1 a convolution is the transposed convolution of its turned kernel, so three kernels
compute the same map: im2col (copy 9 C_in values per output pixel, then a GEMM), col2im (a
GEMM of 9 C_out values per pixel, then gather them) and Winograd's F(2x2, 3x3) (transforms of
4 (C_in + C_out) values per pixel around 16 smaller GEMMs). For each layer shape (float32,
channels-last input) it prints the median time of each, interleaved so that the machine's
drift hits all three alike, the fastest, and what `minigen.functional.layers._route` picks
(`CHANNEL_RATIO`; Winograd where `winograd.SMALLEST` says).

    python benchmarks/stride_one.py [--threads 2] [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import minigen as mg
from minigen.functional.layers import _route
from minigen.kernels import conv as K
from minigen.kernels import winograd as W

# in, out, side, batch: the U-Net's first and last layers (1 and 16 channels), its balanced and
# concatenating ones, an RGB model's first and last layers, a few ratios around 3, and small
# images and few channels on either side of `winograd.SMALLEST` (the U-Nets' inner layers)
SHAPES = [
    (1, 16, 28, 128),
    (16, 1, 28, 128),
    (16, 16, 28, 128),
    (16, 48, 28, 128),
    (48, 16, 28, 128),
    (32, 64, 14, 128),
    (64, 32, 14, 128),
    (16, 64, 14, 64),
    (3, 64, 32, 64),
    (64, 3, 32, 64),
    (8, 64, 28, 64),
    (4, 16, 28, 64),
    (8, 8, 14, 128),
    (16, 16, 7, 128),
    (32, 32, 7, 128),
    (32, 32, 8, 64),
    (64, 64, 4, 64),
]


def interleaved_medians(fns, repeats: int) -> list[float]:
    for fn in fns:  # warm-up (and compilation)
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [statistics.median(ts) for ts in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="minigen's threads (default: every core)")
    args = parser.parse_args()
    mg.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    one, pad = (1, 1), (1, 1)
    print(f"threads: {args.threads}; float32, 3x3 kernel, stride 1, padding 1; medians of {args.repeats}, ms")
    header = f"{'layer':<22} {'winograd':>9} {'im2col':>9} {'col2im':>9}   {'fastest':<9} {'picked':<9}"
    print(header)
    print("-" * len(header))
    for c_in, c_out, side, batch in SHAPES:
        x = np.ascontiguousarray(rng.standard_normal((batch, side, side, c_in), dtype=np.float32)).transpose(0, 3, 1, 2)
        w = (0.1 * rng.standard_normal((c_out, c_in, 3, 3))).astype(np.float32)
        turned = K.turned(w)  # conv(x, w) = conv^T(x, turned(w)) at stride 1, padding 2 - 1
        out_hw = (side, side)
        kernels = {
            "winograd": lambda: W.conv3x3(x, w, None, pad, out_hw),
            "im2col": lambda: K.conv2d(x, w, None, one, pad, one, out_hw),
            "col2im": lambda: K.conv_transpose2d(x, turned, None, one, K.turned_padding((3, 3), pad, one), one, out_hw),
        }
        seconds = dict(zip(kernels, interleaved_medians(list(kernels.values()), args.repeats)))
        fastest = min(seconds, key=seconds.get)
        picked = _route(w.shape, w.dtype, False, one, pad, one, out_hw)
        name = f"{c_in:>2} -> {c_out:<2} {side}x{side} b{batch}"
        times = " ".join(f"{1e3 * seconds[k]:9.2f}" for k in kernels)
        print(f"{name:<22} {times}   {fastest:<9} {picked:<9}")


if __name__ == "__main__":
    main()
