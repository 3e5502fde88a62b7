# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. The variational autoencoder
#
# A VAE is a generative model $p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz$ with a
# simple prior $p(z) = \mathcal N(0, I)$ and a neural network decoder $p_\theta(x \mid z)$.
# The integral is intractable, so we maximise a lower bound on it, the ELBO, with the help
# of an encoder $q_\phi(z \mid x)$. This notebook derives the bound, has you write its two
# key lines, trains a VAE on the bundled 8x8 digits in a few seconds, and looks at what it
# learned. The code it refers to is `minigen/models/vae.py`.

# %%
import numpy as np

import minigen as mg
from minigen import plots
from minigen.data import binarize_dynamic
from minigen.exercises import check
from minigen.experiments import notebook_run
from minigen.experiments.vae import VAEExperiment, make_config
from minigen.models.vae import elbo_step
from minigen.train import train

# %% [markdown]
# ## The ELBO, step by step
#
# For any distribution $q(z \mid x)$ with the same support as the posterior,
#
# $$\ln p_\theta(x) = \ln \int p_\theta(x, z)\, dz
# = \ln \mathbb E_{q(z \mid x)}\!\left[\frac{p_\theta(x, z)}{q(z \mid x)}\right]
# \ge \mathbb E_{q(z \mid x)}\!\left[\ln \frac{p_\theta(x, z)}{q(z \mid x)}\right]$$
#
# by Jensen's inequality ($\ln$ is concave). Split $p_\theta(x, z) = p_\theta(x \mid z)\, p(z)$:
#
# $$\mathcal L(x) = \underbrace{\mathbb E_{q(z \mid x)}\big[\ln p_\theta(x \mid z)\big]}_{\text{reconstruction}}
# \;-\; \underbrace{\mathbb E_{q(z \mid x)}\!\left[\ln \frac{q(z \mid x)}{p(z)}\right]}_{\mathrm{KL}(q(z \mid x)\,\|\,p(z))}.$$
#
# The gap is exactly $\mathrm{KL}(q(z \mid x) \,\|\, p_\theta(z \mid x)) \ge 0$: the bound is
# tight when the encoder matches the true posterior.
#
# **The KL in closed form.** With $q = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)$ and
# $p = \mathcal N(0, I)$, per dimension,
# $\mathrm{KL} = \tfrac12(\mu^2 + \sigma^2 - 1 - \ln \sigma^2)$ (Kingma and Welling, appendix B).
# In minigen: `minigen.functional.kl_standard_normal`.
#
# **The reconstruction term** is estimated with one sample $z \sim q(z \mid x)$. For pixels
# in $\{0, 1\}$ and a Bernoulli decoder with logits $\ell$,
# $\ln p(x \mid z) = \sum_\text{pixels} [x \ln \sigma(\ell) + (1 - x) \ln(1 - \sigma(\ell))]$,
# which is minus the binary cross-entropy with logits, summed over pixels.

# %% [markdown]
# ## The reparameterisation trick
#
# To train the encoder we need $\partial \mathcal L / \partial \phi$ through a *sample* of $z$.
# Write the sample as a deterministic function of $\phi$ and independent noise:
# $z = \mu + \sigma \odot \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$. Now gradients
# flow through $\mu$ and $\sigma$. The encoder outputs $\ln \sigma^2$ (`logvar`), which can
# be any real number; $\sigma = \exp(\tfrac12 \ln \sigma^2)$ is then always positive.
#
# **Exercise 4.1 (reparameterise).** Given `mu`, `logvar` and `eps` (NumPy arrays of the
# same shape), return $z$.


# %%
def reparameterize(mu, logvar, eps):
    ### BEGIN SOLUTION
    return mu + np.exp(0.5 * logvar) * eps
    ### END SOLUTION


# %%
check("ex04_reparameterize", reparameterize)

# %% [markdown]
# A quick look that it does what it should: samples of $z$ have mean $\mu$ and variance
# $\sigma^2 = e^{\ln \sigma^2}$ (minigen's `VAE.reparameterize`, used from here on):

# %%
eps = np.random.default_rng(0).standard_normal((100_000, 2))
z = mg.models.VAE.reparameterize(mg.Tensor(np.array([1.0, -2.0])), mg.Tensor(np.array([0.0, np.log(4.0)])), eps).numpy()
print("mean", z.mean(axis=0).round(3), " variance", z.var(axis=0).round(3), " (expected [1, -2] and [1, 4])")

# %% [markdown]
# **Exercise 4.2 (the ELBO).** Given binary images `x` (N, D), the decoder's `logits` (N, D)
# for one sample of $z$ per image, and the encoder's `mu` and `logvar` (N, K), return each
# image's ELBO in nats, shape (N,). Compute the log-probabilities stably:
# $\ln \sigma(\ell) = -\mathrm{softplus}(-\ell)$ and $\mathrm{softplus}(\ell) = $ `np.logaddexp(0, l)`.


# %%
def elbo(x, logits, mu, logvar):
    ### BEGIN SOLUTION
    log_px_given_z = -(np.logaddexp(0, logits) - logits * x).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    return log_px_given_z - kl
    ### END SOLUTION


# %%
check("ex04_elbo", elbo)

# %% [markdown]
# minigen's version is `VAE.elbo` (with `log_likelihood` beside it); the losses are summed
# over pixels and latent dimensions and averaged over the batch, so every figure below is in
# nats per image, comparable with the papers'.
#
# ## Training on the digits
#
# The bundled 8x8 digits, binarised afresh at every step (the test images once, with a fixed
# seed), an MLP VAE 64-128-8, Adam. `VAEExperiment` holds the data, the model and the
# optimizer; the loop is Kingma and Welling's Algorithm 1: for each minibatch, one step of
# gradient ascent on the ELBO (`elbo_step`, beside `VAE.elbo` in `minigen/models/vae.py`).
# 40 epochs take a few seconds.

# %%
config = make_config(model="mlp", data="digits", epochs=40)
experiment = VAEExperiment(config)
history = []
for epoch in range(config["epochs"]):
    steps = []
    for x, _ in experiment.batches():
        x = binarize_dynamic(x, experiment.rng)  # each pixel on with its grey level as probability
        steps.append(elbo_step(experiment.model, experiment.optimizer, x, generator=experiment.rng))
    history.append({"epoch": epoch + 1, "train_elbo": np.mean([s["elbo"] for s in steps]), **experiment.evaluate()})
last = history[-1]
print(f"test ELBO {last['test_elbo']:.2f} nats per image: reconstruction {last['test_reconstruction']:.2f}, KL {last['test_kl']:.2f}")
plots.curves(history, ["train_elbo", "test_elbo"], "ELBO per epoch", "nats per image")

# %% [markdown]
# The KL term is the price, in nats, of the information the code carries about each image;
# the reconstruction term is what that information buys.

# %%
plots.curves(history, ["test_reconstruction", "test_kl"], "the two terms", "nats per image")

# %%
y = experiment.test_y
firsts = np.array([np.flatnonzero(y == digit)[0] for digit in range(10)])
plots.reconstructions(
    experiment.test_gray[firsts],
    experiment.model.reconstruct(experiment.test_x[firsts]),
    "test digits, the binarised input, the reconstruction",
    inputs=experiment.test_x[firsts],
)

# %%
plots.image_grid(experiment.model.sample(50, generator=mg.Generator(1)), columns=10, title="samples: z ~ N(0, I), decoded")

# %% [markdown]
# ## A two-dimensional latent space
#
# With only two latent dimensions the whole code space can be drawn: decode a grid of $z$
# placed at the quantiles of the Gaussian prior, as in Kingma and Welling's figure 4.

# %%
config2 = make_config(model="mlp", data="digits", latent=2, epochs=40, out=notebook_run("vae-2d"))
experiment2 = VAEExperiment(config2)
train(experiment2, config2["epochs"], config2["out"], progress=False, overwrite=True)
with mg.no_grad():
    mu = experiment2.model.encode(mg.Tensor(experiment2.test_x))[0].numpy()
plots.latent_scatter(mu, experiment2.test_y)

# %%
with mg.no_grad():
    figure = plots.manifold(lambda codes: experiment2.model.mean_image(experiment2.model.decode(mg.Tensor(codes))), n=12)
figure

# %% [markdown]
# ## A tighter bound: $\mathcal L_K$
#
# Burda et al. (2016) average $K$ importance weights inside the logarithm:
#
# $$\mathcal L_K(x) = \ln \frac1K \sum_{k=1}^K \frac{p_\theta(x \mid z_k)\, p(z_k)}{q(z_k \mid x)}, \quad z_k \sim q(z \mid x).$$
#
# $\mathcal L_1$ is the ELBO, $\mathcal L_K$ grows with $K$ and tends to $\ln p_\theta(x)$.
# `VAE.iwae_bound` computes it in chunks of samples, so $K = 5000$ fits in memory.

# %%
for k in (1, 10, 100, 1000):
    print(f"L_{k:<5} = {experiment.log_likelihood(k=k, chunk=250):.3f} nats per test image")

# %% [markdown]
# To train longer or bigger: `minigen train vae --epochs 300`, `--model conv`, `--model cvae`
# (then `samples.png` has one digit per row), `--beta 4` for a beta-VAE, or `--data mnist`
# where the MNIST files are available; `minigen eval runs/vae-mlp-digits/checkpoint.npz` gives $\mathcal L_{5000}$.
