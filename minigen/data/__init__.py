"""Data: 2-D toys, the bundled 8x8 digits, MNIST and Fashion-MNIST, batches and transforms."""

from .digits import load_digits
from .loader import DataLoader, binarize_dynamic, binarize_fixed, one_hot, to_symmetric, to_unit
from .mnist import DataUnavailable, data_root, download, load_mnist, read_idx
from .toys import GaussianMixture2D, SwissRoll, grid25, ring8, swiss_roll, swissroll, two_moons


def load_images(name: str, split: str, root=None):
    """Images (N, 1, H, W) in [0, 1] and labels (N,) of "digits" (bundled), "mnist" or
    "fashion-mnist" (from `root`, downloaded when missing)."""
    if name == "digits":
        return load_digits(split)
    return load_mnist(split, name=name, root=root)


# fmt: off
__all__ = [
    "toys", "digits", "mnist", "loader",  # the modules
    "DataLoader", "DataUnavailable", "GaussianMixture2D", "SwissRoll", "binarize_dynamic", "binarize_fixed", "data_root", "download",
    "grid25", "load_digits", "load_images", "load_mnist", "one_hot", "read_idx", "ring8", "swiss_roll", "swissroll", "to_symmetric",
    "to_unit", "two_moons",
]
# fmt: on
