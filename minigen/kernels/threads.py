"""minigen's threads: a kernel's work split into chunks of images, one chunk per thread at a time.

A convolution on a batch is many independent pieces of work, one per chunk of images: copy
the chunk's receptive fields (Numba), multiply (NumPy's BLAS), write the chunk's output. Each
thread takes the next chunk not yet taken and does all three, so a chunk's columns stay in
the cache of the core that wrote them, and the two cores never wait for each other between
the steps. The other way, each step spread over both cores in turn (Numba's parallel loops,
then OpenBLAS's threads), made the 3x3 layer's forward 7.0 ms against 5.0 and its weight
gradient 10.7 against 6.8 (benchmarks/README.md).

That needs NumPy's BLAS at one thread, for the whole process: an OpenBLAS thread that has just
worked keeps spinning for about 0.1 s, waiting for more, and takes a core from the chunk
threads (the 3x3 forward took 9.6-10 ms right after a two-thread matrix product, 5.0 ms
otherwise). So importing minigen sets NumPy's BLAS to one thread, and the products that
need more than one core are split here (`matmul`). `set_num_threads(n)` sets how many
threads minigen uses, these and Numba's parallel loops (the elementwise kernels), which run
between them, never at the same time.

Results do not depend on the number of threads: the chunks are the same whatever it is, and
sums over chunks (a weight gradient) add the chunks' parts in their order.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numba
import numpy as np
from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

threadpool_limits(limits=1, user_api="blas")

_threads = numba.config.NUMBA_NUM_THREADS  # every core, as Numba's default
_helpers: ThreadPoolExecutor | None = None
_helpers_pid = None
_inside = threading.local()  # whether this thread is running a chunk already


def set_num_threads(n: int) -> None:
    """Use at most `n` threads: for the chunks of the convolutions and the large matrix
    products, and in Numba's parallel loops. By default every core. Like
    `torch.set_num_threads`, it holds for the rest of the process; NumPy's own BLAS stays at
    one thread (see the module's docstring)."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _threads = n


def get_num_threads() -> int:
    """The threads minigen uses now (`set_num_threads`)."""
    return _threads


def _pool() -> ThreadPoolExecutor:
    """The helper threads (all but the caller's), made at the first use in this process."""
    global _helpers, _helpers_pid
    if _helpers is None or _helpers._max_workers != _threads - 1 or _helpers_pid != os.getpid():
        _helpers = ThreadPoolExecutor(max_workers=_threads - 1, thread_name_prefix="minigen")
        _helpers_pid = os.getpid()  # a forked process has the object but not its threads
    return _helpers


def map_chunks(work: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
    """[work(chunk) for chunk in chunks], on minigen's threads: the caller's and up to
    `get_num_threads() - 1` helpers each take the next chunk not yet taken.

    `work` may release the GIL (NumPy's products, Numba kernels compiled with nogil=True) but
    must not start Numba's parallel loops, which take one caller at a time. Called from
    within a chunk it runs the chunks one after the other, on that thread."""
    results: list = [None] * len(chunks)
    todo = iter(range(len(chunks)))  # shared: next() on it is atomic while the GIL is held

    def take_chunks():
        _inside.yes = True
        try:
            for k in todo:
                results[k] = work(chunks[k])
        finally:
            _inside.yes = False

    helpers = min(_threads, len(chunks)) - 1
    if helpers <= 0 or getattr(_inside, "yes", False):
        return [work(chunk) for chunk in chunks]
    running = [_pool().submit(take_chunks) for _ in range(helpers)]
    try:
        take_chunks()
    finally:
        for helper in running:
            helper.result()  # waits, and raises what a helper raised
    return results


# A batch is cut into at least this many chunks (while it has images enough), so that two,
# four or eight threads share its work evenly even when the whole of it fits one chunk.
MIN_CHUNKS = 8


def batch_chunks(batch: int, bytes_per_image: int, chunk_bytes: int) -> list[slice]:
    """Slices of a batch of images, of equal sizes give or take one image: at most `chunk_bytes`
    of work each (at least one image), and at least MIN_CHUNKS of them while there are images
    enough. The same whatever the number of threads, so that results do not depend on it."""
    count = min(batch, max(MIN_CHUNKS, -(-batch * bytes_per_image // chunk_bytes)))
    bounds = [batch * k // count for k in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


# Below this many multiply-adds a product runs on the calling thread: starting a helper costs
# tens of microseconds.
SPLIT_FROM = 1 << 22


def matmuls(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """[a @ b for a, b in pairs] for 2-D arrays, all at once on minigen's threads: each product
    whole on one thread when there are as many products as threads (a dense layer's two
    gradients: one start of the helpers for both), else their rows split into blocks. Each
    row is computed as one product would compute it, so the numbers do not depend on the split."""
    if _threads == 1 or sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs) < SPLIT_FROM:
        return [np.matmul(a, b) for a, b in pairs]
    outs = [np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b)) for a, b in pairs]
    blocks = -(-_threads // len(pairs))  # ceil(threads / products) row blocks each
    chunks = []
    for (a, b), out in zip(pairs, outs):
        bounds = [a.shape[0] * k // blocks for k in range(blocks + 1)]
        chunks += [(a[start:stop], b, out[start:stop]) for start, stop in zip(bounds, bounds[1:]) if stop > start]
    map_chunks(lambda chunk: np.matmul(chunk[0], chunk[1], out=chunk[2]), chunks)
    return outs


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D arrays, the rows of the result split over minigen's threads (`matmuls`)."""
    return matmuls([(a, b)])[0]
