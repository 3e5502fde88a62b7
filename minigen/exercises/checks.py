"""The checks behind `check(name, fn)`: each runs a student's function on small known cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..engine.gradcheck import describe_ratio


class ExerciseFailed(AssertionError):
    """The function ran but gave a wrong answer; the message says what and where."""


@dataclass(frozen=True)
class Exercise:
    task: str  # what to implement, as the student version's NotImplementedError says
    verify: Callable  # raises ExerciseFailed on a wrong answer


EXERCISES: dict[str, Exercise] = {}


def exercise(name: str, task: str):
    def register(verify):
        EXERCISES[name] = Exercise(task, verify)
        return verify

    return register


def verify(name: str, fn) -> None:
    """Run exercise `name` on `fn`; raises ExerciseFailed, NotImplementedError or the function's error."""
    if name not in EXERCISES:
        raise KeyError(f"check: no exercise called {name!r}; the exercises are {sorted(EXERCISES)}")
    EXERCISES[name].verify(fn)


def check(name: str, fn) -> bool:
    """Print a one-line verdict on `fn` for exercise `name`; True if it passed. Never raises."""
    try:
        verify(name, fn)
    except NotImplementedError:
        print(f"{name}: not done yet: {EXERCISES[name].task}")
        return False
    except ExerciseFailed as failure:
        print(f"{name}: {failure}")
        return False
    except KeyError as error:
        print(error.args[0])
        return False
    except Exception as error:  # the student's code crashed: say how, in one line
        print(f"{name}: your function raised {type(error).__name__}: {error}")
        return False
    print(f"{name}: passed")
    return True


def _compare(what: str, got, expected, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise ExerciseFailed(f"{what}: returned shape {got.shape}, expected {expected.shape}")
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        g, e = float(got[index]), float(expected[index])
        raise ExerciseFailed(f"{what}: got {g:.6g}, expected {e:.6g} at index {index} ({describe_ratio(g, e)})")


# --- notebook 1: autograd from scratch ---------------------------------------------------------


@exercise("ex01_topological_sort", "return every node reachable from root, each after all of its parents, without recursion")
def _topological_sort(fn):
    diamond = {"loss": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    order = list(fn(diamond, "loss"))
    if sorted(order) != sorted(diamond):
        raise ExerciseFailed(f"topological_sort: returned {order}; every node must appear exactly once: {sorted(diamond)}")
    position = {node: i for i, node in enumerate(order)}
    for node, parents in diamond.items():
        for parent in parents:
            if position[parent] > position[node]:
                raise ExerciseFailed(f"topological_sort: {parent!r} comes after {node!r}, but {node!r} was computed from it")
    chain = {i: [i - 1] for i in range(1, 5000)} | {0: []}  # deeper than Python's recursion limit
    try:
        order = list(fn(chain, 4999))
    except RecursionError:
        raise ExerciseFailed("topological_sort: a chain of 5,000 nodes hit the recursion limit; use an explicit stack") from None
    if order != list(range(5000)):
        raise ExerciseFailed("topological_sort: on a chain 0 <- 1 <- ... <- 4999 the order must be 0, 1, ..., 4999")


@exercise("ex01_sigmoid_backward", "return the gradient of the loss with respect to the sigmoid's input, from y = sigmoid(a) and grad = dL/dy")
def _sigmoid_backward(fn):
    a = np.array([[-2.0, -0.5, 0.0, 0.5], [1.0, 2.0, 3.0, -3.0]])
    y = 1 / (1 + np.exp(-a))
    grad = np.linspace(0.5, 2.0, a.size).reshape(a.shape)
    eps = 1e-6
    numerical = grad * (1 / (1 + np.exp(-(a + eps))) - 1 / (1 + np.exp(-(a - eps)))) / (2 * eps)
    _compare("sigmoid backward (analytical vs numerical)", fn(y, grad), numerical, rtol=1e-5)


# --- notebook 2: checking gradients ------------------------------------------------------------


@exercise("ex02_central_difference", "return the gradient of the scalar function f at x by central differences, one coordinate at a time")
def _central_difference(fn):
    def f(x):
        return float(np.sum(np.sin(x) * x**2))

    x = np.array([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]])
    expected = np.cos(x) * x**2 + 2 * x * np.sin(x)
    got = np.asarray(fn(f, x.copy(), 1e-5))
    if got.shape == expected.shape:
        error = np.abs(got - expected).max()
        if 1e-7 < error < 1e-4:
            raise ExerciseFailed(f"central difference: largest error {error:.1e}, the size of eps: is it a one-sided difference (f(x + eps) - f(x)) / eps?")
    _compare("central difference", got, expected, rtol=1e-7, atol=1e-8)
