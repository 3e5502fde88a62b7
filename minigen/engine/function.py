r"""`Function`: one differentiable operation, its forward and its backward side by side.

A subclass writes two static methods, as in PyTorch's `torch.autograd.Function`:

- `forward(ctx, *arrays, **params)` computes the result from NumPy arrays and may keep what
  backward needs on `ctx` (`ctx.axis = axis`);
- `backward(ctx, grad)` receives $\bar y = \partial L / \partial y$ as a Tensor and returns
  $\bar x_i = \bar y \, \partial y / \partial x_i$ for every input, as Tensors (or None for
  an input with no gradient). It reads the inputs as `ctx.inputs` and the result as
  `ctx.output`, both Tensors, and computes with differentiable operations only, so the
  gradient it returns can be differentiated again.

`Op.apply(*tensors, **params)` runs forward and, when any input requires grad, records the
`ctx` on the result: that record is one node of the computation graph.
"""

from __future__ import annotations

import re
import weakref

import numpy as np

from .tensor import Tensor, _GradMode


class Function:
    name = "function"  # from the class name unless a class sets it: LogSoftmax -> "log_softmax"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    inputs: tuple[Tensor, ...] = ()

    @staticmethod
    def forward(ctx, *arrays: np.ndarray, **params) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad: Tensor):
        raise NotImplementedError

    @property
    def output(self) -> Tensor:
        """The tensor this operation produced (held weakly, so the graph has no cycles)."""
        out = self._output()
        if out is None:
            raise RuntimeError(f"backward of {self.name}: its output tensor no longer exists")
        return out

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        ctx = cls()
        try:
            data = cls.forward(ctx, *[t.data for t in inputs], **params)
        except (ValueError, IndexError, TypeError) as error:
            message = str(error)
            shapes = ", ".join(str(t.shape) for t in inputs)
            if "could not be broadcast" in message:
                message = (
                    f"{cls.name}: shapes {shapes} do not broadcast together (NumPy's rule: line the "
                    f"shapes up on the right; each pair of sizes must be equal, or one of them 1)"
                )
            elif not message.startswith(cls.name + ":"):
                message = f"{cls.name}: {message} (input shapes: {shapes})"
            raise type(error)(message) from None
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        if _GradMode.enabled:
            for t in inputs:
                if t._requires_grad:
                    ctx.inputs = inputs
                    out = Tensor._make(data, ctx)
                    ctx._output = weakref.ref(out)
                    return out
        return Tensor._make(data, None)
