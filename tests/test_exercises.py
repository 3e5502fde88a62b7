"""The exercises: the solutions pass, the student versions keep nothing of them and say
"not done yet", and instructors can grade one exercise at a time:

    pytest tests/test_exercises.py -m ex01_sigmoid_backward --exercises-from path/to/student/notebooks
"""

import ast
from pathlib import Path

import pytest

from minigen.exercises import EXERCISES, check
from minigen.exercises.build import CHECK_CALL, SOLUTION, build, notebook_sources
from minigen.exercises.checks import verify

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def exercise_functions(folder) -> dict:
    """exercise name -> the function a notebook defines for it (only imports and defs are run)."""
    functions = {}
    for path in notebook_sources(folder):
        source = path.read_text()
        tree = ast.parse(source)
        keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
        namespace: dict = {}
        exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
        for call in CHECK_CALL.finditer(source):
            functions[call["name"]] = namespace[call["function"]]
    return functions


@pytest.fixture(scope="module")
def graded(request):
    return exercise_functions(request.config.getoption("--exercises-from") or NOTEBOOKS)


@pytest.mark.parametrize("name", [pytest.param(name, marks=getattr(pytest.mark, name)) for name in EXERCISES])
def test_exercise(name, graded):
    assert name in graded, f"no notebook has a check({name!r}, ...) cell"
    verify(name, graded[name])  # raises with the verdict a student would see


def test_every_registered_exercise_is_in_a_notebook():
    assert set(exercise_functions(NOTEBOOKS)) == set(EXERCISES)


def test_student_versions_keep_nothing_of_the_solutions(tmp_path):
    build(NOTEBOOKS, tmp_path)
    for path in notebook_sources(NOTEBOOKS):
        original, student = path.read_text(), (tmp_path / path.name).read_text()
        student_lines = set(student.splitlines())
        assert "BEGIN SOLUTION" not in student
        assert student.count("raise NotImplementedError") == len(SOLUTION.findall(original))
        elsewhere = {line.strip() for line in SOLUTION.sub("", original).splitlines()}
        for region in SOLUTION.finditer(original):
            for line in region.group(0).splitlines()[1:-1]:
                if line.strip() and line.strip() not in elsewhere:
                    assert line not in student_lines, f"{path.name}: solution line leaked: {line!r}"


def test_student_versions_say_not_done_yet(tmp_path, capsys):
    build(NOTEBOOKS, tmp_path)
    for name, function in exercise_functions(tmp_path).items():
        assert check(name, function) is False
        verdict = capsys.readouterr().out.strip()
        assert verdict == f"{name}: not done yet: {EXERCISES[name].task}"
