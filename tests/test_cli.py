import re
import subprocess
import sys

import numpy as np
import pytest

from minigen.cli import main
from minigen.demo import demo
from minigen.serialization import load


def test_demo_loss_falls():
    losses = demo(steps=200, seed=0)
    assert losses[-1] < 0.25 * losses[0]


def test_demo_is_reproducible():
    assert demo(steps=20, seed=3) == demo(steps=20, seed=3)


def test_help_when_no_command(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_minigen_is_the_same_command():
    result = subprocess.run([sys.executable, "-m", "minigen", "demo", "--steps", "5"], capture_output=True, text=True, check=True)
    assert "loss fell from" in result.stdout


def test_train_vae_then_sample_and_eval(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))  # the metrics' classifier is cached here
    out = tmp_path / "run"
    assert main(["train", "vae", "--epochs", "2", "--hidden", "32", "--latent", "2", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    last = load(out / "checkpoint.npz")["history"][-1]
    assert (
        f"test ELBO {last['test_elbo']:.2f} nats per image (reconstruction {last['test_reconstruction']:.2f}, KL {last['test_kl']:.2f})"
        in printed
    )
    assert f"in {out}/" in printed and "manifold.png" in printed
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "20", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    assert main(["eval", str(out / "checkpoint.npz"), "--k", "20", "--n-samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert f"test ELBO       {last['test_elbo']:9.2f} nats per image" in printed  # eval measures what training reported
    bound = float(re.search(r"L_20 +(-?[0-9.]+) nats", printed).group(1))
    assert last["test_elbo"] - 1.0 < bound < 0  # L_k: an estimate of log p(x), not far below the ELBO
    assert re.search(
        r"300 samples .*\n +classifier FID +[0-9.]+ +\(real-vs-real floor [0-9.]+, uniform noise [0-9.]+; classifier test accuracy", printed
    )


def test_train_vae_conditional_and_conv_models_run(tmp_path):
    for model in ("cvae", "conv"):
        assert main(["train", "vae", "--model", model, "--epochs", "1", "--out", str(tmp_path / model), "--quiet"]) == 0
        assert (tmp_path / model / "samples.png").exists()


def test_train_gan_on_the_ring_then_eval_and_sample(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["train", "gan", "--epochs", "2", "--hidden", "16", "16", "--out", str(out), "--quiet"]) == 0
    last = load(out / "checkpoint.npz")["history"][-1]
    reported = f"modes covered: {last['modes_covered']}/8"
    assert f"{reported}, high-quality samples: {last['high_quality']:.0%}" in capsys.readouterr().out
    assert main(["eval", str(out / "checkpoint.npz")]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        reported,
        f"high-quality samples: {last['high_quality']:.0%} (within 3 standard deviations of a mode; 2,500 samples)",
    ]
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "50", "--out", str(tmp_path / "points.png")]) == 0


def test_train_diffusion_on_the_ring_then_eval_and_sample(tmp_path, capsys):
    out = tmp_path / "diffusion"
    assert main(["train", "diffusion", "--epochs", "2", "--hidden", "16", "16", "--sample-steps", "10", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    last = load(out / "checkpoint.npz")["history"][-1]
    reported = f"modes covered: {last['modes_covered']}/8"
    assert "sampling with DDIM, 10 steps" in printed and f"test loss (L_simple) {last['test_loss']:.4f}" in printed
    assert f"{reported}, high-quality samples: {last['high_quality']:.0%}" in printed
    assert "trajectory.gif" in printed and "loss_by_step.png" in printed
    assert main(["eval", str(out / "checkpoint.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "diffusion-mlp-ring8 after 2 epochs (sampling with DDIM, 10 steps):"
    assert lines[1].startswith(f"  test loss (L_simple) {last['test_loss']:.4f}; by step t: 1-100 ")
    assert lines[2:] == [
        reported,
        f"high-quality samples: {last['high_quality']:.0%} (within 3 standard deviations of a mode; 2,500 samples)",
    ]
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "50", "--out", str(tmp_path / "points.png")]) == 0
    assert (tmp_path / "points.png").stat().st_size > 5000


def test_eval_of_an_image_diffusion_model_prints_fid_beside_its_floor_and_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    out = tmp_path / "unet"
    argv = ["train", "diffusion", "--data", "digits", "--epochs", "1", "--channels", "8", "16", "--sample-steps", "4", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.npz")]) == 0
    printed = capsys.readouterr().out
    last = load(out / "checkpoint.npz")["history"][-1]
    # the same 1,000 samples as training scored after its last epoch: the same FID
    assert re.search(rf"classifier FID +{last['fid']:.2f} +\(1,000 samples; real-vs-real floor [0-9.]+, uniform noise [0-9.]+;", printed)
    assert main(["sample", str(out / "checkpoint.npz"), "--format", "npz", "--n", "12", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as arrays:
        assert arrays["samples"].shape == (12, 1, 8, 8) and 0 <= arrays["samples"].min() and arrays["samples"].max() <= 1


def test_eval_of_an_image_gan_prints_fid_beside_its_floor_and_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    out = tmp_path / "dcgan"
    assert (
        main(["train", "gan", "--model", "dcgan", "--data", "digits", "--epochs", "1", "--channels", "8", "--out", str(out), "--quiet"])
        == 0
    )
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.npz")]) == 0
    printed = capsys.readouterr().out
    last = load(out / "checkpoint.npz")["history"][-1]
    # the same 1,000 samples as training scored after its last epoch: the same FID
    assert re.search(rf"classifier FID +{last['fid']:.2f} +\(1,000 samples; real-vs-real floor [0-9.]+, uniform noise [0-9.]+;", printed), (
        printed
    )
    assert f"classes above 5%    {last['classes_above_5pct']:8d}" in printed and "Parzen window" in printed


def test_exercises_build_writes_student_notebooks(tmp_path, capsys):
    assert main(["exercises", "build", "--out", str(tmp_path)]) == 0
    assert "student notebooks" in capsys.readouterr().out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert "01_autograd.py" in written and "01_autograd.ipynb" in written
    assert "### BEGIN SOLUTION" not in (tmp_path / "04_vae.py").read_text()


@pytest.mark.parametrize(
    "argv, named",
    [
        (["train", "vae", "--epochs", "0"], "--epochs must be a positive whole number, got 0"),
        (["train", "vae", "--batch-size", "0"], "--batch-size must be a positive whole number, got 0"),
        (["train", "vae", "--latent", "0"], "--latent must be a positive whole number, got 0"),
        (["train", "vae", "--latent", "-3"], "--latent must be a positive whole number, got -3"),
        (["train", "vae", "--hidden", "0"], "--hidden must be a positive whole number, got 0"),
        (["train", "vae", "--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
        (["train", "vae", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["train", "vae", "--beta", "-1"], "--beta must be a finite number >= 0, got -1.0"),
        (["train", "vae", "--warmup-epochs", "-2"], "--warmup-epochs must be a whole number >= 0, got -2"),
        (["train", "gan", "--d-steps", "0"], "--d-steps must be a positive whole number, got 0"),
        (["train", "gan", "--d-steps", "-1"], "--d-steps must be a positive whole number, got -1"),
        (["train", "gan", "--label-smoothing", "2"], "--label-smoothing must be in [0, 1), got 2.0"),
        (
            ["train", "gan", "--model", "dcgan", "--data", "digits", "--hidden", "8", "99"],
            "--hidden sizes the MLPs; --model dcgan on images is convolutional: give --channels (the base channel count)",
        ),
        (
            ["train", "gan", "--channels", "8"],
            "--channels sizes the convolutional networks; --model mlp on the toys is an MLP: give --hidden",
        ),
        (["train", "gan", "--model", "dcgan", "--data", "digits", "--channels", "0"], "--channels must be a positive whole number, got 0"),
        (
            ["train", "gan", "--model", "dcgan", "--data", "digits", "--batch-size", "5000"],
            "--batch-size 5000 is larger than the 1,442 training images",
        ),
        (["train", "diffusion", "--model", "unet"], "--model unet is for images; --data ring8 takes --model mlp"),
        (["train", "diffusion", "--data", "digits", "--hidden", "8"], "--hidden sizes the MLP; --model unet takes --channels"),
        (["train", "diffusion", "--channels", "8"], "--channels sizes the U-Net; --model mlp takes --hidden"),
        (["train", "diffusion", "--sample-steps", "2000"], "--sample-steps 2000 is more than the 1000 steps of the process"),
        (["train", "diffusion", "--sampler", "ddpm", "--sample-steps", "50"], "--sample-steps is DDIM's; --sampler ddpm takes all"),
        (["train", "diffusion", "--timesteps", "1"], "--timesteps must be a whole number >= 2, got 1"),
        (["train", "diffusion", "--ema", "1"], "--ema must be in [0, 1), got 1.0"),
        (
            ["train", "diffusion", "--data", "mnist", "--channels", "8", "8", "8", "8"],
            "--channels: 4 levels halve the 28x28 images 3 times, so their sides must be divisible by 8; give at most 3 channel counts",
        ),
        (["sample", "nothing.npz", "--n", "0"], "--n must be a positive whole number, got 0"),
        (["eval", "nothing.npz", "--k", "0"], "--k must be a positive whole number, got 0"),
        (["eval", "nothing.npz", "--n-samples", "0"], "--n-samples must be a positive whole number, got 0"),
        (["exercises", "grade", "no-such-folder"], "no-such-folder is not a folder"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_code_2(argv, named, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    assert main([*argv, "--quiet"] if argv[0] == "train" else argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("minigen: error: ") and captured.err.count("\n") == 1, captured.err
    assert named in captured.err
    assert not (tmp_path / "runs").exists()  # nothing was trained or written


def test_training_twice_into_one_folder_is_refused_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "vae", "--epochs", "1", "--hidden", "16", "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", "vae", "--epochs", "1", "--hidden", "16", "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run (vae-mlp-digits, 1 of 1 epochs done)" in err
    assert main(["train", "vae", "--epochs", "2", "--hidden", "16", "--out", out, "--quiet", "--resume"]) == 0
    assert main(["train", "vae", "--epochs", "2", "--hidden", "32", "--out", out, "--quiet", "--resume"]) == 2
    assert "hidden [16] saved, [32] given" in capsys.readouterr().err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished VAE run (2 epochs) and GAN run (1 epoch), and files that are not runs."""
    import io
    import pickle
    import zipfile

    import numpy as np

    import minigen as mg

    folder = tmp_path_factory.mktemp("runs")
    assert main(["train", "vae", "--epochs", "2", "--hidden", "16", "--out", str(folder / "vae"), "--quiet"]) == 0
    assert main(["train", "gan", "--epochs", "1", "--hidden", "16", "16", "--out", str(folder / "gan"), "--quiet"]) == 0
    np.savez(folder / "plain.npz", a=np.zeros(2))
    mg.save(folder / "weights.npz", {"model": mg.nn.Linear(2, 2).state_dict()})
    (folder / "pickle.npz").write_bytes(pickle.dumps([1, 2]))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)})
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("a0.npy", header.getvalue())
    return folder


@pytest.mark.parametrize(
    "argv, named",
    [
        (["eval", "{runs}/plain.npz"], "{runs}/plain.npz is an .npz file but not a minigen checkpoint (it has no __minigen__ entry)"),
        (["eval", "{runs}/weights.npz"], "{runs}/weights.npz is a minigen checkpoint but not one of a training run"),
        (["eval", "{runs}/missing.npz"], "no checkpoint at {runs}/missing.npz"),
        (["eval", "{runs}/vae"], "{runs}/vae is a folder; give the checkpoint file in it (e.g. {runs}/vae/checkpoint.npz)"),
        (["sample", "{runs}/pickle.npz"], "{runs}/pickle.npz is not a minigen checkpoint: a Python pickle (minigen never opens pickles"),
        (["sample", "{runs}/huge.npz"], "entry 'a0' claims shape (1099511627776,) of float64 (8,796,093,022,208 bytes) but holds 0 bytes"),
        (
            ["sample", "{runs}/vae/checkpoint.npz", "--out", "{runs}/pic.txt"],
            "--out {runs}/pic.txt: a picture file ends in .png, .pdf, .svg, .jpg, .jpeg; got '.txt'",
        ),
        (
            ["sample", "{runs}/vae/checkpoint.npz", "--out", "{runs}/no/pic.png"],
            "--out {runs}/no/pic.png: the folder {runs}/no does not exist",
        ),
        (
            ["train", "vae", "--resume", "--out", "{runs}/gan"],
            "--resume: {runs}/gan/checkpoint.npz holds a GAN run (gan-mlp-ring8), not a VAE run; "
            "continue it with `minigen train gan --resume --out {runs}/gan`",
        ),
        (
            ["train", "vae", "--hidden", "16", "--epochs", "1", "--resume", "--out", "{runs}/vae"],
            "--epochs 1: the run in {runs}/vae has 2 epochs done already; give --epochs 2 or more to continue it",
        ),
        (
            ["train", "vae", "--hidden", "32", "--epochs", "2", "--resume", "--out", "{runs}/vae"],
            "--resume: {runs}/vae/checkpoint.npz was trained with other settings (hidden [16] saved, [32] given); "
            "resume with the same ones",
        ),
    ],
)
def test_a_file_or_run_that_does_not_fit_is_one_line_and_exit_code_2(argv, named, runs, capsys):
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()}
    assert main([a.format(runs=runs) for a in argv] + (["--quiet"] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("minigen: error: ") and err.count("\n") == 1 and named.format(runs=runs) in err, err
    assert "allow_pickle" not in err
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.is_file()} == before  # nothing written, nothing replaced


def test_settings_that_do_not_apply_to_the_data_do_not_block_a_resume(runs, capsys):
    checkpoint = (runs / "vae" / "checkpoint.npz").read_bytes()
    argv = ["train", "vae", "--hidden", "16", "--epochs", "2", "--resume", "--data-dir", str(runs / "elsewhere"), "--quiet"]
    assert main([*argv, "--out", str(runs / "vae")]) == 0  # the digits are bundled: --data-dir does not matter
    assert (runs / "vae" / "checkpoint.npz").read_bytes() == checkpoint  # 2 of 2 epochs done: nothing trained
    assert "test ELBO" in capsys.readouterr().out


def test_sample_into_a_folder_writes_samples_png_there(runs, capsys):
    assert main(["sample", str(runs / "gan" / "checkpoint.npz"), "--n", "30", "--out", str(runs / "gan")]) == 0
    assert capsys.readouterr().out == f"wrote 30 samples to {runs / 'gan' / 'samples.png'}\n"
    assert not list((runs / "gan").glob(".*.tmp"))


def test_a_failed_run_is_one_line_and_exit_code_1(tmp_path, monkeypatch, capsys):
    from minigen.data import mnist

    monkeypatch.setitem(mnist.SOURCES["mnist"], "mirrors", [f"file://{tmp_path}/no-mirror/"])  # offline
    assert main(["train", "vae", "--data", "mnist", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigen: error: download: could not get train-images-idx3-ubyte.gz for mnist") and err.count("\n") == 1
    assert "copy the four files" in err and str(tmp_path / "data" / "mnist") in err
    diverged = subprocess.run(
        [sys.executable, "-m", "minigen", "train", "vae", "--lr", "1e9", "--epochs", "3", "--out", str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )  # as a user sees it: no NumPy warnings before the message
    assert diverged.returncode == 1 and diverged.stderr.count("\n") == 1, diverged.stderr
    assert diverged.stderr.startswith("minigen: error: vae-mlp-digits: ") and "Try a lower learning rate (--lr)" in diverged.stderr


def test_ctrl_c_keeps_the_last_epoch_and_says_how_to_continue(tmp_path, monkeypatch, capsys):
    from minigen.experiments.vae import VAEExperiment

    steps = []
    real_step = VAEExperiment.train_step

    def step_then_interrupt(self, batch, epoch):
        steps.append(epoch)
        if epoch == 1:
            raise KeyboardInterrupt
        return real_step(self, batch, epoch)

    monkeypatch.setattr(VAEExperiment, "train_step", step_then_interrupt)
    out = tmp_path / "run"
    assert main(["train", "vae", "--epochs", "3", "--hidden", "16", "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err == f"minigen: interrupted; {out / 'checkpoint.npz'} holds the last finished epoch: add --resume to continue\n"
    assert not (out / ".lock").exists()
    monkeypatch.undo()
    assert main(["train", "vae", "--epochs", "3", "--hidden", "16", "--out", str(out), "--quiet", "--resume"]) == 0


def test_debug_shows_the_traceback_of_a_users_mistake_too(tmp_path):
    from minigen.experiments.settings import SettingError

    for argv in (["--debug", "eval", str(tmp_path / "missing.npz")], ["eval", str(tmp_path / "missing.npz"), "--debug"]):
        with pytest.raises(SettingError, match="no checkpoint at"):
            main(argv)


def test_help_shows_every_default_and_the_gan_defaults_per_model(capsys):
    with pytest.raises(SystemExit):
        main(["train", "gan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--lr LR Adam's learning rate for both networks (default: toys: mlp/wgan-gp 0.001; "
        "images: mlp/cgan 0.001; dcgan 0.0002; wgan-gp 0.0001)"
    ) in text
    assert "--epochs EPOCHS epochs (default: toys: mlp/wgan-gp 40; images: mlp/cgan/wgan-gp 150; dcgan 60)" in text
    assert (
        "--d-steps D_STEPS discriminator (critic) steps per generator step "
        "(default: toys: mlp 1; wgan-gp 5; images: mlp/dcgan/cgan 1; wgan-gp 5)" in text
    )
    assert "--channels CHANNELS base channel count of the convolutional networks (default: images: dcgan/wgan-gp 32)" in text
    assert "--label-smoothing LABEL_SMOOTHING one-sided: real targets 1 - s (default: 0.0)" in text
    assert "--seed SEED seed of every random number (default: 0)" in text


def test_diffusion_help_shows_the_defaults_per_kind_of_data(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # no line breaks inside "fashion-mnist"
    with pytest.raises(SystemExit):
        main(["train", "diffusion", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS default: ring8/swissroll 60; digits 40; mnist/fashion-mnist 5" in text
    assert (
        "--channels CHANNELS [CHANNELS ...] the U-Net's channels, one count per level (default: digits 32 64; mnist/fashion-mnist 16 32 32)"
        in text
    )
    assert "--schedule {linear,cosine} the noise schedule beta_t (default: cosine)" in text


def test_sample_writes_arrays_for_evaluation_elsewhere_and_load_run_restores_the_run(runs, capsys):
    import numpy as np

    import minigen as mg

    out = runs / "vae-samples.npz"
    assert main(["sample", str(runs / "vae" / "checkpoint.npz"), "--format", "npz", "--n", "30", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 30 samples to {out} (array 'samples', 30 x 1 x 8 x 8, float32)\n"
    with np.load(out) as arrays:
        samples = arrays["samples"]
    assert samples.shape == (30, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    run = mg.load_run(runs / "vae" / "checkpoint.npz")
    assert run.epochs_done == 2 and [row["epoch"] for row in run.history] == [1, 2]
    np.testing.assert_array_equal(run.model.sample(30, generator=mg.Generator(0)), samples)  # what `sample --seed 0` drew
    assert main(["sample", str(runs / "gan" / "checkpoint.npz"), "--format", "npz", "--out", str(runs / "x.png")]) == 2
    assert "--format npz writes an .npz file; got '.png'" in capsys.readouterr().err


def test_a_checkpoint_of_an_earlier_version_is_one_line_not_a_keyerror(tmp_path, capsys):
    import minigen as mg

    out = tmp_path / "gan"
    assert main(["train", "gan", "--epochs", "1", "--hidden", "8", "8", "--out", str(out), "--quiet"]) == 0
    checkpoint = mg.load(out / "checkpoint.npz")
    del checkpoint["experiment"]["schedules"]  # saved before the learning-rate schedules were
    mg.save(out / "checkpoint.npz", checkpoint)
    capsys.readouterr()
    expected = (
        f"minigen: error: {out / 'checkpoint.npz'}: cannot restore this run (KeyError: 'schedules'); "
        f"it was probably saved by an earlier version of minigen"
    )
    assert main(["eval", str(out / "checkpoint.npz")]) == 2
    assert capsys.readouterr().err.startswith(expected)
    assert main(["train", "gan", "--epochs", "2", "--hidden", "8", "8", "--out", str(out), "--quiet", "--resume"]) == 1
    assert capsys.readouterr().err.startswith(expected)


@pytest.mark.parametrize(
    "family, handler, step, loss_line",
    [
        ("gan", "_train_gan", "discriminator_step", r"loss = discriminator_loss\("),
        ("vae", "_train_vae", "elbo_step", r"loss = -terms\.elbo\.mean\(\)"),
        ("diffusion", "_train_diffusion", "noise_prediction_loss", r"return \(\(predicted - noise\) \*\* 2\)\.mean\(\)"),
    ],
)
def test_the_command_leads_to_the_line_that_computes_the_loss_in_one_more_file(family, handler, step, loss_line, capsys):
    """From cli.py (the command), one file: the one its docstring and --help name holds the step
    and the loss the step computes."""
    import inspect
    from pathlib import Path

    import minigen
    from minigen import cli

    doc = inspect.getdoc(getattr(cli, handler))
    (named,) = set(re.findall(r"minigen/models/\w+\.py", doc))
    source = (Path(minigen.__file__).parent.parent / named).read_text()
    assert f"`{step}`" in doc and f"minigen/models/{family}.py" == named
    body = source[source.index(f"def {step}(") :].split("\ndef ")[0]
    assert re.search(loss_line, body), f"{step} in {named} has no line {loss_line}"
    with pytest.raises(SystemExit):
        main(["train", family, "--help"])
    assert named in capsys.readouterr().out.replace("\n", " ")
