r"""Denoising diffusion: the forward process, its posterior, the noise-prediction loss and the
two samplers, written to be read beside Ho et al. (2020, "DDPM") and Song et al. (2021, "DDIM").

**The forward process** adds a little Gaussian noise at each of $T$ steps,
$q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1 - \beta_t}\, x_{t-1},\ \beta_t I)$, with a schedule
$\beta_1, \dots, \beta_T$. With $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s \le t} \alpha_s$
the steps compose in closed form,

$$q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I), \qquad
x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon, \quad \varepsilon \sim \mathcal N(0, I),$$

so training can jump to any $t$ at once (`q_sample`). $\bar\alpha_T \approx 0$: $x_T$ is pure noise.

**The posterior** of one step back, given where the chain started, is Gaussian too (`posterior`):

$$q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I), \quad
\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t} x_0
+ \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t,
\quad \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t} \beta_t.$$

**The model** predicts the noise: $\varepsilon_\theta(x_t, t) \approx \varepsilon$. Putting
$x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\varepsilon) / \sqrt{\bar\alpha_t}$ into $\tilde\mu_t$ gives
the reverse step's mean
$\mu_\theta = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \varepsilon_\theta\big)$.
The ELBO's term for step $t$ is then a weighted squared error of the noise,
$\frac{\beta_t^2}{2 \sigma_t^2 \alpha_t (1 - \bar\alpha_t)} \|\varepsilon - \varepsilon_\theta\|^2$; Ho et al.
drop the weight and train on the simplified objective (`noise_prediction_loss`)

$$L_\text{simple} = \mathbb E_{t \sim U\{1..T\},\, x_0,\, \varepsilon}\,
\big\|\varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon,\ t)\big\|^2,$$

which weights the noisy steps more than the ELBO does, and gave them better samples.

**Sampling.** Ancestral (DDPM): from $x_T \sim \mathcal N(0, I)$, $x_{t-1} = \mu_\theta + \sigma_t z$
with $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$ (`ddpm_step`), $T$ network evaluations. DDIM
(`ddim_step`) jumps from $t$ to any earlier $s$ through the predicted $\hat x_0$:

$$x_s = \sqrt{\bar\alpha_s}\, \hat x_0 + \sqrt{1 - \bar\alpha_s - \sigma^2}\; \varepsilon_\theta + \sigma z, \qquad
\sigma = \eta \sqrt{\frac{1 - \bar\alpha_s}{1 - \bar\alpha_t}\Big(1 - \frac{\bar\alpha_t}{\bar\alpha_s}\Big)};$$

$\eta = 0$ is deterministic, and $\eta = 1$ with $s = t - 1$ is exactly the DDPM step with
$\sigma_t^2 = \tilde\beta_t$ (tested), so a few dozen DDIM steps can stand in for a thousand.

Arrays are indexed by the step itself: `schedule.alpha_bar[t]` for $t = 0, \dots, T$, with
$\bar\alpha_0 = 1$ (no noise yet) and `beta[0] = 0`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import functional as F
from .. import nn
from ..engine.arrays import concatenate
from ..engine.tensor import Tensor

__all__ = [
    "NoiseSchedule",
    "q_sample",
    "posterior",
    "noise_prediction_loss",
    "ddpm_step",
    "ddim_step",
    "sample",
    "timestep_embedding",
    "MLPDenoiser",
    "ResidualBlock",
    "UNetDenoiser",
]


@dataclass(frozen=True)
class NoiseSchedule:
    r"""$\beta_t$, $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s \le t} \alpha_s$ for $t = 0, \dots, T$ (index 0: no noise)."""

    beta: np.ndarray

    @property
    def steps(self) -> int:
        """T, the number of noising steps."""
        return len(self.beta) - 1

    @property
    def alpha(self) -> np.ndarray:
        return 1.0 - self.beta

    @property
    def alpha_bar(self) -> np.ndarray:
        return np.cumprod(self.alpha)

    @classmethod
    def linear(cls, steps: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> NoiseSchedule:
        r"""$\beta_t$ from $10^{-4}$ to $0.02$ in equal increments over $T = 1000$ steps (Ho et al., 2020)."""
        _check_steps(steps, "linear")
        return cls(np.concatenate([[0.0], np.linspace(beta_1, beta_T, steps)]))

    @classmethod
    def cosine(cls, steps: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        r"""$\bar\alpha_t = f(t) / f(0)$ with $f(t) = \cos^2\big(\frac{t/T + s}{1 + s} \frac{\pi}{2}\big)$, $s = 0.008$,
        and $\beta_t = 1 - \bar\alpha_t / \bar\alpha_{t-1}$ capped at 0.999 (Nichol and Dhariwal, 2021):
        the noise grows slowly at both ends, so fewer steps are spent on images that are already noise."""
        _check_steps(steps, "cosine")
        f = np.cos((np.arange(steps + 1) / steps + offset) / (1 + offset) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        beta = np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)
        return cls(np.concatenate([[0.0], beta]))


def _check_steps(steps, name: str) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"NoiseSchedule.{name}: steps must be a positive int, got {steps!r}")


def _per_example(values: np.ndarray, t, like: np.ndarray) -> np.ndarray:
    """values[t] shaped to broadcast over examples of `like` (one t per example, or one for all)."""
    picked = values[np.asarray(t)]
    return picked.reshape(picked.shape + (1,) * (like.ndim - picked.ndim)).astype(like.dtype)


def q_sample(schedule: NoiseSchedule, x0: np.ndarray, t, noise: np.ndarray) -> np.ndarray:
    r"""$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon$: a draw from $q(x_t \mid x_0)$ in one step."""
    alpha_bar = _per_example(schedule.alpha_bar, t, x0)
    return np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * noise


def posterior(schedule: NoiseSchedule, x0: np.ndarray, x_t: np.ndarray, t) -> tuple[np.ndarray, np.ndarray]:
    r"""The mean $\tilde\mu_t$ and variance $\tilde\beta_t$ of $q(x_{t-1} \mid x_t, x_0)$ (module docstring), for $t \ge 1$."""
    t = np.asarray(t)
    beta, alpha = _per_example(schedule.beta, t, x_t), _per_example(schedule.alpha, t, x_t)
    alpha_bar, alpha_bar_prev = _per_example(schedule.alpha_bar, t, x_t), _per_example(schedule.alpha_bar, t - 1, x_t)
    mean = np.sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar) * x0 + np.sqrt(alpha) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * x_t
    return mean, (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * beta


def noise_prediction_loss(model: Callable, schedule: NoiseSchedule, x0: np.ndarray, generator: np.random.Generator) -> Tensor:
    r"""$L_\text{simple}$ on a batch: for each example a step $t \sim U\{1, \dots, T\}$ and noise
    $\varepsilon$; the mean over examples and dimensions of $(\varepsilon - \varepsilon_\theta(x_t, t))^2$.
    `model(x_t, t)` takes the noisy batch (a Tensor) and the steps (ints) and predicts the noise."""
    t = generator.integers(1, schedule.steps + 1, size=len(x0))
    noise = generator.standard_normal(x0.shape).astype(x0.dtype)
    predicted = model(Tensor(q_sample(schedule, x0, t, noise)), t)
    return ((predicted - noise) ** 2).mean()


def ddpm_step(
    schedule: NoiseSchedule, x_t: np.ndarray, t: int, predicted_noise: np.ndarray, z: np.ndarray, variance: str = "beta"
) -> np.ndarray:
    r"""$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \varepsilon_\theta\big) + \sigma_t z$,
    with $\sigma_t^2 = \beta_t$ (`variance="beta"`) or $\tilde\beta_t$ (`"posterior"`); no noise at $t = 1$."""
    if variance not in ("beta", "posterior"):
        raise ValueError(f"ddpm_step: variance must be 'beta' or 'posterior', got {variance!r}")
    beta, alpha, alpha_bar = schedule.beta[t], schedule.alpha[t], schedule.alpha_bar[t]
    mean = (x_t - beta / math.sqrt(1.0 - alpha_bar) * predicted_noise) / math.sqrt(alpha)
    if t == 1:
        return mean
    sigma2 = beta if variance == "beta" else (1.0 - schedule.alpha_bar[t - 1]) / (1.0 - alpha_bar) * beta
    return mean + math.sqrt(sigma2) * z


def ddim_step(
    schedule: NoiseSchedule,
    x_t: np.ndarray,
    t: int,
    s: int,
    predicted_noise: np.ndarray,
    eta: float = 0.0,
    z=None,
    clip: float | None = None,
) -> np.ndarray:
    r"""From step $t$ to an earlier step $s$ through $\hat x_0$ (module docstring); $\eta = 0$ is deterministic.

    `clip` limits $\hat x_0$ to $[-c, c]$, the range of the data (1 for images scaled to [-1, 1]),
    and then uses the noise that this $\hat x_0$ implies. It matters where $\bar\alpha_t \approx 0$:
    there $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\varepsilon_\theta) / \sqrt{\bar\alpha_t}$ divides the
    model's error by a tiny number: the cosine schedule's $\sqrt{\bar\alpha_T}$ is about $5 \cdot 10^{-5}$,
    so an error of 0.01 in the predicted noise is an error of 200 in $\hat x_0$."""
    alpha_bar_t, alpha_bar_s = schedule.alpha_bar[t], schedule.alpha_bar[s]
    x0_hat = (x_t - math.sqrt(1.0 - alpha_bar_t) * predicted_noise) / math.sqrt(alpha_bar_t)
    if clip is not None:
        x0_hat = np.clip(x0_hat, -clip, clip)
        predicted_noise = (x_t - math.sqrt(alpha_bar_t) * x0_hat) / math.sqrt(1.0 - alpha_bar_t)
    sigma = eta * math.sqrt((1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_s))
    x_s = math.sqrt(alpha_bar_s) * x0_hat + math.sqrt(max(1.0 - alpha_bar_s - sigma**2, 0.0)) * predicted_noise
    return x_s if sigma == 0.0 else x_s + sigma * z


def sample(
    predict_noise: Callable,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    generator: np.random.Generator,
    steps: int | None = None,
    eta: float = 0.0,
    clip: float | None = None,
    dtype=np.float32,
    trajectory: list | None = None,
) -> np.ndarray:
    r"""Draw samples: with `steps=None`, ancestral sampling through all T steps (`ddpm_step`);
    with `steps=k`, DDIM on k steps evenly spaced from T down to 1 (`ddim_step`, noise scale `eta`,
    $\hat x_0$ limited to [-clip, clip] when `clip` is given).
    `predict_noise(x_t, t)` takes a NumPy batch and an int step and returns the predicted noise.
    A list given as `trajectory` receives `(t, x_t)` for the start $x_T$ and after every step."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= schedule.steps):
        raise ValueError(f"sample: steps must be an int from 1 to T = {schedule.steps} (or None for all T ancestral steps), got {steps!r}")
    record = trajectory.append if trajectory is not None else lambda _: None
    x = generator.standard_normal(shape).astype(dtype)
    record((schedule.steps, x))
    if steps is None:
        for t in range(schedule.steps, 0, -1):
            x = ddpm_step(schedule, x, t, predict_noise(x, t), generator.standard_normal(shape).astype(dtype)).astype(dtype)
            record((t - 1, x))
        return x
    times = np.unique(np.round(np.linspace(schedule.steps, 1, int(steps))).astype(int))[::-1]
    for t, s in zip(times, list(times[1:]) + [0]):
        z = generator.standard_normal(shape).astype(dtype) if eta else None
        x = ddim_step(schedule, x, int(t), int(s), predict_noise(x, int(t)), eta, z, clip).astype(dtype)
        record((int(s), x))
    return x


def timestep_embedding(t, dim: int, max_period: float = 10_000.0) -> np.ndarray:
    r"""The sinusoidal embedding of the steps (Vaswani et al., 2017; used by Ho et al.): for $i < d/2$,
    $e_{2i} = \sin(t / P^{2i/d})$ and $e_{2i+1} = \cos(t / P^{2i/d})$ with $P = 10^4$; shape (len(t), dim)."""
    if dim < 2 or dim % 2:
        raise ValueError(f"timestep_embedding: dim must be a positive even number, got {dim}")
    frequencies = max_period ** (-np.arange(dim // 2) * 2.0 / dim)
    angles = np.asarray(t, dtype=np.float64).reshape(-1, 1) * frequencies
    embedding = np.empty((angles.shape[0], dim))
    embedding[:, 0::2], embedding[:, 1::2] = np.sin(angles), np.cos(angles)
    return embedding.astype(np.float32)


class MLPDenoiser(nn.Module):
    r"""$\varepsilon_\theta(x_t, t)$ for points (the 2-D toys): the point and the embedding of its step,
    side by side, through fully connected SiLU layers to a prediction of the noise."""

    def __init__(self, data_dim: int = 2, hidden=(128, 128, 128), embed_dim: int = 32):
        super().__init__()
        self.embed_dim = embed_dim
        layers, fan_in = [], data_dim + embed_dim
        for fan_out in hidden:
            layers += [nn.Linear(fan_in, fan_out), nn.SiLU()]
            fan_in = fan_out
        self.net = nn.Sequential(*layers, nn.Linear(fan_in, data_dim))

    def forward(self, x: Tensor, t) -> Tensor:
        steps = Tensor(timestep_embedding(np.broadcast_to(t, (x.shape[0],)), self.embed_dim), dtype=x.dtype)
        return self.net(concatenate([x, steps], axis=1))


class ResidualBlock(nn.Module):
    r"""Two 3x3 convolutions with the step added in between, around a shortcut (Ho et al.'s block,
    without dropout):

    $$h = \mathrm{conv}_1(\mathrm{SiLU}(\mathrm{GN}(x))) + W e_t, \qquad
    \mathrm{out} = \mathrm{conv}_2(\mathrm{SiLU}(\mathrm{GN}(h))) + \mathrm{shortcut}(x),$$

    with $e_t$ the step's embedding (one shift per channel, the same at every pixel) and the
    shortcut a 1x1 convolution where the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(groups, in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.step = nn.Linear(embed_dim, out_channels)
        self.norm2 = nn.GroupNorm(math.gcd(groups, out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.step(F.silu(embedding)).reshape(h.shape[0], -1, 1, 1)
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class UNetDenoiser(nn.Module):
    r"""$\varepsilon_\theta(x_t, t)$ for images: a small U-Net (Ronneberger et al., 2015, as Ho et al.
    use it). With `channels=(32, 64)` on 8x8 digits:

        (1, 8, 8) -> conv 3x3 -> 32 @ 8x8 -> block -> 32 @ 8x8 ----------------- skip ----+
                                            -> conv 3x3 stride 2 -> 32 @ 4x4           |
                                            -> block -> 64 @ 4x4 --- skip ---+         |
                                            -> block (the middle) 64 @ 4x4   |         |
                        [64 + 64] -> block -> 64 @ 4x4 <-------- concat -----+         |
                        upsample x2, conv 3x3 -> 64 @ 8x8                              |
                        [64 + 32] -> block -> 32 @ 8x8 <-------- concat ---------------+
                        -> GN, SiLU, conv 3x3 -> (1, 8, 8), the predicted noise

    Each level halves the side (28 -> 14 -> 7 for MNIST with three levels), so the side must be
    divisible by 2^(levels - 1). Every block gets the step's embedding: its sinusoidal code through
    a two-layer MLP. Group norm uses up to `groups` groups (fewer where they do not divide
    the channels). The last convolution starts at zero, so an untrained network predicts no
    noise (loss 1 per pixel) rather than a random image."""

    def __init__(self, image_shape=(1, 8, 8), channels=(32, 64), groups: int = 8):
        super().__init__()
        in_channels, height, width = image_shape
        self.image_shape, self.channels = tuple(image_shape), tuple(channels)
        side = 2 ** (len(channels) - 1)
        if height % side or width % side:
            raise ValueError(
                f"UNetDenoiser: {len(channels)} levels halve the image {len(channels) - 1} times, so its sides must "
                f"be divisible by {side}; got {height}x{width}"
            )
        first, embed_dim = channels[0], 4 * channels[0]
        self.embed = nn.Sequential(nn.Linear(first, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.stem = nn.Conv2d(in_channels, first, 3, padding=1)
        down, up, previous = [], [], first
        for level, count in enumerate(channels):
            down.append(ResidualBlock(previous, count, embed_dim, groups))
            if level < len(channels) - 1:
                down.append(nn.Conv2d(count, count, 3, stride=2, padding=1))
            previous = count
        self.middle = ResidualBlock(previous, previous, embed_dim, groups)
        for level in reversed(range(len(channels))):
            up.append(ResidualBlock(previous + channels[level], channels[level], embed_dim, groups))
            if level > 0:
                up.append(nn.Conv2d(channels[level], channels[level], 3, padding=1))  # after a x2 nearest upsampling
            previous = channels[level]
        self.down, self.up = nn.Sequential(*down), nn.Sequential(*up)
        self.out_norm = nn.GroupNorm(math.gcd(groups, first), first)
        self.out = nn.Conv2d(first, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t) -> Tensor:
        steps = timestep_embedding(np.broadcast_to(t, (x.shape[0],)), self.channels[0])
        embedding = self.embed(Tensor(steps, dtype=x.dtype))
        h, skips = self.stem(x), []
        for layer in self.down:
            if isinstance(layer, ResidualBlock):
                h = layer(h, embedding)
                skips.append(h)
            else:  # the stride-2 convolution to the next level
                h = layer(h)
        h = self.middle(h, embedding)
        for layer in self.up:
            if isinstance(layer, ResidualBlock):
                h = layer(concatenate([h, skips.pop()], axis=1), embedding)
            else:
                h = layer(F.upsample_nearest2d(h, 2))
        return self.out(F.silu(self.out_norm(h)))
