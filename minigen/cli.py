"""The `minigen` command (also `python -m minigen`).

    minigen train vae [--model mlp|conv|cvae] [--data digits|mnist|fashion-mnist] ...
    minigen train gan [--model mlp|dcgan|cgan|wgan-gp] [--data ring8|grid25|digits|mnist|fashion-mnist] ...
    minigen train diffusion [--model mlp|unet] [--data ring8|swissroll|digits|mnist|fashion-mnist] ...
    minigen sample CHECKPOINT [--n 100] [--out FILE]
    minigen eval CHECKPOINT [--k 5000]
    minigen exercises build [--out DIR]
    minigen exercises grade SUBMISSIONS [--out grades.csv]
    minigen demo

`minigen train vae` with no options trains the MLP VAE on the bundled 8x8 digits in a few
seconds and writes pictures, metrics and a checkpoint to runs/vae-mlp-digits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .experiments import load_run
from .metrics import EVAL_SAMPLES

# --- train, sample, eval --------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says what was kept."""


def _train(experiment, config: dict, args) -> list[dict]:
    from .train import CHECKPOINT, train

    try:
        return train(experiment, config["epochs"], config["out"], resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    except KeyboardInterrupt:
        kept = Path(config["out"]) / CHECKPOINT
        if kept.exists():
            raise Interrupted(f"interrupted; {kept} holds the last finished epoch: add --resume to continue") from None
        raise Interrupted("interrupted before the first epoch finished; nothing was saved") from None


def _train_vae(args) -> int:
    """`minigen train vae`. The model and its step are in minigen/models/vae.py: `elbo_step`
    computes the loss from `VAE.elbo` (the reconstruction term and the KL term) and updates
    the networks; `VAEExperiment` (minigen/experiments/vae.py) only feeds it batches and keeps
    the pictures, metrics and checkpoints."""
    from .experiments.vae import VAEExperiment, make_config

    config = make_config(
        model=args.model,
        data=args.data,
        data_dir=args.data_dir,
        latent=args.latent,
        hidden=args.hidden,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        beta=args.beta,
        warmup_epochs=args.warmup_epochs,
        likelihood=args.likelihood,
        seed=args.seed,
        out=args.out,
    )
    experiment = VAEExperiment(config)
    print(
        f"training {experiment.name}: {experiment.model.num_parameters():,} parameters, {config['epochs']} epochs, "
        f"{len(experiment.train_x):,} training and {len(experiment.test_x):,} test images"
    )
    history = _train(experiment, config, args)
    last, out = history[-1], Path(config["out"])
    print(
        f"test ELBO {last['test_elbo']:.2f} nats per image (reconstruction {last['test_reconstruction']:.2f}, "
        f"KL {last['test_kl']:.2f}), {last['active_units']} of {config['latent']} latent units active"
    )
    _print_files(out)
    return 0


def _train_gan(args) -> int:
    """`minigen train gan`. The algorithm is in minigen/models/gan.py: each step is
    `discriminator_step` (its loss is `discriminator_loss`) then `generator_step`; WGAN-GP's
    are `critic_step` (`critic_loss` and `gradient_penalty`) and `wgan_generator_step`.
    `GANExperiment` (minigen/experiments/gan.py) only feeds them batches and noise and keeps
    the pictures, metrics and checkpoints."""
    import warnings

    from .experiments.gan import GANExperiment, make_config

    config = make_config(
        model=args.model,
        data=args.data,
        data_dir=args.data_dir,
        latent=args.latent,
        hidden=args.hidden,
        channels=args.channels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        d_steps=args.d_steps,
        loss=args.loss,
        label_smoothing=args.label_smoothing,
        seed=args.seed,
        out=args.out,
    )
    experiment = GANExperiment(config)
    sizes = f"G {experiment.G.num_parameters():,} and D {experiment.D.num_parameters():,} parameters"
    print(f"training {experiment.name}: {sizes}, {config['epochs']} epochs")
    with warnings.catch_warnings():
        warnings.simplefilter("once")  # the discriminator-wins advice once, not every epoch
        history = _train(experiment, config, args)
    last, out = history[-1], Path(config["out"])
    _print_sample_summary(experiment, last)
    _print_files(out)
    return 0


def _train_diffusion(args) -> int:
    """`minigen train diffusion`. The algorithm is in minigen/models/diffusion.py: each step's
    loss is `noise_prediction_loss` (L_simple, through `q_sample`), and sampling is `sample`
    (`ddpm_step` or `ddim_step`). `DiffusionExperiment` (minigen/experiments/diffusion.py) only
    feeds it batches and keeps the pictures, metrics and checkpoints."""
    from .experiments.diffusion import DiffusionExperiment, make_config

    config = make_config(
        model=args.model,
        data=args.data,
        data_dir=args.data_dir,
        hidden=args.hidden,
        channels=args.channels,
        schedule=args.schedule,
        timesteps=args.timesteps,
        sampler=args.sampler,
        sample_steps=args.sample_steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        ema=args.ema,
        seed=args.seed,
        out=args.out,
    )
    experiment = DiffusionExperiment(config)
    print(
        f"training {experiment.name}: {experiment.model.num_parameters():,} parameters, {config['epochs']} epochs, "
        f"{config['schedule']} schedule over {config['timesteps']} steps, sampling with {experiment.sampler}"
    )
    history = _train(experiment, config, args)
    last, out = history[-1], Path(config["out"])
    print(f"test loss (L_simple) {last['test_loss']:.4f}")
    _print_sample_summary(experiment, last)
    _print_files(out)
    return 0


def _print_sample_summary(experiment, last: dict) -> None:
    """A GAN's or a diffusion model's samples as the last epoch measured them."""
    if experiment.toy:
        print(f"modes covered: {last['modes_covered']}/{experiment.distribution.modes}, high-quality samples: {last['high_quality']:.0%}")
    else:
        print(
            f"classifier FID {last['fid']:.2f}, {last['classes_above_5pct']} of 10 classes above 5%, "
            f"inception score {last['inception_score']:.2f} "
            f"(minigen eval gives the FID's real-vs-real floor and noise baseline)"
        )


def _print_files(out: Path) -> None:
    pictures = sorted(p.name for p in out.glob("*.png")) + sorted(p.name for p in out.glob("*.gif"))
    print(f"pictures: {', '.join(pictures)} in {out}/")
    print(f"metrics:  {out / 'metrics.csv'}")
    print(f"checkpoint: {out / 'checkpoint.npz'} (minigen sample / minigen eval take it)")


PICTURE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _samples_path(out, checkpoint, arrays: bool) -> Path:
    """Where `minigen sample` writes: --out (a file, or a folder to put samples.png/.npz in),
    else beside the checkpoint."""
    from .experiments.settings import SettingError

    suffix = ".npz" if arrays else ".png"
    path = Path(checkpoint).with_name(f"samples_from_checkpoint{suffix}") if out is None else Path(out)
    if path.is_dir():
        path = path / f"samples{suffix}"
    allowed = (".npz",) if arrays else PICTURE_FORMATS
    if path.suffix.lower() not in allowed:
        what = "--format npz writes an .npz file" if arrays else f"a picture file ends in {', '.join(PICTURE_FORMATS)}"
        raise SettingError(f"--out {out}: {what}; got {path.suffix or 'no suffix'!r}")
    if not path.parent.is_dir():
        raise SettingError(f"--out {out}: the folder {path.parent} does not exist")
    return path


def _sample(args) -> int:
    from . import plots
    from .experiments.settings import SettingError, whole
    from .random import Generator
    from .serialization import atomic_file

    whole("--n", args.n)
    out = _samples_path(args.out, args.checkpoint, arrays=args.format == "npz")
    experiment = load_run(args.checkpoint)
    labels = np.arange(args.n) % 10 if experiment.conditional else None
    if experiment.config["family"] == "vae":
        samples = experiment.model.sample(args.n, labels, generator=Generator(args.seed))
    else:
        samples = experiment.generate(args.n, labels, generator=Generator(args.seed))
    try:
        if args.format == "npz":  # a plain .npz: np.load(path)["samples"], with the labels of a conditional model
            with atomic_file(out) as file:
                np.savez(file, samples=samples, **({"labels": labels} if labels is not None else {}))
        elif getattr(experiment, "toy", False):
            real = experiment.distribution.sample(args.n, Generator(0))[0]
            plots.save(plots.scatter_2d(real, samples, experiment.distribution.marks, f"{args.n} samples"), out)
        else:
            plots.save(plots.image_grid(samples, columns=10, title=f"{args.n} samples"), out)
    except OSError as error:
        raise SettingError(f"--out {out}: cannot write there ({error.strerror or error})") from None
    shape = " x ".join(map(str, samples.shape))
    print(f"wrote {args.n} samples to {out}" + (f" (array 'samples', {shape}, {samples.dtype})" if args.format == "npz" else ""))
    return 0


def _eval(args) -> int:
    from .experiments.settings import whole

    whole("--k", args.k)
    whole("--n-samples", args.n_samples)
    experiment = load_run(args.checkpoint)
    if experiment.config["family"] == "gan":
        return _eval_gan(experiment, args)
    if experiment.config["family"] == "diffusion":
        return _eval_diffusion(experiment, args)
    evaluation = experiment.evaluate()
    print(f"{experiment.name} after {experiment.epochs_done} epochs, on {len(experiment.test_x):,} test images:")
    print(
        f"  test ELBO       {evaluation['test_elbo']:9.2f} nats per image "
        f"(reconstruction {evaluation['test_reconstruction']:.2f}, KL {evaluation['test_kl']:.2f})"
    )
    print(f"  L_{args.k:<12} {experiment.log_likelihood(k=args.k):9.2f} nats per image (importance-weighted estimate of log p(x))")
    print(f"  active units    {evaluation['active_units']} of {experiment.config['latent']}")
    _print_sample_metrics(experiment, args)
    return 0


def _print_sample_metrics(experiment, args) -> None:
    """The GANs' image metrics on the VAE's samples, so the two families compare."""
    from . import metrics
    from .random import Generator

    classifier, accuracy = metrics.cached_classifier(
        experiment.config["data"],
        experiment.train_x,
        experiment.train_y,
        experiment.test_gray,
        experiment.test_y,
        root=experiment.config["data_dir"],
    )
    labels = np.arange(args.n_samples) % 10 if experiment.conditional else None
    samples = experiment.model.sample(args.n_samples, labels, generator=Generator(experiment.config["seed"] + 7))
    measured = metrics.image_metrics(classifier, samples, experiment.train_x, experiment.test_gray)
    print(f"  {args.n_samples:,} samples (the decoder's mean images), as the GANs are measured:")
    print(f"    classifier FID    {measured['fid']:8.2f}   ({_floors(measured, args.n_samples)}; classifier test accuracy {accuracy:.1%})")
    print(f"    classes above 5%  {measured['classes_above_5pct']:8d}   inception score {measured['inception_score']:.2f}")


def _floors(measured: dict, n: int) -> str:
    """The FID's real-vs-real floor and noise baseline, saying when the floor had fewer images."""
    fewer = f" from only {measured['floor_images']:,} training images, so higher" if measured["floor_images"] < n else ""
    return f"real-vs-real floor {measured['fid_real_vs_real']:.2f}{fewer}, uniform noise {measured['fid_noise']:.2f}"


def _eval_gan(experiment, args) -> int:
    print(f"{experiment.name} after {experiment.epochs_done} epochs:")
    _print_sample_metrics_of_generator(experiment, args)
    return 0


def _eval_diffusion(experiment, args) -> int:
    losses, edges = experiment.loss_by_step()
    print(f"{experiment.name} after {experiment.epochs_done} epochs (sampling with {experiment.sampler}):")
    print(
        f"  test loss (L_simple) {losses.mean():.4f}; by step t: "
        + ", ".join(f"{lo + 1}-{hi} {v:.3f}" for lo, hi, v in zip(edges[:-1], edges[1:], losses))
    )
    _print_sample_metrics_of_generator(experiment, args)
    return 0


def _print_sample_metrics_of_generator(experiment, args) -> None:
    """A GAN's or a diffusion model's samples measured: mode coverage on the toys, the image
    metrics with their floors otherwise."""
    from . import metrics

    if experiment.toy:
        measured = experiment.measure()
        print(f"modes covered: {measured['modes_covered']}/{measured['modes']}")
        within = "within 3 standard deviations of a mode"
        print(f"high-quality samples: {measured['high_quality']:.0%} ({within}; {metrics.TOY_SAMPLES:,} samples)")
        return
    n = args.n_samples
    generated = experiment.samples(n)
    measured = experiment.measure(generated)
    print(
        f"  classifier FID      {measured['fid']:8.2f}   ({n:,} samples; {_floors(measured, n)};"
        f" features of a classifier with {experiment.classifier_accuracy:.1%} test accuracy)"
    )
    print(
        f"  classes above 5%    {measured['classes_above_5pct']:8d}   (histogram {measured['class_histogram']}, "
        f"KL to uniform {measured['kl_to_uniform']:.3f})"
    )
    print(f"  inception score     {measured['inception_score']:8.2f}   (the classifier's; at most 10)")
    validation = experiment.train_unit[: min(len(experiment.test_unit), 1000)]
    parzen, sigma = metrics.parzen_log_likelihood(generated, validation, experiment.test_unit)
    print(f"  Parzen window       {parzen:8.2f}   nats per image (sigma {sigma:.3f}; historical: a poor estimate in high dimensions)")


def _build_exercises(args) -> int:
    from .exercises.build import build, notebook_sources

    source = Path(args.notebooks) if args.notebooks else Path(__file__).resolve().parent.parent / "notebooks"
    if not notebook_sources(source):
        print(f"minigen: error: no notebooks (NN_name.py) in {source}; pass --notebooks DIR", file=sys.stderr)
        return 2
    written = build(source, args.out)
    print(
        f"wrote {len(written) // 2} student notebooks (.ipynb and .py, solutions replaced by NotImplementedError) "
        f"to {Path(args.out).resolve()}/"
    )
    return 0


def _grade_exercises(args) -> int:
    import time

    from .exercises import EXERCISES
    from .exercises.grade import GradingError, grade_class

    maximum = sum(e.points for e in EXERCISES.values())
    start = time.perf_counter()

    def report(student):
        print(f"  {student.name:<24} {student.total:5g} of {maximum:g}", flush=True)

    print(
        f"grading {len(EXERCISES)} exercises ({maximum:g} points) in {args.submissions}/, {args.timeout:g} s per exercise at most:",
        flush=True,
    )
    try:
        students = grade_class(args.submissions, args.out, args.feedback, timeout=args.timeout, jobs=args.jobs, progress=report)
    except GradingError as error:
        print(f"minigen: error: {error}", file=sys.stderr)
        return 2
    feedback = Path(args.feedback) if args.feedback else Path(args.out).parent / "feedback"
    print(
        f"graded {len(students)} students in {time.perf_counter() - start:.1f} s: grades in {args.out}, "
        f"one feedback file per student in {feedback}/"
    )
    return 0


class _Help(argparse.HelpFormatter):
    """argparse's help with each option's default at the end of its line (where it has one
    that does not depend on the model or data: those defaults are listed in the help text)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if action.option_strings and not unset and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _shown(value) -> str:
    """A default as it is typed on the command line: [256, 256] as "256 256"."""
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _listed(defaults: dict) -> str:
    """{"digits": 8, "mnist": 20, ...} as "digits 8; mnist 20", joining keys that share a value."""
    shown: dict[str, list[str]] = {}
    for key, value in defaults.items():
        shown.setdefault(_shown(value), []).append(key)
    return "; ".join(f"{'/'.join(keys)} {value}" for value, keys in shown.items())


def build_parser() -> argparse.ArgumentParser:
    """The command line; choices and data- or model-dependent defaults come from the experiments' tables."""
    from .experiments import diffusion as diffusion_runs
    from .experiments import gan as gan_runs
    from .experiments import vae as vae_runs

    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python's traceback for every error")
    parser = argparse.ArgumentParser(prog="minigen", description="Generative image models from scratch, in NumPy.", formatter_class=_Help)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(parent, name, **kwargs):
        return parent.add_parser(name, formatter_class=_Help, parents=[debug], **kwargs)

    train_parser = command(commands, "train", help="train a model")
    families = train_parser.add_subparsers(dest="family", metavar="FAMILY", required=True)
    vae_by_data = {"digits": vae_runs.DEFAULTS["digits"], "mnist/fashion-mnist": vae_runs.DEFAULTS["mnist"]}
    vae = command(
        families,
        "vae",
        help="a variational autoencoder (defaults: MLP VAE on the bundled 8x8 digits)",
        description="Train a VAE. Each step is `elbo_step` in minigen/models/vae.py, beside the ELBO it ascends; "
        "minigen/experiments/vae.py holds the data, the model and the pictures.",
    )
    vae.add_argument("--model", choices=list(vae_runs.MODELS), default="mlp", help="MLP, convolutional or conditional VAE")
    vae.add_argument("--data", choices=vae_runs.DATASETS, default="digits", help="the bundled 8x8 digits or a 28x28 set (downloaded)")
    vae.add_argument("--data-dir", help="folder holding mnist/ or fashion-mnist/ (default: $MINIGEN_DATA or ~/.cache/minigen)")
    vae.add_argument("--latent", type=int, help=f"size of z (default: {_listed({k: d['latent'] for k, d in vae_by_data.items()})})")
    vae.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        help="hidden sizes (mlp, cvae) or channel counts (conv) (default: "
        + "; ".join(f"{data}: {_listed(d['hidden']).replace('; ', ', ')}" for data, d in vae_by_data.items())
        + ")",
    )
    vae.add_argument("--epochs", type=int, help=f"default: {_listed({k: d['epochs'] for k, d in vae_by_data.items()})}")
    vae.add_argument("--batch-size", type=int, help=f"default: {_listed({k: d['batch_size'] for k, d in vae_by_data.items()})}")
    vae.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    vae.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (beta-VAE)")
    vae.add_argument("--warmup-epochs", type=int, default=0, help="ramp beta up from 0 over this many epochs")
    vae.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli", help="the decoder's p(x|z)")
    vae.add_argument("--seed", type=int, default=0, help="seed of every random number")
    vae.add_argument("--out", help="folder for pictures, metrics.csv and checkpoint.npz (default: runs/vae-MODEL-DATA)")
    vae.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    vae.add_argument("--overwrite", action="store_true", help="replace the run in --out (without it, an existing run is kept)")
    vae.add_argument("--quiet", action="store_true", help="no progress bars")

    gan = command(
        families,
        "gan",
        help="a generative adversarial network (defaults: MLP GAN on the ring of 8 Gaussians)",
        description="Train a GAN. Each step is `discriminator_step` then `generator_step` (WGAN-GP: `critic_step`, "
        "`wgan_generator_step`) in minigen/models/gan.py, beside the losses they compute; "
        "minigen/experiments/gan.py holds the data, the networks and the pictures.",
    )
    gan.add_argument("--model", choices=gan_runs.MODELS, default="mlp", help="the toys take mlp or wgan-gp")
    gan.add_argument("--data", choices=gan_runs.DATASETS, default="ring8", help="a 2-D toy or an image set")
    gan.add_argument("--data-dir", help="folder holding mnist/ or fashion-mnist/ (default: $MINIGEN_DATA or ~/.cache/minigen)")
    for option, key, text in [
        ("--latent", "latent", "size of z"),
        ("--hidden", "hidden", "hidden layer sizes of the MLPs"),
        ("--channels", "channels", "base channel count of the convolutional networks"),
        ("--epochs", "epochs", "epochs"),
        ("--batch-size", "batch_size", "batch size"),
        ("--lr", "lr", "Adam's learning rate for both networks"),
        ("--d-steps", "d_steps", "discriminator (critic) steps per generator step"),
    ]:
        by_data = [(data, {m: row[key] for m, row in rows.items() if key in row}) for data, rows in gan_runs.DEFAULTS.items()]
        gan.add_argument(
            option,
            type=float if key == "lr" else int,
            **({"nargs": "+"} if key == "hidden" else {}),
            help=f"{text} (default: {'; '.join(f'{data}: {_listed(values)}' for data, values in by_data if values)})",
        )
    gan.add_argument("--loss", choices=["non-saturating", "minimax"], default="non-saturating", help="the generator's loss")
    gan.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided: real targets 1 - s")
    gan.add_argument("--seed", type=int, default=0, help="seed of every random number")
    gan.add_argument("--out", help="folder for pictures, metrics.csv and checkpoint.npz (default: runs/gan-MODEL-DATA)")
    gan.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    gan.add_argument("--overwrite", action="store_true", help="replace the run in --out (without it, an existing run is kept)")
    gan.add_argument("--quiet", action="store_true", help="no progress bars")

    diffusion = command(
        families,
        "diffusion",
        help="a denoising diffusion model (defaults: MLP denoiser on the ring of 8 Gaussians)",
        description="Train a diffusion model. Each step's loss is `noise_prediction_loss` in minigen/models/diffusion.py, "
        "and `sample` runs the reverse process (`ddpm_step`, `ddim_step`); minigen/experiments/diffusion.py holds the data, "
        "the denoiser and the pictures.",
    )
    diffusion_by_data = {"ring8/swissroll": diffusion_runs.DEFAULTS["toys"], "digits": diffusion_runs.DEFAULTS["digits"],
                         "mnist/fashion-mnist": diffusion_runs.DEFAULTS["mnist"]}  # fmt: skip

    def diffusion_default(key: str) -> str:
        return "default: " + "; ".join(f"{data} {_shown(row[key])}" for data, row in diffusion_by_data.items() if key in row)

    diffusion.add_argument(
        "--model", choices=diffusion_runs.MODELS, help=f"the denoiser: mlp for the toys, unet for images ({diffusion_default('model')})"
    )
    diffusion.add_argument("--data", choices=diffusion_runs.DATASETS, default="ring8", help="a 2-D toy or an image set")
    diffusion.add_argument("--data-dir", help="folder holding mnist/ or fashion-mnist/ (default: $MINIGEN_DATA or ~/.cache/minigen)")
    diffusion.add_argument("--hidden", type=int, nargs="+", help=f"hidden layer sizes of the MLP ({diffusion_default('hidden')})")
    diffusion.add_argument(
        "--channels", type=int, nargs="+", help=f"the U-Net's channels, one count per level ({diffusion_default('channels')})"
    )
    diffusion.add_argument("--schedule", choices=diffusion_runs.SCHEDULES, help="the noise schedule beta_t (default: cosine)")
    diffusion.add_argument("--timesteps", type=int, help="T, the steps of the noising process (default: 1000)")
    diffusion.add_argument(
        "--sampler",
        choices=diffusion_runs.SAMPLERS,
        default="ddim",
        help="DDIM (--sample-steps) or ancestral DDPM (all T steps: T passes through the network, slow on images)",
    )
    diffusion.add_argument("--sample-steps", type=int, help=f"DDIM's steps from noise to data ({diffusion_default('sample_steps')})")
    diffusion.add_argument("--epochs", type=int, help=diffusion_default("epochs"))
    diffusion.add_argument("--batch-size", type=int, help=diffusion_default("batch_size"))
    diffusion.add_argument("--lr", type=float, help=f"Adam's learning rate ({diffusion_default('lr')})")
    diffusion.add_argument(
        "--ema", type=float, help=f"decay of the weights' moving average that samples; 0: none ({diffusion_default('ema')})"
    )
    diffusion.add_argument("--seed", type=int, default=0, help="seed of every random number")
    diffusion.add_argument("--out", help="folder for pictures, metrics.csv and checkpoint.npz (default: runs/diffusion-MODEL-DATA)")
    diffusion.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    diffusion.add_argument("--overwrite", action="store_true", help="replace the run in --out (without it, an existing run is kept)")
    diffusion.add_argument("--quiet", action="store_true", help="no progress bars")

    sample = command(commands, "sample", help="draw samples from a trained model's checkpoint")
    sample.add_argument("checkpoint")
    sample.add_argument("--n", type=int, default=100, help="how many samples")
    sample.add_argument("--seed", type=int, default=0, help="seed of every random number")
    sample.add_argument(
        "--format",
        choices=["png", "npz"],
        default="png",
        help="a picture, or the samples as arrays (np.load(file)['samples']) to evaluate elsewhere",
    )
    sample.add_argument(
        "--out",
        help=f"file (a picture: {', '.join(PICTURE_FORMATS)}; or .npz) or folder "
        f"(default: samples_from_checkpoint.png or .npz beside the checkpoint)",
    )

    evaluate = command(commands, "eval", help="evaluate a trained model's checkpoint on its test set")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--k", type=int, default=5000, help="VAE: importance samples for L_k")
    evaluate.add_argument(
        "--n-samples",
        type=int,
        default=EVAL_SAMPLES,
        help="generated images for the image metrics (training scores as many after each epoch)",
    )

    exercises = command(commands, "exercises", help="the notebooks' exercises")
    exercise_commands = exercises.add_subparsers(dest="action", metavar="ACTION", required=True)
    build_parser = command(exercise_commands, "build", help="write the student versions of the notebooks")
    build_parser.add_argument("--out", default="student-notebooks", help="folder for the student notebooks, .py and .ipynb")
    build_parser.add_argument("--notebooks", default=None, help="the solution notebooks (default: the repository's notebooks/)")
    grade_parser = command(
        exercise_commands, "grade", help="grade a class: one folder per student in SUBMISSIONS; writes a CSV and feedback per student"
    )
    grade_parser.add_argument("submissions", help="folder holding one folder of notebooks (.ipynb and/or .py) per student")
    grade_parser.add_argument("--out", default="grades.csv", help="the CSV to write")
    grade_parser.add_argument("--feedback", default=None, help="folder for <student>.md (default: feedback/ beside --out)")
    grade_parser.add_argument("--timeout", type=float, default=10.0, help="seconds one exercise may take, cells before its check included")
    grade_parser.add_argument("--jobs", type=int, default=None, help="students graded at once (default: one per core)")

    demo_parser = command(commands, "demo", help="train a tiny network with the bare autograd engine")
    demo_parser.add_argument("--steps", type=int, default=500)
    demo_parser.add_argument("--seed", type=int, default=0, help="seed of every random number")
    parser.add_argument("--debug", action="store_true", help="show Python's traceback for every error (for bug reports)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except BaseException as error:
        code = None if args.debug else exit_code(error)
        if code is None:  # a bug in minigen (or --debug): Python's traceback
            raise
        interrupted = isinstance(error, KeyboardInterrupt)
        print(f"minigen: {error or 'interrupted'}" if interrupted else f"minigen: error: {error}", file=sys.stderr)
        return code


def exit_code(error: BaseException) -> int | None:
    """2 for a user's mistake (a bad setting, a file that is not a checkpoint), 1 for a run that
    failed (diverged, data not available, a damaged checkpoint), 130 for Ctrl-C; None for
    anything else: that is a bug, and its traceback is what a bug report needs."""
    from .data.mnist import DataUnavailable
    from .experiments.settings import SettingError
    from .serialization import CheckpointError
    from .train import TrainingDiverged

    if isinstance(error, SettingError):
        return 2
    if isinstance(error, (TrainingDiverged, DataUnavailable, CheckpointError)):
        return 1
    if isinstance(error, KeyboardInterrupt):
        return 130
    return None


def _run(parser, args) -> int:
    if args.command == "train":
        return {"vae": _train_vae, "gan": _train_gan, "diffusion": _train_diffusion}[args.family](args)
    if args.command == "sample":
        return _sample(args)
    if args.command == "eval":
        return _eval(args)
    if args.command == "exercises":
        return _build_exercises(args) if args.action == "build" else _grade_exercises(args)
    if args.command == "demo":
        from .demo import demo

        losses = demo(steps=args.steps, seed=args.seed)
        print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f} in {len(losses)} steps")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
