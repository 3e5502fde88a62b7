"""Mini-batches and the transforms the models need.

`DataLoader(images, labels, batch_size=64, shuffle=True, generator=g)` yields tuples of
NumPy arrays, one batch at a time, in a new seeded order each epoch. Transforms are plain
functions on arrays:

- `to_unit` / `to_symmetric`: pixels in [0, 1] (Bernoulli decoders, sigmoid outputs) or in
  [-1, 1] (GAN generators ending in tanh);
- `binarize_dynamic`: a fresh Bernoulli sample of every pixel each time it is used, which
  regularises a VAE trained on binary likelihoods; `binarize_fixed`: one sample drawn once
  from a given seed, so that a test set is the same binary set in every evaluation (as in
  Burda et al., 2016);
- `one_hot`: class indices to vectors, for conditional models.
"""

from __future__ import annotations

import math

import numpy as np

from ..random import Generator, rng


class DataLoader:
    """Batches of aligned arrays (images, labels, ...), optionally shuffled with a seeded generator."""

    def __init__(
        self, *arrays: np.ndarray, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False, generator: Generator | None = None
    ):
        if not arrays:
            raise ValueError("DataLoader: give at least one array")
        sizes = {len(a) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"DataLoader: the arrays have different lengths {[len(a) for a in arrays]}; they must line up")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        self.arrays, self.batch_size = arrays, batch_size
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator
        self.n = sizes.pop()

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self):
        order = rng(self.generator).permutation(self.n) if self.shuffle else np.arange(self.n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            picked = order[start : start + self.batch_size]
            yield tuple(a[picked] for a in self.arrays)


def to_unit(images: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Integer pixels 0..max_value -> float32 in [0, 1]."""
    return (np.asarray(images, dtype=np.float32) / max_value).astype(np.float32)


def to_symmetric(images: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] -> [-1, 1] (the range of a tanh output)."""
    return (2.0 * np.asarray(images, dtype=np.float32) - 1.0).astype(np.float32)


def binarize_dynamic(images: np.ndarray, generator: Generator | None = None) -> np.ndarray:
    """Each pixel p in [0, 1] becomes 1 with probability p: a new sample every call."""
    return (rng(generator).random(images.shape) < images).astype(np.float32)


def binarize_fixed(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """One Bernoulli sample of every pixel, the same for the same seed every time."""
    return binarize_dynamic(images, Generator(seed))


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indices (N,) -> float32 vectors (N, num_classes) with a single 1."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() >= num_classes)):
        raise ValueError(
            f"one_hot: labels must be integers in [0, {num_classes}), got {labels.dtype} values "
            f"{labels.min() if labels.size else ''}..{labels.max() if labels.size else ''}"
        )
    return np.eye(num_classes, dtype=np.float32)[labels]
