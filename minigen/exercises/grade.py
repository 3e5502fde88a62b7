"""Grade a class: `minigen exercises grade SUBMISSIONS --out grades.csv`.

SUBMISSIONS holds one folder per student, each with the notebooks the student handed in,
as `.ipynb` and/or percent-format `.py` (when a notebook is there as both, the `.ipynb` is
read: it is the file students edit in Jupyter). For every exercise the grader

1. finds the student's notebook with the exercise's `check("name", function)` cell (or,
   failing that, the cell that defines the function),
2. runs that notebook's code cells in order, as the student did, up to that cell (helpers and
   top-level constants included; `check(...)` calls and `%magics` are left out), in a fresh
   namespace, in a scratch folder, with printing silenced, and
3. runs all of the exercise's checks on the student's function, the hidden ones included;
   the exercise earns the points of the checks that pass, and the verdict is the line that
   `check` prints in the notebook.

Each notebook of each student runs in a process of its own with a time limit per exercise
(the cells since the previous exercise and the checks): an infinite loop costs that
exercise, after which the notebook is run again from the top with that exercise left out.
Students are graded in parallel, one process per core by default.

The result is `grades.csv` (one row per student: points per exercise and a total) and a
`feedback/<student>.md` for each student (points, verdict, time and the file read, per
exercise; the hidden checks count in the points but are never shown).
"""

from __future__ import annotations

import ast
import csv
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..serialization import write_text
from .checks import EXERCISES, verdict


class GradingError(ValueError):
    """The grader cannot start: the message says what is wrong with what it was given."""


@dataclass
class Result:
    """One student's result for one exercise."""

    exercise: str
    points: float
    verdict: str
    seconds: float = 0.0
    source: str = ""  # the file read, relative to the student's folder


@dataclass
class Student:
    name: str
    results: dict[str, Result] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was read, cells that raised

    @property
    def total(self) -> float:
        return sum(r.points for r in self.results.values())


# --- reading notebooks -------------------------------------------------------------------------

CELL_START = re.compile(r"^# %%(?P<header>.*)$")


def code_cells(path: Path) -> list[str]:
    """The code cells of a notebook, `.ipynb` (JSON) or percent-format `.py`, in order."""
    if path.suffix == ".ipynb":
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
            cells = notebook["cells"]
            return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells if c.get("cell_type") == "code"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise GradingError(f"{path.name} is not a Jupyter notebook ({type(error).__name__}: {error})") from None
    cells, current, is_code = [], [], True  # the lines before the first "# %%" are code (jupytext's header comments)
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        start = CELL_START.match(line)
        if start:
            if is_code:
                cells.append("\n".join(current))
            current, is_code = [], not re.search(r"\[(markdown|md|raw)\]", start["header"])
        else:
            current.append(line)
    if is_code:
        cells.append("\n".join(current))
    return cells


def find_notebooks(folder: Path) -> tuple[list[Path], list[str]]:
    """The notebooks in a student's folder (subfolders too), one per name: the `.ipynb` where a
    name has both. Returns them sorted, and notes on the files passed over."""
    notebooks: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.rglob("*"), key=lambda p: (len(p.parts), p)):  # the shallowest copy of a name wins
        if path.suffix in (".ipynb", ".py") and path.is_file() and not any(p.startswith(".") for p in path.relative_to(folder).parts):
            notebooks.setdefault(path.stem, {}).setdefault(path.suffix, path)
    chosen, notes = [], []
    for versions in notebooks.values():
        chosen.append(versions.get(".ipynb", versions.get(".py")))
        if len(versions) == 2:
            notes.append(
                f"read {versions['.ipynb'].relative_to(folder)} (the .ipynb wins); {versions['.py'].relative_to(folder)} was not read"
            )
    return sorted(chosen), notes


def _calls_check(cell: str, name: str) -> re.Match | None:
    return re.search(r"check\(\s*[\"']" + name + r"[\"']\s*,\s*(?P<function>\w+)\s*\)", cell)


def locate(exercise, cells: dict[Path, list[str]]):
    """(notebook, cell index, function name) where the exercise is graded, or None, given each
    notebook's code cells. The cell with its `check(...)` call wins; else the cell that
    defines its function. The notebook whose name starts with the exercise's number is
    searched first."""
    ordered = sorted(cells, key=lambda p: (not p.name.startswith(exercise.notebook), p.name))
    for path in ordered:
        for i, cell in enumerate(cells[path]):
            if call := _calls_check(cell, exercise.name):
                return path, i, call["function"]
    for path in ordered:
        for i, cell in enumerate(cells[path]):
            if re.search(rf"^\s*def {exercise.function}\(", cell, re.M):
                return path, i, exercise.function
    return None


# --- the process that runs one notebook --------------------------------------------------------


def _without_magics(source: str) -> str:
    """IPython's `%line magics`, `%%cell magics` and `!shell` lines become `pass`."""
    lines = source.splitlines()
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in lines)


def _is_check_call(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "check"
    )


def run_cell(source: str, namespace: dict, number: int) -> str | None:
    """Run one cell without its `check(...)` calls; returns what went wrong, in one line, or None."""
    try:
        tree = ast.parse(_without_magics(source))
    except SyntaxError as error:
        return f"cell {number} has a SyntaxError: {error.msg} (line {error.lineno})"
    tree.body = [node for node in tree.body if not _is_check_call(node)]
    try:
        exec(compile(tree, f"<cell {number}>", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - a student's cell may raise anything, SystemExit included
        return f"cell {number} raised {type(error).__name__}: {error}"
    return None


def grade_function(name: str, fn) -> tuple[float, str]:
    """Every check of exercise `name` on `fn`: (points of those that pass, the verdict `check` prints)."""
    points, shown_failure = 0.0, None
    for c in EXERCISES[name].checks:
        try:
            c.run(fn)
            points += c.points
        except BaseException as error:  # noqa: BLE001 - the student's function may raise anything
            if not c.hidden and shown_failure is None:
                shown_failure = error
    return points, verdict(name, shown_failure)


def _run_notebook(folder: str, cells: list[str], plan: list[tuple[int, str, str]], skip: set, scratch: str, connection) -> None:
    """The grading process: run the cells in order and send (exercise, points, verdict, seconds,
    the errors of the cells run since the previous message) for each planned exercise at its cell. Runs in a fresh process, so
    nothing leaks between notebooks or students."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the student's printing (and C libraries') goes nowhere
    os.dup2(devnull, 2)
    import matplotlib

    matplotlib.use("Agg")
    os.chdir(scratch)  # relative paths (runs/...) land in the scratch folder, never in the submission
    sys.path.insert(0, folder)  # as in Jupyter, modules beside the notebook import
    os.environ["MINIGEN_RUNS"] = scratch
    namespace = {"__name__": "__main__"}
    errors: list[str] = []
    at_cell: dict[int, list[tuple[str, str]]] = {}
    for index, name, function in plan:
        at_cell.setdefault(index, []).append((name, function))
    started = time.perf_counter()
    for index in range(max(at_cell) + 1):
        problem = run_cell(cells[index], namespace, index + 1)
        if problem:
            errors.append(problem)
        for name, function in at_cell.get(index, []):
            if name in skip:
                continue
            if not callable(namespace.get(function)):
                why = f" ({'; '.join(errors)})" if errors else ""
                points, line = 0.0, f"{name}: no function {function}() was defined when its check ran{why}"
            else:
                points, line = grade_function(name, namespace[function])
            connection.send((name, points, line, time.perf_counter() - started, errors))
            started, errors = time.perf_counter(), []


ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _context():
    """Processes forked from a server that has minigen imported already: each starts in
    milliseconds instead of a second, and is safe beside the grader's threads.

    The server is started with one BLAS and one Numba thread: the grader already runs one
    process per core, and more threads than cores make small matrix products several times
    slower (30 students: 50 s with the default threads, 24 s with one, on 2 cores)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["minigen", "minigen.exercises.grade", "minigen.experiments.gan", "minigen.experiments.vae", "matplotlib.figure"]
    )
    saved = {name: os.environ.get(name) for name in ONE_THREAD}
    os.environ.update({name: "1" for name in ONE_THREAD})  # the server inherits the environment as it starts
    try:
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    return context


def grade_notebook(
    path: Path, cells: list[str], plan: list[tuple[int, str, str]], timeout: float, context, scratch: str
) -> tuple[dict[str, Result], list[str]]:
    """Grade the planned exercises of one notebook, each within `timeout` seconds; returns the
    results and the errors its cells raised."""
    results: dict[str, Result] = {}
    errors: list[str] = []
    while len(results) < len(plan):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_run_notebook, args=(str(path.parent), cells, plan, set(results), scratch, sender), daemon=True)
        process.start()
        sender.close()
        for _, name, _ in plan:
            if name in results:
                continue
            message = None
            if receiver.poll(timeout):
                try:
                    message = receiver.recv()
                except EOFError:
                    pass
            if message is None:
                process.kill()
                process.join()
                if process.exitcode == -9:
                    line = f"{name}: stopped after {timeout:g} s (an endless loop, in the function or in a cell before its check?)"
                else:
                    line = f"{name}: the notebook's process ended (exit code {process.exitcode}) before this check"
                results[name] = Result(name, 0.0, line, timeout)
                break
            _, points, line, seconds, cell_errors = message
            results[name] = Result(name, points, line, seconds)
            errors += [e for e in cell_errors if e not in errors]  # a rerun after a timeout meets them again
        receiver.close()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
    return results, errors


def grade_student(folder: Path, timeout: float, context=None) -> Student:
    """Every registered exercise for the student whose notebooks are in `folder`."""
    context = context or _context()
    student = Student(folder.name)
    notebooks, student.notes = find_notebooks(folder)
    cells = {}
    for path in notebooks:
        try:
            cells[path] = code_cells(path)
        except GradingError as error:
            student.notes.append(f"could not read {path.relative_to(folder)}: {error}")
    plans: dict[Path, list[tuple[int, str, str]]] = {}
    for name, exercise in EXERCISES.items():
        where = locate(exercise, cells)
        if where is None:
            student.results[name] = Result(
                name, 0.0, f"{name}: no notebook has a check({name!r}, ...) cell or defines {exercise.function}()"
            )
            continue
        path, index, function = where
        plans.setdefault(path, []).append((index, name, function))
    with tempfile.TemporaryDirectory(prefix="minigen-grade-") as scratch:
        for path, plan in plans.items():
            read_as = str(path.relative_to(folder))
            results, errors = grade_notebook(path, cells[path], sorted(plan), timeout, context, scratch)
            for name, result in results.items():
                result.source = read_as
                student.results[name] = result
            student.notes += [f"{read_as}: {error}" for error in errors]
    student.results = {name: student.results[name] for name in EXERCISES}  # the registry's order
    return student


# --- the class ---------------------------------------------------------------------------------


def students_in(submissions: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder; it should hold one folder per student")
    skipped = {p.resolve() for p in skip}
    folders = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and p.resolve() not in skipped)
    if not folders:
        raise GradingError(f"{submissions} holds no student folders; put each student's notebooks in a folder named after them")
    return folders


def grade_class(
    submissions, out="grades.csv", feedback=None, timeout: float = 10.0, jobs: int | None = None, progress=None
) -> list[Student]:
    """Grade every student folder in `submissions`; write the CSV `out` and one Markdown file per
    student in `feedback` (default: a `feedback` folder beside `out`). Returns the students."""
    if not timeout > 0:
        raise GradingError(f"the time limit must be a positive number of seconds, got {timeout}")
    if jobs is not None and jobs < 1:
        raise GradingError(f"jobs must be at least 1, got {jobs}")
    submissions, out = Path(submissions), Path(out)
    feedback = Path(feedback) if feedback is not None else out.parent / "feedback"
    folders = students_in(submissions, skip=(feedback,))
    context = _context()
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        students = []
        for student in pool.map(lambda folder: grade_student(folder, timeout, context), folders):
            students.append(student)
            if progress:
                progress(student)
    write_csv(students, out)
    feedback.mkdir(parents=True, exist_ok=True)
    for student in students:
        write_text(feedback / f"{student.name}.md", feedback_markdown(student))
    return students


def _points(value: float) -> str:
    return f"{value:g}"


def write_csv(students: list[Student], path: Path) -> None:
    """One row per student: the points of every exercise, then the total."""
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["student", *EXERCISES, "total"])
    for student in students:
        writer.writerow([student.name, *(_points(student.results[name].points) for name in EXERCISES), _points(student.total)])
    write_text(path, text.getvalue())


def feedback_markdown(student: Student) -> str:
    maximum = sum(e.points for e in EXERCISES.values())
    lines = [
        f"# {student.name}: {_points(student.total)} of {_points(maximum)} points",
        "",
        "The points also count checks that the notebooks' `check` cells do not run.",
        "",
        "| exercise | points | verdict | seconds | notebook |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in student.results.items():
        cell = result.verdict.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {name} | {_points(result.points)} of {_points(EXERCISES[name].points)} | {cell} "
            f"| {result.seconds:.1f} | {result.source or '-'} |"
        )
    if student.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in student.notes]
    return "\n".join(lines) + "\n"
