r"""Checking backward rules against finite differences.

For a function $f$ and inputs $x$, backward gives the analytical Jacobian $J_{ij} =
\partial f_i / \partial x_j$ one row at a time (a backward sweep from the one-hot
gradient $e_i$). Central differences give it one column at a time:

$$J_{ij} \approx \frac{f_i(x + \varepsilon e_j) - f_i(x - \varepsilon e_j)}{2 \varepsilon},$$

with an error of order $\varepsilon^2$ (a one-sided difference errs by order $\varepsilon$).
With $\varepsilon = 10^{-6}$ the rounding error is about $10^{-16} / \varepsilon = 10^{-10}$ in
float64, but $10^{-7} / \varepsilon = 0.1$ in float32: that is why the checks run in float64.

Every entry is compared, not a sample: a wrong rule for one element of one input shows.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor, grad


class GradcheckError(AssertionError):
    """Backward disagrees with finite differences; the message says where and by how much."""


def _as_float64_leaf(x) -> Tensor:
    """A float64 leaf that requires grad. A float64 array is used as it is (not copied), so a
    non-contiguous view reaches the operation being checked."""
    array = x.data if isinstance(x, Tensor) else np.asarray(x)
    if array.dtype != np.float64:
        array = array.astype(np.float64)
    return Tensor(array, requires_grad=True)


def _flat_outputs(result) -> list[Tensor]:
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, (tuple, list)) and all(isinstance(r, Tensor) for r in result):
        return list(result)
    raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {type(result).__name__}")


def _evaluate(fn, inputs) -> np.ndarray:
    outputs = _flat_outputs(fn(*inputs))  # with grad enabled: fn may take a gradient itself
    return np.concatenate([out.data.astype(np.float64).ravel() for out in outputs])


def _numerical_jacobians(fn, inputs: list[Tensor], eps: float) -> list[np.ndarray]:
    """Central differences, one column per input element: shape (outputs, input size)."""
    jacobians = []
    for x in inputs:
        array = x.data if x.data.flags.writeable else x.data.copy()
        x.data = array
        columns = []
        for j in np.ndindex(array.shape):
            original = array[j]
            array[j] = original + eps
            f_plus = _evaluate(fn, inputs)
            array[j] = original - eps
            f_minus = _evaluate(fn, inputs)
            array[j] = original  # put the exact value back
            columns.append((f_plus - f_minus) / (2 * eps))
        n_out = len(_evaluate(fn, inputs))
        jacobians.append(np.stack(columns, axis=1) if columns else np.zeros((n_out, 0)))
    return jacobians


def _analytical_jacobians(fn, inputs: list[Tensor]) -> list[np.ndarray]:
    """Backward from each one-hot output gradient, one row per output element."""
    outputs = _flat_outputs(fn(*inputs))
    differentiable = [k for k, out in enumerate(outputs) if out.requires_grad]
    rows = [[] for _ in inputs]
    for k, out in enumerate(outputs):
        for i in np.ndindex(out.shape):
            if not out.requires_grad:  # an output that does not depend on any input
                for r, x in zip(rows, inputs):
                    r.append(np.zeros(x.size))
                continue
            one_hot = {d: np.zeros(outputs[d].shape, dtype=outputs[d].dtype) for d in differentiable}
            one_hot[k][i] = 1.0
            grads = grad(
                [outputs[d] for d in differentiable], inputs, grad_outputs=list(one_hot.values()), retain_graph=True, allow_unused=True
            )
            for r, x, g in zip(rows, inputs, grads):
                r.append(np.zeros(x.size) if g is None else g.data.astype(np.float64).ravel())
    n_out = sum(out.size for out in outputs)
    return [np.array(r, dtype=np.float64).reshape(n_out, x.size) for r, x in zip(rows, inputs)]


def describe_ratio(analytical: float, numerical: float) -> str:
    """How two values compare, in words a student can act on ("off by a factor 2")."""
    if numerical == 0:
        return "the numerical derivative is 0"
    if analytical == 0:
        return "backward gave 0: did the gradient reach this input?"
    ratio = analytical / numerical
    for factor in (2.0, 3.0, 4.0, 0.5, 1 / 3, 0.25):
        if abs(ratio - factor) < 0.02 * factor:
            return f"ratio {ratio:.4g}: off by a factor {factor:.4g}"
        if abs(ratio + factor) < 0.02 * factor:
            return f"ratio {ratio:.4g}: off by a factor {-factor:.4g} (wrong sign)"
    if abs(ratio + 1) < 0.02:
        return "ratio -1: the sign is flipped"
    return f"ratio {ratio:.4g}"


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _output_index(flat: int, shapes: list[tuple[int, ...]]) -> str:
    for k, shape in enumerate(shapes):
        size = int(np.prod(shape))
        if flat < size:
            where = str(_unravel(flat, shape))
            return where if len(shapes) == 1 else f"output {k} at {where}"
        flat -= size
    return str(flat)


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence = (),
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    name: str | None = None,
    module=None,
) -> bool:
    """Compare the whole Jacobian of `fn` from backward with central differences, in float64.

    `inputs` are arrays or Tensors; each is converted to a float64 leaf and differentiated.
    With `module` (an nn.Module), its parameters are checked too, in place: the module
    computes in float64 during the check and gets its own dtype back after it, and `fn` is
    called with `inputs` alone (`gradcheck(lambda x: loss(model(x)), [x], module=model)`).
    Entries agree when |analytical - numerical| <= atol + rtol * |numerical|. Returns True,
    or raises `GradcheckError` naming the input or parameter, the worst entry, both values
    and their ratio.
    """
    inputs = [_as_float64_leaf(x) for x in inputs]
    labels = [f"input {k}" for k in range(len(inputs))]
    if module is None:
        return _check(fn, inputs, labels, eps, atol, rtol, name or getattr(fn, "__name__", "fn"))
    named = [(key, p) for key, p in module.named_parameters() if p.requires_grad]
    dtypes = [p.dtype for _, p in named]
    buffers = [(m, key, b.dtype) for m in module.modules() for key, b in m._buffers.items() if b is not None]
    module.double()
    try:
        n = len(inputs)
        return _check(
            lambda *leaves: fn(*leaves[:n]),
            [*inputs, *(p for _, p in named)],
            [*labels, *(f"parameter {key}" for key, _ in named)],
            eps,
            atol,
            rtol,
            name or getattr(fn, "__name__", "fn"),
        )
    finally:
        for (_, p), dtype in zip(named, dtypes):  # the module as it was (float32 -> float64 -> float32 is exact)
            if p.dtype != dtype:
                p.data = p.data.astype(dtype)
                p._changed_in_place()
                p.grad = None if p.grad is None else Tensor(p.grad.data.astype(dtype))
        for m, key, dtype in buffers:
            m._buffers[key] = m._buffers[key].astype(dtype)


def _check(fn, inputs: list[Tensor], labels: list[str], eps: float, atol: float, rtol: float, label: str) -> bool:
    output_shapes = [out.shape for out in _flat_outputs(fn(*inputs))]
    analytical = _analytical_jacobians(fn, inputs)
    numerical = _numerical_jacobians(fn, inputs, eps)
    for k, (x, a, n) in enumerate(zip(inputs, analytical, numerical)):
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        bad = ~(excess <= 0)  # also catches nan
        if not bad.any():
            continue
        worst = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)))
        out_i, in_j = np.unravel_index(worst, a.shape)
        av, nv = float(a.flat[worst]), float(n.flat[worst])
        raise GradcheckError(
            f"{label}: gradient wrong for {labels[k]} (shape {x.shape}) at index {_unravel(in_j, x.shape)}, "
            f"output index {_output_index(int(out_i), output_shapes)}: analytical {av:.6g}, numerical {nv:.6g} "
            f"({describe_ratio(av, nv)}). {int(bad.sum())} of {bad.size} Jacobian entries differ "
            f"(atol={atol:g}, rtol={rtol:g})."
        )
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    grad_outputs: Sequence | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    name: str | None = None,
) -> bool:
    r"""Check second derivatives: gradcheck of $(x, v) \mapsto v^\top \partial f / \partial x$.

    The backward sweep is recorded (`create_graph=True`) and checked as a function of both
    the inputs $x$ and the output gradient $v$ (random normal unless `grad_outputs` is given),
    so every term of a double-backward rule is covered.
    """
    inputs = [_as_float64_leaf(x) for x in inputs]
    outputs = _flat_outputs(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [rng.standard_normal(out.shape) for out in outputs]
    vs = [_as_float64_leaf(v) for v in grad_outputs]
    n = len(inputs)

    def first_derivatives(*args):
        xs, v = args[:n], args[n:]
        grads = grad(_flat_outputs(fn(*xs)), xs, grad_outputs=list(v), create_graph=True, allow_unused=True)
        return tuple(Tensor(np.zeros(x.shape)) if g is None else g for g, x in zip(grads, xs))

    label = f"second derivative of {name or getattr(fn, '__name__', 'fn')}"
    return gradcheck(first_derivatives, [*inputs, *vs], eps=eps, atol=atol, rtol=rtol, name=label)
