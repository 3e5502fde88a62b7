"""Random numbers you can reproduce: seeded generators whose state can be saved and restored.

Everything random in minigen (initialisation, dropout, shuffling, noise for the models) draws
from a `Generator`: the one passed as `generator=`, or else the default one that
`minigen.manual_seed(seed)` resets. One seed gives the same numbers, bit for bit, on the
same machine; saving a generator's `state_dict()` in a checkpoint lets a resumed run draw
exactly the numbers the uninterrupted run would have drawn.
"""

from __future__ import annotations

import json

import numpy as np

from .engine.tensor import DEFAULT_DTYPE, Tensor


class Generator:
    """A seeded stream of random numbers (NumPy's PCG64 underneath)."""

    def __init__(self, seed: int = 0):
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"manual_seed: the seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.numpy = np.random.Generator(np.random.PCG64(self.seed))  # draw from this
        return self

    def state_dict(self) -> dict:
        """The exact position in the stream, as a JSON string (no pickle needed to save it)."""
        return {"seed": self.seed, "bit_generator": json.dumps(self.numpy.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        bit_state = json.loads(str(state["bit_generator"]))
        if bit_state.get("bit_generator") != "PCG64":
            raise ValueError(f"Generator.load_state_dict: expected a PCG64 state, got {bit_state.get('bit_generator')!r}")
        self.seed = int(state["seed"])
        self.numpy = np.random.Generator(np.random.PCG64())
        self.numpy.bit_generator.state = bit_state


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Reset the default generator to `seed`, and return it."""
    return default_generator.manual_seed(seed)


def rng(generator: Generator | None = None) -> np.random.Generator:
    """The NumPy generator to draw from: the given one's, or the default's."""
    return (generator or default_generator).numpy


def randn(*shape, dtype=DEFAULT_DTYPE, generator: Generator | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of standard normal samples."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(rng(generator).standard_normal(shape, dtype=dtype), requires_grad=requires_grad)


def rand(*shape, dtype=DEFAULT_DTYPE, generator: Generator | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of samples uniform on [0, 1)."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(rng(generator).random(shape, dtype=dtype), requires_grad=requires_grad)
