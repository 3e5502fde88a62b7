"""2-D toy distributions for GAN lessons: small enough to plot every sample, hard enough to
show mode collapse.

- `ring8`: 8 Gaussians evenly spaced on a circle of radius 2, standard deviation 0.02, the
  ring of Metz et al. (2017, "Unrolled Generative Adversarial Networks").
- `grid25`: 25 Gaussians on the 5x5 grid {-4, -2, 0, 2, 4}^2, standard deviation 0.05, the
  grid of Srivastava et al. (2017, "VEEGAN").
- `swissroll` (`SwissRoll`) and `two_moons`: curved one-piece shapes; the swiss roll's
  modes for the metrics are the eight stretches of its spiral.

The mixtures and the swiss roll report their modes (`centers`, `center_modes`, `std`), which
`minigen.metrics` uses to count the modes a generator covers and its share of high-quality
samples.
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

    @property
    def modes(self) -> int:
        return len(self.centers)

    @property
    def marks(self) -> np.ndarray:
        """What plots mark as the modes: the centers."""
        return self.centers

    @property
    def center_modes(self) -> np.ndarray:
        """The mode of each center: itself."""
        return np.arange(len(self.centers))


def ring8(radius: float = 2.0, std: float = 0.02) -> GaussianMixture2D:
    angles = 2 * np.pi * np.arange(8) / 8
    return GaussianMixture2D("ring8", radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std)


def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    ticks = spacing * np.arange(-2, 3)
    xs, ys = np.meshgrid(ticks, ticks)
    return GaussianMixture2D("grid25", np.stack([xs.ravel(), ys.ravel()], axis=1), std)


@dataclass(frozen=True)
class SwissRoll:
    """A 2-D spiral: angle t uniform from 1.5 pi to 4.5 pi, the point t (cos t, sin t) / 5 (so
    within about [-3, 3]), plus Gaussian noise of standard deviation `noise`.

    For the mode metrics the curve stands in for the modes: `centers` are points close together
    along it, and `center_modes` says which of `sections` equal stretches of the angle each lies
    in, so "modes covered" counts the stretches of the spiral a generator reaches."""

    noise: float = 0.05
    sections: int = 8
    name: str = "swissroll"

    @staticmethod
    def _curve(u: np.ndarray) -> np.ndarray:
        t = 1.5 * np.pi * (1 + 2 * u)  # u in [0, 1): where along the spiral
        return np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5

    def sample(self, n: int, generator: Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n points (float32, shape (n, 2)) and the stretch of the spiral each came from (shape (n,))."""
        r = rng(generator)
        u = r.random(n)
        points = self._curve(u) + self.noise * r.standard_normal((n, 2))
        return points.astype(np.float32), (u * self.sections).astype(int)

    @property
    def std(self) -> float:
        return self.noise

    @property
    def modes(self) -> int:
        return self.sections

    marks = None  # plots mark no modes on the curve

    @property
    def centers(self) -> np.ndarray:
        """2,000 points along the curve (about 0.01 apart)."""
        return self._curve((np.arange(2000) + 0.5) / 2000)

    @property
    def center_modes(self) -> np.ndarray:
        return ((np.arange(2000) + 0.5) / 2000 * self.sections).astype(int)


def swissroll(noise: float = 0.05) -> SwissRoll:
    """The swiss roll as a distribution, as `ring8()` and `grid25()` are."""
    return SwissRoll(noise)


def swiss_roll(n: int, noise: float = 0.05, generator: Generator | None = None) -> np.ndarray:
    """n points of `SwissRoll(noise)`."""
    return SwissRoll(noise).sample(n, generator)[0]


def two_moons(n: int, noise: float = 0.1, generator: Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles; returns the points and which moon (0 or 1) each is on."""
    r = rng(generator)
    angle = r.uniform(0, np.pi, size=n)
    moon = r.integers(0, 2, size=n)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    points = np.where(moon[:, None] == 0, upper, lower) + noise * r.standard_normal((n, 2))
    return points.astype(np.float32), moon
