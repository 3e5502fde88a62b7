"""A GAN run: data, the two networks and their optimizers, the alternating steps, evaluation
and pictures. `minigen train gan` builds one and `minigen.train.train` runs it.

Each training step is one discriminator (critic) step on a batch; every `d_steps`-th step
is followed by one generator step. The discriminator step feeds it generated samples made
under `no_grad`, so it can only move the discriminator; the generator step backpropagates
through the discriminator but steps only the generator's optimizer, and the discriminator's
gradients from it are cleared before its next step.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import metrics, optim, plots
from ..data import DataLoader, grid25, ring8, to_symmetric
from ..engine.tensor import Tensor, no_grad
from ..functional import sigmoid
from ..models.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from ..nn.init import dcgan_init_
from ..random import Generator, default_generator, manual_seed
from ..serialization import atomic_file
from .settings import SettingError, batch_fits, decay_factor, default, fraction, one_of, positive, sizes, whole
from .vae import load_images

MODELS = ("mlp", "dcgan", "cgan", "wgan-gp")
TOYS = {"ring8": ring8, "grid25": grid25}
DATASETS = (*TOYS, "digits", "mnist", "fashion-mnist")

# Hyperparameters: DCGAN's Adam (lr 2e-4, beta1 0.5; Radford et al.), WGAN-GP's (lr 1e-4,
# betas (0, 0.9), 5 critic steps per generator step, lambda 10; Gulrajani et al.).
DEFAULTS = {
    "toy": {"latent": 2, "hidden": [256, 256], "batch_size": 256, "epochs": 40, "lr": 1e-3, "betas": [0.5, 0.999], "lr_decay": 0.95},
    "mlp": {"latent": 32, "hidden": [256, 256], "batch_size": 64, "epochs": 150, "lr": 1e-3, "betas": [0.5, 0.999]},
    "dcgan": {"latent": 32, "hidden": [32], "batch_size": 64, "epochs": 60, "lr": 2e-4, "betas": [0.5, 0.999]},
    "cgan": {"latent": 32, "hidden": [256, 256], "batch_size": 64, "epochs": 150, "lr": 1e-3, "betas": [0.5, 0.999]},
    "wgan-gp": {"latent": 32, "hidden": [32], "batch_size": 64, "epochs": 150, "lr": 1e-4, "betas": [0.0, 0.9]},
}
TOY_STEPS_PER_EPOCH = 100


def make_config(model: str = "mlp", data: str = "ring8", data_dir=None, latent=None, hidden=None, epochs=None,
                batch_size=None, lr=None, lr_decay=None, d_steps=None, loss: str = "non-saturating",
                label_smoothing: float = 0.0, seed: int = 0, out=None) -> dict:
    """The run's settings, checked, with the model's defaults filled in where a setting is None
    (plain values: saved in checkpoints), `out` defaulting to runs/gan-<model>-<data>. A setting
    out of range raises SettingError."""
    one_of("--model", model, MODELS)
    one_of("--data", data, DATASETS)
    one_of("--loss", loss, ("non-saturating", "minimax"))
    toy = data in TOYS
    if toy and model in ("dcgan", "cgan"):
        raise SettingError(f"--model {model} needs images; the 2-D toys take --model mlp or wgan-gp")
    defaults = DEFAULTS["toy" if toy else model]
    hidden = sizes("--hidden", default(hidden, defaults["hidden"]))
    if model in ("dcgan", "wgan-gp") and not toy and len(hidden) != 1:
        raise SettingError(f"--hidden for --model {model} is one number, the base channel count; got {hidden}")
    return {
        "family": "gan", "model": model, "data": data, "data_dir": None if data_dir is None else str(data_dir),
        "latent": whole("--latent", default(latent, defaults["latent"])), "hidden": hidden,
        "epochs": whole("--epochs", default(epochs, defaults["epochs"])),
        "batch_size": whole("--batch-size", default(batch_size, defaults["batch_size"])),
        "lr": positive("--lr", default(lr, defaults["lr"])),
        "betas": list(DEFAULTS["wgan-gp"]["betas"] if model == "wgan-gp" else defaults["betas"]),
        "lr_decay": decay_factor(default(lr_decay, defaults.get("lr_decay", 1.0))),
        "d_steps": whole("--d-steps", default(d_steps, 5 if model == "wgan-gp" else 1)), "loss": loss,
        "label_smoothing": fraction("--label-smoothing", label_smoothing), "seed": whole("--seed", seed, 0),
        "out": str(default(out, f"runs/gan-{model}-{data}")),
    }


class GANExperiment:
    divergence_hint = "Try a lower learning rate (--lr), or one-sided label smoothing (--label-smoothing 0.1)."

    def __init__(self, config: dict):
        self.config = config
        self.name = f"gan-{config['model']}-{config['data']}"
        self.toy = config["data"] in TOYS
        self.wgan = config["model"] == "wgan-gp"
        self.conditional = config["model"] == "cgan"
        manual_seed(config["seed"])
        self.generator = Generator(config["seed"] + 1)  # data order, noise, penalty points
        latent, hidden = config["latent"], config["hidden"]
        if self.toy:
            self.mixture = TOYS[config["data"]]()
            self.G = MLPGenerator(latent, (2,), hidden, output="linear")
            self.D = MLPDiscriminator((2,), hidden)
        else:
            train_x, self.train_y = load_images(config["data"], "train", config["data_dir"])
            test_x, self.test_y = load_images(config["data"], "test", config["data_dir"])
            batch_fits(config["batch_size"], len(train_x), "training", whole_batches_only=True)
            self.train_unit, self.test_unit = train_x, test_x  # [0, 1], for the metrics
            self.train_x = to_symmetric(train_x)  # [-1, 1], the generator's tanh range
            shape, classes = train_x.shape[1:], (10 if self.conditional else 0)
            if config["model"] in ("dcgan", "wgan-gp"):
                self.G = DCGANGenerator(latent, shape, channels=hidden[0])
                self.D = DCGANDiscriminator(shape, channels=hidden[0], batch_norm=not self.wgan)
                if not self.wgan:
                    dcgan_init_(self.G, self.generator)
                    dcgan_init_(self.D, self.generator)
            else:
                self.G = MLPGenerator(latent, shape, hidden, output="tanh", num_classes=classes)
                self.D = MLPDiscriminator(shape, hidden[::-1], num_classes=classes)
            self.classifier, self.classifier_accuracy = metrics.cached_classifier(
                config["data"], self.train_unit, self.train_y, self.test_unit, self.test_y, root=config["data_dir"])
        betas = tuple(config["betas"])
        self.g_opt = optim.Adam(self.G.parameters(), lr=config["lr"], betas=betas)
        self.d_opt = optim.Adam(self.D.parameters(), lr=config["lr"], betas=betas)
        self.fixed_z = Generator(config["seed"] + 2).numpy.standard_normal((100, latent)).astype(np.float32)
        self.fixed_labels = np.repeat(np.arange(10), 10) if self.conditional else None
        self.steps = 0
        self.frames: list[np.ndarray] = []  # one picture per epoch, for the GIF; saved in the checkpoint
        self._frames_written = 0  # by this process: after a resume it writes them all once

    # --- training ---

    def batches(self):
        if self.toy:
            n = self.config["batch_size"]
            return [(self.mixture.sample(n, self.generator)[0], None) for _ in range(TOY_STEPS_PER_EPOCH)]
        return DataLoader(self.train_x, self.train_y, batch_size=self.config["batch_size"], shuffle=True, drop_last=True,
                          generator=self.generator)

    def noise(self, n: int) -> Tensor:
        return Tensor(self.generator.numpy.standard_normal((n, self.config["latent"])).astype(np.float32))

    def train_step(self, batch, epoch: int) -> dict:
        x, y = batch
        labels = y if self.conditional else None
        for opt in (self.g_opt, self.d_opt):  # exponential decay, derived from the epoch (nothing to save)
            opt.param_groups[0]["lr"] = self.config["lr"] * self.config["lr_decay"] ** epoch
        reported = self.discriminator_step(Tensor(x), labels)
        self.steps += 1
        if self.steps % self.config["d_steps"] == 0:
            reported["g_loss"] = self.generator_step(len(x), labels)
        return reported

    def discriminator_step(self, real: Tensor, labels=None) -> dict:
        """One step of D (or the critic). The fake batch is made under no_grad: G cannot move."""
        with no_grad():
            fake = self.G(self.noise(len(real)), labels)
        real_out, fake_out = self.D(real, labels), self.D(fake, labels)
        if self.wgan:
            loss = fake_out.mean() - real_out.mean() + gradient_penalty(self.D, real, fake, labels, 10.0, self.generator)
        else:
            loss = discriminator_loss(real_out, fake_out, self.config["label_smoothing"])
        self.d_opt.zero_grad()
        loss.backward()
        self.d_opt.step()
        summarise = (lambda out: float(out.data.mean())) if self.wgan else (lambda out: float(sigmoid(out).data.mean()))
        return {"d_loss": loss.item(), "d_real": summarise(real_out), "d_fake": summarise(fake_out)}

    def generator_step(self, n: int, labels=None) -> float:
        """One step of G. The gradient flows back through D, but only G's optimizer steps (and D's
        gradients from here are cleared before its next step)."""
        scores = self.D(self.G(self.noise(n), labels), labels)
        loss = -scores.mean() if self.wgan else generator_loss(scores, self.config["loss"])
        self.g_opt.zero_grad()
        loss.backward()
        self.g_opt.step()
        return loss.item()

    @no_grad()
    def generate(self, n: int, labels=None, generator: Generator | None = None) -> np.ndarray:
        """n samples: points, or images in [0, 1]."""
        was_training = self.G.training
        self.G.eval()
        z = Tensor((generator or Generator(self.config["seed"] + 3)).numpy.standard_normal((n, self.config["latent"])).astype(np.float32))
        out = self.G(z, labels).data
        self.G.train(was_training)
        return out if self.toy else (out + 1) / 2

    def evaluate(self, epoch: int | None = None) -> dict:
        if self.toy:
            found = metrics.mode_metrics(self.generate(2500), self.mixture.centers, self.mixture.std)
            return {"modes_covered": found["modes_covered"], "high_quality": found["high_quality"]}
        labels = np.arange(metrics.EVAL_SAMPLES) % 10 if self.conditional else None
        found = metrics.image_metrics(self.classifier, self.generate(metrics.EVAL_SAMPLES, labels), self.train_unit, self.test_unit)
        return {k: found[k] for k in ("fid", "classes_above_5pct", "inception_score")}

    def after_epoch(self, epoch: int, history: list[dict]) -> None:
        self.frames.append(self.frame())
        self.write_frames(Path(self.config["out"]))
        if not self.wgan and history[-1]["train_d_loss"] < 0.05:
            warnings.warn(
                f"{self.name}, epoch {epoch + 1}: the discriminator's loss fell to {history[-1]['train_d_loss']:.3g}: it tells "
                f"real from fake almost perfectly, and the generator's gradients fade. Try one-sided label smoothing "
                f"(--label-smoothing 0.1), a lower learning rate, or the non-saturating generator loss if you chose minimax.",
                RuntimeWarning, stacklevel=2)

    # --- pictures ---

    def frame(self) -> np.ndarray:
        """The epoch's picture for the GIF: 1,000 points (toys), or the images of the fixed noise
        as bytes (100 per frame, 78 KB for MNIST)."""
        if self.toy:
            return self.generate(1000, generator=Generator(self.config["seed"] + 2))
        with no_grad():
            was_training = self.G.training
            images = (self.G.eval()(Tensor(self.fixed_z), self.fixed_labels).data + 1) / 2
            self.G.train(was_training)
        return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)

    def write_frames(self, out: Path) -> list[Path]:
        """One PNG per recorded frame (frames/epoch_001.png, ...), writing those this process has
        not written yet; returns them all."""
        paths = [out / "frames" / f"epoch_{epoch + 1:03d}.png" for epoch in range(len(self.frames))]
        for epoch in range(self._frames_written, len(self.frames)):
            if self.toy:
                fig = plots.scatter_2d(self.mixture.sample(1000, Generator(0))[0], self.frames[epoch], self.mixture.centers,
                                       title=f"epoch {epoch + 1}", limits=5.0 if self.config["data"] == "grid25" else 3.0)
            else:
                fig = plots.image_grid(self.frames[epoch] / 255.0, columns=10, title=f"fixed noise, epoch {epoch + 1}")
            plots.save(fig, paths[epoch])
        self._frames_written = len(self.frames)
        return paths

    def draw(self, history: list[dict], out) -> list[Path]:
        out = Path(out)
        frames = self.write_frames(out)
        written = [
            plots.save(plots.curves(history, ["train_d_loss", "train_g_loss"], "losses per epoch", "loss"), out / "losses.png"),
            plots.save(plots.curves(history, ["train_d_real", "train_d_fake"], "the discriminator's outputs" if not self.wgan else "the critic's scores",
                                    "mean D(x), D(G(z))" if not self.wgan else "mean f(x), f(G(z))"), out / "d_outputs.png"),
        ]
        if frames:
            written.append(save_gif(frames, out / "training.gif"))
        if self.toy:
            real = self.mixture.sample(2500, Generator(0))[0]
            found = metrics.mode_metrics(self.generate(2500), self.mixture.centers, self.mixture.std)
            title = f"{found['modes_covered']}/{found['modes']} modes, {found['high_quality']:.0%} high quality"
            written.append(plots.save(plots.scatter_2d(real, self.generate(2500), self.mixture.centers, title), out / "samples.png"))
            return written
        labels = self.fixed_labels
        title = "samples, one class per row" if self.conditional else "samples"
        written.append(plots.save(plots.image_grid(self.generate(100, labels), columns=10, title=title), out / "samples.png"))
        written.append(plots.save(plots.image_grid(self.interpolation(), columns=10, title="a straight line in z"), out / "interpolation.png"))
        return written

    @no_grad()
    def interpolation(self, steps: int = 10) -> np.ndarray:
        ends = Generator(self.config["seed"] + 6).numpy.standard_normal((2, self.config["latent"]))
        z = np.stack([(1 - t) * ends[0] + t * ends[1] for t in np.linspace(0, 1, steps)]).astype(np.float32)
        labels = np.full(steps, 3) if self.conditional else None
        self.G.eval()
        images = (self.G(Tensor(z), labels).data + 1) / 2
        self.G.train()
        return images

    # --- checkpoints ---

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                "generator": self.generator.state_dict(), "default_generator": default_generator.state_dict(), "steps": self.steps,
                "frames": self.frames}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.generator.load_state_dict(state["generator"])
        default_generator.load_state_dict(state["default_generator"])
        self.steps = int(state["steps"])
        self.frames = list(state["frames"])


def save_gif(frames, path, seconds_per_frame: float = 0.3) -> Path:
    """An animated GIF of PNG frames (Pillow comes with matplotlib)."""
    from PIL import Image

    images = [Image.open(frame).convert("P", palette=Image.ADAPTIVE) for frame in frames]
    with atomic_file(path) as file:
        images[0].save(file, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 * seconds_per_frame), loop=0)
    return Path(path)
