"""Timing minigen and PyTorch side by side on a machine whose speed changes from one second
to the next: a block of work of each in turn, each after a pause.

The 2-core machine of these benchmarks switches between a fast and a slow state for seconds
at a time (a 784-400-20 VAE step took 5.3-5.7 ms in one and 7.4-7.9 ms in the other), so a
whole run of one library and then a whole run of the other compared the machine's states as
much as the libraries. In turn, a slow spell slows both; the median of the rounds' ratios is
the figure to quote.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

# Seconds of rest before each block: both libraries keep threads spinning for a while after
# their last matrix product (OpenBLAS's for about 0.1 s), and a spinning thread takes a core
# from the other library's first steps.
PAUSE = 0.5


def in_turn(blocks: dict[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    """`blocks[name](r)` runs round r's block of work of that library and returns its seconds.
    The rounds one after the other, the libraries in turn within each; each library's seconds
    per round."""
    seconds: dict[str, list[float]] = {name: [] for name in blocks}
    for r in range(rounds):
        for name, block in blocks.items():
            time.sleep(PAUSE)
            seconds[name].append(block(r))
    return seconds


def ratio(ours: list[float], theirs: list[float]) -> str:
    """The median of the rounds' ratios, with their range."""
    ratios = [a / b for a, b in zip(ours, theirs)]
    return f"{statistics.median(ratios):.2f}x (median of {len(ratios)} rounds' ratios, from {min(ratios):.2f}x to {max(ratios):.2f}x)"
