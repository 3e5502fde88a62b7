"""Every operation in the registry: forward against NumPy, gradients against finite differences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_registry import REGISTRY
from strategies import DTYPES

import minigen as mg
from minigen.engine.function import Function

CASES = pytest.mark.parametrize("case", REGISTRY, ids=[case.name for case in REGISTRY])


def _all_functions(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_functions(sub)


def test_every_function_in_minigen_is_in_the_registry():
    defined = {f for f in _all_functions() if f.__module__.startswith("minigen.")}
    registered = {f for case in REGISTRY for f in case.functions}
    missing = sorted(f.__name__ for f in defined - registered)
    assert not missing, f"add these to tests/op_registry.py: {missing}"


@CASES
@given(data=st.data())
def test_forward_matches_numpy_and_keeps_dtype(case, data):
    dtype = data.draw(DTYPES)
    arrays, params = data.draw(case.inputs(dtype))
    out = case.fn(*[mg.Tensor(a) for a in arrays], **params)
    expected = np.asarray(case.ref(*arrays, **params))
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype == params.get("dtype", dtype)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, expected, rtol=tolerance, atol=tolerance)


@CASES
@given(data=st.data())
def test_gradcheck(case, data):
    arrays, params = data.draw(case.inputs(np.float64))
    assert mg.gradcheck(lambda *xs: case.fn(*xs, **params), arrays, name=case.name, **case.gradcheck_options)


@CASES
@given(data=st.data())
def test_gradgradcheck(case, data):
    if not case.double_backward:
        pytest.skip(f"{case.name} has no second derivative")
    arrays, params = data.draw(case.inputs(np.float64))
    assert mg.gradgradcheck(lambda *xs: case.fn(*xs, **params), arrays, name=case.name, **case.gradcheck_options)


@CASES
@given(data=st.data())
def test_gradient_has_the_input_shape_and_dtype(case, data):
    dtype = data.draw(DTYPES)
    arrays, params = data.draw(case.inputs(dtype))
    inputs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    out = case.fn(*inputs, **params)
    out.backward(np.ones(out.shape, dtype=out.dtype))
    for x in inputs:
        assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == x.dtype
