"""Student versions of the notebooks: every solution region becomes `raise NotImplementedError`.

The notebooks are jupytext percent-format `.py` files. A solution region is everything
between a `### BEGIN SOLUTION` line and its `### END SOLUTION` line (nbgrader's markers);
it is replaced, at the same indentation, by

    raise NotImplementedError("<the exercise's task>")

where the task comes from the exercise that the notebook's `check("name", function)` cell
tests that function with. Nothing of the solution is kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from .checks import EXERCISES

SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*\n", re.S | re.M)
CHECK_CALL = re.compile(r"check\(\s*[\"'](?P<name>\w+)[\"']\s*,\s*(?P<function>\w+)\s*\)")
DEF = re.compile(r"^[ \t]*def (?P<function>\w+)\(", re.M)


def student_version(source: str) -> str:
    """The notebook source with every solution region replaced."""
    tasks = {m["function"]: EXERCISES[m["name"]].task for m in CHECK_CALL.finditer(source) if m["name"] in EXERCISES}

    def replace(match: re.Match) -> str:
        defs = list(DEF.finditer(source, 0, match.start()))
        function = defs[-1]["function"] if defs else None
        task = tasks.get(function, "write this part: the text above says what it must do")
        return f"{match['indent']}raise NotImplementedError({task!r})\n"

    return SOLUTION.sub(replace, source)


def notebook_sources(folder) -> list[Path]:
    """The notebooks: percent-format .py files named like 01_autograd.py."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.py"))


def write_notebook(source: str, path: Path) -> Path:
    """Write a percent-format source as an .ipynb notebook."""
    import jupytext

    path.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(jupytext.reads(source, fmt="py:percent"), path, fmt="ipynb")
    return path


def build(notebooks_dir, out_dir) -> list[Path]:
    """Write each notebook's student version to out_dir, as .py and as .ipynb."""
    out = Path(out_dir)
    written = []
    for path in notebook_sources(notebooks_dir):
        student = student_version(path.read_text())
        out.mkdir(parents=True, exist_ok=True)
        (out / path.name).write_text(student)
        written += [out / path.name, write_notebook(student, out / path.with_suffix(".ipynb").name)]
    return written
