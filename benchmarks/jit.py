"""Numba compilation cost: every kernel from a cold cache, then import + first calls from a warm one.

Each measurement runs in a fresh Python process with its own empty `NUMBA_CACHE_DIR`, so
nothing is shared with earlier runs: the first process compiles every kernel (float32 and
float64) and writes the cache, the second loads it. Times are wall-clock for the whole
process (interpreter start, `import minigen`, one call of every kernel), medians of a few
repeats, and the same for a process that only imports minigen, for scale.

    python benchmarks/jit.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FIRST_CALLS = """
import numpy as np
import minigen
from minigen import functional as F
for dtype in (np.float32, np.float64):
    x = minigen.Tensor(np.ones((2, 3, 8, 8), dtype), requires_grad=True)
    w = minigen.Tensor(np.ones((4, 3, 3, 3), dtype), requires_grad=True)
    wt = minigen.Tensor(np.ones((3, 4, 3, 3), dtype), requires_grad=True)
    loss = F.conv2d(x, w, stride=2, padding=1).sum() + F.conv_transpose2d(x, wt, stride=2).sum()
    loss = loss + F.avg_pool2d(x, 2).sum() + F.upsample_nearest2d(x, 2).sum()
    loss = loss + (F.batch_norm(x, negative_slope=0.2) * x).sum()
    loss.backward()  # conv2d, its transpose, the weight gradient, pooling, upsampling, batch norm and adjoints
    wide = minigen.Tensor(np.ones((4, 4, 256, 256), dtype), requires_grad=True)  # batch norm's threaded kernels
    F.batch_norm(wide).sum().backward()  # (from 1,048,576 values)
    big = minigen.Tensor(np.ones((2, 3, 128, 128), dtype), requires_grad=True)  # the LeakyReLU kernels
    h = F.leaky_relu(F.conv2d(big, w, padding=1), 0.2)  # on 131,072 channels-last values
    F.conv2d(h, minigen.Tensor(np.ones((4, 4, 3, 3), dtype)), padding=1).sum().backward()
    many = minigen.Tensor(np.ones((2, 16, 14, 14), dtype), requires_grad=True)  # Winograd (float32): the forward
    F.conv2d(many, minigen.Tensor(np.ones((16, 16, 3, 3), dtype), requires_grad=True), padding=1).sum().backward()  # and both gradients
    a = minigen.Tensor(np.ones(1 << 18, dtype), requires_grad=True)  # SiLU's backward kernel (which takes a gradient
    (F.silu(a) * a).sum().backward()  # in memory, not the broadcast one that .sum() alone sends back)
    small, large = (minigen.Tensor(np.ones(n, dtype), requires_grad=True) for n in (1000, 1 << 18))
    ((small * small).sum() + (large * large).sum()).backward()
    minigen.optim.Adam([small, large]).step()  # Adam's kernel, on one core and threaded (from 262,144 values)
"""


def run_seconds(code: str, cache_dir: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cold, warm, import_only = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache_dir:
            cold.append(run_seconds(FIRST_CALLS, cache_dir))
            warm.append(run_seconds(FIRST_CALLS, cache_dir))
            import_only.append(run_seconds("import minigen", cache_dir))
    print(f"medians of {args.repeats} fresh processes (whole process wall-clock):")
    print(
        f"  cold cache: import + compile every kernel (float32, float64) + first calls: {statistics.median(cold):6.2f} s   target <= 20 s"
    )
    print(f"  warm cache: import + first call of every kernel:                            {statistics.median(warm):6.2f} s   target <= 2 s")
    print(f"  import minigen alone:                                                        {statistics.median(import_only):6.2f} s")


if __name__ == "__main__":
    main()
