r"""Evaluating generators honestly: what each number means, and what it does not.

**2-D toys** (mixtures with known modes). A sample is *high quality* if it lies within
3 standard deviations of its nearest mode; a mode is *covered* if at least 20 of 2,500
samples are high-quality samples of it (the protocol of the unrolled-GAN and PacGAN papers:
Metz et al., 2017; Lin et al., 2018).

**Images.** There is no Inception network here, so the image metrics use a small
classifier trained with minigen on the same data (once; cached under `$MINIGEN_DATA`):

- *classifier FID*: the Fréchet distance between Gaussians fitted to the classifier's
  penultimate features of real and generated images,
  $\|\mu_r - \mu_g\|^2 + \mathrm{Tr}(\Sigma_r + \Sigma_g - 2 (\Sigma_r \Sigma_g)^{1/2})$
  (Heusel et al., 2017). Its scale depends on the classifier, so it is only meaningful beside
  the *real-vs-real floor* (training images against test images) and the *noise baseline*
  (uniform noise against test images), which are always reported with it. An estimate from
  n images is biased upward by a term that shrinks as n grows, so the floor and the baseline
  use as many images as the generated side (the floor at most the whole training set, and
  says so when that is fewer): a model that returned real training images would score at
  the floor. Training and `minigen eval` score the same 1,000 samples (`EVAL_SAMPLES`), so
  their FIDs agree.
- *mode coverage*: the histogram of predicted classes, how many classes get more than 5%
  of the samples, and the KL divergence of the histogram from uniform.
- *classifier inception score*: $\exp\big(\mathbb E_x \mathrm{KL}(p(y \mid x) \,\|\, p(y))\big)$,
  high when each sample is confidently one class and the classes are balanced (Salimans et al.,
  2016); at most the number of classes.
- *Parzen-window log-likelihood* (Goodfellow et al., 2014): a Gaussian kernel density on
  generated samples, its bandwidth chosen on a validation split, evaluated on test images.
  Reported for the historical comparison only: in many dimensions it is a poor estimate
  of log-likelihood, and can rank a model below one that merely memorises (Theis et al., 2016).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import functional as F
from . import nn, optim
from .data import DataLoader
from .data.mnist import data_root
from .engine.tensor import Tensor, no_grad
from .random import Generator, manual_seed
from .serialization import load, save

EVAL_SAMPLES = 1000  # generated images scored after every epoch and by `minigen eval`
TOY_SAMPLES = 2500  # generated points scored on the 2-D toys (the mode-coverage protocol's count)

# --- 2-D toys --------------------------------------------------------------------------------


def mode_metrics(samples: np.ndarray, centers: np.ndarray, std: float, min_count: int = 20, modes: np.ndarray | None = None) -> dict:
    """Modes covered and the share of high-quality samples (within 3 std of a mode's center).
    `modes` gives the mode of each center where several centers make one mode (points along a
    curve); by default each center is its own mode."""
    distances = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(len(samples)), nearest] < 3 * std
    modes = np.arange(len(centers)) if modes is None else np.asarray(modes)
    counts = np.bincount(modes[nearest[high_quality]], minlength=modes.max() + 1)
    return {"modes_covered": int((counts >= min_count).sum()), "modes": len(counts), "high_quality": float(high_quality.mean())}


# --- the feature classifier ------------------------------------------------------------------


class FeatureClassifier(nn.Module):
    """An MLP classifier whose last hidden layer (128 units) gives the features for FID."""

    def __init__(self, pixels: int, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    @no_grad()
    def features_and_probs(self, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features and class probabilities of images in [0, 1]."""
        features, probs = [], []
        for start in range(0, len(images), batch):
            h = self.body(Tensor(np.asarray(images[start : start + batch], dtype=np.float32)))
            features.append(h.data)
            probs.append(F.softmax(self.head(h), axis=1).data)
        return np.concatenate(features).astype(np.float64), np.concatenate(probs).astype(np.float64)


def train_classifier(train_x, train_y, test_x, test_y, epochs: int = 20, seed: int = 0) -> tuple[FeatureClassifier, float]:
    """Train the feature classifier with Adam; returns it and its test accuracy."""
    manual_seed(seed)
    model = FeatureClassifier(math.prod(train_x.shape[1:]))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for xb, yb in DataLoader(train_x, train_y, batch_size=64, shuffle=True, generator=Generator(seed)):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    accuracy = float((model.features_and_probs(test_x)[1].argmax(axis=1) == test_y).mean())
    return model, accuracy


def cached_classifier(data: str, train_x, train_y, test_x, test_y, root=None) -> tuple[FeatureClassifier, float]:
    """The classifier for a data set, trained on first use and kept in $MINIGEN_DATA/classifiers."""
    path = Path(data_root(root)) / "classifiers" / f"{data}-mlp256-v1.npz"
    if path.exists():
        state = load(path)
        model = FeatureClassifier(math.prod(train_x.shape[1:]))
        model.load_state_dict(state["model"])
        return model, float(state["test_accuracy"])
    epochs = 20 if len(train_x) < 10_000 else 3
    model, accuracy = train_classifier(train_x, train_y, test_x, test_y, epochs=epochs)
    save(path, {"model": model.state_dict(), "test_accuracy": accuracy, "data": data})
    return model, accuracy


# --- image metrics ---------------------------------------------------------------------------


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    r"""$\|\mu_a - \mu_b\|^2 + \mathrm{Tr}\,\Sigma_a + \mathrm{Tr}\,\Sigma_b - 2\,\mathrm{Tr}(\Sigma_a \Sigma_b)^{1/2}$.

    $\mathrm{Tr}(\Sigma_a \Sigma_b)^{1/2} = \mathrm{Tr}(\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2})^{1/2}$, the square root of a
    symmetric positive semi-definite matrix, which `eigh` computes stably."""
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def class_coverage(probs: np.ndarray, threshold: float = 0.05) -> dict:
    """The predicted-class histogram, the classes above `threshold`, and its KL from uniform."""
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    share = counts / counts.sum()
    positive = share > 0
    kl = float((share[positive] * np.log(share[positive] * len(share))).sum())
    return {"class_histogram": counts.tolist(), "classes_above_5pct": int((share > threshold).sum()), "kl_to_uniform": kl}


def inception_score(probs: np.ndarray) -> float:
    r"""$\exp\big(\mathbb E_x\, \mathrm{KL}(p(y \mid x) \,\|\, p(y))\big)$ with the classifier's $p(y \mid x)$."""
    marginal = probs.mean(axis=0, keepdims=True)
    kl = (probs * (np.log(probs + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
    return float(np.exp(kl.mean()))


def parzen_log_likelihood(
    samples: np.ndarray, validation: np.ndarray, test: np.ndarray, bandwidths=np.logspace(-1.5, 0, 10), batch: int = 100
) -> tuple[float, float]:
    r"""Goodfellow et al.'s protocol: $\ln \hat p(x) = \ln \frac1N \sum_i \mathcal N(x; s_i, \sigma^2 I)$ on
    the generated samples $s_i$; $\sigma$ maximises the validation log-likelihood. Returns
    (mean test log-likelihood in nats, sigma)."""
    flat = lambda a: np.asarray(a, dtype=np.float64).reshape(len(a), -1)  # noqa: E731
    samples, validation, test = flat(samples), flat(validation), flat(test)

    def mean_log_likelihood(x, sigma):
        total = 0.0
        d = x.shape[1]
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            sq = (chunk**2).sum(1)[:, None] - 2 * chunk @ samples.T + (samples**2).sum(1)[None, :]
            a = -np.maximum(sq, 0) / (2 * sigma**2)
            top = a.max(axis=1, keepdims=True)
            total += float((top[:, 0] + np.log(np.exp(a - top).sum(axis=1))).sum())
        return total / len(x) - math.log(len(samples)) - 0.5 * d * math.log(2 * math.pi * sigma**2)

    sigma = max(bandwidths, key=lambda s: mean_log_likelihood(validation, s))
    return mean_log_likelihood(test, sigma), float(sigma)


def reference_features(classifier: FeatureClassifier, train_x: np.ndarray, test_x: np.ndarray, n: int, seed: int = 0) -> dict:
    """What `image_metrics` compares n generated images with, from real images and noise alone,
    so a run computes it once: the test images' features, the real-vs-real floor (as many
    training images as generated ones, `floor_images` of them) and the noise baseline."""
    rng = np.random.default_rng(seed)
    floor_images = min(n, len(train_x))
    real_features, _ = classifier.features_and_probs(test_x)
    train_features, _ = classifier.features_and_probs(train_x[rng.choice(len(train_x), size=floor_images, replace=False)])
    noise_features, _ = classifier.features_and_probs(rng.random((n, *test_x.shape[1:]), dtype=np.float32))
    return {
        "n": n,
        "real_features": real_features,
        "floor_images": floor_images,
        "fid_real_vs_real": frechet_distance(train_features, real_features),
        "fid_noise": frechet_distance(noise_features, real_features),
    }


def image_metrics(
    classifier: FeatureClassifier,
    generated: np.ndarray,
    train_x: np.ndarray,
    test_x: np.ndarray,
    seed: int = 0,
    reference: dict | None = None,
) -> dict:
    """Classifier FID against the test images, beside its real-vs-real floor and noise baseline
    (`reference_features`, computed here unless given for as many images); class coverage and
    inception score. All images in [0, 1]."""
    if reference is None or reference["n"] != len(generated):
        reference = reference_features(classifier, train_x, test_x, len(generated), seed)
    gen_features, gen_probs = classifier.features_and_probs(generated)
    return {
        "fid": frechet_distance(gen_features, reference["real_features"]),
        **{key: reference[key] for key in ("fid_real_vs_real", "floor_images", "fid_noise")},
        "inception_score": inception_score(gen_probs),
        **class_coverage(gen_probs),
    }
