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
# # 6. DCGAN on the digits, and how to measure it
#
# Radford et al. (2015) made GANs on images train reliably with a handful of rules: strided
# (transposed) convolutions instead of pooling, batch norm in both networks except at the
# generator's output and the discriminator's input, ReLU in the generator with tanh at the
# output (images scaled to [-1, 1]), LeakyReLU(0.2) in the discriminator, weights from
# $\mathcal N(0, 0.02^2)$, and Adam with learning rate $2 \cdot 10^{-4}$ and $\beta_1 = 0.5$.
# `minigen/models/gan.py` has them (`DCGANGenerator`, `DCGANDiscriminator`), and
# `minigen.nn.init.dcgan_init_` the initialisation. This notebook trains one on the bundled
# 8x8 digits in about 15 seconds and measures the result honestly.

# %%
from pathlib import Path

from minigen import metrics, plots
from minigen.data import data_root
from minigen.experiments import notebook_run
from minigen.experiments.gan import GANExperiment, make_config
from minigen.train import train

# %%
config = make_config(model="dcgan", data="digits", epochs=40, out=notebook_run("dcgan"))
experiment = GANExperiment(config)
print(experiment.G)
print(experiment.D)

# %%
history = train(experiment, config["epochs"], config["out"], progress=False, overwrite=True)
plots.curves(history, ["train_d_real", "train_d_fake"], "the discriminator's outputs", "mean D(x), D(G(z))")

# %% [markdown]
# $D(x)$ and $D(G(z))$ tell the story of the game: first $D$ wins easily (the two curves pull
# apart), then the generator catches up and they settle a little either side of 0.5.

# %%
plots.image_grid(experiment.generate(100), columns=10, title=f"samples after {config['epochs']} epochs")

# %% [markdown]
# ## Measuring it
#
# There is no Inception network here, so minigen measures samples with a small classifier
# trained on the same digits (97.7% test accuracy; trained once, then cached). Each number
# means something only beside its references:
#
# - **classifier FID**: the Fréchet distance between Gaussians fitted to the classifier's
#   features of generated and of test images. Lower is better; the *real-vs-real floor*
#   (as many training images as generated ones, against the test images) is what a
#   generator that returned real digits would score, and the *noise baseline* (uniform
#   noise) is what nothing learned scores. FID from fewer images comes out higher, so all
#   three use the same number of images: 1,000 here, as after every epoch and in
#   `minigen eval`.
# - **classes above 5%**: how many digits the samples cover (mode collapse shows here).
# - **classifier inception score**: high when each sample is confidently one digit and the
#   digits are balanced; at most 10.

# %%
measured = experiment.measure()  # 1,000 samples, the floor and baseline from as many images
print(
    f"classifier FID {measured['fid']:.2f}   "
    f"(real-vs-real floor {measured['fid_real_vs_real']:.2f}, uniform noise {measured['fid_noise']:.2f})"
)
print(f"classes above 5%: {measured['classes_above_5pct']} of 10, histogram {measured['class_histogram']}")
print(f"classifier inception score {measured['inception_score']:.2f}")
_, test_probs = experiment.classifier.features_and_probs(experiment.test_unit)
print(f"(the real test digits: inception score {metrics.inception_score(test_probs):.2f})")

# %% [markdown]
# FID per epoch shows the progress the pictures hide:

# %%
plots.curves(history, ["fid"], "classifier FID per epoch (1,000 samples)", "FID (lower is better)")

# %% [markdown]
# The Parzen-window log-likelihood of Goodfellow et al. (2014), for the historical comparison:
# a Gaussian kernel density on generated samples, its width chosen on a validation set,
# evaluated on the test images. It is a poor estimate of log-likelihood in many dimensions
# (Theis et al., 2016), so read it as history, not as a score.

# %%
parzen, sigma = metrics.parzen_log_likelihood(experiment.generate(2000), experiment.train_unit[:500], experiment.test_unit)
print(f"Parzen log-likelihood {parzen:.1f} nats per image (sigma {sigma:.3f})")

# %% [markdown]
# ## MNIST, where its files are present
#
# The same code trains the 28x28 DCGAN on MNIST (`--data mnist`). It needs the four MNIST
# files, downloaded on first use into `$MINIGEN_DATA` (default `~/.cache/minigen`); without
# them (or without a network), this cell says so and skips.

# %%
if (Path(data_root()) / "mnist").exists():
    mnist = GANExperiment(make_config(model="dcgan", data="mnist", epochs=1, out=notebook_run("dcgan-mnist")))
    train(mnist, 1, mnist.config["out"], progress=False, overwrite=True)
    from IPython.display import display  # a picture from inside an if: Jupyter shows only a cell's last value by itself

    display(plots.image_grid(mnist.generate(64), columns=8, title="DCGAN on MNIST, one epoch"))
else:
    print(f"no MNIST files in {Path(data_root()) / 'mnist'}: skipped (minigen.data.download('mnist') fetches them)")

# %% [markdown]
# To train longer: `minigen train gan --model dcgan --data digits --epochs 200`, then
# `minigen eval runs/gan-dcgan-digits/checkpoint.npz`; `--model cgan` draws one digit per row.
