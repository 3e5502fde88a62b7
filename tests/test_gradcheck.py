"""gradcheck and gradgradcheck must catch wrong rules and say clearly what is wrong."""

import numpy as np
import pytest

import minigen as mg


class SigmoidTwiceTooSteep(mg.Function):
    """sigmoid with a backward that is off by a factor 2."""

    @staticmethod
    def forward(ctx, a):
        return 1 / (1 + np.exp(-a))

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return grad * y * (1.0 - y) * 2.0


class SquareWrongInOnePlace(mg.Function):
    """x^2, with a backward that is wrong only for the element at flat index 3."""

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        slip = np.ones(a.shape)
        slip.flat[3] = 1.5
        return grad * a * 2.0 * mg.Tensor(slip)


class SquareWithFrozenBackward(mg.Function):
    """x^2 with a backward computed on plain arrays: right once, but not differentiable again."""

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.inputs
        return mg.Tensor(grad.data * 2.0 * a.data)


def test_gradcheck_passes_a_correct_rule():
    assert mg.gradcheck(lambda x: (x * x).exp(), [np.linspace(-1, 1, 6).reshape(2, 3)])


def test_gradcheck_reports_a_factor_of_two():
    x = np.array([[0.1, 0.2, 0.3, 0.4]])
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(SigmoidTwiceTooSteep.apply, [x], name="sigmoid")
    message = str(info.value)
    assert message.startswith("sigmoid: gradient wrong for input 0 (shape (1, 4))")
    assert "off by a factor 2" in message
    assert "analytical" in message and "numerical" in message


def test_gradcheck_checks_every_entry():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    with pytest.raises(mg.GradcheckError, match=r"at index \(1, 0\), output index \(1, 0\).*1 of 36"):
        mg.gradcheck(SquareWrongInOnePlace.apply, [x])


def test_gradcheck_names_the_wrong_input():
    def f(a, b):
        return a * SigmoidTwiceTooSteep.apply(b)

    with pytest.raises(mg.GradcheckError, match="input 1"):
        mg.gradcheck(f, [np.ones(3), np.zeros(3)])


def test_gradcheck_runs_in_float64_even_for_float32_inputs():
    seen = []

    def f(x):
        seen.append(x.dtype)
        return x.exp()

    mg.gradcheck(f, [np.ones(2, np.float32)])
    assert set(seen) == {np.dtype(np.float64)}


def test_gradcheck_keeps_a_non_contiguous_input_as_it_is():
    layouts = []

    def f(x):
        layouts.append(x.data.flags.c_contiguous)
        return x * 3.0

    base = np.arange(12.0).reshape(3, 4)
    mg.gradcheck(f, [base.T])
    assert not any(layouts)
    np.testing.assert_array_equal(base, np.arange(12.0).reshape(3, 4))  # perturbations undone


def test_gradgradcheck_passes_a_rule_written_with_differentiable_ops():
    assert mg.gradgradcheck(lambda x: (x * x).exp().sum(axis=0), [np.linspace(-1, 1, 6).reshape(3, 2)])


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = np.array([0.5, -1.0, 2.0])
    assert mg.gradcheck(SquareWithFrozenBackward.apply, [x])  # first derivatives are right
    with pytest.raises(mg.GradcheckError, match="second derivative"):
        mg.gradgradcheck(SquareWithFrozenBackward.apply, [x])


def test_gradcheck_handles_tuple_outputs_and_empty_inputs():
    assert mg.gradcheck(lambda a, b: (a * b, a + b), [np.ones(2), np.full(2, 3.0)])
    assert mg.gradcheck(lambda a: a * 2.0, [np.zeros((0, 3))])
