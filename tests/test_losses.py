"""Losses: the stable forms, the argument checks, and the closed-form KL against Monte Carlo."""

import numpy as np
import pytest

import minigen as mg
from minigen import functional as F


def test_bce_with_logits_is_finite_and_exact_for_any_logit():
    logits = mg.Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32), requires_grad=True)
    target = np.array([1.0, 1.0, 0.5, 0.0, 0.0], np.float32)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    np.testing.assert_allclose(loss.data, [1e4, 50.0, np.log(2), 50.0, 1e4], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad.data, [-1.0, -1.0, 0.0, 1.0, 1.0], atol=1e-6)


def test_bce_on_probabilities_clamps_the_log_like_pytorch():
    probs = mg.tensor([0.0, 1.0], requires_grad=True)
    loss = F.binary_cross_entropy(probs, np.array([1.0, 0.0], np.float32), reduction="none")
    np.testing.assert_allclose(loss.data, [100.0, 100.0])
    loss.sum().backward()
    assert np.all(np.isfinite(probs.grad.data))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: probs must lie in \[0, 1\], got values from 0.2 to 1.5"):
        F.binary_cross_entropy(mg.tensor([0.2, 1.5]), np.array([1.0, 1.0], np.float32))
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\], got NaN"):  # PyTorch refuses NaN too
        F.binary_cross_entropy(mg.tensor([0.5, float("nan")]), np.array([1.0, 1.0], np.float32))


def test_reductions():
    x, y = mg.tensor([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 0.0], np.float32)
    assert F.mse_loss(x, y, reduction="sum").item() == 14.0
    assert F.mse_loss(x, y).item() == pytest.approx(14.0 / 3)
    assert F.mse_loss(x, y, reduction="none").shape == (3,)
    with pytest.raises(ValueError, match="mse_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.mse_loss(x, y, reduction="avg")


def test_shape_mismatch_is_refused_not_broadcast():
    with pytest.raises(ValueError, match=r"logits \(4, 1\) and target \(4,\) must have the same shape"):
        F.binary_cross_entropy_with_logits(mg.zeros(4, 1), np.zeros(4, np.float32))


def test_cross_entropy_checks_its_targets():
    logits = mg.zeros(3, 4)
    assert F.cross_entropy(logits, np.array([0, 1, 3])).item() == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 4\), got 0 to 4"):
        F.cross_entropy(logits, np.array([0, 1, 4]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))


def test_gaussian_nll_full_is_the_normal_log_density():
    x, y, var = 0.3, 1.1, 0.7
    loss = F.gaussian_nll_loss(mg.tensor([x], dtype=np.float64), np.array([y]), np.array([var]), full=True)
    log_density = -0.5 * np.log(2 * np.pi * var) - (x - y) ** 2 / (2 * var)
    assert loss.item() == pytest.approx(-log_density)


def test_closed_form_kl_equals_its_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated with 400,000 samples."""
    rng = np.random.default_rng(0)
    mu, logvar = np.array([0.5, -1.0, 0.0]), np.array([-0.5, 0.3, 0.0])
    closed = F.kl_standard_normal(mg.Tensor(mu), mg.Tensor(logvar), reduction="none").data
    std = np.exp(0.5 * logvar)
    z = mu + std * rng.standard_normal((400_000, 3))
    log_q = -0.5 * (np.log(2 * np.pi) + logvar + ((z - mu) / std) ** 2)
    log_p = -0.5 * (np.log(2 * np.pi) + z**2)
    estimate = (log_q - log_p).mean(axis=0)
    standard_error = (log_q - log_p).std(axis=0) / np.sqrt(len(z))
    assert np.all(np.abs(estimate - closed) < 4 * standard_error + 1e-12)
    assert closed[2] == 0.0  # N(0, 1) against itself
