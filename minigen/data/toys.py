"""2-D toy distributions for GAN lessons: small enough to plot every sample, hard enough to
show mode collapse.

- `ring8`: 8 Gaussians evenly spaced on a circle of radius 2, standard deviation 0.02, the
  ring of Metz et al. (2017, "Unrolled Generative Adversarial Networks").
- `grid25`: 25 Gaussians on the 5x5 grid {-4, -2, 0, 2, 4}^2, standard deviation 0.05, the
  grid of Srivastava et al. (2017, "VEEGAN").
- `swiss_roll` and `two_moons`: curved one-piece shapes, with no discrete modes.

The mixtures report their modes (`centers`, `std`), which `minigen.metrics` uses to count
the modes a generator covers and its share of high-quality samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..random import Generator, rng


@dataclass(frozen=True)
class GaussianMixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians."""

    name: str
    centers: np.ndarray  # (modes, 2)
    std: float

    def sample(self, n: int, generator: Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n points (float32, shape (n, 2)) and the mode each came from (shape (n,))."""
        r = rng(generator)
        mode = r.integers(0, len(self.centers), size=n)
        points = self.centers[mode] + self.std * r.standard_normal((n, 2))
        return points.astype(np.float32), mode


def ring8(radius: float = 2.0, std: float = 0.02) -> GaussianMixture2D:
    angles = 2 * np.pi * np.arange(8) / 8
    return GaussianMixture2D("ring8", radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std)


def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    ticks = spacing * np.arange(-2, 3)
    xs, ys = np.meshgrid(ticks, ticks)
    return GaussianMixture2D("grid25", np.stack([xs.ravel(), ys.ravel()], axis=1), std)


def swiss_roll(n: int, noise: float = 0.05, generator: Generator | None = None) -> np.ndarray:
    """A 2-D spiral: angle t from 1.5 pi to 4.5 pi, radius t, scaled by 1/5 to about [-3, 3]."""
    r = rng(generator)
    t = 1.5 * np.pi * (1 + 2 * r.random(n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5 + noise * r.standard_normal((n, 2))
    return points.astype(np.float32)


def two_moons(n: int, noise: float = 0.1, generator: Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles; returns the points and which moon (0 or 1) each is on."""
    r = rng(generator)
    angle = r.uniform(0, np.pi, size=n)
    moon = r.integers(0, 2, size=n)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    points = np.where(moon[:, None] == 0, upper, lower) + noise * r.standard_normal((n, 2))
    return points.astype(np.float32), moon
