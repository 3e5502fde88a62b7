"""A diffusion run: the data, the denoiser, its optimizer and the bookkeeping around the
training step of `minigen.models.diffusion` (pictures, evaluation, checkpoints).
`minigen train diffusion` builds one and `minigen.train.train` runs it.

Each training step is Ho et al.'s Algorithm 1: a batch x_0, a step t and noise for each
example, and one gradient step on `noise_prediction_loss`. Sampling (Algorithm 2, or DDIM
with fewer steps) runs the reverse process from noise with the weights' moving average,
which gives better samples than the last weights (Ho et al. average with decay 0.9999 over
800k steps; these runs are a few thousand steps long, so the decay is shorter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import metrics, optim, plots
from ..data import DataLoader, load_images, ring8, swissroll, to_symmetric
from ..engine.tensor import Tensor, no_grad
from ..models.diffusion import MLPDenoiser, NoiseSchedule, UNetDenoiser, noise_prediction_loss, q_sample, sample
from ..random import Generator, default_generator, manual_seed
from .settings import SettingError, batch_fits, decay_factor, default, fraction, one_of, positive, sizes, whole

MODELS = ("mlp", "unet")
TOYS = {"ring8": ring8, "swissroll": swissroll}
DATASETS = (*TOYS, "digits", "mnist", "fashion-mnist")
SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddim", "ddpm")

# One row per kind of data. The toys: 60 epochs of 100 fresh batches. The images: a U-Net
# with group norm; the 28x28 sets get a third level (28 -> 14 -> 7) and half the channels of
# the digits' (a training step at batch 128 takes about 1.1 s on 2 cores, so an epoch of
# MNIST about 9 minutes; (32, 64, 64) would take 3 s a step). `clip` is the data's
# range, where DDIM limits its estimate of x_0 (see `ddim_step`).
# fmt: off
DEFAULTS = {
    "toys":   dict(model="mlp",  hidden=[128, 128, 128], batch_size=512, epochs=60, lr=4e-3, lr_decay=0.962, ema=0.995,
                   schedule="cosine", timesteps=1000, sample_steps=100, clip=3.0),
    "digits": dict(model="unet", channels=[32, 64], batch_size=64, epochs=40, lr=1e-3, lr_decay=0.944, ema=0.995,
                   schedule="cosine", timesteps=1000, sample_steps=50, clip=1.0),
    "mnist":  dict(model="unet", channels=[16, 32, 32], batch_size=128, epochs=5, lr=1e-3, lr_decay=0.8, ema=0.999,
                   schedule="cosine", timesteps=1000, sample_steps=50, clip=1.0),
}
# fmt: on
IMAGE_SIDES = {"digits": 8, "mnist": 28, "fashion-mnist": 28}
TOY_STEPS_PER_EPOCH = 100
TEST_IMAGES = 1000  # test images in the per-epoch test loss
BUCKETS = 10  # the test loss is reported per tenth of the steps t


def defaults_for(data: str) -> dict:
    return DEFAULTS["toys" if data in TOYS else "digits" if data == "digits" else "mnist"]


def make_config(
    model=None,
    data: str = "ring8",
    data_dir=None,
    hidden=None,
    channels=None,
    schedule=None,
    timesteps=None,
    sampler: str = "ddim",
    sample_steps=None,
    epochs=None,
    batch_size=None,
    lr=None,
    lr_decay=None,
    ema=None,
    seed: int = 0,
    out=None,
) -> dict:
    """The run's settings, checked, with the data's row of `DEFAULTS` filled in where a setting is
    None, `out` defaulting to runs/diffusion-<model>-<data>. A setting out of range, or one the
    model does not have, raises SettingError."""
    one_of("--data", data, DATASETS)
    row = defaults_for(data)
    model = default(model, row["model"])
    one_of("--model", model, MODELS)
    toy = data in TOYS
    if toy != (model == "mlp"):
        raise SettingError(
            f"--model {model} is for {'images' if model == 'unet' else 'the 2-D toys'}; --data {data} takes --model {row['model']}"
        )
    if model == "mlp" and channels is not None:
        raise SettingError("--channels sizes the U-Net; --model mlp takes --hidden")
    if model == "unet" and hidden is not None:
        raise SettingError("--hidden sizes the MLP; --model unet takes --channels (one count per level)")
    one_of("--sampler", sampler, SAMPLERS)
    if sampler == "ddpm" and sample_steps is not None:
        raise SettingError("--sample-steps is DDIM's; --sampler ddpm takes all --timesteps steps")
    timesteps = whole("--timesteps", default(timesteps, row["timesteps"]), 2)
    steps = whole("--sample-steps", default(sample_steps, min(row["sample_steps"], timesteps)))
    if steps > timesteps:
        raise SettingError(f"--sample-steps {steps} is more than the {timesteps} steps of the process (--timesteps)")
    config = {
        "family": "diffusion",
        "model": model,
        "data": data,
        "data_dir": None if data_dir is None else str(data_dir),
        **(
            {"hidden": sizes("--hidden", default(hidden, row["hidden"]))}
            if model == "mlp"
            else {"channels": sizes("--channels", default(channels, row["channels"]))}
        ),
        "schedule": one_of("--schedule", default(schedule, row["schedule"]), SCHEDULES),
        "timesteps": timesteps,
        "sampler": sampler,
        "sample_steps": steps if sampler == "ddim" else timesteps,
        "clip": row["clip"],
        "epochs": whole("--epochs", default(epochs, row["epochs"])),
        "batch_size": whole("--batch-size", default(batch_size, row["batch_size"])),
        "lr": positive("--lr", default(lr, row["lr"])),
        "lr_decay": decay_factor(default(lr_decay, row["lr_decay"])),
        "ema": fraction("--ema", default(ema, row["ema"])),
        "seed": whole("--seed", seed, 0),
        "out": str(default(out, f"runs/diffusion-{model}-{data}")),
    }
    if model == "unet":
        side, levels = IMAGE_SIDES[data], len(config["channels"])
        most = 1 + max(n for n in range(levels) if side % 2**n == 0)
        if levels > most:
            raise SettingError(
                f"--channels: {levels} levels halve the {side}x{side} images {levels - 1} times, so their sides must be divisible "
                f"by {2 ** (levels - 1)}; give at most {most} channel counts"
            )
    return config


class DiffusionExperiment:
    divergence_hint = "Try a lower learning rate (--lr)."
    conditional = False

    def __init__(self, config: dict):
        self.config = config
        self.name = f"diffusion-{config['model']}-{config['data']}"
        self.toy = config["data"] in TOYS
        manual_seed(config["seed"])  # the weights' initialisation
        self.rng = Generator(config["seed"] + 1)  # data order, steps t and noise
        self.schedule = getattr(NoiseSchedule, config["schedule"])(config["timesteps"])
        if self.toy:
            self.distribution = TOYS[config["data"]]()
            self.model = MLPDenoiser(2, config["hidden"])
            self.test_x = self.distribution.sample(metrics.TOY_SAMPLES, Generator(config["seed"] + 3))[0]
        else:
            train_unit, self.train_y = load_images(config["data"], "train", config["data_dir"])
            test_unit, self.test_y = load_images(config["data"], "test", config["data_dir"])
            batch_fits(config["batch_size"], len(train_unit), "training", whole_batches_only=False)
            self.train_unit, self.test_unit = train_unit, test_unit  # [0, 1], for the metrics
            self.train_x, self.test_x = to_symmetric(train_unit), to_symmetric(test_unit[:TEST_IMAGES])  # [-1, 1]
            self.model = UNetDenoiser(train_unit.shape[1:], config["channels"])
            self.classifier, self.classifier_accuracy = metrics.cached_classifier(
                config["data"], train_unit, self.train_y, test_unit, self.test_y, root=config["data_dir"]
            )
        self.optimizer = optim.Adam(self.model.parameters(), lr=config["lr"])
        self.lr_schedule = optim.ExponentialLR(self.optimizer, gamma=config["lr_decay"])
        self.average = optim.ExponentialMovingAverage(self.model, config["ema"])
        self._reference = None  # the image metrics' real-image features, floor and baseline

    @property
    def sampler(self) -> str:
        """ "DDIM, 50 steps" or "DDPM, all 1000 steps": how this run samples."""
        if self.config["sampler"] == "ddpm":
            return f"DDPM, all {self.config['timesteps']} steps"
        return f"DDIM, {self.config['sample_steps']} steps"

    # --- training ---

    def batches(self):
        if self.toy:
            n = self.config["batch_size"]
            return [(self.distribution.sample(n, self.rng)[0], None) for _ in range(TOY_STEPS_PER_EPOCH)]
        return DataLoader(self.train_x, self.train_y, batch_size=self.config["batch_size"], shuffle=True, generator=self.rng)

    def train_step(self, batch, epoch: int) -> dict:
        """One step of gradient descent on L_simple, then the moving average of the weights."""
        loss = noise_prediction_loss(self.model, self.schedule, batch[0], self.rng.numpy)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.average.update(self.model)
        return {"loss": float(loss.data)}

    # --- sampling ---

    @no_grad()
    def predict_noise(self, x_t: np.ndarray, t) -> np.ndarray:
        """epsilon_theta(x_t, t) of the averaged weights, 500 examples at a time; t is one step
        for all, or one per example."""
        model, chunk = self.average.model, 500
        return np.concatenate(
            [model(Tensor(x_t[i : i + chunk]), t if np.ndim(t) == 0 else t[i : i + chunk]).data for i in range(0, len(x_t), chunk)]
        )

    def generate(self, n: int, labels=None, generator: Generator | None = None, trajectory: list | None = None) -> np.ndarray:
        """n samples from the run's sampler: points, or images in [0, 1]. `trajectory` (a list)
        receives (t, x_t) along the way, with images in [-1, 1]."""
        shape = (n, 2) if self.toy else (n, *self.train_x.shape[1:])
        steps = None if self.config["sampler"] == "ddpm" else self.config["sample_steps"]
        generator = generator or Generator(self.config["seed"] + 4)
        x = sample(self.predict_noise, self.schedule, shape, generator.numpy, steps, clip=self.config["clip"], trajectory=trajectory)
        return x if self.toy else np.clip((x + 1) / 2, 0, 1)

    def samples(self, n: int, generator: Generator | None = None) -> np.ndarray:
        return self.generate(n, generator=generator)

    # --- evaluation ---

    def loss_by_step(self) -> tuple[np.ndarray, np.ndarray]:
        """The averaged model's L_simple on the test data, with the same steps and noise every
        time: example i gets a step in the (i mod 10)-th tenth of 1..T. Returns the mean loss in
        each tenth and the tenths' edges (tenth b is the steps edges[b] + 1 to edges[b + 1]);
        fewer parts where T or the test set is smaller than 10."""
        noise_rng = Generator(self.config["seed"] + 5).numpy
        buckets = min(BUCKETS, self.config["timesteps"], len(self.test_x))  # none empty
        edges = np.linspace(0, self.config["timesteps"], buckets + 1).round().astype(int)
        bucket = np.arange(len(self.test_x)) % buckets
        t = noise_rng.integers(edges[bucket] + 1, edges[bucket + 1] + 1)
        noise = noise_rng.standard_normal(self.test_x.shape).astype(self.test_x.dtype)
        predicted = self.predict_noise(q_sample(self.schedule, self.test_x, t, noise), t)
        errors = ((predicted - noise) ** 2).reshape(len(noise), -1).mean(axis=1)
        return np.array([errors[bucket == b].mean() for b in range(buckets)]), edges

    def measure(self, samples: np.ndarray | None = None) -> dict:
        """Every metric of `samples` (by default the evaluation's): mode coverage on the toys,
        the image metrics otherwise (see minigen.metrics)."""
        if samples is None:
            samples = self.samples(metrics.TOY_SAMPLES if self.toy else metrics.EVAL_SAMPLES)
        if self.toy:
            d = self.distribution
            return metrics.mode_metrics(samples, d.centers, d.std, modes=d.center_modes)
        if self._reference is None or self._reference["n"] != len(samples):
            self._reference = metrics.reference_features(self.classifier, self.train_unit, self.test_unit, len(samples))
        return metrics.image_metrics(self.classifier, samples, self.train_unit, self.test_unit, reference=self._reference)

    def evaluate(self, epoch: int | None = None) -> dict:
        """The test loss after every epoch, and the samples' metrics after the last one (sampling
        costs dozens of passes through the network)."""
        row = {"test_loss": float(self.loss_by_step()[0].mean())}
        if epoch is None or epoch + 1 == self.config["epochs"]:
            measured = self.measure()
            keys = ("modes_covered", "high_quality") if self.toy else ("fid", "classes_above_5pct", "inception_score")
            row |= {k: measured[k] for k in keys}
        return row

    def after_epoch(self, epoch: int, history: list[dict]) -> None:
        self.lr_schedule.step()

    # --- pictures ---

    def draw(self, history: list[dict], out) -> list[Path]:
        out = Path(out)
        written = [
            plots.save(
                plots.curves(history, ["train_loss", "test_loss"], "L_simple per epoch", "mean squared error of the noise"),
                out / "losses.png",
            )
        ]
        losses, edges = self.loss_by_step()
        labels = [f"{lo + 1}-{hi}" for lo, hi in zip(edges[:-1], edges[1:])]
        written.append(
            plots.save(
                plots.bars(
                    labels, losses, "the test loss by step t, a tenth of the steps per bar", "mean squared error of the noise", "step t"
                ),
                out / "loss_by_step.png",
            )
        )
        trajectory: list = []
        n = metrics.TOY_SAMPLES if self.toy else 100
        final = self.generate(n, trajectory=trajectory)  # on the toys, the very samples the last evaluation scored
        if self.toy:
            real, limits = self.distribution.sample(metrics.TOY_SAMPLES, Generator(0))[0], 3.5
            last = history[-1] if "high_quality" in history[-1] else self.measure(final)  # a run stopped before its last epoch
            title = f"{last['modes_covered']}/{self.distribution.modes} modes, {last['high_quality']:.0%} high quality ({self.sampler})"
            written.append(plots.save(plots.scatter_2d(real, final, self.distribution.marks, title, limits), out / "samples.png"))
            written.append(plots.save(plots.trajectory_scatter(trajectory, real, limits=limits), out / "trajectory.png"))
            frames = [plots.scatter_2d(real, x, None, f"t = {t}", limits) for t, x in plots.steps_shown(trajectory, 21)]
        else:
            written.append(plots.save(plots.image_grid(final, columns=10, title=f"samples ({self.sampler})"), out / "samples.png"))
            written.append(
                plots.save(plots.denoising_strip(trajectory, title=f"from noise to images ({self.sampler})"), out / "trajectory.png")
            )
            frames = [
                plots.image_grid(np.clip((x + 1) / 2, 0, 1), columns=10, title=f"t = {t}") for t, x in plots.steps_shown(trajectory, 21)
            ]
        written.append(plots.save_gif(frames, out / "trajectory.gif", seconds_per_frame=0.15, last_frame_seconds=1.5))
        return written

    # --- checkpoints ---

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "average": self.average.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "rng": self.rng.state_dict(),
            "default_generator": default_generator.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.average.load_state_dict(state["average"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.rng.load_state_dict(state["rng"])
        default_generator.load_state_dict(state["default_generator"])
