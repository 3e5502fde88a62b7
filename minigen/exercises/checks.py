"""The checks behind `check(name, fn)`: each runs a student's function on small known cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..engine.gradcheck import describe_ratio


class ExerciseFailed(AssertionError):
    """The function ran but gave a wrong answer; the message says what and where."""


@dataclass(frozen=True)
class Exercise:
    task: str  # what to implement, as the student version's NotImplementedError says
    verify: Callable  # raises ExerciseFailed on a wrong answer


EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, task: str):
    def register(verify):
        EXERCISES[name] = Exercise(task, verify)
        return verify

    return register


def verify(name: str, fn) -> None:
    """Run exercise `name` on `fn`; raises ExerciseFailed, NotImplementedError or the function's error."""
    if name not in EXERCISES:
        raise KeyError(f"check: no exercise called {name!r}; the exercises are {sorted(EXERCISES)}")
    EXERCISES[name].verify(fn)


def check(name: str, fn) -> bool:
    """Print a one-line verdict on `fn` for exercise `name`; True if it passed. Never raises."""
    try:
        verify(name, fn)
    except NotImplementedError:
        print(f"{name}: not done yet: {EXERCISES[name].task}")
        return False
    except ExerciseFailed as failure:
        print(f"{name}: {failure}")
        return False
    except KeyError as error:
        print(error.args[0])
        return False
    except Exception as error:  # the student's code crashed: say how, in one line
        print(f"{name}: your function raised {type(error).__name__}: {error}")
        return False
    print(f"{name}: passed")
    return True


def _compare(what: str, got, expected, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise ExerciseFailed(f"{what}: returned shape {got.shape}, expected {expected.shape}")
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        g, e = float(got[index]), float(expected[index])
        raise ExerciseFailed(f"{what}: got {g:.6g}, expected {e:.6g} at index {index} ({describe_ratio(g, e)})")


# --- notebook 1: autograd from scratch ---------------------------------------------------------


@exercise("ex01_topological_sort", "return every node reachable from root, each after all of its parents, without recursion")
def _topological_sort(fn):
    diamond = {"loss": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    order = list(fn(diamond, "loss"))
    if sorted(order) != sorted(diamond):
        raise ExerciseFailed(f"topological_sort: returned {order}; every node must appear exactly once: {sorted(diamond)}")
    position = {node: i for i, node in enumerate(order)}
    for node, parents in diamond.items():
        for parent in parents:
            if position[parent] > position[node]:
                raise ExerciseFailed(f"topological_sort: {parent!r} comes after {node!r}, but {node!r} was computed from it")
    chain = {i: [i - 1] for i in range(1, 5000)} | {0: []}  # deeper than Python's recursion limit
    try:
        order = list(fn(chain, 4999))
    except RecursionError:
        raise ExerciseFailed("topological_sort: a chain of 5,000 nodes hit the recursion limit; use an explicit stack") from None
    if order != list(range(5000)):
        raise ExerciseFailed("topological_sort: on a chain 0 <- 1 <- ... <- 4999 the order must be 0, 1, ..., 4999")


@exercise("ex01_sigmoid_backward", "return the gradient of the loss with respect to the sigmoid's input, from y = sigmoid(a) and grad = dL/dy")
def _sigmoid_backward(fn):
    a = np.array([[-2.0, -0.5, 0.0, 0.5], [1.0, 2.0, 3.0, -3.0]])
    y = 1 / (1 + np.exp(-a))
    grad = np.linspace(0.5, 2.0, a.size).reshape(a.shape)
    eps = 1e-6
    numerical = grad * (1 / (1 + np.exp(-(a + eps))) - 1 / (1 + np.exp(-(a - eps)))) / (2 * eps)
    _compare("sigmoid backward (analytical vs numerical)", fn(y, grad), numerical, rtol=1e-5)


# --- notebook 2: checking gradients ------------------------------------------------------------


@exercise("ex02_central_difference", "return the gradient of the scalar function f at x by central differences, one coordinate at a time")
def _central_difference(fn):
    def f(x):
        return float(np.sum(np.sin(x) * x**2))

    x = np.array([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]])
    expected = np.cos(x) * x**2 + 2 * x * np.sin(x)
    got = np.asarray(fn(f, x.copy(), 1e-5))
    if got.shape == expected.shape:
        error = np.abs(got - expected).max()
        if 1e-7 < error < 1e-4:
            raise ExerciseFailed(f"central difference: largest error {error:.1e}, the size of eps: is it a one-sided difference (f(x + eps) - f(x)) / eps?")
    _compare("central difference", got, expected, rtol=1e-7, atol=1e-8)


# --- notebook 3: convolution -------------------------------------------------------------------


@exercise("ex03_im2col", "return the (C*kh*kw, N*H_out*W_out) matrix whose column (n, h, w) is the receptive field of output pixel (h, w) of image n")
def _im2col(fn):
    from ..kernels.conv import conv_output_size, im2col

    rng = np.random.default_rng(0)
    for shape, kernel, stride, padding in [((1, 1, 4, 4), (2, 2), 1, 0), ((2, 3, 5, 6), (3, 2), 2, 1), ((1, 2, 3, 3), (3, 3), 1, 1)]:
        x = rng.standard_normal(shape)
        out_hw = tuple(conv_output_size(shape[2 + a], kernel[a], stride, padding, 1) for a in (0, 1))
        expected = im2col(x, kernel, (stride, stride), (padding, padding), (1, 1), out_hw)
        _compare(f"im2col of an image {shape} with kernel {kernel}, stride {stride}, padding {padding}", fn(x, kernel, stride, padding), expected)


# --- notebook 4: the VAE -----------------------------------------------------------------------


@exercise("ex04_reparameterize", "return z = mu + sigma * eps, with sigma computed from the log-variance logvar")
def _reparameterize(fn):
    mu, logvar, eps = np.array([[0.5, -1.0]]), np.array([[0.0, -2.0]]), np.array([[1.5, -0.5]])
    got = fn(mu, logvar, eps)
    if np.allclose(got, mu + np.exp(logvar) * eps):
        raise ExerciseFailed("reparameterize: used exp(logvar), the variance; the standard deviation is exp(logvar / 2)")
    _compare("reparameterize", got, mu + np.exp(0.5 * logvar) * eps)


@exercise("ex04_elbo", "return each image's ELBO in nats: log p(x|z) (Bernoulli, summed over pixels) minus the closed-form KL (summed over latent dimensions)")
def _elbo(fn):
    rng = np.random.default_rng(1)
    x = (rng.random((3, 6)) < 0.4).astype(np.float64)
    logits, mu, logvar = rng.standard_normal((3, 6)) * 2, rng.standard_normal((3, 2)), rng.standard_normal((3, 2)) * 0.5
    log_px = -(np.logaddexp(0, logits) - logits * x).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    got = np.asarray(fn(x, logits, mu, logvar), dtype=np.float64)
    if got.shape == () or got.shape == (1,):
        raise ExerciseFailed(f"elbo: returned one number; return one ELBO per image, shape {log_px.shape}")
    if np.allclose(got, log_px + kl):
        raise ExerciseFailed("elbo: the KL is added; the ELBO subtracts it (log p(x|z) - KL)")
    if np.allclose(got, log_px - kl.mean()) or np.allclose(got, log_px.mean() - kl):
        raise ExerciseFailed("elbo: averaged over the batch somewhere; every term here is per image")
    _compare("elbo", got, log_px - kl, rtol=1e-6)


# --- notebook 5: the GAN -----------------------------------------------------------------------


@exercise("ex05_discriminator_loss", "return -(mean log D(x) + mean log(1 - D(G(z)))) from the discriminator's logits, stably")
def _discriminator_loss(fn):
    real, fake = np.array([2.0, -1.0, 40.0, 0.3]), np.array([-3.0, 0.5, -50.0, 1.0])
    expected = np.mean(np.logaddexp(0, -real)) + np.mean(np.logaddexp(0, fake))
    got = float(np.asarray(fn(real, fake)))
    if not np.isfinite(got):
        raise ExerciseFailed("discriminator loss: not finite for a logit of 40 or -50: use softplus / logaddexp, not log(sigmoid(x))")
    _compare("discriminator loss", got, expected)


@exercise("ex05_generator_loss", "return the non-saturating generator loss -mean log D(G(z)) from the logits D gives the generated samples")
def _generator_loss(fn):
    fake = np.array([-3.0, 0.5, -50.0, 1.0])
    got = float(np.asarray(fn(fake)))
    minimax = -np.mean(np.logaddexp(0, fake))
    if np.isclose(got, minimax):
        raise ExerciseFailed("generator loss: this is the minimax (saturating) loss mean log(1 - D(G(z))); the non-saturating one is -mean log D(G(z))")
    _compare("generator loss", got, np.mean(np.logaddexp(0, -fake)))


# --- notebook 7: WGAN-GP -----------------------------------------------------------------------


@exercise("ex07_gradient_penalty", "return weight * mean over examples of (||d critic / d x_hat|| - 1)^2 at x_hat = eps * real + (1 - eps) * fake, keeping the graph (create_graph=True)")
def _gradient_penalty(fn):
    from .. import nn
    from ..engine.tensor import Tensor
    from ..models.gan import gradient_penalty
    from ..random import manual_seed

    manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((5, 1, 2, 2)).astype(np.float32), rng.standard_normal((5, 1, 2, 2)).astype(np.float32)
    eps = rng.random((5, 1, 1, 1)).astype(np.float32)
    expected = gradient_penalty(critic, real, Tensor(fake), weight=10.0, eps=eps)
    got = fn(critic, Tensor(real), Tensor(fake), eps, 10.0)
    if not isinstance(got, Tensor) or not got.requires_grad:
        raise ExerciseFailed("gradient penalty: return a Tensor that is part of the graph: take the gradient with create_graph=True, so the critic's parameters get gradients from the penalty")
    _compare("gradient penalty", got.data, expected.data, rtol=1e-4, atol=1e-6)
