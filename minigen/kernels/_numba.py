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
- Buffers: large scratch arrays (the im2col matrix) are allocated once by NumPy and reused,
  because a fresh 50 MB array costs its page faults again on every call.
"""

from __future__ import annotations

import os
from math import prod

import numba
import numpy as np

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

njit = numba.njit
prange = numba.prange

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
