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
