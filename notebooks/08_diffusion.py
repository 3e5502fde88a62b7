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
# # 8. Diffusion: learning to undo noise
#
# A VAE decodes a latent code in one pass; a GAN's generator does too. A diffusion model
# (Sohl-Dickstein et al., 2015; Ho et al., 2020, "DDPM") takes many small steps instead. A
# fixed *forward process* destroys an image by adding a little Gaussian noise at each of
# $T = 1000$ steps, until nothing but noise is left; a network learns to undo one step at a
# time; sampling starts from pure noise and runs the learned reverse process. The network
# is trained with a plain regression loss, with no adversary and no encoder.
#
# This notebook adds noise to a digit, has you write the forward process, the loss and one
# reverse step, trains a denoiser on a 2-D toy on the page, samples from it, measures how
# much DDIM's shortcut saves, and trains a small U-Net on the digits. The code it refers to
# is `minigen/models/diffusion.py`.

# %%
import time

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from minigen import metrics, plots
from minigen.data import load_images, ring8, to_symmetric
from minigen.exercises import check
from minigen.experiments.diffusion import DiffusionExperiment, make_config
from minigen.models import diffusion

# %% [markdown]
# ## The forward process
#
# Each step keeps most of the signal and adds a little noise,
# $q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1 - \beta_t}\, x_{t-1}, \beta_t I)$, with a schedule
# $\beta_1, \dots, \beta_T$. Gaussians compose: with $\alpha_t = 1 - \beta_t$ and
# $\bar\alpha_t = \alpha_1 \alpha_2 \cdots \alpha_t$, the whole chain from $x_0$ to $x_t$ is one Gaussian,
#
# $$q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big), \qquad
# x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon, \quad \varepsilon \sim \mathcal N(0, I).$$
#
# (By induction: if $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\, x_0 + \sqrt{1 - \bar\alpha_{t-1}}\, \varepsilon'$, then
# $x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{\beta_t}\, \varepsilon''$ has mean $\sqrt{\bar\alpha_t}\, x_0$ and noise variance
# $\alpha_t (1 - \bar\alpha_{t-1}) + \beta_t = 1 - \bar\alpha_t$.) So training can jump to any step at once.
#
# **Exercise 8.1 (`q_sample`).** `x0` is a batch (N, ...), `t` an integer array of N steps,
# `noise` has the shape of `x0`, and `alpha_bar` is indexed by the step (`alpha_bar[0] = 1`:
# no noise yet). Return $x_t$, each example at its own step: shape `alpha_bar[t]` so that it
# broadcasts over the example's other axes.


# %%
def q_sample(x0, t, noise, alpha_bar):
    ### BEGIN SOLUTION
    a = alpha_bar[t].reshape(-1, *[1] * (x0.ndim - 1))
    return np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
    ### END SOLUTION


# %%
check("ex08_q_sample", q_sample)

# %% [markdown]
# Two schedules: Ho et al.'s *linear* one ($\beta_t$ from $10^{-4}$ to $0.02$) and Nichol and
# Dhariwal's *cosine* one ($\bar\alpha_t \propto \cos^2$ of $t/T$), which destroys the signal
# more evenly. Here is one digit at eight steps of each (minigen's `diffusion.q_sample`, the
# same formula), and how much of the signal, $\sqrt{\bar\alpha_t}$, is left at each step:

# %%
digits, labels = load_images("digits", "train")
x0 = to_symmetric(digits[:1])  # one digit, in [-1, 1]
steps = np.array([0, 50, 100, 200, 300, 500, 700, 1000])
schedules = {"linear": diffusion.NoiseSchedule.linear(1000), "cosine": diffusion.NoiseSchedule.cosine(1000)}
noise = np.random.default_rng(0).standard_normal((len(steps), *x0.shape[1:])).astype(np.float32)
rows = [diffusion.q_sample(schedule, np.repeat(x0, len(steps), axis=0), steps, noise) for schedule in schedules.values()]
plots.image_grid(np.clip((np.concatenate(rows) + 1) / 2, 0, 1), columns=len(steps), title=f"t = {', '.join(map(str, steps))}",
                 row_labels=list(schedules))  # fmt: skip

# %%
fig = Figure(figsize=(6, 3.5))
ax = fig.add_subplot()
for name, schedule in schedules.items():
    ax.plot(np.sqrt(schedule.alpha_bar), label=f"{name}: sqrt(alpha_bar_t), the signal")
ax.set_xlabel("step t")
ax.legend()
ax.set_title("the linear schedule leaves little signal after t = 600")
fig

# %% [markdown]
# ## Why predicting the noise works
#
# The reverse of one step is not Gaussian in general, but given where the chain started it is:
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I), \qquad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t} x_0
# + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t,
# \quad \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t} \beta_t.$$
#
# A network cannot know $x_0$, but it can estimate it. Write $x_0$ through the noise,
# $x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\, \varepsilon) / \sqrt{\bar\alpha_t}$, put that into $\tilde\mu_t$, and
# let the network $\varepsilon_\theta(x_t, t)$ predict the noise:
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \varepsilon_\theta(x_t, t)\Big).$$
#
# The ELBO of this model is a sum over steps of KL divergences between Gaussians, each a
# weighted squared error between $\varepsilon$ and $\varepsilon_\theta$. Ho et al. drop the weights:
#
# $$L_\text{simple} = \mathbb E_{t,\, x_0,\, \varepsilon}\,
# \big\|\varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon,\ t)\big\|^2,$$
#
# a regression: noise a clean example to a random step, and ask the network which noise it was.
#
# **Exercise 8.2 (`simple_loss`).** Given the denoiser `model` (called as `model(x_t, t)`; it
# takes a NumPy batch and returns a Tensor), a clean batch `x0`, its steps `t`, the `noise` and
# `alpha_bar`, return $L_\text{simple}$ on this batch: the mean over examples and dimensions,
# as a Tensor (so that `loss.backward()` trains the model). Your `q_sample` builds $x_t$.


# %%
def simple_loss(model, x0, t, noise, alpha_bar):
    ### BEGIN SOLUTION
    x_t = q_sample(x0, t, noise, alpha_bar).astype(np.float32)
    return ((model(x_t, t) - mg.Tensor(noise)) ** 2).mean()
    ### END SOLUTION


# %%
check("ex08_simple_loss", simple_loss)

# %% [markdown]
# **Exercise 8.3 (`reverse_step`).** One step of ancestral sampling (Ho et al.'s Algorithm 2):
# $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ with $\sigma_t^2 = \beta_t$ and $z \sim \mathcal N(0, I)$,
# except at $t = 1$, where the step returns the mean (no noise is added to the final sample).
# `beta` and `alpha_bar` are indexed by the step; $\alpha_t = 1 - \beta_t$.


# %%
def reverse_step(x_t, t, predicted_noise, z, beta, alpha_bar):
    ### BEGIN SOLUTION
    mean = (x_t - beta[t] / np.sqrt(1 - alpha_bar[t]) * predicted_noise) / np.sqrt(1 - beta[t])
    return mean if t == 1 else mean + np.sqrt(beta[t]) * z
    ### END SOLUTION


# %%
check("ex08_reverse_step", reverse_step)

# %% [markdown]
# ## Training on the page
#
# The ring of 8 Gaussians from notebook 5, each of standard deviation 0.02, and a small MLP
# as $\varepsilon_\theta$: the point and a sinusoidal code of its step go in side by side
# (`MLPDenoiser`). Every iteration is Algorithm 1: a batch, a step and noise per point, one
# Adam step on $L_\text{simple}$ (`noise_prediction_loss`, the same as your `simple_loss`
# with the steps and noise drawn inside). 3,000 iterations take about 15 seconds.

# %%
mg.manual_seed(0)
rng, data_rng = np.random.default_rng(0), mg.Generator(1)
ring = ring8()
schedule = diffusion.NoiseSchedule.cosine(1000)
denoiser = diffusion.MLPDenoiser(2, hidden=(128, 128, 128))
optimizer = mg.optim.Adam(denoiser.parameters(), lr=4e-3)
losses = []
for step in range(3000):
    optimizer.param_groups[0]["lr"] = 4e-3 * (1 - 0.9 * step / 3000)  # down to a tenth, linearly
    loss = diffusion.noise_prediction_loss(denoiser, schedule, ring.sample(512, data_rng)[0], rng)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

fig = Figure(figsize=(6, 3.5))
ax = fig.add_subplot()
ax.plot(np.convolve(losses, np.ones(50) / 50, mode="valid"))
ax.set_xlabel("iteration")
ax.set_ylabel("L_simple (moving average of 50)")
ax.set_title("the loss stays above 0: a noisy x_t does not say which point it came from")
fig

# %% [markdown]
# ## Sampling
#
# From $x_T \sim \mathcal N(0, I)$, 1,000 reverse steps (`sample` with `steps=None` runs
# `ddpm_step`, the step you wrote). Watch the points find the ring: the coarse structure
# appears late, the fine one at the very end.


# %%
def predict(x, t):
    with mg.no_grad():
        return denoiser(x, t).data


trajectory = []
start = time.perf_counter()
points = diffusion.sample(predict, schedule, (2500, 2), np.random.default_rng(1), trajectory=trajectory)
ddpm_seconds = time.perf_counter() - start
plots.trajectory_scatter(trajectory, ring.sample(2500, mg.Generator(0))[0])

# %% [markdown]
# ## DDIM: fewer steps, measured
#
# Song et al. (2021) noticed that $L_\text{simple}$ only ever looks at $q(x_t \mid x_0)$, never at
# the one-step chain, so the same network serves a family of reverse processes. The
# deterministic one (DDIM, $\eta = 0$) jumps from step $t$ to any earlier $s$ through the
# predicted $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\, \varepsilon_\theta) / \sqrt{\bar\alpha_t}$:
#
# $$x_s = \sqrt{\bar\alpha_s}\, \hat x_0 + \sqrt{1 - \bar\alpha_s}\, \varepsilon_\theta(x_t, t).$$
#
# Near $t = T$ the cosine schedule's $\sqrt{\bar\alpha_t}$ is tiny, and dividing by it turns a
# small error in $\varepsilon_\theta$ into a huge $\hat x_0$; `clip=3.0` keeps $\hat x_0$ in the data's
# range. The same trained network, sampled four ways (the modes are covered when 20 of
# the 2,500 samples land within three standard deviations of each):

# %%
real = ring.sample(2500, mg.Generator(0))[0]
rows, figures = [], []
for steps in (None, 100, 20, 5):
    start = time.perf_counter()
    if steps is None:  # the ancestral samples drawn above, and their time
        drawn, seconds = points, ddpm_seconds
    else:
        drawn = diffusion.sample(predict, schedule, (2500, 2), np.random.default_rng(1), steps=steps, clip=3.0)
        seconds = time.perf_counter() - start
    measured = metrics.mode_metrics(drawn, ring.centers, ring.std)
    name = "DDPM, 1000 steps" if steps is None else f"DDIM, {steps} steps"
    rows.append(f"{name:18} {seconds:6.2f} s   {measured['modes_covered']}/8 modes   {measured['high_quality']:.0%} high quality")
    figures.append((name, drawn))
print("\n".join(rows))

fig = Figure(figsize=(12, 3.2))
for i, (name, drawn) in enumerate(figures):
    ax = fig.add_subplot(1, 4, i + 1)
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.2)
    ax.scatter(drawn[:, 0], drawn[:, 1], s=2, alpha=0.5)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_title(name)
fig

# %% [markdown]
# ## A U-Net on the digits
#
# Images need a network that sees neighbourhoods at several scales: a small U-Net
# (`UNetDenoiser`: residual blocks with group norm, the step's embedding added in each,
# 8x8 -> 4x4 and back with skip connections). `minigen train diffusion --data digits` trains
# the full-size one (about two minutes) and reaches a classifier FID below the DCGAN's;
# here a smaller one trains for 15 epochs, sampled with 20 DDIM steps from the moving
# average of its weights.

# %%
config = make_config(data="digits", channels=[16, 32], epochs=15, sample_steps=20)
run = DiffusionExperiment(config)
for epoch in range(config["epochs"]):
    for batch in run.batches():
        run.train_step(batch, epoch)
    run.after_epoch(epoch, [])
trajectory = []
run.generate(8, generator=mg.Generator(3), trajectory=trajectory)
plots.denoising_strip(trajectory, title="eight digits, from noise (left) to the sample (right)")

# %%
samples = run.generate(100, generator=mg.Generator(4))
plots.image_grid(samples, columns=10, title=f"100 samples after {config['epochs']} epochs")

# %% [markdown]
# Things to try: `minigen train diffusion --data digits` and its `trajectory.gif`;
# `--schedule linear`; `--sampler ddpm` against `--sample-steps 10`; `--ema 0` (the last
# weights instead of their average: noisier samples); and `minigen eval` on the checkpoint
# for the classifier FID beside the GANs' and the VAE's.
