"""The bundled default images: scikit-learn's 8x8 handwritten digits (1,797 images, offline).

Each image is 8x8 pixels with intensities 0 to 16 (the UCI "optical recognition of
handwritten digits" set, as shipped inside scikit-learn). `load_digits` returns them as
float32 in [0, 1], shape (N, 1, 8, 8), with integer labels 0-9.

The train/test split is fixed and needs no random numbers, so it can never change: going
through the file in order, every fifth image of each digit (the 5th, 10th, 15th, ... "0",
likewise for each class) is a test image. That gives 1,442 training and 355 test images,
with each digit in the same proportion in both.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

N_IMAGES = 1797
TEST_EVERY = 5


def _bundled_file() -> Path | None:
    """scikit-learn's digits.csv.gz, found without importing scikit-learn (which is slow)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.exists() else None


def _read_all() -> tuple[np.ndarray, np.ndarray]:
    path = _bundled_file()
    if path is not None:
        with gzip.open(path, "rt") as file:
            table = np.loadtxt(file, delimiter=",", dtype=np.int64)
        pixels, labels = table[:, :64], table[:, 64]
    else:
        try:
            from sklearn.datasets import load_digits as sklearn_load_digits
        except ImportError:
            raise ImportError("load_digits: the bundled digits come with scikit-learn: pip install scikit-learn") from None
        bunch = sklearn_load_digits()
        pixels, labels = bunch.data.astype(np.int64), bunch.target.astype(np.int64)
    if pixels.shape != (N_IMAGES, 64) or pixels.min() < 0 or pixels.max() > 16:
        raise ValueError(
            f"load_digits: scikit-learn's digits file looks wrong: shape {pixels.shape}, values {pixels.min()} to {pixels.max()}"
        )
    return pixels, labels


def load_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 8, 8) float32 in [0, 1] and labels (N,) int64; split 'train', 'test' or 'all'."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"load_digits: split must be 'train', 'test' or 'all', got {split!r}")
    pixels, labels = _read_all()
    rank_in_class = np.zeros(N_IMAGES, dtype=np.int64)  # how many earlier images share the label
    for digit in range(10):
        where = labels == digit
        rank_in_class[where] = np.arange(where.sum())
    is_test = rank_in_class % TEST_EVERY == TEST_EVERY - 1
    keep = {"train": ~is_test, "test": is_test, "all": np.ones(N_IMAGES, bool)}[split]
    images = (pixels[keep] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return images, labels[keep]
