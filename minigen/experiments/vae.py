"""A VAE run: data, model, optimizer, one training step, evaluation and pictures.

`VAEExperiment(config)` is what `minigen train vae` builds and `minigen.train.train` runs.
On data in [0, 1] with the Bernoulli likelihood (the default) the training images are
binarised afresh at every step (dynamic binarisation) and the test images once, with a
fixed seed, so that test ELBOs are comparable between runs and epochs (as in Burda et al.,
2016).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import optim, plots
from ..data import DataLoader, binarize_dynamic, binarize_fixed, load_images
from ..engine.tensor import Tensor, no_grad
from ..models.vae import VAE, ConditionalVAE, ConvVAE, elbo_step
from ..random import Generator, default_generator, manual_seed
from .settings import batch_fits, default, nonnegative, one_of, positive, sizes, whole

MODELS = {"mlp": VAE, "conv": ConvVAE, "cvae": ConditionalVAE}
DATASETS = ("digits", "mnist", "fashion-mnist")

# Defaults by data set: the 8x8 digits train in seconds with small networks; the 28x28 sets
# use PyTorch's MNIST example sizes (784-400-20).
DEFAULTS = {
    "digits": {"hidden": {"mlp": [128], "conv": [32, 64], "cvae": [128]}, "latent": 8, "epochs": 100, "batch_size": 32},
    "mnist": {"hidden": {"mlp": [400], "conv": [32, 64], "cvae": [400]}, "latent": 20, "epochs": 10, "batch_size": 128},
}


def make_config(
    model: str = "mlp",
    data: str = "digits",
    data_dir=None,
    latent=None,
    hidden=None,
    epochs=None,
    batch_size=None,
    lr: float = 1e-3,
    beta: float = 1.0,
    warmup_epochs: int = 0,
    likelihood: str = "bernoulli",
    seed: int = 0,
    out=None,
) -> dict:
    """The run's settings, checked, with the data set's defaults filled in where a setting is
    None (plain values: saved in checkpoints), `out` defaulting to runs/vae-<model>-<data>. A
    setting out of range raises SettingError."""
    one_of("--model", model, list(MODELS))
    one_of("--data", data, DATASETS)
    one_of("--likelihood", likelihood, ("bernoulli", "gaussian"))
    defaults = DEFAULTS["digits" if data == "digits" else "mnist"]
    return {
        "family": "vae",
        "model": model,
        "data": data,
        "data_dir": None if data_dir is None else str(data_dir),
        "latent": whole("--latent", default(latent, defaults["latent"])),
        "hidden": sizes("--hidden", default(hidden, defaults["hidden"][model])),
        "epochs": whole("--epochs", default(epochs, defaults["epochs"])),
        "batch_size": whole("--batch-size", default(batch_size, defaults["batch_size"])),
        "lr": positive("--lr", lr),
        "beta": nonnegative("--beta", beta),
        "warmup_epochs": whole("--warmup-epochs", warmup_epochs, 0),
        "likelihood": likelihood,
        "seed": whole("--seed", seed, 0),
        "out": str(default(out, f"runs/vae-{model}-{data}")),
    }


class VAEExperiment:
    divergence_hint = "Try a lower learning rate (--lr), a KL warm-up (--warmup-epochs), or the Bernoulli likelihood for images in [0, 1]."

    def __init__(self, config: dict):
        self.config = config
        self.name = f"vae-{config['model']}-{config['data']}"
        manual_seed(config["seed"])  # the weights' initialisation
        self.rng = Generator(config["seed"] + 1)  # shuffling, binarisation and the noise eps
        self.train_x, self.train_y = load_images(config["data"], "train", config["data_dir"])
        self.test_gray, self.test_y = load_images(config["data"], "test", config["data_dir"])
        batch_fits(config["batch_size"], len(self.train_x), "training", whole_batches_only=False)
        self.bernoulli = config["likelihood"] == "bernoulli"
        self.test_x = binarize_fixed(self.test_gray, seed=config["seed"] + 2) if self.bernoulli else self.test_gray
        self.model = MODELS[config["model"]](
            x_shape=self.train_x.shape[1:], hidden=config["hidden"], latent=config["latent"], likelihood=config["likelihood"]
        )
        self.optimizer = optim.Adam(self.model.parameters(), lr=config["lr"])
        self.conditional = config["model"] == "cvae"

    # --- training ---

    def batches(self):
        return DataLoader(self.train_x, self.train_y, batch_size=self.config["batch_size"], shuffle=True, generator=self.rng)

    def beta(self, epoch: int) -> float:
        """beta, ramped up linearly over the first warmup_epochs epochs (KL warm-up, Sønderby et al., 2016)."""
        warmup = self.config["warmup_epochs"]
        return self.config["beta"] * (min(1.0, (epoch + 1) / warmup) if warmup else 1.0)

    def train_step(self, batch, epoch: int) -> dict:
        x, y = batch
        if self.bernoulli:
            x = binarize_dynamic(x, self.rng)
        return elbo_step(self.model, self.optimizer, x, y if self.conditional else None, self.beta(epoch), self.rng)

    @no_grad()
    def evaluate(self, epoch: int | None = None, batch_size: int = 500) -> dict:
        """Test-set ELBO (beta = 1), its two terms, and the number of active latent units, in nats
        per image; with the same noise every time, so epochs compare."""
        noise = Generator(self.config["seed"] + 3)
        sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
        means = []
        for start in range(0, len(self.test_x), batch_size):
            x, y = self.test_x[start : start + batch_size], self.test_y[start : start + batch_size]
            terms = self.model.elbo(x, y if self.conditional else None, generator=noise)
            for key in sums:
                sums[key] += float(getattr(terms, key).data.sum())
            means.append(self.model.encode(Tensor(x), y if self.conditional else None)[0].data)
        n = len(self.test_x)
        return {f"test_{k}": v / n for k, v in sums.items()} | {"active_units": active_units(np.concatenate(means))}

    def after_epoch(self, epoch: int, history: list[dict]) -> None:
        pass

    # --- pictures ---

    def draw(self, history: list[dict], out) -> list[Path]:
        out = Path(out)
        model, y = self.model, self.test_y
        labels = lambda idx: y[idx] if self.conditional else None  # noqa: E731
        firsts = np.array([np.flatnonzero(y == digit)[0] for digit in np.unique(y)])  # one test image per class
        recon = model.reconstruct(self.test_x[firsts], labels(firsts))
        shown = self.test_x[firsts] if self.bernoulli else None  # the binarised images the encoder saw
        title = "test images, the binarised input, and its reconstruction (pixel probabilities)" if self.bernoulli else "reconstructions"
        written = [plots.save(plots.reconstructions(self.test_gray[firsts], recon, title, inputs=shown), out / "reconstructions.png")]
        sample_labels = np.repeat(np.arange(10), 10) if self.conditional else None
        samples = model.sample(100, sample_labels, generator=Generator(self.config["seed"] + 4))
        title = "samples, one class per row" if self.conditional else "samples from p(z), decoded"
        written.append(plots.save(plots.image_grid(samples, columns=10, title=title), out / "samples.png"))
        written.append(
            plots.save(
                plots.curves(history, ["train_elbo", "test_elbo"], "ELBO per epoch", "nats per image (higher is better)"), out / "elbo.png"
            )
        )
        written.append(
            plots.save(
                plots.curves(history, ["test_reconstruction", "test_kl"], "the two terms of the test ELBO", "nats per image"),
                out / "elbo_terms.png",
            )
        )
        a, b = firsts[0], firsts[min(1, len(firsts) - 1)]
        written.append(plots.save(self.interpolation(a, b), out / "interpolation.png"))
        with no_grad():
            mu = model.encode(Tensor(self.test_x), labels(np.arange(len(y))))[0].data
        written.append(plots.save(plots.latent_scatter(mu, y), out / "latent_means.png"))
        if self.config["latent"] == 2 and not self.conditional:
            decode = lambda codes: model.mean_image(model.decode(Tensor(codes)))  # noqa: E731
            with no_grad():
                written.append(plots.save(plots.manifold(decode), out / "manifold.png"))
        return written

    @no_grad()
    def interpolation(self, a: int, b: int, steps: int = 10):
        """Decode the straight line between the posterior means of test images a and b."""
        y = self.test_y[[a, b]] if self.conditional else None
        mu = self.model.encode(Tensor(self.test_x[[a, b]]), y)[0].data
        codes = np.stack([(1 - t) * mu[0] + t * mu[1] for t in np.linspace(0, 1, steps)]).astype(mu.dtype)
        labels = np.full(steps, self.test_y[a]) if self.conditional else None
        images = self.model.mean_image(self.model.decode(Tensor(codes), labels))
        ends = np.concatenate([self.test_gray[[a]], images, self.test_gray[[b]]])
        return plots.image_grid(
            ends, columns=steps + 2, title=f"from a test {self.test_y[a]} to a test {self.test_y[b]} through the latent space"
        )

    # --- checkpoints ---

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.state_dict(),
            "default_generator": default_generator.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.load_state_dict(state["rng"])
        default_generator.load_state_dict(state["default_generator"])

    # --- evaluation of a trained model ---

    def log_likelihood(self, k: int = 5000, images_per_batch: int = 10, chunk: int = 500) -> float:
        r"""The test set's mean $\mathcal L_K$ (nats per image): the importance-weighted estimate of $\ln p(x)$."""
        noise = Generator(self.config["seed"] + 5)
        total = 0.0
        for start in range(0, len(self.test_x), images_per_batch):
            x, y = self.test_x[start : start + images_per_batch], self.test_y[start : start + images_per_batch]
            total += float(self.model.iwae_bound(x, y if self.conditional else None, k=k, chunk=chunk, generator=noise).sum())
        return total / len(self.test_x)


def active_units(means: np.ndarray, threshold: float = 0.01) -> int:
    r"""Latent dimensions the encoder uses: $\mathrm{Var}_x\, \mathbb E_{q(z|x)}[z_u] > 0.01$ (Burda et al., 2016)."""
    return int((np.var(means, axis=0) > threshold).sum())
