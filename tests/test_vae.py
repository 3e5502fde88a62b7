"""The VAE's math: reparameterisation, the ELBO's gradients, and its bounds on a model whose
log-likelihood is known in closed form."""

import math

import numpy as np
import pytest

import minigen as mg
from minigen.models import VAE, ConditionalVAE, ConvVAE


def test_reparameterised_samples_have_mean_mu_and_variance_exp_logvar():
    mu, logvar = np.array([1.5, -0.5, 0.0]), np.array([0.4, -1.2, 2.0])
    eps = np.random.default_rng(0).standard_normal((200_000, 3))
    z = VAE.reparameterize(mg.Tensor(mu), mg.Tensor(logvar), eps).data
    n = len(z)
    assert np.all(np.abs(z.mean(axis=0) - mu) < 4 * np.sqrt(np.exp(logvar) / n))
    np.testing.assert_allclose(z.var(axis=0), np.exp(logvar), rtol=0.02)


@pytest.mark.parametrize(
    "make",
    [
        lambda: VAE((1, 2, 2), hidden=(3,), latent=2),
        lambda: VAE((1, 2, 2), hidden=(3,), latent=2, likelihood="gaussian"),
        lambda: ConditionalVAE((1, 2, 2), hidden=(3,), latent=2, num_classes=3),
    ],
)
def test_gradcheck_through_the_whole_elbo_with_the_noise_held_fixed(make):
    mg.manual_seed(0)
    model = make().double()
    rng = np.random.default_rng(1)
    x = (rng.random((3, 1, 2, 2)) > 0.5).astype(np.float64)
    y = np.array([0, 2, 1]) if model.num_classes else None
    eps = rng.standard_normal((3, 2))
    assert mg.gradcheck(lambda: model.elbo(x, y, eps=eps).elbo.mean(), module=model, name="elbo")


def linear_gaussian_vae(pixels=3, latent=2, variance=0.3, seed=0):
    """Probabilistic PCA as a VAE: z ~ N(0, I), x | z ~ N(W z + b, variance I). The encoder is
    set to the exact posterior's mean, with its diagonal variances doubled: a diagonal q cannot
    match the correlated posterior anyway, so the ELBO has a gap for L_K to close."""
    mg.manual_seed(seed)
    model = VAE((1, 1, pixels), hidden=(), latent=latent, likelihood="gaussian", gaussian_variance=variance).double()
    decoder = model.decoder[0][0]
    W, b = decoder.weight.data, decoder.bias.data
    M_inv = np.linalg.inv(W.T @ W + variance * np.eye(latent))
    model.to_mu.weight.data[...] = M_inv @ W.T  # E[z | x] = M^-1 W^T (x - b)
    model.to_mu.bias.data[...] = -M_inv @ W.T @ b
    model.to_logvar.weight.data[...] = 0.0
    model.to_logvar.bias.data[...] = np.log(2 * variance * np.diag(M_inv))  # Cov[z | x] = variance M^-1
    log_px = lambda x: gaussian_log_pdf(x.reshape(len(x), -1), b, W @ W.T + variance * np.eye(pixels))  # noqa: E731
    return model, log_px


def gaussian_log_pdf(x, mean, cov):
    d = x - mean
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (x.shape[1] * math.log(2 * math.pi) + logdet + np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))


def test_elbo_never_exceeds_log_likelihood_and_the_iwae_bound_approaches_it():
    model, log_px = linear_gaussian_vae()
    x = np.random.default_rng(2).standard_normal((4, 1, 1, 3))
    exact = log_px(x)
    repeats = 20_000
    elbo_samples = model.elbo(np.repeat(x, repeats, axis=0), generator=mg.Generator(3)).elbo.data.reshape(4, repeats)
    elbo = elbo_samples.mean(axis=1)  # the ELBO, estimated with many samples of z
    standard_error = elbo_samples.std(axis=1) / math.sqrt(repeats)
    assert np.all(elbo <= exact + 4 * standard_error)
    assert np.all(exact - elbo > 0.1)  # a clear gap
    g = mg.Generator(4)
    mean_bound = lambda k, repeats: np.mean([model.iwae_bound(x, k=k, generator=g) for _ in range(repeats)], axis=0)  # noqa: E731
    bounds = [elbo, mean_bound(10, 300), mean_bound(100, 60), mean_bound(5000, 1)]
    for smaller_k, larger_k in zip(bounds, bounds[1:]):
        assert np.all(larger_k > smaller_k)  # L_K grows with K ...
    assert np.all(np.abs(exact - bounds[-1]) < 0.02)  # ... towards log p(x)


@pytest.mark.parametrize("cls, hidden", [(VAE, (16,)), (ConvVAE, (4, 8)), (ConditionalVAE, (16,))])
def test_shapes_and_sampling(cls, hidden):
    model = cls((1, 8, 8), hidden=hidden, latent=3)
    x = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    y = np.arange(5) if model.num_classes else None
    terms = model.elbo(x, y)
    assert terms.elbo.shape == terms.kl.shape == (5,)
    assert np.all(terms.kl.data >= 0)
    assert model.sample(4, None if y is None else y[:4]).shape == (4, 1, 8, 8)
    assert model.reconstruct(x, y).shape == x.shape


def test_conditional_vae_needs_labels():
    with pytest.raises(ValueError, match="pass the labels y"):
        ConditionalVAE((1, 8, 8), hidden=(8,), latent=2).elbo(np.zeros((2, 1, 8, 8), np.float32))
