"""How minigen uses Numba: cached compilation, a threading layer whose threads sleep, and buffers.

- Every kernel is `njit(cache=True)`. Numba writes its cache next to the source when it can,
  else to a per-user folder, or to `NUMBA_CACHE_DIR` when that is set: an installed package
  folder need not be writable.
- `NUMBA_DISABLE_JIT=1` turns every kernel back into the plain Python loops it is written
  as: slow, but a student can step through it in a debugger and get the same numbers.
- Threads: Numba's parallel loops (the elementwise kernels on large arrays) and the chunk threads of
  `minigen.kernels.threads` (the convolutions) take turns, never run at once. With Numba's
  default OpenMP layer its idle threads keep spinning after a loop ends and steal the cores
  from the work that follows (measured in benchmarks/README.md); the `workqueue` layer's
  threads sleep instead. minigen picks it unless you chose a layer yourself.
  `minigen.set_num_threads(n)` sets both to n.
- Buffers: scratch arrays (a chunk's im2col matrix) are allocated once per thread by NumPy
  and reused, because fresh memory costs its page faults again on every call.
- Compiling takes seconds per kernel the first time; minigen prints one line when it starts
  (Numba's "numba:compile" event, which cache hits do not fire), so that a first run does not
  look as if it hangs.
"""

from __future__ import annotations

import os
import threading
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


@njit(cache=True)
def block_range(b, blocks, length):
    """The range [start, stop) of block b when [0, length) is cut into `blocks` blocks whose sizes
    differ by one at most (a parallel kernel's share of the work for one thread at a time)."""
    return b * length // blocks, (b + 1) * length // blocks


_scratch = threading.local()  # each thread's buffers: {(name, dtype): array}


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reusable uninitialised buffer of `shape`, this thread's own; the same memory comes back
    for `name` next time, so never return it (or a view of it) to a caller."""
    dtype = np.dtype(dtype)
    size = prod(shape)
    buffers = _scratch.__dict__
    buffer = buffers.get((name, dtype))
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype=dtype)
        buffers[(name, dtype)] = buffer
    return buffer[:size].reshape(shape)
