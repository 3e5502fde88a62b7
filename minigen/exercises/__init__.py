"""Exercises: checks a student can act on, and the student versions of the notebooks.

In a notebook, an exercise is a function whose body sits between nbgrader's markers

    def sigmoid_backward(y, grad):
        ### BEGIN SOLUTION
        return grad * y * (1 - y)
        ### END SOLUTION

followed by a cell `check("ex01_sigmoid_backward", sigmoid_backward)`. `check` runs the
function on small known cases and prints one line: "passed", a verdict saying what is off
and where (built on finite differences and known answers), or "not done yet" while the body
still raises NotImplementedError. It never raises, so the notebook runs on.

`minigen exercises build` writes the student versions, with every solution region replaced
by `raise NotImplementedError(...)` (see `build.py`). `minigen exercises grade SUBMISSIONS`
grades a class (see `grade.py`): every exercise is worth the points of its checks
(`checks.py`), hidden ones included.
"""

from __future__ import annotations

from .checks import EXERCISES, ExerciseFailed, check

__all__ = ["EXERCISES", "ExerciseFailed", "check", "checks", "build", "grade"]
