"""Convolution and dense layers: minigen's kernels vs their NumPy twins vs PyTorch CPU, in one run.

For each layer shape (batch 64, float32) it prints the time of the forward pass and of
forward + backward (input, weight and bias gradients), the GFLOP/s that makes, the share of
this machine's GEMM peak (NumPy's 2048^3 float32 matrix product on as many BLAS threads) and
the ratio minigen / PyTorch. Both libraries get `--threads` threads.

The machine's speed changes from one second to the next (`in_turn.py`), so minigen, PyTorch
and the GEMM peak are timed in turn, in rounds of short blocks: the ratio and the share of the
peak are the medians of the rounds' own ones, each comparing blocks a second apart, and the
times are the medians of the blocks' medians. The twins (slow) are timed once, after.

    python benchmarks/kernels.py            # add --no-twin to skip the NumPy twins
    python benchmarks/kernels.py --only k3  # one layer (or a few): the names that contain k3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from in_turn import in_turn

import minigen as mg
from minigen import functional as F
from minigen.kernels import conv as K
from minigen.kernels import dense as D

BATCH = 64

# name, kind, (in, out), kernel, stride, padding, input size
LAYERS = [
    ("conv 1->64 k4 s2 p1, 28x28", "conv", (1, 64), 4, 2, 1, 28),
    ("conv 64->128 k4 s2 p1, 14x14", "conv", (64, 128), 4, 2, 1, 14),
    ("convT 128->64 k4 s2 p1, 7x7", "convT", (128, 64), 4, 2, 1, 7),
    ("convT 64->1 k4 s2 p1, 14x14", "convT", (64, 1), 4, 2, 1, 14),
    ("conv 32->32 k3 s1 p1, 28x28", "conv", (32, 32), 3, 1, 1, 28),
    ("dense 784->512", "dense", (784, 512), None, None, None, None),
    ("dense 512->784", "dense", (512, 784), None, None, None, None),
]


def median_seconds(fn, calls: int, min_time: float, max_calls: int | None = None) -> float:
    """`fn` called at least `calls` times and for at least `min_time` seconds (but at most
    `max_calls` times); the median seconds of a call."""
    times, start_all = [], time.perf_counter()
    while len(times) < calls or time.perf_counter() - start_all < min_time:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if max_calls is not None and len(times) >= max_calls:
            break
    return statistics.median(times)


def blas_description() -> str:
    """Which BLAS kernel NumPy runs (OPENBLAS_CORETYPE can force an older one), if threadpoolctl can tell."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS kernel unknown (pip install threadpoolctl to see it)"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i['internal_api']} {i.get('architecture', '?')} kernel, {i['num_threads']} threads" for i in blas)


def gemm_product(threads: int):
    """NumPy's own large float32 product on `threads` BLAS threads, whose GFLOP/s is the peak
    (from its first convolution on, minigen keeps NumPy's BLAS at one thread and splits the
    work itself; see minigen/kernels/threads.py), and its FLOPs."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)

    def product():
        with threadpool_limits(threads, user_api="blas"):
            a @ a

    return product, 2 * 2048**3


def block_of(fn):
    """A block for `in_turn`: the median seconds of `fn` over at least 3 calls and 0.15 s."""
    return lambda _round: median_seconds(fn, 3, 0.15)


def layer_setup(kind, channels, k, s, p, size, rng):
    c_in, c_out = channels
    if kind == "dense":
        x = rng.standard_normal((BATCH, c_in)).astype(np.float32)
        w = (rng.standard_normal((c_out, c_in)) * 0.05).astype(np.float32)
        flops = 2 * BATCH * c_in * c_out
        out_shape = (BATCH, c_out)
    elif kind == "conv":
        x = rng.standard_normal((BATCH, c_in, size, size)).astype(np.float32)
        w = (rng.standard_normal((c_out, c_in, k, k)) * 0.05).astype(np.float32)
        out = K.conv_output_size(size, k, s, p, 1)
        flops = 2 * BATCH * c_out * out * out * c_in * k * k
        out_shape = (BATCH, c_out, out, out)
    else:
        x = rng.standard_normal((BATCH, c_in, size, size)).astype(np.float32)
        w = (rng.standard_normal((c_in, c_out, k, k)) * 0.05).astype(np.float32)
        out = K.conv_transpose_output_size(size, k, s, p, 1, 0)
        flops = 2 * BATCH * c_in * size * size * c_out * k * k
        out_shape = (BATCH, c_out, out, out)
    b = np.zeros(c_out, np.float32)
    grad = rng.standard_normal(out_shape).astype(np.float32)
    return x, w, b, grad, flops


def minigen_runs(kind, x, w, b, grad, s, p):
    def forward(tensors):
        x_, w_, b_ = tensors
        if kind == "dense":
            return F.linear(x_, w_, b_)
        if kind == "conv":
            return F.conv2d(x_, w_, b_, stride=s, padding=p)
        return F.conv_transpose2d(x_, w_, b_, stride=s, padding=p)

    def fwd():
        with mg.no_grad():
            forward([mg.Tensor(x), mg.Tensor(w), mg.Tensor(b)])

    def fwd_bwd():
        tensors = [mg.Tensor(a, requires_grad=True) for a in (x, w, b)]
        forward(tensors).backward(grad)

    return fwd, fwd_bwd


def twin_runs(kind, x, w, b, grad, s, p):
    pair = lambda v: (v, v)  # noqa: E731
    if kind == "dense":

        def fwd():
            D.linear_reference(x, w, b)

        def fwd_bwd():
            D.linear_reference(x, w, b)
            np.einsum("no,oi->ni", grad, w), np.einsum("no,ni->oi", grad, x), grad.sum(axis=0)

        return fwd, fwd_bwd
    geometry = (pair(s), pair(p), pair(1))
    out_hw = grad.shape[2:]
    if kind == "conv":

        def fwd():
            K.conv2d_reference(x, w, b, *geometry, out_hw)

        def fwd_bwd():
            K.conv2d_reference(x, w, b, *geometry, out_hw)
            K.conv_transpose2d_reference(grad, w, None, *geometry, x.shape[2:])
            K.conv2d_weight_grad_reference(x, grad, w.shape[2:], *geometry)
            grad.sum(axis=(0, 2, 3))
    else:

        def fwd():
            K.conv_transpose2d_reference(x, w, b, *geometry, out_hw)

        def fwd_bwd():
            K.conv_transpose2d_reference(x, w, b, *geometry, out_hw)
            K.conv2d_reference(grad, w, None, *geometry, x.shape[2:])
            K.conv2d_weight_grad_reference(grad, x, w.shape[2:], *geometry)
            grad.sum(axis=(0, 2, 3))

    return fwd, fwd_bwd


def torch_runs(torch, kind, x, w, b, grad, s, p):
    tf = torch.nn.functional
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, grad))

    def forward(x_, w_, b_):
        if kind == "dense":
            return tf.linear(x_, w_, b_)
        if kind == "conv":
            return tf.conv2d(x_, w_, b_, stride=s, padding=p)
        return tf.conv_transpose2d(x_, w_, b_, stride=s, padding=p)

    def fwd():
        with torch.no_grad():
            forward(xt, wt, bt)

    def fwd_bwd():
        leaves = [t.detach().requires_grad_() for t in (xt, wt, bt)]
        forward(*leaves).backward(gt)

    return fwd, fwd_bwd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of blocks in turn per layer and pass")
    parser.add_argument("--no-twin", action="store_true", help="skip the NumPy twins (slow)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both libraries (default: every core)")
    parser.add_argument("--only", metavar="TEXT", help="only the layers whose name contains TEXT (e.g. 'k3' or 'dense')")
    args = parser.parse_args()
    layers = [layer for layer in LAYERS if args.only is None or args.only in layer[0]]
    if not layers:
        parser.error(f"--only {args.only!r}: no layer's name contains it; the layers: {', '.join(layer[0] for layer in LAYERS)}")
    mg.set_num_threads(args.threads)  # minigen's chunk threads and Numba's loops
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"threads: {args.threads} (minigen: mg.set_num_threads; PyTorch: torch.set_num_threads)")
    print(f"NumPy BLAS: {blas_description()}")
    product, product_flops = gemm_product(args.threads)
    print(f"GEMM peak: 2048^3 float32 matmul, NumPy, {args.threads} BLAS threads, timed in turn with each layer")
    print(f"batch {BATCH}, float32; minigen, PyTorch and the GEMM peak in turn, {args.rounds} rounds (medians)")
    header = (
        f"{'layer':<30} {'pass':<8} {'minigen ms':>10} {'twin ms':>9} {'torch ms':>9} {'GFLOP/s':>8} "
        f"{'peak':>6} {'% peak':>7} {'minigen/torch':>14}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name, kind, channels, k, s, p, size in layers:
        x, w, b, grad, flops = layer_setup(kind, channels, k, s, p, size, rng)
        ours = minigen_runs(kind, x, w, b, grad, s, p)
        twin = None if args.no_twin else twin_runs(kind, x, w, b, grad, s, p)
        theirs = None if torch is None else torch_runs(torch, kind, x, w, b, grad, s, p)
        for which, label, pass_flops in ((0, "fwd", flops), (1, "fwd+bwd", 3 * flops)):
            blocks = {"minigen": block_of(ours[which]), "peak": block_of(product)}
            if theirs:
                blocks["torch"] = block_of(theirs[which])
            for block in blocks.values():
                block(-1)  # warm-up (and compilation)
            t = in_turn(blocks, args.rounds)
            gflops = [pass_flops / seconds / 1e9 for seconds in t["minigen"]]
            peaks = [product_flops / seconds / 1e9 for seconds in t["peak"]]
            share = statistics.median(100 * a / b for a, b in zip(gflops, peaks))
            ratio = f"{statistics.median(a / b for a, b in zip(t['minigen'], t['torch'])):.2f}x" if theirs else "-"
            t_torch = statistics.median(t["torch"]) if theirs else None
            if twin:
                twin[which]()  # warm-up
            t_twin = median_seconds(twin[which], 3, 0.2, max_calls=30) if twin else None
            print(
                f"{name if which == 0 else '':<30} {label:<8} {statistics.median(t['minigen']) * 1e3:>10.3f} "
                f"{(f'{t_twin * 1e3:.2f}' if t_twin else '-'):>9} "
                f"{(f'{t_torch * 1e3:.3f}' if t_torch else '-'):>9} "
                f"{statistics.median(gflops):>8.1f} {statistics.median(peaks):>6.0f} {share:>6.0f}% {ratio:>14}"
            )


if __name__ == "__main__":
    main()
