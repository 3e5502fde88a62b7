"""The exercises: the solutions earn every point, the student versions keep nothing of them
and say "not done yet", and `check` prints one line and returns nothing.
(`tests/test_grading.py` grades a whole synthetic class.)"""

from pathlib import Path

import pytest

from minigen.exercises import EXERCISES, check
from minigen.exercises.build import CHECK_CALL, SOLUTION, build, notebook_sources
from minigen.exercises.grade import code_cells, grade_function, run_cell

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def exercise_functions(folder) -> dict:
    """exercise name -> the function its notebook defines, after running the notebook's cells up
    to its check, as the grader does (cells that train models come after the checks)."""
    functions = {}
    for path in notebook_sources(folder):
        cells, namespace = code_cells(path), {"__name__": "__main__"}
        calls = {i: list(CHECK_CALL.finditer(cell)) for i, cell in enumerate(cells)}
        last = max((i for i, found in calls.items() if found), default=-1)
        for i in range(last + 1):
            assert run_cell(cells[i], namespace, i + 1) is None
            for call in calls[i]:
                functions[call["name"]] = namespace[call["function"]]
    return functions


@pytest.fixture(scope="module")
def solutions():
    return exercise_functions(NOTEBOOKS)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_solution_earns_every_point(name, solutions):
    points, verdict = grade_function(name, solutions[name])
    assert verdict == f"{name}: passed"
    assert points == EXERCISES[name].points


def test_every_registered_exercise_is_in_a_notebook(solutions):
    assert set(solutions) == set(EXERCISES)
    for name, function in solutions.items():
        assert function.__name__ == EXERCISES[name].function


def test_every_exercise_has_a_shown_check_and_positive_points():
    for exercise in EXERCISES.values():
        assert any(not c.hidden for c in exercise.checks) and all(c.points > 0 for c in exercise.checks)


def test_check_prints_one_line_and_returns_nothing(solutions, capsys):
    assert check("ex01_sigmoid_backward", solutions["ex01_sigmoid_backward"]) is None
    assert capsys.readouterr().out == "ex01_sigmoid_backward: passed\n"
    assert check("ex01_sigmoid_backward", lambda y, grad: 2 * grad * y * (1 - y)) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "off by a factor 2" in out
    check("ex99_nothing", print)
    assert "no exercise called 'ex99_nothing'" in capsys.readouterr().out


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
    functions = exercise_functions(tmp_path)
    capsys.readouterr()  # what the notebooks' cells printed
    for name, function in functions.items():
        check(name, function)
        assert capsys.readouterr().out.strip() == f"{name}: not done yet: {EXERCISES[name].task}"
        assert grade_function(name, function) == (0.0, f"{name}: not done yet: {EXERCISES[name].task}")
