"""minigen's threads: a convolution's work cut into chunks of images, one chunk per thread at a time.

A convolution on a batch is many independent pieces of work, one per chunk of images: copy
the chunk's receptive fields (Numba), multiply (NumPy's BLAS), write the chunk's output. Each
thread takes the next chunk not yet taken and does all three, so a chunk's columns stay in
the cache of the core that wrote them, and no core waits for another between the steps. The
other way, each step spread over every core in turn (Numba's parallel loops, then OpenBLAS's
threads), the 3x3 layer of `benchmarks/kernels.py` (32 channels, 28x28, batch 64) took 6.8-7.0
ms for its Winograd forward against 4.8-5.4 now, and 11.0-11.3 ms for its weight gradient
against 6.8-7.4 (benchmarks/README.md, "Threads").

That needs NumPy's BLAS at one thread: an OpenBLAS thread that has just worked keeps spinning
for about 0.1 s, waiting for more, and takes a core from the chunk threads (during that time
after a two-thread product, that Winograd forward took 9.4-10.1 ms, else 5.1). So at its first
convolution minigen sets NumPy's BLAS to one thread, for the rest of the process, and from
then on it splits the large dense products over its own threads too (`matmuls`). Until
then, in a process with no convolution (an MLP VAE, an MLP GAN), dense products run on BLAS's
own threads, which start faster than ours (a 64 x 784 by 784 x 256 product: 0.18 ms on two
BLAS threads, 0.25 ms split over two of minigen's). Their last bits can differ between the
two ways: OpenBLAS's threads add some products in another order than one thread does.

`set_num_threads(n)` sets how many threads minigen uses: these, and Numba's parallel loops
(the elementwise kernels), which run between them, never at the same time. The numbers of the
convolutions do not depend on it: the chunks are the same whatever the number of threads, and
sums over chunks (a weight gradient) add the chunks' parts in their order. A dense product cut
into blocks for the threads may differ in its last bits from the whole product: each block is
a BLAS product of its own, and OpenBLAS may add an entry's terms in another order in a block
than in the whole (its Haswell kernels do when the columns are cut, and when the rows are cut
other than at multiples of 12). The same number of threads always gives the same numbers.
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

_threads = numba.config.NUMBA_NUM_THREADS  # every core, as Numba's default
_helpers: ThreadPoolExecutor | None = None
_helpers_pid = None
_inside = threading.local()  # whether this thread is running a chunk already
_chunking = False  # whether this process has run a convolution (and NumPy's BLAS has one thread)


def _start_chunking():
    """At the first convolution: NumPy's BLAS to one thread, for good (see the module's docstring)."""
    global _chunking
    threadpool_limits(limits=1, user_api="blas")
    _chunking = True


def set_num_threads(n: int) -> None:
    """Use at most `n` threads: for the chunks of the convolutions and the large matrix
    products, and in Numba's parallel loops; NumPy's BLAS gets n too until the first
    convolution, one after it (see the module's docstring). By default every core. Like
    `torch.set_num_threads`, it holds for the rest of the process."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=1 if _chunking else n, user_api="blas")
    _threads = n


def get_num_threads() -> int:
    """The threads minigen uses now (`set_num_threads`)."""
    return _threads


def _pool() -> ThreadPoolExecutor:
    """The helper threads (all but the caller's), made at the first use in this process."""
    global _helpers, _helpers_pid
    if _helpers is None or _helpers._max_workers != _threads - 1 or _helpers_pid != os.getpid():
        if _helpers is not None and _helpers_pid == os.getpid():
            _helpers.shutdown(wait=False)  # set_num_threads changed the count: let the old ones go
        _helpers = ThreadPoolExecutor(max_workers=_threads - 1, thread_name_prefix="minigen")
        _helpers_pid = os.getpid()  # a forked process has the object but not its threads
    return _helpers


def map_chunks(work: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
    """[work(chunk) for chunk in chunks], on minigen's threads: the caller's and up to
    `get_num_threads() - 1` helpers each take the next chunk not yet taken.

    `work` may release the GIL (NumPy's products, Numba kernels compiled with nogil=True) but
    must not start Numba's parallel loops, which take one caller at a time. Called from
    within a chunk it runs the chunks one after the other, on that thread."""
    if not _chunking:
        _start_chunking()
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
    return _equal_slices(batch, min(batch, max(MIN_CHUNKS, -(-batch * bytes_per_image // chunk_bytes))))


def _equal_slices(length: int, count: int) -> list[slice]:
    """[0, length) cut into `count` (at most `length`) slices whose sizes differ by one at most."""
    bounds = [length * k // count for k in range(count + 1)] if count else []
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


# Below this many multiply-adds (about 0.2 ms of one core) a product runs on the calling
# thread: handing work to a helper and waiting for it costs about 50 microseconds here.
SPLIT_FROM = 1 << 22


def matmuls(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """[a @ b for a, b in pairs] for 2-D arrays, all at once on minigen's threads: each product
    whole on one thread when there are as many products as threads (a dense layer's two
    gradients: one start of the helpers for both), else cut into blocks of rows of a, or of
    columns of b when b is the larger (so that no thread repacks the whole of it: a batch of 64
    times a 784 x 512 weight, 0.42 ms against 0.51 with rows). The blocks depend only on the
    number of threads, and so do the last bits of the numbers (see the module's docstring)."""
    if not _chunking or _threads == 1 or sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs) < SPLIT_FROM:
        return [np.matmul(a, b) for a, b in pairs]  # (before any convolution, on BLAS's own threads)
    outs = [np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b)) for a, b in pairs]
    parts = -(-_threads // len(pairs))  # ceil(threads / products) blocks each
    chunks = []
    for (a, b), out in zip(pairs, outs):
        by_columns = b.shape[1] > a.shape[0]
        length = b.shape[1] if by_columns else a.shape[0]
        for block in _equal_slices(length, min(parts, length)):
            chunks.append((a, b[:, block], out[:, block]) if by_columns else (a[block], b, out[block]))
    map_chunks(lambda chunk: np.matmul(chunk[0], chunk[1], out=chunk[2]), chunks)
    return outs


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D arrays, on BLAS's threads or split over minigen's (`matmuls`)."""
    return matmuls([(a, b)])[0]
