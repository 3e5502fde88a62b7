r"""`Function`: one differentiable operation, its forward and its backward side by side.

A subclass writes two static methods, as in PyTorch's `torch.autograd.Function`:

- `forward(ctx, *arrays, **params)` computes the result from NumPy arrays and may keep what
  backward needs on `ctx` (`ctx.axis = axis`);
- `backward(ctx, grad)` receives $\bar y = \partial L / \partial y$ as a Tensor and returns
  $\bar x_i = \bar y \, \partial y / \partial x_i$ for every input, as Tensors (or None for
  an input with no gradient). It reads the inputs as `ctx.inputs` and the result as
  `ctx.output`, both Tensors, and computes with differentiable operations only, so the
  gradient it returns can be differentiated again.

`SomeFunction.apply(*inputs, **params)` runs forward and, when any input requires grad,
records the `ctx` on the result: that record is one node of the computation graph.

Three rules keep a graph honest, as in PyTorch:

- **dtypes**: the tensor inputs of one operation share one dtype (float32 and float64 mixed
  are refused: convert one with `.astype`); NumPy arrays and Python numbers among the inputs
  are constants and take that dtype;
- **versions**: every in-place change made through minigen (an optimizer's step,
  `load_state_dict`, an initializer) is stamped on the tensor it changed. The node notes
  when its forward ran, and backward refuses an input changed since: its gradient would be
  computed from values the forward never saw. (Writing into `t.data` by hand bypasses the
  stamps, as `.data` does in PyTorch's version counter.)
- **one backward per graph**: backward marks the nodes it went through as used; a second
  backward through them raises unless the first was given `retain_graph=True`.
"""

from __future__ import annotations

import re
import weakref

import numpy as np

from .tensor import Tensor, _GradMode, _InPlace


class Function:
    name = "function"  # from the class name unless a class sets it: LogSoftmax -> "log_softmax"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    inputs: tuple[Tensor, ...] = ()
    tick = 0  # the in-place clock (tensor._InPlace) when the forward read the inputs
    released = False  # True once a backward went through this node without retain_graph

    @staticmethod
    def forward(ctx, *arrays: np.ndarray, **params) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad: Tensor):
        raise NotImplementedError

    def save_for_backward(self, *values) -> None:
        """Keep values for backward, under PyTorch's name. Here forward sees arrays, so this keeps
        arrays; `saved_tensors` gives them back as tensors, an input's array as that input (so
        its gradient stays differentiable), anything else as a constant."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple:
        inputs = {id(t.data): t for t in self.inputs}
        return tuple(v if v is None or isinstance(v, Tensor) else inputs[id(v)] if id(v) in inputs else Tensor(v) for v in self._saved)

    @property
    def output(self) -> Tensor:
        """The tensor this operation produced (held weakly, so the graph has no cycles)."""
        out = self._output()
        if out is None:
            raise RuntimeError(f"backward of {self.name}: its output tensor no longer exists")
        return out

    @classmethod
    def apply(cls, *inputs, **params) -> Tensor:
        """Run forward on the inputs' arrays; when an input requires grad, record this node."""
        inputs = as_tensors(cls.name, inputs)
        ctx = cls()
        try:
            data = cls.forward(ctx, *[t.data for t in inputs], **params)
        except (ValueError, IndexError, TypeError) as error:
            raise _explained(error, cls.name, inputs) from None
        if type(data) is not np.ndarray:  # a NumPy scalar from a reduction
            data = np.asarray(data)
        if _GradMode.enabled:
            for t in inputs:
                if t._requires_grad:  # record the node
                    ctx.inputs, ctx.tick = inputs, _InPlace.ticks
                    out = Tensor._make(data, ctx)
                    ctx._output = weakref.ref(out)  # weak: the output holds ctx, so ctx must not hold it
                    return out
        return Tensor._make(data, None)  # a constant: nothing to backpropagate into

    def release(self) -> None:
        """Mark this node as gone through by a backward without retain_graph, which refuses to
        go through it again; an operation that keeps arrays for its backward drops them here."""
        self.released = True

    def check_unchanged(self) -> None:
        """Refuse to run backward through this node twice, or on inputs changed in place."""
        if self.released:
            raise RuntimeError(
                f"backward of {self.name}: this part of the graph was already used by a backward() and "
                f"released. To run backward through it again, pass retain_graph=True to the first "
                f"backward(); or compute the forward again (e.g. detach() what one loss shares with another)"
            )
        for i, t in enumerate(self.inputs):
            if t._version > self.tick:
                raise RuntimeError(
                    f"backward of {self.name}: input {i} (shape {t.shape}) was changed in place after "
                    f"{self.name} used it, so its gradient would be wrong. "
                    f"Did an optimizer.step() run between this forward and its backward? Compute the "
                    f"forward again after changing the tensor."
                )


def _explained(error: Exception, name: str, inputs) -> Exception:
    """NumPy's error from a forward, restated with the operation's name and the input shapes."""
    message = str(error)
    shapes = ", ".join(str(t.shape) for t in inputs)
    if "could not be broadcast" in message:
        message = (
            f"{name}: shapes {shapes} do not broadcast together (NumPy's rule: line the "
            f"shapes up on the right; each pair of sizes must be equal, or one of them 1)"
        )
    elif not message.startswith(name + ":"):
        message = f"{name}: {message} (input shapes: {shapes})"
    return type(error)(message)


def as_tensors(name: str, inputs: tuple) -> tuple[Tensor, ...]:
    """The inputs as tensors of one dtype: arrays and numbers become constants of the tensors'
    dtype; tensors of different dtypes are refused."""
    if len(inputs) == 1 and isinstance(inputs[0], Tensor):  # a unary operation on a tensor: nothing to do
        return inputs
    dtype = None
    constants = False
    for t in inputs:
        if isinstance(t, Tensor):
            if dtype is None:
                dtype = t.data.dtype
            elif t.data.dtype is not dtype and t.data.dtype != dtype:  # `is` first: the usual case, and fast
                dtypes = ", ".join(str(u.dtype) for u in inputs if isinstance(u, Tensor))
                raise TypeError(
                    f"{name}: got tensors of different dtypes ({dtypes}); minigen does not mix float32 "
                    f"and float64 in one operation. Convert one first, e.g. x.astype(np.float32)"
                )
        else:
            constants = True
    if not constants:
        return inputs
    if dtype is None:  # no tensor at all: the first array sets the dtype, as Tensor(array) would
        first = Tensor(inputs[0])
        dtype, inputs = first.dtype, (first, *inputs[1:])
    return tuple(t if isinstance(t, Tensor) else Tensor._make(np.asarray(t, dtype=dtype), None) for t in inputs)
