r"""The `Tensor`, and the reverse-mode sweep that fills in its gradients.

A `Tensor` wraps a NumPy array. When an operation runs on tensors that require gradients,
the result remembers the operation that made it (its `Function`, which also holds the
inputs). That chain of records is the computation graph. `backward()` walks it from the
output back to the leaves, applying the chain rule at every node:

$$\bar x = \sum_{y \,\text{uses}\, x} \bar y \, \frac{\partial y}{\partial x},
\qquad \bar y \equiv \frac{\partial L}{\partial y}.$$

Every backward rule is written with differentiable operations on tensors, so the sweep can
itself be recorded (`create_graph=True`) and differentiated again: gradients of gradients.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
DEFAULT_DTYPE = np.dtype(np.float32)


# --- grad mode ------------------------------------------------------------------------------


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for backward."""
    return _GradMode.enabled


class _SetGradMode:
    """Context manager and decorator that switches recording on or off, and back after."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._saved: list[bool] = []  # a stack, so one instance can be re-entered

    def __enter__(self):
        self._saved.append(_GradMode.enabled)
        _GradMode.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _GradMode.enabled = self._saved.pop()
        return False

    def __call__(self, fn):
        import functools
        import inspect

        if inspect.isgeneratorfunction(fn):  # the mode must hold each time the generator runs

            @functools.wraps(fn)
            def generator(*args, **kwargs):
                inner = fn(*args, **kwargs)
                sent = None
                while True:
                    with self:
                        try:
                            item = inner.send(sent)
                        except StopIteration as stop:
                            return stop.value
                    try:
                        sent = yield item
                    except GeneratorExit:
                        inner.close()
                        raise

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapper


class _InPlace:
    """A clock of in-place changes: each one (an optimizer step, a load, an initialiser) takes
    the next tick, and the tensor changed keeps it as its `_version`. A graph node notes the
    clock when its forward runs, so its backward can tell in one comparison whether anything
    was changed since; only then does it look at its inputs."""

    ticks = 0


class no_grad(_SetGradMode):
    """Record nothing inside: `with no_grad(): ...` or `@no_grad()` on a function.

    Use it for evaluation and sampling, where no gradient is needed: it saves the memory
    the graph would hold.
    """

    def __init__(self):
        super().__init__(False)


class enable_grad(_SetGradMode):
    """Record again inside a `no_grad` block (used by the backward sweep with `create_graph`)."""

    def __init__(self):
        super().__init__(True)


# --- the Tensor ------------------------------------------------------------------------------


def _as_float_array(data, dtype, who: str) -> np.ndarray:
    """Turn `data` into a float32 or float64 array, refusing other dtypes with a message."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{who}: dtype {dtype} is not supported; minigen computes in float32 or float64")
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        array = np.asarray(data)
        if array.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"{who}: got a NumPy array of dtype {array.dtype}; minigen computes in float32 or "
                f"float64 and does not cast silently. Convert it first, e.g. x.astype(np.float32), "
                f"or pass dtype=np.float32."
            )
        return array
    # Python numbers and (nested) lists carry no float width: they become the default float32.
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{who}: cannot make a tensor from {type(data).__name__} (dtype {array.dtype})")
    return array.astype(DEFAULT_DTYPE)


class Tensor:
    """An array that can remember how it was computed, so gradients can flow back through it.

    `Tensor(data, dtype=None, requires_grad=False, name=None)`. Python numbers and lists
    become float32; NumPy float32 and float64 arrays keep their dtype (gradient checks run in
    float64); any other dtype is refused rather than cast behind your back.

    NumPy arrays and Python numbers mixed into an operation with a tensor are constants
    and take that tensor's dtype, so `x * 0.5` stays float32 when `x` is.

    This file holds what a tensor is and how gradients flow back through it. Its operators
    and array methods (`a + b`, `a @ b`, `x.sum()`, `x.reshape(...)`) are the operations of
    `ops.py`, which are built on this class: `arrays.py` writes them out and puts them on it
    (`_TensorMethods`), so that every file of the engine imports only the files below it.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "name", "_retains_grad", "_version", "__weakref__")
    __array_ufunc__ = None  # `array + tensor` must call Tensor.__radd__, not make an object array

    def __init__(self, data, dtype=None, requires_grad: bool = False, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_float_array(data, dtype, "Tensor")
        self.grad: Tensor | None = None
        self._requires_grad = bool(requires_grad)
        self._ctx = None  # the Function that made this tensor; None for a leaf
        self.name = name
        self._retains_grad = False
        self._version = 0  # the tick of its last in-place change (see _InPlace); 0: never

    @classmethod
    def _make(cls, data: np.ndarray, ctx) -> Tensor:
        """Wrap the result of an operation (already a float array) without re-checking it."""
        tensor = object.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor._requires_grad = ctx is not None
        tensor._ctx = ctx
        tensor.name = None
        tensor._retains_grad = False
        tensor._version = 0
        return tensor

    # --- what it is ---

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if self._ctx is not None:
            raise ValueError(
                "requires_grad can only be set on a leaf tensor (one you made, not the result of an operation); use .detach() to get a leaf"
            )
        self._requires_grad = bool(value)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def op(self) -> str | None:
        """The name of the operation that made this tensor (None for a leaf)."""
        return None if self._ctx is None else self._ctx.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item: the tensor has shape {self.shape} ({self.data.size} elements); item() needs exactly one")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same values as a new leaf: gradients do not flow back through it."""
        return Tensor._make(self.data, None)

    def _changed_in_place(self) -> None:
        """Note that the values were changed in place (an optimizer step, a load, an initialiser):
        a graph that read the old values can no longer backpropagate through them."""
        _InPlace.ticks += 1
        self._version = _InPlace.ticks

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this intermediate tensor after backward (leaves always keep it)."""
        self._retains_grad = True
        return self

    def __repr__(self) -> str:
        values = np.array2string(self.data, precision=4, threshold=20, separator=", ", prefix="Tensor(")
        parts = [f"Tensor({values}", f"shape={self.shape}", f"dtype={self.dtype}"]
        if self._ctx is not None:
            parts.append(f"op={self._ctx.name}")
        elif self._requires_grad:
            parts.append("requires_grad=True")
        if self.name:
            parts.append(f"name={self.name!r}")
        return ", ".join(parts) + ")"

    def __bool__(self) -> bool:
        return bool(self.data)

    __hash__ = object.__hash__  # comparisons return arrays, so identity is the hash

    # --- backward ---

    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf that requires grad.

        `grad` is the gradient of the final result with respect to this tensor; it may be
        left out when this tensor holds a single number (a loss). Gradients add up over
        backward calls, as in PyTorch: clear `.grad` between steps (`optimizer.zero_grad()`).
        The graph can be gone through once, unless `retain_graph=True` (which `create_graph`
        implies): a second backward through the same operations raises.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad: none of the tensors it was computed "
                "from has requires_grad=True, or it was computed under no_grad()"
            )
        grad = _initial_grad(self, grad, "backward")
        order = _topological_order([self])
        grads = _backpropagate(order, {id(self): grad}, create_graph, keep=_retained(order))
        if not (create_graph if retain_graph is None else retain_graph):
            _release(order)
        for node in order:
            g = grads.get(id(node))
            if g is not None and (node._ctx is None or node._retains_grad):
                node.grad = g if node.grad is None else node.grad + g

    # --- comparisons, and the constants of the operators ---

    def _lift(self, other) -> Tensor:
        """`other` as a tensor: itself, or a constant of this tensor's dtype (the rule of
        `function.as_tensors`, made here because an operator knows which tensor it belongs to)."""
        return other if isinstance(other, Tensor) else Tensor._make(np.asarray(other, dtype=self.data.dtype), None)

    # Comparisons have no gradient: they return plain boolean arrays (masks).
    def __lt__(self, other):
        return self.data < _data(other)

    def __le__(self, other):
        return self.data <= _data(other)

    def __gt__(self, other):
        return self.data > _data(other)

    def __ge__(self, other):
        return self.data >= _data(other)

    def __eq__(self, other):
        return self.data == _data(other)

    def __ne__(self, other):
        return self.data != _data(other)

    def __float__(self) -> float:
        return float(self.item())


def _data(x):
    return x.data if isinstance(x, Tensor) else x


# --- the backward sweep --------------------------------------------------------------------


def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every tensor that requires grad and leads to `roots`, each after all of its inputs.

    An explicit stack instead of recursion, so a graph 100,000 operations deep is fine.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                if parent._requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _retained(order: Iterable[Tensor]) -> set[int]:
    return {id(node) for node in order if node._retains_grad}


def _release(order: Iterable[Tensor]) -> None:
    """Mark the graph's nodes as gone through (PyTorch frees their saved tensors here)."""
    for node in order:
        if node._ctx is not None:
            node._ctx.release()


def _backpropagate(order: list[Tensor], grads: dict[int, Tensor], create_graph: bool, keep: set[int]) -> dict[int, Tensor]:
    """Run the chain rule over `order` (inputs before outputs), starting from `grads`.

    Returns the gradient of every leaf reached, and of every tensor whose id is in `keep`.
    The gradients of other intermediate tensors are dropped as soon as they are used.
    """
    with _SetGradMode(create_graph):
        for node in reversed(order):
            ctx = node._ctx
            if ctx is None:
                continue
            grad = grads.get(id(node))
            if grad is None:
                continue
            if id(node) not in keep:
                del grads[id(node)]
            if ctx.released or ctx.tick != _InPlace.ticks:  # otherwise nothing changed since its forward
                ctx.check_unchanged()
            input_grads = ctx.backward(ctx, grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            count = len(ctx.inputs)
            if len(input_grads) != count and (len(input_grads) < count or any(g is not None for g in input_grads[count:])):
                raise RuntimeError(
                    f"backward of {ctx.name}: returned {len(input_grads)} gradients for {len(ctx.inputs)} inputs; "
                    f"return one per input (None where there is none)"
                )
            for i, (inp, g) in enumerate(zip(ctx.inputs, input_grads)):
                if g is None or not inp._requires_grad:
                    continue
                if not isinstance(g, Tensor):
                    raise TypeError(
                        f"backward of {ctx.name}: the gradient for input {i} is a {type(g).__name__}, not a Tensor. Compute it "
                        f"from `grad` and ctx.inputs with minigen operations (so it can be differentiated again), or wrap "
                        f"a constant in mg.Tensor"
                    )
                if g.shape != inp.shape:
                    g = unbroadcast(g, inp.shape, ctx.name)
                if g.dtype != inp.dtype:
                    g = g.astype(inp.dtype)
                previous = grads.get(id(inp))
                grads[id(inp)] = g if previous is None else previous + g
    return grads


def unbroadcast(grad: Tensor, shape: tuple[int, ...], op: str = "?") -> Tensor:
    r"""Sum `grad` over the axes that broadcasting stretched, back to the input's `shape`.

    If $y = f(\mathrm{broadcast}(x))$, each element of $x$ was used once per copy, so its
    gradient is the sum of the gradients of its copies. This is the only place in minigen
    where broadcasting is undone.
    """
    extra = grad.ndim - len(shape)
    if extra < 0 or any(n != 1 and n != m for n, m in zip(shape, grad.shape[extra:])):
        raise ValueError(
            f"backward of {op}: produced a gradient of shape {grad.shape} for an input of shape "
            f"{shape}; a gradient must have the input's shape (or broadcast to it)"
        )
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape) if grad.shape != shape else grad


def _initial_grad(output: Tensor, grad, who: str) -> Tensor:
    """The gradient the sweep starts from: given, or 1 for a single-number output."""
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{who}: the output has shape {output.shape}, so its gradient is not implied. "
                f"Reduce it to one number first (e.g. loss = y.sum() or y.mean()), or pass the "
                f"gradient of your final result with respect to it, an array of shape {output.shape}."
            )
        return Tensor._make(np.ones(output.shape, dtype=output.dtype), None)
    grad = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad, dtype=output.dtype))
    if grad.shape != output.shape:
        raise ValueError(f"{who}: the gradient has shape {grad.shape} but the output has shape {output.shape}")
    return grad


def grad(
    outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False, allow_unused: bool = False
) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, like `torch.autograd.grad`.

    Returns a tuple with one gradient per input, and leaves every `.grad` alone. With
    `create_graph=True` the backward sweep is itself recorded, so the result can be
    differentiated again (a gradient penalty needs this); it also keeps the graph usable for
    another backward, as `retain_graph=True` does. An input that `outputs` does not depend
    on is an error, unless `allow_unused=True`, in which case its gradient is None.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"grad: input {i} does not require grad, so it has no gradient; create it with requires_grad=True")
    start: dict[int, Tensor] = {}
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("grad: an output does not require grad: it does not depend on any input that does")
        g = _initial_grad(out, g, "grad")
        start[id(out)] = start[id(out)] + g if id(out) in start else g
    order = _topological_order(outputs)
    grads = _backpropagate(order, start, create_graph, keep={id(x) for x in inputs})
    if not (create_graph if retain_graph is None else retain_graph):
        _release(order)
    result = []
    for i, x in enumerate(inputs):
        g = grads.get(id(x))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: the outputs do not depend on input {i} (shape {x.shape}); pass allow_unused=True to get None for it")
        result.append(g)
    return tuple(result)
