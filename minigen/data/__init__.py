"""Data: 2-D toys, the bundled 8x8 digits, MNIST and Fashion-MNIST, batches and transforms."""

from .digits import load_digits
from .loader import DataLoader, binarize_dynamic, binarize_fixed, one_hot, to_symmetric, to_unit
from .mnist import DataUnavailable, data_root, download, load_mnist, read_idx
from .toys import GaussianMixture2D, grid25, ring8, swiss_roll, two_moons

__all__ = [
    "toys", "digits", "mnist", "loader",  # the modules
    "DataLoader", "DataUnavailable", "GaussianMixture2D", "binarize_dynamic", "binarize_fixed", "data_root", "download", "grid25",
    "load_digits", "load_mnist", "one_hot", "read_idx", "ring8", "swiss_roll", "to_symmetric", "to_unit", "two_moons",
]
