import subprocess
import sys

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
