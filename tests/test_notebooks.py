"""The notebooks as a student sees them in Jupyter.

Each notebook, and its student version, is built into a temporary folder (never into
`notebooks/`), executed top to bottom in a Jupyter kernel, and read back: every cell ran,
every cell that ends with a figure shows it as a PNG picture (not the text
`<Figure size ...>`), every check cell prints exactly one verdict line and echoes nothing,
and nothing is written to stderr (no stray warnings).
"""

import ast
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

from minigen.exercises import EXERCISES
from minigen.exercises.build import build, notebook_sources, write_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHECK_CELL = re.compile(r"^check\(\"(?P<name>\w+)\", \w+\)$")


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notebooks")
    for source in notebook_sources(NOTEBOOKS):
        write_notebook(source.read_text(), folder / "solutions" / source.with_suffix(".ipynb").name)
    build(NOTEBOOKS, folder / "student")
    return folder


def shows_a_value(source: str) -> bool:
    """Does the cell end with an expression that Jupyter displays (other than print/check calls)?"""
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    return not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("print", "check"))


def executed(path: Path, runs: Path) -> "nbformat.NotebookNode":
    notebook = nbformat.read(path, as_version=4)
    env = dict(os.environ, MINIGEN_RUNS=str(runs))
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    return client.execute(env=env)  # the kernel's training runs go to a temporary folder too


@pytest.mark.parametrize("version", ["solutions", "student"])
@pytest.mark.parametrize("name", [p.stem for p in notebook_sources(NOTEBOOKS)])
def test_notebook_runs_and_shows_every_figure(built, name, version):
    notebook = executed(built / version / f"{name}.ipynb", built / "runs" / version)
    figures = 0
    for number, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        outputs = cell.get("outputs", [])
        pictures = [o for o in outputs if "image/png" in o.get("data", {})]
        where = f"{name} ({version}), code cell {number}: {cell.source[:60]!r}"
        stderr = [o["text"] for o in outputs if o.output_type == "stream" and o.name == "stderr"]
        assert not stderr, f"{where} wrote to stderr: {stderr}"
        if shows_a_value(cell.source):
            figures += 1
            assert len(pictures) == 1, f"{where} ends with a value but shows {len(pictures)} pictures: {outputs}"
        elif "display(" not in cell.source:
            assert not pictures, f"{where} shows a picture it does not end with"
        if check := CHECK_CELL.match(cell.source.strip()):
            lines = "".join(o["text"] for o in outputs if o.output_type == "stream").splitlines()
            expected = "passed" if version == "solutions" else f"not done yet: {EXERCISES[check['name']].task}"
            assert lines == [f"{check['name']}: {expected}"], f"{where} printed {lines}"
            assert not [o for o in outputs if o.output_type == "execute_result"], f"{where} echoes a value after its verdict"
    assert figures > 0, f"{name}: no cell ends with a figure; every notebook shows at least one"


def test_pytest_leaves_the_notebooks_folder_alone(tmp_path):
    """Collecting (and building) must not write a file into notebooks/: students edit those."""

    def snapshot():
        return {p.relative_to(NOTEBOOKS): hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS.rglob("*") if p.is_file()}

    before = snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(ROOT / "tests"), str(NOTEBOOKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr
    assert snapshot() == before
