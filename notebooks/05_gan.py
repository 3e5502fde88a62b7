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
# # 5. The generative adversarial network
#
# A GAN learns to sample without ever writing down a density: a generator $G$ turns noise
# into samples, and a discriminator $D$ is trained to tell them from data. This notebook
# works through the game's value function, its optimal discriminator and the divergence it
# minimises, has you write both losses, and watches a GAN find (and fail to find) modes.
# The code it refers to is `minigen/models/gan.py`.

# %%
import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from minigen import functional as F
from minigen import metrics, plots
from minigen.exercises import check
from minigen.experiments import notebook_run
from minigen.experiments.gan import GANExperiment, make_config
from minigen.models.gan import discriminator_step, generator_step
from minigen.train import train

# %% [markdown]
# ## The value function and the optimal discriminator
#
# Goodfellow et al. (2014) define the game
#
# $$\min_G \max_D V(D, G) = \mathbb E_{x \sim p_\text{data}}[\ln D(x)] + \mathbb E_{z \sim p(z)}[\ln(1 - D(G(z)))].$$
#
# For a fixed generator with density $p_g$, $V = \int p_\text{data}(x) \ln D(x) + p_g(x) \ln(1 - D(x))\, dx$.
# Pointwise, $a \ln y + b \ln(1 - y)$ is largest at $y = a / (a + b)$, so the best discriminator is
#
# $$D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}.$$
#
# Put back into $V$: $V(D^*, G) = -\ln 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)$. With a
# perfect discriminator the generator minimises the Jensen-Shannon divergence, which is zero
# only when $p_g = p_\text{data}$. A 1-D check: train only $D$ against a fixed "generator".

# %%
mg.manual_seed(0)
rng = np.random.default_rng(0)
D = mg.models.gan.MLPDiscriminator((1,), hidden=(32, 32))
opt = mg.optim.Adam(D.parameters(), lr=1e-2)
for _ in range(300):
    real = rng.normal(0.0, 1.0, (512, 1)).astype(np.float32)  # p_data = N(0, 1)
    fake = rng.normal(1.5, 0.5, (512, 1)).astype(np.float32)  # p_g = N(1.5, 0.5^2)
    loss = mg.models.gan.discriminator_loss(D(mg.Tensor(real)), D(mg.Tensor(fake)))
    opt.zero_grad()
    loss.backward()
    opt.step()
xs = np.linspace(-3, 4, 200, dtype=np.float32)[:, None]
p = np.exp(-0.5 * xs[:, 0] ** 2) / np.sqrt(2 * np.pi)
q = np.exp(-0.5 * ((xs[:, 0] - 1.5) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
with mg.no_grad():
    d = F.sigmoid(D(mg.Tensor(xs))).numpy()
fig = Figure(figsize=(6, 3.5))
ax = fig.add_subplot()
ax.plot(xs, p, label="p_data", alpha=0.5)
ax.plot(xs, q, label="p_g", alpha=0.5)
ax.plot(xs, p / (p + q), "k--", label="D* = p_data / (p_data + p_g)")
ax.plot(xs, d, label="trained D")
ax.set_xlabel("x")
ax.set_ylabel("density, or probability that x is real")
ax.set_title("the trained discriminator against D*")
ax.legend(fontsize=8)
fig

# %% [markdown]
# ## The two losses, and why the generator's is not the game's
#
# $D$ outputs a logit $\ell$, $D = \sigma(\ell)$. In logits, $-\ln D(x) = \mathrm{softplus}(-\ell)$
# and $-\ln(1 - D(x)) = \mathrm{softplus}(\ell)$: finite for any logit, unlike `log(sigmoid(l))`.
#
# **Exercise 5.1 (the discriminator's loss).** From the logits $D$ gives a batch of real and
# a batch of generated samples (NumPy arrays), return $-\big(\mathbb E[\ln D(x)] + \mathbb E[\ln(1 - D(G(z)))]\big)$.


# %%
def discriminator_loss(real_logits, fake_logits):
    ### BEGIN SOLUTION
    return np.mean(np.logaddexp(0, -real_logits)) + np.mean(np.logaddexp(0, fake_logits))
    ### END SOLUTION


# %%
check("ex05_discriminator_loss", discriminator_loss)

# %% [markdown]
# The game says $G$ should *minimise* $\mathbb E[\ln(1 - D(G(z)))]$. But early in training $D$
# rejects the samples confidently, $D(G(z)) \approx 0$. What $G$ changes is the logit
# $\ell$ (then $D = \sigma(\ell)$), and as a function of the logit, $\ln(1 - \sigma(\ell)) = -\mathrm{softplus}(\ell)$
# is flat for very negative $\ell$: its derivative is $-\sigma(\ell) = -D(G(z))$, which
# vanishes exactly when $G$ most needs it. Goodfellow et al.'s fix: *maximise*
# $\mathbb E[\ln D(G(z))]$ instead, the **non-saturating** loss, with the same fixed point;
# its derivative in the logit is $1 - D(G(z))$, close to 1 there.
#
# The plot shows both derivatives for one sample of a batch of 100. The losses are means over
# the batch, so each sample's gradient carries a factor 1/100; the `* 100` below undoes it,
# giving the per-sample derivatives $D(G(z))$ and $1 - D(G(z))$.

# %%
logits = mg.Tensor(np.linspace(-8, 4, 100), requires_grad=True)
grad_minimax = mg.grad(mg.models.gan.generator_loss(logits, "minimax") * 100, logits)[0].numpy()
grad_non_saturating = mg.grad(mg.models.gan.generator_loss(logits, "non-saturating") * 100, logits)[0].numpy()
fig = Figure(figsize=(6, 3.5))
ax = fig.add_subplot()
ax.plot(F.sigmoid(logits).numpy(), np.abs(grad_minimax), label="minimax: |d/dl log(1 - D)|")
ax.plot(F.sigmoid(logits).numpy(), np.abs(grad_non_saturating), label="non-saturating: |d/dl -log D|")
ax.set_xscale("log")
ax.set_xlabel("D(G(z))")
ax.set_ylabel("|d loss / d logit| for one sample")
ax.set_title("the minimax loss saturates where D rejects the samples")
ax.legend(fontsize=8)
fig

# %% [markdown]
# **Exercise 5.2 (the non-saturating generator loss).** From the logits $D$ gives generated
# samples, return $-\mathbb E[\ln D(G(z))]$.


# %%
def generator_loss(fake_logits):
    ### BEGIN SOLUTION
    return np.mean(np.logaddexp(0, -fake_logits))
    ### END SOLUTION


# %%
check("ex05_generator_loss", generator_loss)

# %% [markdown]
# ## A GAN on the ring of 8 Gaussians
#
# Eight Gaussians of standard deviation 0.02 on a circle of radius 2 (the ring of Metz et al.,
# 2017): easy to draw, and a good test of whether a generator finds every mode. A sample is
# *high quality* if it lies within 3 standard deviations of a mode; a mode is *covered* if it
# has at least 20 of 2,500 samples. minigen's default MLP GAN, for the first 20 of its 40
# epochs (about 25 seconds; `minigen train gan` runs all 40 and reaches 92% high-quality samples).
#
# `GANExperiment` holds the data, the two networks and their optimizers; the loop is
# Goodfellow et al.'s Algorithm 1, one step of D and then one of G per batch
# (`discriminator_step` and `generator_step`, beside the losses in `minigen/models/gan.py`):

# %%
config = make_config(model="mlp", data="ring8", epochs=20, out=notebook_run("ring"))
experiment = GANExperiment(config)
G, D = experiment.G, experiment.D
history = []
for epoch in range(config["epochs"]):
    steps = []
    for real, _ in experiment.batches():  # 100 batches of 256 points from the ring
        d = discriminator_step(G, D, experiment.d_opt, mg.Tensor(real), experiment.noise(len(real)))
        g = generator_step(G, D, experiment.g_opt, experiment.noise(len(real)))
        steps.append([d["d_loss"], g["g_loss"], d["d_real"], d["d_fake"]])
    for schedule in experiment.schedules:
        schedule.step()  # the learning rate falls by a factor 0.95 per epoch
    averages = dict(zip(["train_d_loss", "train_g_loss", "train_d_real", "train_d_fake"], np.mean(steps, axis=0)))
    history.append({"epoch": epoch + 1, **averages, **experiment.evaluate()})
    experiment.frames.append(experiment.frame())  # this epoch's samples, for the GIF
experiment.draw(history, config["out"])  # the pictures, the frames and training.gif
last = history[-1]
print(f"modes covered: {last['modes_covered']}/8, high-quality samples: {last['high_quality']:.0%}")
plots.curves(history, ["modes_covered"], "modes covered during training", "modes (of 8)")

# %%
plots.scatter_2d(
    experiment.distribution.sample(2500, mg.Generator(0))[0], experiment.generate(2500), experiment.distribution.centers, "after training"
)

# %% [markdown]
# The frames of every epoch are in `frames/` of the run's folder, `config["out"]` (under
# `minigen-runs` in your temporary folder), and animated in `training.gif` there. In this
# run the samples first spread over the whole square, then settle on the circle, and only
# then gather at the modes; the curve above shows
# how unsteady that is (the covered modes jump up and down for several epochs before the
# decaying learning rate lets them settle). Change the seed and the path changes.
#
# ## Mode collapse on the ring
#
# Now the same ring with settings that work for images but not here: DCGAN's learning rate of
# $2 \cdot 10^{-4}$ without decay, a 16-dimensional latent and batches of 64. The generator
# *collapses*: it puts all its samples near one mode, the discriminator learns to reject that
# region, and the generator jumps to another, chasing the discriminator round the ring
# instead of spreading out (about 10 seconds):

# %%
import matplotlib.image

chasing = GANExperiment(
    make_config(model="mlp", data="ring8", epochs=15, latent=16, lr=2e-4, lr_decay=1.0, batch_size=64, out=notebook_run("ring-collapse"))
)
collapse_history = train(chasing, 15, chasing.config["out"], progress=False, overwrite=True)
print("modes covered per epoch:", [row["modes_covered"] for row in collapse_history])
fig = Figure(figsize=(12, 4))
for i, epoch in enumerate((5, 10, 15)):
    ax = fig.add_subplot(1, 3, i + 1)
    ax.imshow(matplotlib.image.imread(f"{chasing.config['out']}/frames/epoch_{epoch:03d}.png"))
    ax.axis("off")
fig.tight_layout()
fig

# %% [markdown]
# ## Mode collapse, measured on images
#
# The same MLP GAN on the 8x8 digits, with DCGAN's usual learning rate of $2 \cdot 10^{-4}$,
# collapses: the generator learns to produce one kind of digit and the discriminator cannot
# push it anywhere else. A classifier trained on the real digits says which digits the
# samples look like (`minigen/metrics.py`):

# %%
collapsed = GANExperiment(make_config(model="mlp", data="digits", epochs=40, lr=2e-4, out=notebook_run("digits-collapse")))
train(collapsed, 40, collapsed.config["out"], progress=False, overwrite=True)
_, probs = collapsed.classifier.features_and_probs(collapsed.generate(1000))
coverage = metrics.class_coverage(probs)
print("samples per predicted class:", coverage["class_histogram"], f"-> {coverage['classes_above_5pct']} class(es) above 5%")
plots.image_grid(collapsed.generate(40), columns=10, title="a collapsed generator")

# %% [markdown]
# With a larger learning rate and more epochs (minigen's defaults for this model, about 15
# seconds) it covers the classes; notebook 6 does better still with convolutions. Things to
# try: `--loss minimax` on the ring, `--label-smoothing 0.1`, or `--d-steps 5`, e.g.
# `minigen train gan --data grid25` for the 25-mode grid.
