"""The Tensor and the backward sweep: what the engine promises beyond each op's rule."""

import numpy as np
import pytest

import minigen as mg
import minigen.nn
from minigen import functional as F


def leaf(values, dtype=np.float64):
    return mg.Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# --- construction and dtype ---


def test_python_numbers_and_lists_become_float32():
    assert mg.tensor(3).dtype == np.float32
    assert mg.tensor([[1, 2], [3, 4]]).dtype == np.float32


def test_numpy_float_arrays_keep_their_dtype():
    assert mg.Tensor(np.zeros(3, np.float64)).dtype == np.float64
    assert mg.Tensor(np.zeros(3, np.float32)).dtype == np.float32


def test_other_dtypes_are_refused_not_cast():
    with pytest.raises(TypeError, match="int64.*float32 or float64"):
        mg.Tensor(np.arange(3))
    with pytest.raises(TypeError, match="float16"):
        mg.Tensor([1.0], dtype=np.float16)


def test_explicit_dtype_converts():
    assert mg.Tensor(np.arange(3), dtype=np.float64).dtype == np.float64


def test_constants_take_the_tensor_dtype():
    x = mg.Tensor(np.ones(3, np.float32))
    assert (x * 0.5).dtype == np.float32
    assert (x + np.ones(3, np.float64)).dtype == np.float32
    assert (np.ones(3, np.float64) - x).dtype == np.float32
    assert (2.0**x).dtype == np.float32


def test_mixed_tensor_dtypes_are_refused_naming_the_op_and_both_dtypes():
    a, b = leaf([1.0, 2.0], np.float32), leaf([3.0, 4.0], np.float64)
    with pytest.raises(TypeError, match=r"mul: got tensors of different dtypes \(float32, float64\).*astype"):
        a * b
    out = a * b.astype(np.float32)  # the way out the message names
    out.sum().backward()
    assert out.dtype == a.grad.dtype == np.float32 and b.grad.dtype == np.float64  # astype's gradient casts back
    np.testing.assert_allclose(a.grad.data, [3.0, 4.0])


def test_arrays_and_numbers_are_constants_of_the_tensors_dtype_in_functions_and_modules():
    x = leaf([0.5, -1.0], np.float32)
    assert (x * np.array([2.0, 2.0])).dtype == np.float32  # a float64 array does not widen x
    y = F.softplus(np.array([0.0, 1.0]))  # a function given an array alone: a float64 constant
    assert isinstance(y, mg.Tensor) and y.dtype == np.float64 and not y.requires_grad
    np.testing.assert_allclose(y.data, np.log1p(np.exp([0.0, 1.0])))
    model = mg.nn.Linear(2, 3)
    out = model(np.ones((4, 2)))  # float64 NumPy input, float32 model: a student's first try
    assert out.dtype == np.float32 and out.shape == (4, 3)
    out.sum().backward()
    assert model.weight.grad.shape == (3, 2)


def test_operators_work_with_arrays_and_numbers_on_either_side():
    x = leaf([1.0, 2.0])
    out = 1.0 + x * 2.0 - np.array([1.0, 1.0]) / x
    out = 3.0 - out
    out = (np.array([2.0, 2.0]) * out) / 2.0
    out = -(out**2) @ np.array([1.0, 1.0])
    out.backward()
    # out = -(3 - (1 + 2x - 1/x))^2 summed: d/dx = -2 (2 - 2x + 1/x) (-2 - 1/x^2)
    x_ = np.array([1.0, 2.0])
    expected = -2 * (2 - 2 * x_ + 1 / x_) * (-2 - 1 / x_**2)
    np.testing.assert_allclose(x.grad.data, expected)


def test_comparisons_return_plain_arrays():
    x = mg.tensor([1.0, -1.0])
    mask = x > 0
    assert isinstance(mask, np.ndarray) and mask.tolist() == [True, False]
    assert (x == mg.tensor([1.0, 0.0])).tolist() == [True, False]


def test_repr_shows_shape_dtype_and_op():
    x = leaf([1.0, 2.0])
    text = repr(x * 2)
    assert "shape=(2,)" in text and "dtype=float64" in text and "op=mul" in text
    assert "requires_grad=True" in repr(x)


def test_item_and_numpy():
    x = mg.tensor([[2.5]])
    assert x.item() == 2.5
    assert isinstance(x.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="item.*exactly one"):
        mg.tensor([1.0, 2.0]).item()


# --- the backward sweep ---


def test_gradients_accumulate_over_backward_calls_with_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * 2 * np.array([1.0, 2.0]))


def test_a_second_backward_through_a_released_graph_is_refused():
    x = leaf([1.0, 2.0])
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="backward of mul: .*already used by a backward.*retain_graph=True"):
        (h * 3.0).sum().backward()  # a second loss that shares h: the GAN mistake of a missing detach()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])  # the refused call added nothing
    (h.detach() * 3.0).sum()  # detach() is the way out: a new leaf


def test_grad_with_create_graph_keeps_the_graph_for_the_loss_backward():
    x = leaf([1.0, 2.0])
    y = (x * x * x).sum()
    (g,) = mg.grad(y, x, create_graph=True)  # a gradient penalty's first step
    (y + (g * g).sum()).backward()  # goes through y's graph a second time: allowed
    np.testing.assert_allclose(x.grad.data, 3 * np.array([1.0, 4.0]) + 2 * 3 * np.array([1.0, 4.0]) * 6 * np.array([1.0, 2.0]))


def test_an_in_place_change_between_forward_and_backward_is_refused_naming_the_op():
    model = mg.nn.Linear(2, 1)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    loss = model(np.ones((3, 2))).sum()
    for p in model.parameters():
        p.grad = mg.Tensor(np.ones(p.shape, np.float32))
    before = model.weight.data.copy()
    opt.step()  # the mistake: a step between the forward and its backward
    assert not np.array_equal(model.weight.data, before)
    with pytest.raises(
        RuntimeError, match=r"backward of (matmul|linear)\w*: input \d \(shape \(\d, \d\)\) was changed in place.*optimizer.step"
    ):
        loss.backward()
    model.load_state_dict(model.state_dict())
    loss = model(np.ones((3, 2))).sum()
    loss.backward()  # a new forward after the change is fine


def test_no_grad_holds_inside_a_generator_function_and_not_outside():
    x = leaf([1.0, 2.0])

    @mg.no_grad()
    def doubled(n):
        for _ in range(n):
            yield x * 2.0

    seen = []
    for y in doubled(2):
        seen.append(y.requires_grad)
        assert mg.is_grad_enabled()  # the caller's own code between items records as usual
    assert seen == [False, False]


def test_shared_subexpression_gets_the_summed_gradient():
    x = leaf(3.0)
    h = x * x  # used twice below
    y = h * 2.0 + h.exp() * 0.0 + h
    y.backward()
    np.testing.assert_allclose(x.grad.data, 3 * 2 * 3.0)


def test_the_same_tensor_on_both_sides():
    x = leaf([1.5, -2.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 1)


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf and y.op is None
    assert mg.is_grad_enabled()


def test_no_grad_as_decorator_and_nested():
    x = leaf([1.0])

    @mg.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    with mg.no_grad():
        with mg.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = (x * 3).detach() * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data)  # the detached factor counts as a constant


def test_only_leaves_keep_grad_unless_retained():
    x = leaf([1.0, 2.0])
    h = x * 2
    h2 = (x * 3).retain_grad()
    (h * h2).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(h2.grad.data, h.data)


def test_a_chain_of_100000_ops_does_not_hit_the_recursion_limit():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0
    del y  # freeing the chain must not recurse either


def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (gx, gw) = mg.grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.data, w.data)
    np.testing.assert_allclose(gw.data, x.data)
    assert x.grad is None and w.grad is None


def test_grad_of_grad():
    x = leaf([0.3, -1.2])
    (g,) = mg.grad(F.tanh(x).sum(), x, create_graph=True)
    assert g.requires_grad
    (gg,) = mg.grad(g.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(gg.data, -2 * t * (1 - t**2))


def test_gradient_penalty_style_double_backward_reaches_parameters():
    # ||d critic(x) / dx||^2 depends on w only through the gradient: the WGAN-GP situation.
    x = leaf([[0.5, -1.0], [1.5, 0.2]])

    def penalty(w):
        (grad_x,) = mg.grad(F.softplus(x @ w).sum(), x, create_graph=True)
        return (grad_x * grad_x).sum()

    w = leaf([[2.0], [3.0]])
    penalty(w).backward()
    assert w.grad is not None and np.abs(w.grad.data).sum() > 0
    assert mg.gradcheck(penalty, [w.data])


def test_grad_unused_input():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="do not depend on input 1"):
        mg.grad((x * 2).sum(), [x, unused])
    assert mg.grad((x * 2).sum(), [x, unused], allow_unused=True)[1] is None


def test_requires_grad_only_settable_on_leaves():
    x = leaf([1.0])
    with pytest.raises(ValueError, match="leaf"):
        (x * 2).requires_grad = False


# --- errors a student will meet ---


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: \(64, 784\) @ \(400, 20\): inner sizes 784 and 400 differ"):
        mg.Tensor(np.zeros((64, 784), np.float32)) @ mg.Tensor(np.zeros((400, 20), np.float32))


def test_broadcast_error_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(3, 4\), \(5,\) do not broadcast"):
        mg.zeros(3, 4) + mg.zeros(5)


def test_backward_on_a_non_scalar_says_what_to_pass():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*y.sum\(\)"):
        y.backward()
    y.backward(np.ones(2))


def test_backward_with_a_wrong_gradient_shape():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"):
        y.backward(np.ones(3))


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_a_backward_rule_returning_the_wrong_shape_is_named():
    class Broken(mg.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.sum() * mg.ones(3, dtype=np.float64)

    with pytest.raises(ValueError, match=r"backward of broken: produced a gradient of shape \(3,\) for an input of shape \(2,\)"):
        Broken.apply(leaf([1.0, 2.0])).sum().backward()


def test_reduction_axis_errors():
    with pytest.raises(ValueError, match="sum: axis 2 is out of range for a tensor with 2 dimensions"):
        mg.zeros(2, 3).sum(axis=2)
    with pytest.raises(ValueError, match="max: cannot take the maximum of an empty tensor"):
        mg.zeros(0, 3).max()


def test_reshape_and_transpose_errors():
    with pytest.raises(ValueError, match=r"reshape: .*12.*\(input shapes: \(3, 4\)\)"):
        mg.zeros(3, 4).reshape(5, -1)
    with pytest.raises(ValueError, match="transpose: axes"):
        mg.zeros(3, 4).permute(0, 0)


def test_pad_rejects_negative_widths():
    with pytest.raises(ValueError, match="pad: pad widths must be non-negative"):
        mg.pad(mg.zeros(3), (-1, 1))


# --- numerically stable forms ---


@pytest.mark.parametrize("fn", [F.softplus, F.log_sigmoid, F.sigmoid, lambda x: F.logsumexp(x, axis=0), lambda x: F.log_softmax(x, axis=0)])
def test_stable_forms_stay_finite_at_plus_minus_1e4_in_float32(fn):
    x = mg.Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32), requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # not even a warning (underflow to 0 is fine)
        y = fn(x)
        y.sum().backward()
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))


def test_softplus_values_at_the_extremes():
    y = F.softplus(mg.Tensor(np.array([-1e4, 1e4], np.float32)))
    np.testing.assert_allclose(y.data, [0.0, 1e4])


def test_functional_is_also_nn_functional():
    import minigen.nn.functional as NF

    assert NF.sigmoid is F.sigmoid and NF.log_softmax is F.log_softmax
    assert mg.nn.functional.relu is F.relu


def test_pytorch_habits_unsqueeze_squeeze_view_relu_float_double_and_cat():
    x = leaf([[1.0, -2.0, 3.0]])  # shape (1, 3)
    assert x.unsqueeze(0).shape == (1, 1, 3) and x.unsqueeze(-1).shape == (1, 3, 1)
    assert x.squeeze().shape == (3,) and x.squeeze(0).shape == (3,) and x.squeeze(1).shape == (1, 3)
    assert x.view(3, 1).shape == (3, 1)
    with pytest.raises(IndexError, match=r"unsqueeze: dim must be in \[-3, 2\] for a tensor of shape \(1, 3\), got 3"):
        x.unsqueeze(3)
    y = x.relu()
    np.testing.assert_array_equal(y.data, [[1.0, 0.0, 3.0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1.0, 0.0, 1.0]])
    assert x.double().dtype == np.float64 and x.double().float().dtype == np.float32
    assert float(mg.tensor([2.5])) == 2.5
    assert mg.cat is mg.concatenate and mg.cat([x, x], axis=0).shape == (2, 3)


def test_custom_functions_take_save_for_backward_and_refuse_numpy_gradients():
    class Cube(mg.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a**3

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors  # the input itself, so the gradient is differentiable again
            return grad * 3.0 * a * a

    x = leaf([1.0, 2.0], np.float64)
    assert mg.gradcheck(Cube.apply, [x.data]) and mg.gradgradcheck(Cube.apply, [x.data])

    class Lazy(mg.Function):
        @staticmethod
        def forward(ctx, a):
            return 2 * a

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad.data  # a NumPy array: not differentiable any more

    with pytest.raises(TypeError, match="backward of lazy: the gradient for input 0 is a ndarray, not a Tensor"):
        Lazy.apply(leaf([1.0])).sum().backward()


def test_import_minigen_gives_its_models():
    import subprocess
    import sys

    code = "import minigen as mg; print(mg.models.VAE.__name__, mg.models.gan.MLPGenerator.__name__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "VAE MLPGenerator\n"


# --- the engine's structure ---


def test_engine_files_import_only_the_files_listed_before_them():
    """engine/__init__'s list is the order to read the engine in: no file reaches forward."""
    import ast
    import re
    from pathlib import Path

    import minigen.engine

    engine = Path(minigen.engine.__file__).parent
    order = re.findall(r"^    (\w+)\.py ", minigen.engine.__doc__, flags=re.M)
    assert order == ["tensor", "function", "ops", "arrays", "gradcheck"]
    assert sorted(order) == sorted(p.stem for p in engine.glob("*.py") if p.stem != "__init__")
    for position, name in enumerate(order):
        tree = ast.parse((engine / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert imported <= set(order[:position]), f"{name}.py imports {sorted(imported - set(order[:position]))}"


def test_every_operator_and_method_is_on_the_tensor():
    x = leaf([[1.0, -2.0], [3.0, 4.0]])
    y = (2 + x - 1) * x / 3 + (-x) ** 2 + 2**x + x @ x.T + x.T @ x
    z = y.sum() + y.mean(axis=0).max() + y.min() + y.var() + x.reshape(4).sum() + x.abs().sqrt().log().exp().sum()
    z = z + x.unsqueeze(0).squeeze(0).view(2, 2).permute(1, 0).transpose().broadcast_to((3, 2, 2)).sum()
    z = z + x.clip(0, 2).sum() + x.relu().sum() + x.astype(np.float32).double().sum() + x[0, 1]
    z.backward()
    assert x.grad.shape == (2, 2) and np.isfinite(x.grad.data).all()
    assert mg.Tensor.__add__.__qualname__ == "Tensor.__add__"
