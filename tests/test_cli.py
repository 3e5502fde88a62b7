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


def test_train_vae_then_sample_and_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--epochs", "2", "--hidden", "32", "--latent", "2", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "test ELBO" in printed and f"in {out}/" in printed and "manifold.png" in printed
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "20", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()
    assert main(["eval", str(out / "checkpoint.npz"), "--k", "20"]) == 0
    printed = capsys.readouterr().out
    assert "L_20" in printed and "test ELBO" in printed


def test_train_vae_conditional_and_conv_models_run(tmp_path):
    for model in ("cvae", "conv"):
        assert main(["train", "vae", "--model", model, "--epochs", "1", "--out", str(tmp_path / model), "--quiet"]) == 0
        assert (tmp_path / model / "samples.png").exists()
