"""Pictures of what a model learned: image grids, curves, latent spaces, denoising trajectories.

Every function returns a matplotlib `Figure` (made without pyplot, so nothing global is
touched and nothing pops up); `save(fig, path)` writes it as a PNG and frees it. In a
notebook, a figure left as a cell's last expression shows as a picture: importing minigen
registers `png_bytes` as Jupyter's PNG display for every matplotlib `Figure` (see
`minigen.notebook`), so no `%matplotlib inline` is needed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from .serialization import atomic_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs) -> Figure:
    """A new matplotlib Figure (matplotlib is imported on the first picture, not with minigen)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save(fig: Figure, path) -> Path:
    """Write `fig` to `path` (PNG), through a temporary file so a crash leaves no half image."""
    with atomic_file(path) as file:
        fig.savefig(file, format="png", dpi=100, bbox_inches="tight")
    return Path(path)


def save_gif(frames: Sequence, path, seconds_per_frame: float = 0.3, last_frame_seconds: float | None = None) -> Path:
    """An animated GIF (looping) of `frames`: PNG files, or Figures of one size (drawn uncropped,
    so that every frame has the same size), the last one shown for `last_frame_seconds` if given.
    Pillow comes with matplotlib."""
    from PIL import Image

    def image(frame):
        if isinstance(frame, (str, Path)):
            return Image.open(frame)
        buffer = io.BytesIO()
        frame.savefig(buffer, format="png", dpi=100)
        return Image.open(buffer)

    images = [image(frame).convert("P", palette=Image.ADAPTIVE) for frame in frames]
    durations = [int(1000 * seconds_per_frame)] * len(images)
    durations[-1] = int(1000 * (seconds_per_frame if last_frame_seconds is None else last_frame_seconds))
    with atomic_file(path) as file:
        images[0].save(file, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return Path(path)


def png_bytes(fig: Figure) -> bytes | None:
    """The figure as PNG bytes, cropped as `save` crops it; None for a figure with nothing drawn."""
    if not (fig.axes or fig.images or fig.texts or fig.patches or fig.lines):
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def tile(images: np.ndarray, columns: int, pad: int = 1) -> np.ndarray:
    """Arrange (N, C, H, W) images in a grid with `columns` per row; returns (rows*H, columns*W[, C])."""
    images = np.asarray(images)
    n, c, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    canvas = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = image.transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas


def _to_unit(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] (tanh outputs) or [0, 1], shown in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip((images + 1) / 2 if images.min() < -1e-6 else images, 0, 1)


def image_grid(images: np.ndarray, columns: int = 8, title: str | None = None, row_labels: Sequence[str] | None = None) -> Figure:
    """A grid of images (grey for one channel), in [0, 1] or [-1, 1]."""
    canvas = tile(_to_unit(images), columns)
    fig = _figure(figsize=(max(3.0, 0.6 * columns), max(2.0, 0.6 * canvas.shape[0] / canvas.shape[1] * columns + 0.5)))
    ax = fig.add_subplot()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if row_labels is not None:
        rows = len(row_labels)
        ax.set_yticks((np.arange(rows) + 0.5) * canvas.shape[0] / rows, labels=row_labels)
    if title:
        ax.set_title(title)
    return fig


def reconstructions(
    originals: np.ndarray, reconstructed: np.ndarray, title: str = "reconstructions", inputs: np.ndarray | None = None
) -> Figure:
    """Originals in the top row, then (if given) what the encoder was shown, e.g. a binarised
    version, then the reconstructions."""
    rows = [originals] + ([inputs] if inputs is not None else []) + [reconstructed]
    labels = ["original"] + (["input"] if inputs is not None else []) + ["reconstructed"]
    return image_grid(np.concatenate(rows), columns=len(originals), title=title, row_labels=labels)


def curves(history: list[dict], keys: Sequence[str], title: str, ylabel: str) -> Figure:
    """Per-epoch metrics from a training history, one line per key present."""
    fig = _figure(figsize=(6, 4))
    ax = fig.add_subplot()
    epochs = [row["epoch"] for row in history]
    for key in keys:
        if history and key in history[0]:
            ax.plot(epochs, [row[key] for row in history], marker="o" if len(epochs) < 30 else None, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def latent_scatter(means: np.ndarray, labels: np.ndarray, title: str = "test-set means of q(z|x)") -> Figure:
    """The encoder's means, coloured by class: the first two coordinates for a 2-D latent,
    else the projection on their two principal components."""
    means = np.asarray(means, dtype=np.float64)
    if means.shape[1] > 2:
        centred = means - means.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points, axes = centred @ vt[:2].T, ("principal component 1", "principal component 2")
    else:
        points, axes = means, ("z1", "z2")
    fig = _figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=8, vmin=-0.5, vmax=9.5)
    fig.colorbar(scatter, ax=ax, ticks=range(10), label="label")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    return fig


def manifold(decode: Callable[[np.ndarray], np.ndarray], n: int = 15, title: str = "the learned manifold") -> Figure:
    """Decode a grid of 2-D codes placed at the Gaussian quantiles (i + 0.5) / n, so equal areas of
    probability under the prior get equal room (as in Kingma and Welling's figure 4)."""
    quantiles = [NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]
    codes = np.array([[zx, zy] for zy in quantiles[::-1] for zx in quantiles], dtype=np.float32)
    images = decode(codes)
    fig = image_grid(images, columns=n, title=title)
    ax = fig.axes[0]
    side, pad = images.shape[-1], 1  # tile's layout: each image takes side + pad pixels
    centres = pad + np.arange(n) * (side + pad) + (side - 1) / 2
    shown = np.arange(0, n, 2 if n > 8 else 1)
    ax.set_xticks(centres[shown], labels=[f"{quantiles[i]:.1f}" for i in shown])
    ax.set_yticks(centres[shown], labels=[f"{quantiles[::-1][i]:.1f}" for i in shown])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    return fig


def scatter_2d(
    real: np.ndarray, fake: np.ndarray, centers: np.ndarray | None = None, title: str = "", limits: float | None = None
) -> Figure:
    """Real and generated 2-D points, with the mixture's modes marked."""
    fig = _figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.3, label="data", color="tab:blue")
    ax.scatter(fake[:, 0], fake[:, 1], s=3, alpha=0.5, label="generated", color="tab:orange")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", color="black", s=30, label="modes")
    if limits:
        ax.set_xlim(-limits, limits)
        ax.set_ylim(-limits, limits)
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title)
    return fig


def steps_shown(trajectory: Sequence, count: int) -> list:
    """`count` entries of a sampler's trajectory [(t, x_t), ...], evenly spaced, the first and last included."""
    picks = np.unique(np.round(np.linspace(0, len(trajectory) - 1, count)).astype(int))
    return [trajectory[i] for i in picks]


def denoising_strip(trajectory: Sequence, rows: int = 8, columns: int = 9, title: str = "from noise to images") -> Figure:
    """Images being denoised: one sample per row, its x_t at `columns` steps of the reverse
    process from left (x_T, noise) to right (x_0); `trajectory` is [(t, x_t), ...] from
    `minigen.models.diffusion.sample`, images in [-1, 1] (shown clipped)."""
    shown = steps_shown(trajectory, columns)
    images = np.stack([x[row] for row in range(min(rows, len(shown[0][1]))) for _, x in shown])
    fig = image_grid(np.clip((images + 1) / 2, 0, 1), columns=len(shown), title=title)
    ax, side = fig.axes[0], images.shape[-1]
    ax.set_xticks(1 + np.arange(len(shown)) * (side + 1) + (side - 1) / 2, labels=[f"t={t}" for t, _ in shown], fontsize=7)
    return fig


def trajectory_scatter(trajectory: Sequence, real: np.ndarray, panels: int = 6, limits: float = 3.0) -> Figure:
    """2-D points being denoised: x_t at `panels` steps of the reverse process, beside the data."""
    shown = steps_shown(trajectory, panels)
    fig = _figure(figsize=(2.4 * len(shown), 2.6))
    for i, (t, x) in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.2, color="tab:blue")
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:orange")
        ax.set_xlim(-limits, limits)
        ax.set_ylim(-limits, limits)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t = {t}", fontsize=9)
    return fig


def bars(labels: Sequence[str], values: Sequence[float], title: str, ylabel: str, xlabel: str = "") -> Figure:
    """One bar per label."""
    fig = _figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)), labels=labels, rotation=45 if len(values) > 6 else 0, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return fig
