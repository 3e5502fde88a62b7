r"""Generative adversarial networks, written to be read beside Goodfellow et al. (2014),
Radford et al. (2015) and Gulrajani et al. (2017).

A generator $G$ turns noise $z \sim p(z) = \mathcal N(0, I)$ into samples; a discriminator $D$
says how likely a sample is to be real. They play the minimax game with value function

$$V(D, G) = \mathbb E_{x \sim p_\text{data}}[\ln D(x)] + \mathbb E_{z \sim p(z)}[\ln(1 - D(G(z)))],
\qquad \min_G \max_D V(D, G).$$

For a fixed $G$ with sample density $p_g$, the best discriminator is
$D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_g(x))$, and then
$V(D^*, G) = -\ln 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)$: the generator minimises the
Jensen-Shannon divergence, and the game's solution is $p_g = p_\text{data}$.

**Why the non-saturating loss.** Early in training $D$ rejects the generator's samples easily:
$D(G(z)) \approx 0$, where $\ln(1 - D(G(z)))$ is flat and its gradient vanishes. Goodfellow et
al. therefore train $G$ to *maximise* $\ln D(G(z))$ instead: the same fixed point, but strong
gradients exactly when $G$ is bad. Both losses are here (`generator_loss(kind=...)`).

$D$ outputs a logit $\ell$ with $D = \sigma(\ell)$, so every log-probability below is computed by
`binary_cross_entropy_with_logits`, finite for any logit.

**WGAN-GP.** A critic $f$ (no sigmoid, no batch norm) estimates the Wasserstein-1 distance
$W(p_\text{data}, p_g) = \sup_{\|f\|_L \le 1} \mathbb E_{p_\text{data}}[f] - \mathbb E_{p_g}[f]$;
the Lipschitz constraint is encouraged by the gradient penalty
$\lambda\, \mathbb E_{\hat x}\big[(\|\nabla_{\hat x} f(\hat x)\|_2 - 1)^2\big]$ on points
$\hat x = \epsilon x + (1 - \epsilon) G(z)$, $\epsilon \sim U[0, 1]$ per example, $\lambda = 10$.
The penalty differentiates through the critic's own gradient: gradients of gradients.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import nn
from ..engine.tensor import Tensor, grad, no_grad
from ..random import Generator, rng

# --- the losses ------------------------------------------------------------------------------


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0) -> Tensor:
    r"""$-\big(\mathbb E[\ln D(x)] + \mathbb E[\ln(1 - D(G(z)))]\big)$: maximise V by minimising its negative.

    With one-sided label smoothing (Salimans et al., 2016) the real target is $1 - s$
    instead of 1, which keeps D from becoming overconfident; the fake target stays 0."""
    real_target = np.full(real_logits.shape, 1.0 - label_smoothing, dtype=real_logits.dtype)
    fake_target = np.zeros(fake_logits.shape, dtype=fake_logits.dtype)
    return F.binary_cross_entropy_with_logits(real_logits, real_target) + F.binary_cross_entropy_with_logits(fake_logits, fake_target)


def generator_loss(fake_logits: Tensor, kind: str = "non-saturating") -> Tensor:
    r"""The generator's loss on $D$'s logits for its samples.

    - "minimax": minimise $\mathbb E[\ln(1 - D(G(z)))]$, the game as written (saturates when D wins);
    - "non-saturating": minimise $-\mathbb E[\ln D(G(z))]$, the practical choice.
    """
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, np.ones(fake_logits.shape, dtype=fake_logits.dtype))
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, np.zeros(fake_logits.shape, dtype=fake_logits.dtype))
    raise ValueError(f"generator_loss: kind must be 'non-saturating' or 'minimax', got {kind!r}")


def gradient_penalty(
    critic, real: Tensor, fake: Tensor, labels=None, weight: float = 10.0, generator: Generator | None = None, eps=None
) -> Tensor:
    r"""$\lambda\, \mathbb E_{\hat x}[(\|\nabla_{\hat x} f(\hat x)\|_2 - 1)^2]$ with $\hat x = \epsilon x + (1 - \epsilon) \tilde x$,
    one $\epsilon \sim U[0, 1]$ per example (Gulrajani et al., 2017); `eps` fixes them."""
    real = real if isinstance(real, Tensor) else Tensor(real)
    if eps is None:
        eps = rng(generator).random((real.shape[0],) + (1,) * (real.ndim - 1)).astype(real.dtype)
    between = Tensor(eps * real.data + (1 - eps) * fake.data, requires_grad=True)
    scores = critic(between) if labels is None else critic(between, labels)
    (slope,) = grad(scores.sum(), between, create_graph=True)  # the critic's gradient, itself differentiable
    norm = (slope * slope).reshape(real.shape[0], -1).sum(axis=1).sqrt()
    return weight * ((norm - 1.0) ** 2).mean()


def critic_loss(real_scores: Tensor, fake_scores: Tensor, penalty: Tensor) -> Tensor:
    r"""WGAN-GP's critic loss, $\mathbb E[f(\tilde x)] - \mathbb E[f(x)] + \lambda\,\mathrm{GP}$: the critic
    ascends the estimate of $W$ by descending its negative, the penalty (already weighted) added."""
    return fake_scores.mean() - real_scores.mean() + penalty


def wgan_generator_loss(fake_scores: Tensor) -> Tensor:
    r"""$-\mathbb E[f(G(z))]$: the generator moves its samples up the critic's scores."""
    return -fake_scores.mean()


# --- one step of each player ------------------------------------------------------------------
#
# Goodfellow et al. (2014), Algorithm 1, for each training iteration:
#   for k steps: sample m noise vectors z and m data x; ascend V on D's parameters;
#   then: sample m noise vectors z; descend the generator's loss on G's parameters.
# Gulrajani et al. (2017), Algorithm 1, the same with the critic's loss, k = 5, lambda = 10.
# Each step below is one of those lines; `minigen.experiments.gan` repeats them over the data.


def discriminator_step(G, D, optimizer, real: Tensor, z: Tensor, labels=None, label_smoothing: float = 0.0) -> dict:
    """One step of D on a batch of real samples and of G(z). G(z) is made under no_grad, so
    only D can move. Returns D's loss and its mean output on real and on generated samples."""
    with no_grad():
        fake = G(z, labels)
    real_logits, fake_logits = D(real, labels), D(fake, labels)
    loss = discriminator_loss(real_logits, fake_logits, label_smoothing)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"d_loss": loss.item(), "d_real": float(F.sigmoid(real_logits).data.mean()), "d_fake": float(F.sigmoid(fake_logits).data.mean())}


def generator_step(G, D, optimizer, z: Tensor, labels=None, kind: str = "non-saturating") -> dict:
    """One step of G. Its loss backpropagates through D, but only G's optimizer steps (D's
    gradients from here are cleared by D's next zero_grad)."""
    loss = generator_loss(D(G(z, labels), labels), kind)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"g_loss": loss.item()}


def critic_step(
    G, D, optimizer, real: Tensor, z: Tensor, labels=None, penalty_weight: float = 10.0, generator: Generator | None = None
) -> dict:
    """One step of the WGAN-GP critic (D here, with no sigmoid): `critic_loss` on a batch of real
    samples and of G(z), the gradient penalty drawn with `generator`. Returns the loss and the
    critic's mean score on real and on generated samples."""
    with no_grad():
        fake = G(z, labels)
    real_scores, fake_scores = D(real, labels), D(fake, labels)
    loss = critic_loss(real_scores, fake_scores, gradient_penalty(D, real, fake, labels, penalty_weight, generator))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"d_loss": loss.item(), "d_real": float(real_scores.data.mean()), "d_fake": float(fake_scores.data.mean())}


def wgan_generator_step(G, D, optimizer, z: Tensor, labels=None) -> dict:
    """One step of G against the critic: `wgan_generator_loss`."""
    loss = wgan_generator_loss(D(G(z, labels), labels))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"g_loss": loss.item()}


# --- the networks ----------------------------------------------------------------------------


class MLPGenerator(nn.Module):
    """z -> fully connected ReLU layers -> a sample of `out_shape`.

    `output="tanh"` for images scaled to [-1, 1] (the range tanh covers, so the last layer
    need not learn to squash); `"linear"` for 2-D toy points, which have no fixed range."""

    def __init__(self, latent: int, out_shape, hidden=(128, 128), output: str = "tanh", num_classes: int = 0):
        super().__init__()
        self.latent, self.out_shape, self.output, self.num_classes = latent, tuple(out_shape), output, num_classes
        sizes = [latent + num_classes, *hidden]
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers += [nn.Linear(sizes[-1], math.prod(self.out_shape)), nn.Unflatten(1, self.out_shape)]
        self.net = nn.Sequential(*layers)
        if num_classes:
            self.label_embedding = nn.Embedding(num_classes, num_classes)

    def forward(self, z: Tensor, labels=None) -> Tensor:
        if self.num_classes:
            z = F.concatenate([z, self.label_embedding(labels)], axis=1)
        out = self.net(z)
        return F.tanh(out) if self.output == "tanh" else out


class MLPDiscriminator(nn.Module):
    """A sample -> fully connected LeakyReLU(0.2) layers -> one logit (or critic score)."""

    def __init__(self, in_shape, hidden=(128, 128), num_classes: int = 0):
        super().__init__()
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        sizes = [math.prod(self.in_shape) + num_classes, *hidden]
        layers = [nn.Flatten()] if not num_classes else []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)
        if num_classes:
            self.label_embedding = nn.Embedding(num_classes, num_classes)

    def forward(self, x: Tensor, labels=None) -> Tensor:
        if self.num_classes:
            x = F.concatenate([x.reshape(x.shape[0], -1), self.label_embedding(labels)], axis=1)
        return self.net(x).reshape(-1)


class DCGANGenerator(nn.Module):
    """Radford et al.'s generator, for square images of side 4 s (8 for the digits, 28 for MNIST):
    z -> linear -> (2c, s, s) -> transposed convolutions doubling the side twice -> tanh.
    Batch norm after every layer but the output; ReLU inside."""

    def __init__(self, latent: int, image_shape=(1, 28, 28), channels: int = 64):
        super().__init__()
        c, h, w = image_shape
        if h != w or h % 4:
            raise ValueError(f"DCGANGenerator: images must be square with a side divisible by 4, got {image_shape}")
        self.latent, side = latent, h // 4
        self.project = nn.Sequential(
            nn.Linear(latent, 2 * channels * side * side, bias=False),
            nn.Unflatten(1, (2 * channels, side, side)),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, c, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels=None) -> Tensor:
        return self.upsample(self.project(z))


class DCGANDiscriminator(nn.Module):
    """Radford et al.'s discriminator: strided convolutions halving the side twice, LeakyReLU(0.2),
    batch norm on every layer but the input one (`batch_norm=False` for a WGAN-GP critic,
    whose penalty is per example and which batch norm would couple), then one logit."""

    def __init__(self, image_shape=(1, 28, 28), channels: int = 64, batch_norm: bool = True):
        super().__init__()
        c, h, w = image_shape
        norm = [nn.BatchNorm2d(2 * channels)] if batch_norm else []
        self.features = nn.Sequential(
            nn.Conv2d(c, channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1, bias=not batch_norm),
            *norm,
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.score = nn.Linear(2 * channels * (h // 4) * (w // 4), 1)

    def forward(self, x: Tensor, labels=None) -> Tensor:
        return self.score(self.features(x)).reshape(-1)
