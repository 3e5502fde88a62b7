"""`minigen exercises grade` on a synthetic class: every score exact, every file where it belongs.

The class is made from the repository's notebooks: the solutions (as .ipynb, as .py, or
both), the student versions (blank), and solutions with one exercise spoilt in the ways
students spoil them.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest

from minigen.cli import main
from minigen.exercises import EXERCISES
from minigen.exercises.build import build, notebook_sources, write_notebook
from minigen.exercises.grade import code_cells, grade_function

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
FULL = sum(e.points for e in EXERCISES.values())
POINTS = {name: e.points for name, e in EXERCISES.items()}
RECURSIVE_SORT = """def topological_sort(graph, root):
    order = []

    def visit(node):
        if node not in order:
            for parent in graph[node]:
                visit(parent)
            order.append(node)

    visit(root)
    return order


def the_solution_left_unused(graph, root):
"""


def replace_in(folder: Path, name: str, old: str, new: str) -> None:
    """Change one notebook of a student, in the .py and in the .ipynb where they exist."""
    for path in folder.glob(f"{name}.*"):
        text = path.read_text()
        if path.suffix == ".ipynb":
            old_json, new_json = json.dumps(old)[1:-1], json.dumps(new)[1:-1]
            assert old_json in text, f"{path}: {old!r} not found"
            path.write_text(text.replace(old_json, new_json))
        else:
            assert old in text, f"{path}: {old!r} not found"
            path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    solutions, blank = root / "built" / "solutions", root / "built" / "blank"
    for source in notebook_sources(NOTEBOOKS):
        solutions.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, solutions / source.name)
        write_notebook(source.read_text(), solutions / source.with_suffix(".ipynb").name)
    build(NOTEBOOKS, blank)
    submissions = root / "submissions"

    def student(name, source, suffixes=(".ipynb",)):
        folder = submissions / name
        folder.mkdir(parents=True)
        for path in source.iterdir():
            if path.suffix in suffixes:
                shutil.copy(path, folder / path.name)
        return folder

    student("correct", solutions)
    student("py_only", solutions, (".py",))
    student("blank", blank, (".ipynb", ".py"))
    both = student("ipynb_wins", solutions)
    for path in blank.glob("*.py"):
        shutil.copy(path, both / path.name)  # a blank .py beside each correct .ipynb
    replace_in(student("factor_two", solutions), "01_autograd", "return grad * y * (1 - y)", "return 2 * grad * y * (1 - y)")
    endless = student("endless_loop", solutions, (".py",))
    replace_in(endless, "01_autograd", "    order, visited = [], set()\n", "    while True:\n        pass\n")
    replace_in(student("syntax_error", solutions), "04_vae", "return mu + np.exp(0.5 * logvar) * eps", "return mu + np.exp(0.5 * logvar) *")
    replace_in(student("recursive_sort", solutions, (".py",)), "01_autograd", "def topological_sort(graph, root):\n", RECURSIVE_SORT)
    constant = student("top_level_constant", solutions, (".py",))
    replace_in(constant, "01_autograd", "def sigmoid_backward(y, grad):\n", "ONE = 1.0\n\n# %%\ndef sigmoid_backward(y, grad):\n")
    replace_in(constant, "01_autograd", "return grad * y * (1 - y)", "return grad * y * (ONE - y)")

    grade_function("ex03_im2col", lambda *args: None)  # compiles (and caches) the kernels the check compares with
    out = root / "results" / "grades.csv"
    code = main(["exercises", "grade", str(submissions), "--out", str(out), "--timeout", "8"])
    assert code == 0
    with out.open() as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    return rows, root / "results" / "feedback", submissions


@pytest.mark.parametrize(
    "student, lost",
    [
        ("correct", {}),
        ("py_only", {}),
        ("ipynb_wins", {}),
        ("blank", POINTS),
        ("factor_two", {"ex01_sigmoid_backward": 2}),
        ("endless_loop", {"ex01_topological_sort": 3}),
        ("syntax_error", {"ex04_reparameterize": 2}),
        ("recursive_sort", {"ex01_topological_sort": 1}),  # the shown deep-chain check fails; order and hidden check pass
        ("top_level_constant", {}),
    ],
)
def test_every_score_is_exact(graded, student, lost):
    rows, _, _ = graded
    row = rows[student]
    for name in EXERCISES:
        assert float(row[name]) == POINTS[name] - lost.get(name, 0), f"{student}, {name}: {row[name]}"
    assert float(row["total"]) == FULL - sum(lost.values())


def test_csv_has_one_row_per_student_and_a_column_per_exercise(graded):
    rows, _, submissions = graded
    assert sorted(rows) == sorted(p.name for p in submissions.iterdir())
    assert list(next(iter(rows.values()))) == ["student", *EXERCISES, "total"]


def test_feedback_says_what_check_says_and_which_file_was_read(graded):
    _, feedback, _ = graded
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(graded[0])
    factor_two = (feedback / "factor_two.md").read_text()
    assert "ex01_sigmoid_backward: sigmoid backward (analytical vs numerical): got" in factor_two
    assert "off by a factor 2" in factor_two
    assert f"factor_two: {FULL - 2:g} of {FULL:g} points" in factor_two
    endless = (feedback / "endless_loop.md").read_text()
    assert "ex01_topological_sort: stopped after 8 s" in endless
    assert "ex01_sigmoid_backward: passed" in endless  # the loop cost one exercise, not the notebook
    assert "SyntaxError" in (feedback / "syntax_error.md").read_text()
    assert "ex04_elbo: passed" in (feedback / "syntax_error.md").read_text()
    assert "read 01_autograd.ipynb (the .ipynb wins); 01_autograd.py was not read" in (feedback / "ipynb_wins.md").read_text()
    blank = (feedback / "blank.md").read_text()
    assert f"ex01_sigmoid_backward: not done yet: {EXERCISES['ex01_sigmoid_backward'].task}" in blank
    for text in (p.read_text() for p in feedback.glob("*.md")):
        assert "_only_reachable_nodes" not in text and "hidden=True" not in text


def test_grading_writes_nothing_into_the_submissions(graded):
    _, _, submissions = graded
    assert not list(submissions.rglob("runs")) and not list(submissions.rglob("*.csv"))
    assert {p.suffix for p in submissions.rglob("*") if p.is_file()} <= {".py", ".ipynb"}


def test_a_bad_folder_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["exercises", "grade", str(tmp_path / "missing"), "--out", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigen: error: ") and "\n" not in err and "missing" in err
    assert main(["exercises", "grade", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "no student folders" in capsys.readouterr().err


def test_cells_of_both_formats_read_alike(tmp_path):
    source = NOTEBOOKS / "01_autograd.py"
    write_notebook(source.read_text(), tmp_path / "01_autograd.ipynb")
    from_py, from_ipynb = code_cells(source), code_cells(tmp_path / "01_autograd.ipynb")
    assert [c.strip() for c in from_py[1:]] == [c.strip() for c in from_ipynb]  # the .py adds jupytext's header cell
