"""The README's commands and example are the ones CI runs, and they work."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_install_and_test_commands_that_ci_runs():
    setup = _blocks("bash")[0].strip().splitlines()
    assert len(setup) == 2 and "pip install" in setup[0] and setup[1] == "pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in setup:
        assert command in ci, f".ci/run does not run README's command: {command}"
    assert ci.index(setup[0]) < ci.index(setup[1])


def test_readme_python_examples_run_and_print_what_the_readme_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for block in _blocks("python"):
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "graph.png").exists()
    accuracy_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert accuracy_line.startswith("test accuracy: ")
    assert f"It prints `{accuracy_line}`" in README


def test_the_main_jobs_quoted_figures_hold(tmp_path):
    """README quotes the default run's test ELBO and L_5000; retrain and check them (about 10 s)."""
    from minigen.experiments.vae import VAEExperiment, make_config
    from minigen.train import train

    elbo_quoted, lk_quoted = (
        float(v) for v in re.search(r"test ELBO of \*\*(-[\d.]+) nats.*?L_5000 = (-[\d.]+) nats", README, re.S).groups()
    )
    experiment = VAEExperiment(make_config(out=str(tmp_path)))
    history = train(experiment, experiment.config["epochs"], tmp_path, progress=False)
    assert abs(history[-1]["test_elbo"] - elbo_quoted) < 0.05  # BLAS kernels may round differently elsewhere
    assert abs(experiment.log_likelihood(k=5000) - lk_quoted) < 0.05


def test_the_exercise_table_is_the_registry():
    from minigen.exercises import EXERCISES

    rows = re.findall(r"^\| `(ex\w+)` \| ([\d.]+) \| (\d+) \|$", README, re.M)
    assert rows == [(name, f"{e.points:g}", str(sum(c.hidden for c in e.checks))) for name, e in EXERCISES.items()]
