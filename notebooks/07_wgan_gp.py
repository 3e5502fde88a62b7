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
# # 7. WGAN-GP: the Wasserstein critic and gradients of gradients
#
# When the data and the generator's samples barely overlap, the Jensen-Shannon divergence of
# notebook 5 is flat (it is $\ln 2$ whatever the distance), and a perfect discriminator gives
# the generator nothing to follow. The Wasserstein-1 distance keeps measuring *how far* apart
# they are. Its dual form (Kantorovich-Rubinstein) is
#
# $$W(p_\text{data}, p_g) = \sup_{\|f\|_L \le 1} \mathbb E_{x \sim p_\text{data}}[f(x)] - \mathbb E_{x \sim p_g}[f(x)],$$
#
# a supremum over 1-Lipschitz functions $f$, the *critic*. WGAN (Arjovsky et al., 2017) trains
# a network as $f$; WGAN-GP (Gulrajani et al., 2017) keeps it near 1-Lipschitz with a
# **gradient penalty** on points between real and generated samples:
#
# $$L_\text{critic} = \mathbb E[f(G(z))] - \mathbb E[f(x)] + \lambda\, \mathbb E_{\hat x}\big[(\|\nabla_{\hat x} f(\hat x)\|_2 - 1)^2\big],
# \quad \hat x = \epsilon x + (1 - \epsilon) G(z),\ \epsilon \sim U[0, 1],\ \lambda = 10.$$

# %%
import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from minigen import nn, plots
from minigen.exercises import check
from minigen.experiments.gan import GANExperiment, make_config
from minigen.models.gan import critic_step, wgan_generator_step

# %% [markdown]
# ## Gradients of gradients
#
# The penalty contains $\nabla_{\hat x} f$, itself a gradient. To train the critic on it,
# backpropagation must differentiate *through* a backward pass. minigen can, because every
# backward rule is written with differentiable tensor operations: `minigen.grad(...,
# create_graph=True)` records the backward pass as a new graph. A one-line check on
# $f(x) = x^3$, whose second derivative is $6x$:

# %%
x = mg.tensor([2.0], requires_grad=True)
(first,) = mg.grad((x**3).sum(), x, create_graph=True)
(second,) = mg.grad(first.sum(), x)
print(f"f'(2) = {first.item()}, f''(2) = {second.item()}")

# %% [markdown]
# **Exercise 7.1 (the gradient penalty).** Given a `critic` (a module taking a batch of
# images), `real` and `fake` batches (Tensors), the per-example weights `eps` (an array of
# shape (N, 1, 1, 1)) and `weight` $= \lambda$, return the penalty as a Tensor that stays in
# the graph. Steps: build $\hat x$ as a new leaf that requires grad; take
# `mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)`; the norm is over all but the
# batch axis.


# %%
def gradient_penalty(critic, real, fake, eps, weight):
    ### BEGIN SOLUTION
    x_hat = mg.Tensor(eps * real.numpy() + (1 - eps) * fake.numpy(), requires_grad=True)
    (slope,) = mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = (slope * slope).reshape(len(real), -1).sum(axis=1).sqrt()
    return weight * ((norm - 1.0) ** 2).mean()
    ### END SOLUTION


# %%
check("ex07_gradient_penalty", gradient_penalty)

# %% [markdown]
# minigen's version is `gradient_penalty` in `minigen/models/gan.py`. Because the penalty is a
# function of the critic's *gradient*, its own gradient with respect to the critic's weights
# involves second derivatives, through every layer, convolutions included. `gradcheck` of
# the penalty as a function of the weights checks exactly those (the tests do the same for a
# convolutional critic):

# %%
mg.manual_seed(0)
critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1), nn.Flatten(0))
rng = np.random.default_rng(0)
real, fake, eps = rng.standard_normal((3, 1, 2, 2)), rng.standard_normal((3, 1, 2, 2)), rng.random((3, 1, 1, 1))
# module=critic: the critic's weights are checked in place (in float64 during the check)
print(mg.gradcheck(lambda: mg.models.gan.gradient_penalty(critic, real, mg.Tensor(fake), eps=eps), module=critic))

# %% [markdown]
# ## Training a WGAN-GP on the digits
#
# The critic is the DCGAN discriminator *without batch norm* (the penalty is per example, and
# batch norm would mix the examples of a batch), five critic steps per generator step, Adam
# with learning rate $10^{-4}$ and $\beta = (0, 0.9)$ (Gulrajani et al.). The loop is their
# Algorithm 1 (`critic_step` and `wgan_generator_step` in `minigen/models/gan.py`). 50 epochs
# take about 15 seconds here.

# %%
config = make_config(model="wgan-gp", data="digits", epochs=50)
experiment = GANExperiment(config)
G, critic = experiment.G, experiment.D
history, steps = [], 0
for epoch in range(config["epochs"]):
    scores = []
    for real, _ in experiment.batches():
        c = critic_step(
            G,
            critic,
            experiment.d_opt,
            mg.Tensor(real),
            experiment.noise(len(real)),
            penalty_weight=config["penalty_weight"],
            generator=experiment.rng,
        )
        scores.append([c["d_real"], c["d_fake"]])
        steps += 1
        if steps % config["d_steps"] == 0:  # 5 critic steps, then one generator step
            wgan_generator_step(G, critic, experiment.g_opt, experiment.noise(len(real)))
    real_score, fake_score = np.mean(scores, axis=0)
    history.append({"epoch": epoch + 1, "train_d_real": real_score, "train_d_fake": fake_score, **experiment.evaluate()})
print(f"classifier FID after {config['epochs']} epochs: {history[-1]['fid']:.2f}, {history[-1]['classes_above_5pct']} classes above 5%")

# %% [markdown]
# The critic's estimate of the Wasserstein distance, $\mathbb E[f(x)] - \mathbb E[f(G(z))]$,
# is a loss that means something: in this run it rises for the first 15 or so epochs, while
# the critic learns to measure, and then falls together with the FID as the samples improve,
# unlike the GAN losses of notebook 6, which hover around a balance point.

# %%
distance = [row["train_d_real"] - row["train_d_fake"] for row in history]
fig = Figure(figsize=(6, 3.5))
ax = fig.add_subplot()
ax.plot([row["epoch"] for row in history], distance, label="E f(x) - E f(G(z))")
ax2 = ax.twinx()
ax2.plot([row["epoch"] for row in history], [row["fid"] for row in history], color="tab:orange", label="classifier FID")
ax.set_xlabel("epoch")
ax.set_ylabel("critic's Wasserstein estimate")
ax2.set_ylabel("FID")
fig.legend(loc="upper right", fontsize=8)
fig

# %%
plots.image_grid(experiment.generate(100), columns=10, title="WGAN-GP samples")

# %% [markdown]
# To train longer: `minigen train gan --model wgan-gp --data digits` (150 epochs, about 45
# seconds, reaches a classifier FID near 7), or `--d-steps` to change the critic's steps.
