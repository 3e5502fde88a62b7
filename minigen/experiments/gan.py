"""A GAN run: the data, the two networks, their optimizers and the bookkeeping around the
training steps of `minigen.models.gan` (pictures, evaluation, checkpoints). `minigen train gan`
builds one and `minigen.train.train` runs it.

Each training step is one iteration of Goodfellow et al.'s Algorithm 1 (Gulrajani et al.'s for
WGAN-GP): a step of the discriminator (the critic) on a batch, and after every `d_steps`-th
one a step of the generator. The steps themselves are `discriminator_step`, `generator_step`,
`critic_step` and `wgan_generator_step` in `minigen.models.gan`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import metrics, optim, plots
from ..data import DataLoader, grid25, load_images, ring8, to_symmetric
from ..engine.tensor import Tensor
from ..models.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    critic_step,
    discriminator_step,
    generator_step,
    wgan_generator_step,
)
from ..nn import eval_mode
from ..nn.init import dcgan_init_
from ..random import Generator, default_generator, manual_seed
from .settings import (
    SettingError,
    batch_fits,
    decay_factor,
    default,
    fraction,
    one_of,
    positive,
    sizes,
    whole,
)

MODELS = ("mlp", "dcgan", "cgan", "wgan-gp")
TOYS = {"ring8": ring8, "grid25": grid25}
DATASETS = (*TOYS, "digits", "mnist", "fashion-mnist")

# One complete row of hyperparameters per model, on the 2-D toys and on images. DCGAN's Adam:
# lr 2e-4, beta1 0.5 (Radford et al., 2015). WGAN-GP's: lr 1e-4, betas (0, 0.9), 5 critic steps
# per generator step, penalty weight lambda 10 (Gulrajani et al., 2017). The MLPs size their
# layers with `hidden`; the convolutional networks with `channels`, the base channel count.
# fmt: off
DEFAULTS = {
    "toys": {
        "mlp":     dict(latent=2, hidden=[256, 256], batch_size=256, epochs=40, lr=1e-3, betas=[0.5, 0.999], lr_decay=0.95, d_steps=1),
        "wgan-gp": dict(latent=2, hidden=[256, 256], batch_size=256, epochs=40, lr=1e-3, betas=[0.0, 0.9], lr_decay=0.95, d_steps=5,
                        penalty_weight=10.0),
    },
    "images": {
        "mlp":     dict(latent=32, hidden=[256, 256], batch_size=64, epochs=150, lr=1e-3, betas=[0.5, 0.999], lr_decay=1.0, d_steps=1),
        "dcgan":   dict(latent=32, channels=32, batch_size=64, epochs=60, lr=2e-4, betas=[0.5, 0.999], lr_decay=1.0, d_steps=1),
        "cgan":    dict(latent=32, hidden=[256, 256], batch_size=64, epochs=150, lr=1e-3, betas=[0.5, 0.999], lr_decay=1.0, d_steps=1),
        "wgan-gp": dict(latent=32, channels=32, batch_size=64, epochs=150, lr=1e-4, betas=[0.0, 0.9], lr_decay=1.0, d_steps=5,
                        penalty_weight=10.0),
    },
}
# fmt: on
TOY_STEPS_PER_EPOCH = 100


def make_config(
    model: str = "mlp",
    data: str = "ring8",
    data_dir=None,
    latent=None,
    hidden=None,
    channels=None,
    epochs=None,
    batch_size=None,
    lr=None,
    lr_decay=None,
    d_steps=None,
    loss: str = "non-saturating",
    label_smoothing: float = 0.0,
    seed: int = 0,
    out=None,
) -> dict:
    """The run's settings, checked, with the model's row of `DEFAULTS` filled in where a setting
    is None (plain values: saved in checkpoints), `out` defaulting to runs/gan-<model>-<data>. A
    setting out of range, or one the model does not have, raises SettingError."""
    one_of("--model", model, MODELS)
    one_of("--data", data, DATASETS)
    one_of("--loss", loss, ("non-saturating", "minimax"))
    toy = data in TOYS
    if toy and model not in DEFAULTS["toys"]:
        raise SettingError(f"--model {model} needs images; the 2-D toys take --model {' or '.join(DEFAULTS['toys'])}")
    row = DEFAULTS["toys" if toy else "images"][model]
    convolutional = "channels" in row
    if convolutional and hidden is not None:
        raise SettingError(f"--hidden sizes the MLPs; --model {model} on images is convolutional: give --channels (the base channel count)")
    if not convolutional and channels is not None:
        raise SettingError(
            f"--channels sizes the convolutional networks; --model {model}{' on the toys' if toy else ''} is an MLP: give --hidden"
        )
    config = {
        "family": "gan",
        "model": model,
        "data": data,
        "data_dir": None if data_dir is None else str(data_dir),
        "latent": whole("--latent", default(latent, row["latent"])),
        **(
            {"channels": whole("--channels", default(channels, row["channels"]))}
            if convolutional
            else {"hidden": sizes("--hidden", default(hidden, row["hidden"]))}
        ),
        "epochs": whole("--epochs", default(epochs, row["epochs"])),
        "batch_size": whole("--batch-size", default(batch_size, row["batch_size"])),
        "lr": positive("--lr", default(lr, row["lr"])),
        "betas": list(row["betas"]),
        "lr_decay": decay_factor(default(lr_decay, row["lr_decay"])),
        "d_steps": whole("--d-steps", default(d_steps, row["d_steps"])),
        "loss": loss,
        "label_smoothing": fraction("--label-smoothing", label_smoothing),
        "seed": whole("--seed", seed, 0),
        "out": str(default(out, f"runs/gan-{model}-{data}")),
    }
    if "penalty_weight" in row:
        config["penalty_weight"] = row["penalty_weight"]
    return config


class GANExperiment:
    divergence_hint = "Try a lower learning rate (--lr), or one-sided label smoothing (--label-smoothing 0.1)."

    def __init__(self, config: dict):
        self.config = config
        self.name = f"gan-{config['model']}-{config['data']}"
        self.toy = config["data"] in TOYS
        self.wgan = config["model"] == "wgan-gp"
        self.conditional = config["model"] == "cgan"
        manual_seed(config["seed"])
        self.rng = Generator(config["seed"] + 1)  # data order, noise, penalty points
        latent = config["latent"]
        if self.toy:
            self.distribution = TOYS[config["data"]]()
            self.G = MLPGenerator(latent, (2,), config["hidden"], output="linear")
            self.D = MLPDiscriminator((2,), config["hidden"])
        else:
            train_x, self.train_y = load_images(config["data"], "train", config["data_dir"])
            test_x, self.test_y = load_images(config["data"], "test", config["data_dir"])
            batch_fits(config["batch_size"], len(train_x), "training", whole_batches_only=True)
            self.train_unit, self.test_unit = train_x, test_x  # [0, 1], for the metrics
            self.train_x = to_symmetric(train_x)  # [-1, 1], the generator's tanh range
            shape, classes = train_x.shape[1:], (10 if self.conditional else 0)
            if "channels" in config:
                self.G = DCGANGenerator(latent, shape, channels=config["channels"])
                self.D = DCGANDiscriminator(shape, channels=config["channels"], batch_norm=not self.wgan)
                if not self.wgan:
                    dcgan_init_(self.G, generator=self.rng)
                    dcgan_init_(self.D, generator=self.rng)
            else:
                self.G = MLPGenerator(latent, shape, config["hidden"], output="tanh", num_classes=classes)
                self.D = MLPDiscriminator(shape, config["hidden"][::-1], num_classes=classes)
            self.classifier, self.classifier_accuracy = metrics.cached_classifier(
                config["data"], self.train_unit, self.train_y, self.test_unit, self.test_y, root=config["data_dir"]
            )
        betas = tuple(config["betas"])
        self.g_opt = optim.Adam(self.G.parameters(), lr=config["lr"], betas=betas)
        self.d_opt = optim.Adam(self.D.parameters(), lr=config["lr"], betas=betas)
        self.schedules = [optim.ExponentialLR(opt, gamma=config["lr_decay"]) for opt in (self.g_opt, self.d_opt)]
        self.fixed_z = Generator(config["seed"] + 2).numpy.standard_normal((100, latent)).astype(np.float32)
        self.fixed_labels = np.repeat(np.arange(10), 10) if self.conditional else None
        self.steps = 0
        self.frames: list[np.ndarray] = []  # one picture per epoch, for the GIF; saved in the checkpoint
        self._frames_written = 0  # by this process: after a resume it writes them all once
        self._reference = None  # the image metrics' real-image features, floor and baseline

    # --- training ---

    def batches(self):
        if self.toy:
            n = self.config["batch_size"]
            return [(self.distribution.sample(n, self.rng)[0], None) for _ in range(TOY_STEPS_PER_EPOCH)]
        return DataLoader(
            self.train_x, self.train_y, batch_size=self.config["batch_size"], shuffle=True, drop_last=True, generator=self.rng
        )

    def noise(self, n: int) -> Tensor:
        return Tensor(self.rng.numpy.standard_normal((n, self.config["latent"])).astype(np.float32))

    def train_step(self, batch, epoch: int) -> dict:
        """One iteration: a step of D (the critic) on this batch and fresh noise; after every
        d_steps-th one, a step of G on fresh noise."""
        x, y = batch
        labels = y if self.conditional else None
        if self.wgan:
            reported = critic_step(
                self.G, self.D, self.d_opt, Tensor(x), self.noise(len(x)), labels, self.config["penalty_weight"], self.rng
            )
        else:
            reported = discriminator_step(self.G, self.D, self.d_opt, Tensor(x), self.noise(len(x)), labels, self.config["label_smoothing"])
        self.steps += 1
        if self.steps % self.config["d_steps"] == 0:
            if self.wgan:
                reported |= wgan_generator_step(self.G, self.D, self.g_opt, self.noise(len(x)), labels)
            else:
                reported |= generator_step(self.G, self.D, self.g_opt, self.noise(len(x)), labels, self.config["loss"])
        return reported

    def generate(self, n: int, labels=None, generator: Generator | None = None, z: np.ndarray | None = None) -> np.ndarray:
        """n samples (or one per row of `z`) from G in evaluation mode: points, or images in [0, 1]."""
        if z is None:
            z = (generator or Generator(self.config["seed"] + 3)).numpy.standard_normal((n, self.config["latent"])).astype(np.float32)
        with eval_mode(self.G):
            out = self.G(Tensor(z), labels).data
        return out if self.toy else (out + 1) / 2

    # --- evaluation ---

    def samples(self, n: int, generator: Generator | None = None) -> np.ndarray:
        """n samples from G (see `generate`); a conditional G's cycle through the 10 classes."""
        return self.generate(n, np.arange(n) % 10 if self.conditional else None, generator)

    def measure(self, samples: np.ndarray | None = None) -> dict:
        """Every metric of `samples`: mode coverage on the toys, the image metrics otherwise. By
        default the evaluation's samples: 2,500 on the toys (the protocol's), 1,000 images (see
        minigen.metrics)."""
        if samples is None:
            samples = self.samples(metrics.TOY_SAMPLES if self.toy else metrics.EVAL_SAMPLES)
        if self.toy:
            return metrics.mode_metrics(samples, self.distribution.centers, self.distribution.std)
        if self._reference is None or self._reference["n"] != len(samples):  # the real images' side: once per run
            self._reference = metrics.reference_features(self.classifier, self.train_unit, self.test_unit, len(samples))
        return metrics.image_metrics(self.classifier, samples, self.train_unit, self.test_unit, reference=self._reference)

    def evaluate(self, epoch: int | None = None) -> dict:
        """The numbers metrics.csv keeps after each epoch (those of `measure()`)."""
        measured = self.measure()
        keys = ("modes_covered", "high_quality") if self.toy else ("fid", "classes_above_5pct", "inception_score")
        return {k: measured[k] for k in keys}

    def after_epoch(self, epoch: int, history: list[dict]) -> None:
        self.frames.append(self.frame())
        self.write_frames(Path(self.config["out"]))
        for schedule in self.schedules:  # the learning rate of the next epoch
            schedule.step()
        if not self.wgan and history[-1]["train_d_loss"] < 0.05:
            warnings.warn(
                f"{self.name}, epoch {epoch + 1}: the discriminator's loss fell to {history[-1]['train_d_loss']:.3g}: it tells "
                f"real from fake almost perfectly, and the generator's gradients fade. Try one-sided label smoothing "
                f"(--label-smoothing 0.1), a lower learning rate, or the non-saturating generator loss if you chose minimax.",
                RuntimeWarning,
                stacklevel=2,
            )

    # --- pictures ---

    def frame(self) -> np.ndarray:
        """The epoch's picture for the GIF: 1,000 points (toys), or the images of the fixed noise
        as bytes (100 per frame, 78 KB for MNIST)."""
        if self.toy:
            return self.generate(1000, generator=Generator(self.config["seed"] + 2))
        images = self.generate(len(self.fixed_z), self.fixed_labels, z=self.fixed_z)
        return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)

    def write_frames(self, out: Path) -> list[Path]:
        """One PNG per recorded frame (frames/epoch_001.png, ...), writing those this process has
        not written yet; returns them all."""
        paths = [out / "frames" / f"epoch_{epoch + 1:03d}.png" for epoch in range(len(self.frames))]
        for epoch in range(self._frames_written, len(self.frames)):
            if self.toy:
                fig = plots.scatter_2d(
                    self.distribution.sample(1000, Generator(0))[0],
                    self.frames[epoch],
                    self.distribution.centers,
                    title=f"epoch {epoch + 1}",
                    limits=5.0 if self.config["data"] == "grid25" else 3.0,
                )
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
            plots.save(
                plots.curves(
                    history,
                    ["train_d_real", "train_d_fake"],
                    "the discriminator's outputs" if not self.wgan else "the critic's scores",
                    "mean D(x), D(G(z))" if not self.wgan else "mean f(x), f(G(z))",
                ),
                out / "d_outputs.png",
            ),
        ]
        if frames:
            written.append(plots.save_gif(frames, out / "training.gif"))
        if self.toy:
            real = self.distribution.sample(metrics.TOY_SAMPLES, Generator(0))[0]
            last = history[-1]  # the evaluation of these very samples (the same seed)
            title = f"{last['modes_covered']}/{len(self.distribution.centers)} modes, {last['high_quality']:.0%} high quality"
            written.append(
                plots.save(
                    plots.scatter_2d(real, self.generate(metrics.TOY_SAMPLES), self.distribution.centers, title), out / "samples.png"
                )
            )
            return written
        title = "samples, one class per row" if self.conditional else "samples"
        written.append(plots.save(plots.image_grid(self.generate(100, self.fixed_labels), columns=10, title=title), out / "samples.png"))
        written.append(
            plots.save(plots.image_grid(self.interpolation(), columns=10, title="a straight line in z"), out / "interpolation.png")
        )
        return written

    def interpolation(self, steps: int = 10) -> np.ndarray:
        """Images along the straight line between two noise vectors."""
        ends = Generator(self.config["seed"] + 6).numpy.standard_normal((2, self.config["latent"]))
        z = np.stack([(1 - t) * ends[0] + t * ends[1] for t in np.linspace(0, 1, steps)]).astype(np.float32)
        return self.generate(steps, np.full(steps, 3) if self.conditional else None, z=z)

    # --- checkpoints ---

    def state_dict(self) -> dict:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
            "schedules": [s.state_dict() for s in self.schedules],
            "rng": self.rng.state_dict(),
            "default_generator": default_generator.state_dict(),
            "steps": self.steps,
            "frames": self.frames,
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        for schedule, saved in zip(self.schedules, state["schedules"]):
            schedule.load_state_dict(saved)
        self.rng.load_state_dict(state["rng"])
        default_generator.load_state_dict(state["default_generator"])
        self.steps = int(state["steps"])
        self.frames = list(state["frames"])
