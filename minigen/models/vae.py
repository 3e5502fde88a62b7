r"""Variational autoencoders, written to be read beside Kingma and Welling (2014).

The generative model draws a latent code and then an image:

$$z \sim p(z) = \mathcal N(0, I), \qquad x \sim p_\theta(x \mid z),$$

with $p_\theta(x \mid z)$ a Bernoulli per pixel (the decoder gives its logits) or a Gaussian
(the decoder gives its mean; the variance is fixed or learned). The encoder gives an
approximate posterior $q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \mathrm{diag}\,\sigma^2_\phi(x))$,
as `mu` and `logvar` $= \ln \sigma^2$.

**The ELBO.** For any $q$, Jensen's inequality bounds the log-likelihood from below:

$$\ln p_\theta(x) = \ln \mathbb E_{q}\!\left[\frac{p_\theta(x, z)}{q_\phi(z \mid x)}\right]
\;\ge\; \mathbb E_{q}\big[\ln p_\theta(x \mid z)\big] - \mathrm{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big)
\;=\; \mathcal L(x).$$

The first term (the reconstruction) is estimated with one sample of $z$; the KL has the
closed form $\tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \ln \sigma_j^2)$. With $\beta \neq 1$,
$\mathcal L_\beta = \mathbb E_q[\ln p_\theta(x \mid z)] - \beta\, \mathrm{KL}$ (Higgins et al., 2017).

**The reparameterisation trick.** $z = \mu + \sigma \odot \varepsilon$ with
$\varepsilon \sim \mathcal N(0, I)$ and $\sigma = \exp(\tfrac12 \ln \sigma^2)$: the randomness
moves into $\varepsilon$, so $z$ is a differentiable function of $\mu$ and $\ln \sigma^2$ and
backpropagation reaches the encoder.

**The importance-weighted bound** (Burda et al., 2016). With $K$ samples $z_k \sim q_\phi(z \mid x)$,

$$\mathcal L_K(x) = \ln \frac1K \sum_{k=1}^K \frac{p_\theta(x \mid z_k)\, p(z_k)}{q_\phi(z_k \mid x)},
\qquad \mathcal L(x) = \mathcal L_1 \le \mathcal L_K \le \mathcal L_{K+1} \to \ln p_\theta(x),$$

which with $K = 5000$ is the usual estimate of the test log-likelihood.

Every figure is in nats per image: sums over pixels and latent dimensions, means over the batch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .. import nn
from ..data.loader import one_hot
from ..engine.tensor import Tensor, no_grad
from ..random import Generator, rng

LOG_2PI = math.log(2 * math.pi)


class ELBO(NamedTuple):
    """Per-example terms, each of shape (N,), in nats: elbo = reconstruction - beta * kl."""

    elbo: Tensor
    reconstruction: Tensor
    kl: Tensor


def mlp(sizes: list[int], activation=nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def gaussian_log_density(x: Tensor, mean: Tensor, logvar) -> Tensor:
    r"""$\ln \mathcal N(x; \mu, \sigma^2) = -\tfrac12 (\ln 2\pi + \ln \sigma^2 + (x - \mu)^2 / \sigma^2)$, elementwise.
    `logvar` is a tensor (learned) or a number (fixed)."""
    var = logvar.exp() if isinstance(logvar, Tensor) else math.exp(logvar)
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 / var)


class VAE(nn.Module):
    """A VAE with MLP encoder and decoder.

    `x_shape` is one image's shape, e.g. (1, 8, 8); `hidden` the hidden sizes of the encoder
    (the decoder mirrors them); `latent` the size of z. `likelihood` is "bernoulli" (pixels
    in [0, 1], binarised data) or "gaussian", whose variance is `gaussian_variance`: a number
    (fixed), or "learned" (one learned variance per pixel).
    The defaults, 784-400-20, are those of PyTorch's MNIST example (Kingma and Welling used
    500 hidden units); `minigen.experiments.vae` picks smaller ones for the 8x8 digits.
    """

    def __init__(
        self,
        x_shape=(1, 28, 28),
        hidden=(400,),
        latent: int = 20,
        likelihood: str = "bernoulli",
        gaussian_variance="learned",
        num_classes: int = 0,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAE: likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.x_shape, self.latent, self.likelihood, self.num_classes = tuple(x_shape), latent, likelihood, num_classes
        self.pixels = math.prod(self.x_shape)
        self.gaussian_variance = gaussian_variance
        if likelihood == "gaussian" and gaussian_variance == "learned":
            self.decoder_logvar = nn.Parameter(np.zeros((1, *self.x_shape), np.float32))
        self.build(list(hidden))

    def build(self, hidden: list[int]) -> None:
        """The networks: MLPs here; ConvVAE builds convolutional ones."""
        self.encoder = mlp([self.pixels + self.num_classes, *hidden])
        width = hidden[-1] if hidden else self.pixels + self.num_classes
        self.encoder_activation = nn.ReLU() if hidden else nn.Sequential()
        self.to_mu = nn.Linear(width, self.latent)
        self.to_logvar = nn.Linear(width, self.latent)
        self.decoder = nn.Sequential(mlp([self.latent + self.num_classes, *hidden[::-1], self.pixels]), nn.Unflatten(1, self.x_shape))

    # --- the two networks ---

    def _with_labels(self, h: Tensor, y) -> Tensor:
        """Append one-hot labels to a flat input (conditional VAEs only)."""
        if not self.num_classes:
            return h
        if y is None:
            raise ValueError(f"{type(self).__name__}: this model is conditional: pass the labels y")
        return F.concatenate([h, Tensor(one_hot(y, self.num_classes), dtype=h.dtype)], axis=1)

    def encode(self, x: Tensor, y=None) -> tuple[Tensor, Tensor]:
        """q(z | x): returns mu and logvar, each (N, latent)."""
        h = self.encoder_activation(self.encoder(self._with_labels(x.reshape(x.shape[0], -1), y)))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: Tensor, y=None) -> Tensor:
        """p(x | z): Bernoulli logits or Gaussian means, shaped like the images."""
        return self.decoder(self._with_labels(z, y))

    # --- the ELBO ---

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, eps) -> Tensor:
        r"""$z = \mu + \exp(\tfrac12 \ln\sigma^2) \odot \varepsilon$: exp of half the log-variance is the
        standard deviation, always positive, and the encoder's output is unconstrained."""
        return mu + (0.5 * logvar).exp() * eps

    def log_likelihood(self, x, decoded: Tensor) -> Tensor:
        r"""$\ln p_\theta(x \mid z)$ per example: the sum over pixels."""
        if self.likelihood == "bernoulli":
            per_pixel = -F.binary_cross_entropy_with_logits(decoded, x, reduction="none")
        else:
            logvar = self.decoder_logvar if self.gaussian_variance == "learned" else math.log(self.gaussian_variance)
            per_pixel = gaussian_log_density(decoded._lift(x), decoded, logvar)
        return per_pixel.reshape(per_pixel.shape[0], -1).sum(axis=1)

    def elbo(self, x, y=None, beta: float = 1.0, eps=None, generator: Generator | None = None) -> ELBO:
        r"""$\mathcal L_\beta(x) = \ln p_\theta(x \mid z) - \beta\, \mathrm{KL}(q_\phi(z \mid x) \,\|\, \mathcal N(0, I))$,
        with one $z = \mu + \sigma \odot \varepsilon$ per example (`eps` fixes $\varepsilon$)."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        mu, logvar = self.encode(x, y)
        if eps is None:
            eps = rng(generator).standard_normal(mu.shape).astype(mu.dtype)
        z = self.reparameterize(mu, logvar, eps)
        reconstruction = self.log_likelihood(x, self.decode(z, y))
        kl = F.kl_standard_normal(mu, logvar, reduction="none").sum(axis=1)
        return ELBO(reconstruction - beta * kl, reconstruction, kl)

    # --- the importance-weighted bound ---

    @no_grad()
    def iwae_bound(self, x, y=None, k: int = 5000, chunk: int = 500, generator: Generator | None = None) -> np.ndarray:
        r"""$\mathcal L_K$ for every example (nats, shape (N,)), drawing the K samples `chunk` at a time
        and combining them with a running log-sum-exp, so K = 5000 fits in memory."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        mu, logvar = self.encode(x, y)
        n, d = mu.shape
        total = np.full(n, -np.inf)
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = rng(generator).standard_normal((m, n, d)).astype(mu.dtype)
            z = self.reparameterize(mu, logvar, eps).reshape(m * n, d)  # sample-major: row s * n + i
            repeated = x.data[np.tile(np.arange(n), m)]
            labels = None if y is None else np.tile(np.asarray(y), m)
            log_px_z = self.log_likelihood(repeated, self.decode(z, labels)).data.reshape(m, n)
            log_pz = (-0.5 * (LOG_2PI + z.data**2)).sum(axis=1).reshape(m, n)
            log_qz = (-0.5 * (LOG_2PI + logvar.data + eps**2)).sum(axis=2)
            log_w = (log_px_z + log_pz - log_qz).astype(np.float64)
            top = np.maximum(total, log_w.max(axis=0))
            total = top + np.log(np.exp(total - top) + np.exp(log_w - top).sum(axis=0))
        return total - math.log(k)

    # --- using the model ---

    def mean_image(self, decoded: Tensor) -> np.ndarray:
        """The decoder's expected image: sigmoid of the logits, or the Gaussian mean."""
        return F.sigmoid(decoded).data if self.likelihood == "bernoulli" else decoded.data

    @no_grad()
    def sample(self, n: int, y=None, generator: Generator | None = None) -> np.ndarray:
        """n images decoded from z ~ N(0, I) (their means, not pixel-wise samples)."""
        z = Tensor(rng(generator).standard_normal((n, self.latent)).astype(self.to_mu.weight.dtype))
        return self.mean_image(self.decode(z, y))

    @no_grad()
    def reconstruct(self, x, y=None) -> np.ndarray:
        """Decode each image's posterior mean."""
        mu, _ = self.encode(x if isinstance(x, Tensor) else Tensor(x), y)
        return self.mean_image(self.decode(mu, y))


def elbo_step(model: VAE, optimizer, x, labels=None, beta: float = 1.0, generator: Generator | None = None) -> dict:
    r"""One step of stochastic gradient ascent on the ELBO (Kingma and Welling, 2014, Algorithm 1):
    the minibatch estimate $\frac1M \sum_i \mathcal L_\beta(x_i)$, one $\varepsilon$ per example, is
    maximised by descending its negative. Returns that loss and the batch means of the
    ELBO's terms (nats per image)."""
    terms = model.elbo(x, labels, beta=beta, generator=generator)
    loss = -terms.elbo.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    reconstruction, kl = float(terms.reconstruction.data.mean()), float(terms.kl.data.mean())
    return {"loss": loss.item(), "elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}


class ConvVAE(VAE):
    """A VAE whose encoder is strided convolutions and whose decoder is transposed convolutions.

    Each 4x4 stride-2 convolution halves the image (8 -> 4 -> 2, or 28 -> 14 -> 7); the
    decoder mirrors it. `hidden` gives the channel counts, e.g. (32, 64).
    """

    def __init__(
        self,
        x_shape=(1, 28, 28),
        hidden=(32, 64),
        latent: int = 20,
        likelihood: str = "bernoulli",
        gaussian_variance="learned",
        num_classes: int = 0,
    ):
        if x_shape[1] % 4 or x_shape[2] % 4:
            raise ValueError(f"ConvVAE: image height and width must be multiples of 4 (two halvings), got {x_shape}")
        super().__init__(x_shape, hidden, latent, likelihood, gaussian_variance, num_classes)

    def build(self, hidden: list[int]) -> None:
        if len(hidden) != 2:
            raise ValueError(f"ConvVAE: hidden gives the two convolutions' channel counts, e.g. (32, 64); got {hidden}")
        c, h, w = self.x_shape
        c1, c2 = hidden
        small = (c2, h // 4, w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c1, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.encoder_activation = nn.Sequential()
        self.to_mu = nn.Linear(math.prod(small) + self.num_classes, self.latent)
        self.to_logvar = nn.Linear(math.prod(small) + self.num_classes, self.latent)
        self.decoder = nn.Sequential(
            nn.Linear(self.latent + self.num_classes, math.prod(small)),
            nn.ReLU(),
            nn.Unflatten(1, small),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1),
        )

    def encode(self, x: Tensor, y=None) -> tuple[Tensor, Tensor]:
        h = self._with_labels(self.encoder(x.reshape(x.shape[0], *self.x_shape)), y)
        return self.to_mu(h), self.to_logvar(h)


class ConditionalVAE(VAE):
    """A VAE told the class: the one-hot label is appended to the encoder's input and to z
    (Sohn et al., 2015), so the decoder can draw a chosen digit: `sample(n, y=labels)`."""

    def __init__(
        self,
        x_shape=(1, 28, 28),
        hidden=(400,),
        latent: int = 20,
        likelihood: str = "bernoulli",
        gaussian_variance="learned",
        num_classes: int = 10,
    ):
        super().__init__(x_shape, hidden, latent, likelihood, gaussian_variance, num_classes)
