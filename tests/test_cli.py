import subprocess
import sys

import pytest

from minigen.cli import demo, main


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
    assert "test ELBO" in printed and f"in {out}/" in printed and "manifold.png" in printed
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "20", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    assert main(["eval", str(out / "checkpoint.npz"), "--k", "20", "--n-samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert "L_20" in printed and "test ELBO" in printed and "as the GANs are measured" in printed and "classifier FID" in printed


def test_train_vae_conditional_and_conv_models_run(tmp_path):
    for model in ("cvae", "conv"):
        assert main(["train", "vae", "--model", model, "--epochs", "1", "--out", str(tmp_path / model), "--quiet"]) == 0
        assert (tmp_path / model / "samples.png").exists()


def test_train_gan_on_the_ring_then_eval_and_sample(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["train", "gan", "--epochs", "2", "--hidden", "16", "16", "--out", str(out), "--quiet"]) == 0
    assert "modes covered:" in capsys.readouterr().out
    assert main(["eval", str(out / "checkpoint.npz")]) == 0
    printed = capsys.readouterr().out
    assert "modes covered: " in printed and "high-quality samples: " in printed
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "50", "--out", str(tmp_path / "points.png")]) == 0


def test_eval_of_an_image_gan_prints_fid_beside_its_floor_and_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "data"))
    out = tmp_path / "dcgan"
    assert main(["train", "gan", "--model", "dcgan", "--data", "digits", "--epochs", "1", "--hidden", "8", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.npz"), "--n-samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert "classifier FID" in printed and "real-vs-real floor" in printed and "uniform noise" in printed and "Parzen" in printed


def test_exercises_build_writes_student_notebooks(tmp_path, capsys):
    assert main(["exercises", "build", "--out", str(tmp_path)]) == 0
    assert "student notebooks" in capsys.readouterr().out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert "01_autograd.py" in written and "01_autograd.ipynb" in written
    assert "### BEGIN SOLUTION" not in (tmp_path / "04_vae.py").read_text()


@pytest.mark.parametrize("argv, named", [
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
    (["train", "gan", "--model", "dcgan", "--data", "digits", "--hidden", "8", "99"], "--hidden for --model dcgan is one number"),
    (["train", "gan", "--model", "dcgan", "--data", "digits", "--batch-size", "5000"], "--batch-size 5000 is larger than the 1,442 training images"),
    (["sample", "nothing.npz", "--n", "0"], "--n must be a positive whole number, got 0"),
    (["eval", "nothing.npz", "--k", "0"], "--k must be a positive whole number, got 0"),
    (["eval", "nothing.npz", "--n-samples", "0"], "--n-samples must be a positive whole number, got 0"),
    (["exercises", "grade", "no-such-folder"], "no-such-folder is not a folder"),
])
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
