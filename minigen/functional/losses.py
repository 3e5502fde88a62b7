r"""Losses, as in `torch.nn.functional`, each with an explicit `reduction`.

`reduction='none'` returns the loss of every element, `'sum'` adds them up and `'mean'`
averages them over all elements (PyTorch's conventions and defaults). The generative models
reduce explicitly instead, summing over pixels and latent dimensions and averaging over the
batch, so their losses are in nats per image: for images of shape (N, C, H, W),
`loss(..., reduction='none').reshape(N, -1).sum(axis=1).mean()` (summing axis 1 alone would
add up only the channels).

Each loss is written with the engine's differentiable operations (in its numerically stable
form), so its gradient, and its gradient's gradient, come from those.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.arrays import where
from ..engine.tensor import Tensor
from .activations import log_softmax, softplus

__all__ = [
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
    "mse_loss",
    "cross_entropy",
    "gaussian_nll_loss",
    "kl_standard_normal",
]


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(op: str, input: Tensor, target, names=("input", "target")) -> Tensor:
    target = input._lift(target)
    if target.shape != input.shape:
        raise ValueError(f"{op}: {names[0]} {input.shape} and {names[1]} {target.shape} must have the same shape")
    return target


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""$\ell = -[y \ln \sigma(x) + (1 - y) \ln(1 - \sigma(x))] = \mathrm{softplus}(x) - x y$.

    The right-hand form never takes the log of a probability that rounded to 0, so it is
    exact and finite for any logit $x$ (the GAN losses and Bernoulli decoders use it).
    """
    op = "binary_cross_entropy_with_logits"
    target = _same_shape(op, logits, target, ("logits", "target"))
    return _reduce(softplus(logits) - logits * target, reduction, op)


def binary_cross_entropy(probs: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""$\ell = -[y \ln p + (1 - y)\ln(1 - p)]$, each log clamped at $-100$ as in PyTorch.

    Prefer `binary_cross_entropy_with_logits`: a probability that rounded to exactly 0 or 1
    has already lost the information this loss needs.
    """
    op = "binary_cross_entropy"
    target = _same_shape(op, probs, target, ("probs", "target"))
    low, high = (probs.data.min(), probs.data.max()) if probs.size else (0, 1)
    if not (0 <= low and high <= 1):  # NaN fails too
        got = "NaN" if np.isnan(low) or np.isnan(high) else f"values from {low:.4g} to {high:.4g}"
        raise ValueError(f"{op}: probs must lie in [0, 1], got {got}; for logits use binary_cross_entropy_with_logits")
    loss = -(target * _log_at_least_minus_100(probs) + (1.0 - target) * _log_at_least_minus_100(1.0 - probs))
    return _reduce(loss, reduction, op)


def _log_at_least_minus_100(p: Tensor) -> Tensor:
    """max(ln p, -100), written so that p = 0 gives a gradient of 0 rather than 0 * inf = nan."""
    above = p.data > math.exp(-100)
    return where(above, where(above, p, 1.0).log(), -100.0)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""$\ell = (x - y)^2$."""
    target = _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""$\ell_n = -\ln \mathrm{softmax}(x_n)_{y_n} = -x_{n, y_n} + \ln \sum_c e^{x_{n,c}}$,
    for logits of shape (N, C) and integer class indices $y$ of shape (N,)."""
    op = "cross_entropy"
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"{op}: expected logits (N, C) and class indices (N,), got {logits.shape} and {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"{op}: class indices must lie in [0, {logits.shape[1]}), got {target.min()} to {target.max()}")
    picked = log_softmax(logits, axis=1)[np.arange(len(target)), target]
    return _reduce(-picked, reduction, op)


def gaussian_nll_loss(input: Tensor, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""$\ell = \tfrac12 \left(\ln v + (x - y)^2 / v\right)$ (plus $\tfrac12 \ln 2\pi$ with `full=True`):
    the negative log-density of $y$ under $\mathcal N(x, v)$.

    As in PyTorch, $v$ is raised to at least `eps` for stability, but the gradient passes
    through that clamp unchanged.
    """
    op = "gaussian_nll_loss"
    target = _same_shape(op, input, target)
    var = input._lift(var)
    var = var + Tensor(np.maximum(var.data, eps) - var.data)  # the clamp, as a constant shift
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, op)


def kl_standard_normal(mu: Tensor, logvar: Tensor, reduction: str = "mean") -> Tensor:
    r"""$\mathrm{KL}\big(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, 1)\big) = \tfrac12\left(\mu^2 + \sigma^2 - 1 - \ln \sigma^2\right)$
    per dimension, with $\ln \sigma^2$ = `logvar` (Kingma and Welling, 2014, appendix B).

    For a diagonal Gaussian the KL over all dimensions is the sum of these terms:
    `kl_standard_normal(mu, logvar, reduction='none').sum(axis=1)` per example.
    """
    op = "kl_standard_normal"
    if mu.shape != logvar.shape:
        raise ValueError(f"{op}: mu {mu.shape} and logvar {logvar.shape} must have the same shape")
    return _reduce(0.5 * (mu * mu + logvar.exp() - 1.0 - logvar), reduction, op)
