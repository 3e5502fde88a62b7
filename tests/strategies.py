"""Hypothesis strategies for arrays that exercise the engine's edge cases.

Values come from a NumPy generator seeded by hypothesis (fast, and reproducible from the
failing example); hypothesis chooses the shapes, the seed and the memory layout, including
size-0 and size-1 axes and non-contiguous views (transposed and strided).
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["contiguous", "transposed", "strided"])


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _with_layout(values: np.ndarray, layout: str) -> np.ndarray:
    """The same values, laid out in memory as asked."""
    if layout == "transposed" and values.ndim >= 2:
        return np.ascontiguousarray(values.T).T  # Fortran order: not C-contiguous
    if layout == "strided" and values.ndim >= 1:
        wide = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), dtype=values.dtype)
        wide[..., ::2] = values
        return wide[..., ::2]  # every other element of a wider buffer
    return values


@st.composite
def arrays(draw, shape, dtype, low=-2.0, high=2.0, kink=None, random_sign=False, stream=0):
    """Uniform values in [low, high], at least 0.05 away from `kink` when one is given
    (where the function is not differentiable), negated at random with `random_sign`.

    Give each input of one operation its own `stream`: hypothesis often draws the same seed
    twice, and two equal inputs would put `maximum` exactly on its tie."""
    rng = np.random.default_rng([draw(st.integers(0, 2**32 - 1)), stream])
    values = rng.uniform(low, high, size=shape)
    if kink is not None:
        near = np.abs(values - kink) < 0.05
        values[near] = kink + np.where(values[near] >= kink, 0.1, -0.1)
    if random_sign:
        values *= rng.choice([-1.0, 1.0], size=shape)
    return _with_layout(values.astype(dtype), draw(LAYOUTS))


@st.composite
def axes(draw, ndim, nonempty_shape=None):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


def bools(shape):
    return st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).random(shape) < 0.5)
