"""How minigen uses Numba: cached compilation, threads that do not fight BLAS, and buffers.

- Every kernel is `njit(cache=True)`. Numba writes its cache next to the source when it can,
  else to a per-user folder, or to `NUMBA_CACHE_DIR` when that is set: an installed package
  folder need not be writable.
- `NUMBA_DISABLE_JIT=1` turns every kernel back into the plain Python loops it is written
  as: slow, but a student can step through it in a debugger and get the same numbers.
- Threads: Numba's parallel loops and OpenBLAS's GEMMs take turns, never run at once. With
  Numba's default OpenMP layer its idle threads keep spinning after a loop ends and steal the
  cores from the GEMM that follows (measured in benchmarks/README.md); the `workqueue`
  layer's threads sleep instead. minigen picks it unless you chose a layer yourself.
  One budget for both: `minigen.set_num_threads(n)` limits Numba's loops and NumPy's BLAS
  (through threadpoolctl) to the same n, as `torch.set_num_threads` does for PyTorch.
- Buffers: large scratch arrays (the im2col matrix) are allocated once by NumPy and reused,
  because a fresh 50 MB array costs its page faults again on every call.
- Compiling takes seconds per kernel the first time; minigen prints one line when it starts
  (Numba's "numba:compile" event, which cache hits do not fire), so that a first run does not
  look as if it hangs.
"""

from __future__ import annotations

import os
from math import prod

import numba
import numpy as np
from numba.core import event

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


class _SayWhenCompiling(event.Listener):
    """Print one line the first time a minigen kernel is compiled in this process."""

    said = False

    def on_start(self, ev):
        function = getattr(ev.data.get("dispatcher"), "py_func", None)
        if not self.said and getattr(function, "__module__", "").startswith("minigen."):
            type(self).said = True
            print(
                "minigen: compiling the Numba kernels (once per machine; later runs load them from the cache, "
                "the first one takes up to about 20 s) ...",
                flush=True,
            )

    def on_end(self, ev):
        pass


event.register("numba:compile", _SayWhenCompiling())

njit = numba.njit
prange = numba.prange


# Starting a parallel loop costs about 0.1 ms here (waking the threads): an elementwise kernel
# on fewer values than this runs faster in NumPy on one core (measured for the Adam update:
# 8,192 values 17 us in NumPy, 98 us threaded; 313,600 values 420 us in NumPy, 206 us threaded).
PARALLEL_FROM = 1 << 16


def set_num_threads(n: int) -> None:
    """Use at most `n` threads: in Numba's parallel loops and in NumPy's BLAS (the GEMMs).

    The two take turns, so they share one budget rather than adding up; by default both use
    every core. Like `torch.set_num_threads`, it holds for the rest of the process."""
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """The threads Numba's parallel loops use now (`set_num_threads` sets BLAS's to the same)."""
    return numba.get_num_threads()


_scratch: dict[tuple[str, np.dtype], np.ndarray] = {}


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reusable uninitialised buffer of `shape`; the same memory comes back for `name` next
    time, so never return it (or a view of it) to a caller."""
    dtype = np.dtype(dtype)
    size = prod(shape)
    buffer = _scratch.get((name, dtype))
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype=dtype)
        _scratch[(name, dtype)] = buffer
    return buffer[:size].reshape(shape)
