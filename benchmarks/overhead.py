"""The engine's cost per operation: a small elementwise op, forward plus backward.

On a (64, 10) float32 array the arithmetic takes well under a microsecond, so what this
measures is the engine itself: making the result, recording the node, and the backward
sweep's bookkeeping. A chain of N ops is built and backpropagated; the time per op is
total / N. Medians over repeats, with PyTorch CPU beside it when torch is installed.

    python benchmarks/overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import minigen as mg
from minigen import functional as F

CHAIN = 200


def _per_op_us(run, repeats: int) -> float:
    run()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / CHAIN * 1e6


def minigen_chain(op: str):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((64, 10)).astype(np.float32), requires_grad=True)
    c = mg.Tensor(np.full((64, 10), 0.999, np.float32))
    upstream = np.ones((64, 10), np.float32)

    def run():
        y = x
        for _ in range(CHAIN):
            y = y * c if op == "mul" else F.tanh(y)
        x.grad = None
        y.backward(upstream)

    return run


def torch_chain(op: str, torch):
    x = torch.randn(64, 10, requires_grad=True)
    c = torch.full((64, 10), 0.999)
    upstream = torch.ones(64, 10)

    def run():
        y = x
        for _ in range(CHAIN):
            y = y * c if op == "mul" else torch.tanh(y)
        x.grad = None
        y.backward(upstream)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"cost of one op, forward + backward, on (64, 10) float32; median of {args.repeats} chains of {CHAIN} ops")
    print(f"{'op':<6} {'minigen us':>11} {'torch us':>9} {'minigen/torch':>14}")
    for op in ("mul", "tanh"):
        ours = _per_op_us(minigen_chain(op), args.repeats)
        if torch is not None:
            theirs = _per_op_us(torch_chain(op, torch), args.repeats)
            print(f"{op:<6} {ours:>11.2f} {theirs:>9.2f} {ours / theirs:>14.2f}")
        else:
            print(f"{op:<6} {ours:>11.2f} {'-':>9} {'-':>14}")


if __name__ == "__main__":
    main()
