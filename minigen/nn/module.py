"""`Module` and `Parameter`: the containers models are built from, shaped like `torch.nn`'s.

A Module holds Parameters (tensors an optimizer updates), buffers (arrays that are part of
the state but get no gradient, such as batch norm's running statistics) and sub-modules,
each registered simply by assigning it as an attribute. Names follow PyTorch's, so
`state_dict()` keys and shapes are the ones a PyTorch model of the same layout has.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from ..engine.tensor import FLOAT_DTYPES, Tensor, no_grad


class Parameter(Tensor):
    """A tensor owned by a Module and updated by an optimizer (requires grad by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__()[len("Tensor(") :]


class Module:
    """Base class of every layer and model: subclasses set attributes in `__init__` and
    write `forward`; calling the module calls `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # --- registration ---

    def __setattr__(self, name: str, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        parameters, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None), modules.pop(name, None)
            parameters[name] = value
        elif isinstance(value, Module):
            parameters.pop(name, None), buffers.pop(name, None)
            modules[name] = value
        elif name in parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name} is a parameter: assign a Parameter (or None), not a {type(value).__name__}")
            parameters[name] = None
        elif name in buffers:
            buffers[name] = None if value is None else np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_parameter(self, name: str, parameter: Parameter | None) -> None:
        """Register a parameter (None registers an absent one, such as `bias=False`)."""
        self._parameters[name] = parameter

    def register_buffer(self, name: str, value) -> None:
        """Register state that is saved and loaded but not trained (a NumPy array)."""
        self._buffers[name] = None if value is None else np.asarray(value)

    # --- running ---

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not written")

    def __call__(self, *args, **kwargs):
        if any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in args):
            args = self._as_inputs(args)
        return self.forward(*args, **kwargs)

    def _as_inputs(self, args: tuple) -> tuple:
        """Float NumPy arrays among the arguments as constant tensors of the parameters' dtype,
        so `model(x_numpy)` works; integer arrays (class labels) stay as they are."""
        dtype = next((p.dtype for p in self.parameters()), None)
        return tuple(Tensor(a, dtype=dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args)

    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout on) or, with False, evaluation mode."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # --- walking the tree ---

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; one shared by two layers appears once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{prefix}.{name}" if prefix else name), b

    def to(self, dtype) -> Module:
        """Convert every parameter and floating-point buffer to `dtype` (np.float32 or np.float64),
        in place, and return the module, as `torch.nn.Module.to(dtype)` does ("cpu", the only
        device here, is accepted and changes nothing). Build the optimizer after converting."""
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}.to: dtype {dtype} is not supported; minigen computes in float32 or float64")
        for module in self.modules():
            for p in module._parameters.values():
                if p is not None and p.dtype != dtype:
                    p.data = p.data.astype(dtype)
                    p.grad = None if p.grad is None else Tensor(p.grad.data.astype(dtype))
                    p._changed_in_place()
            for name, buffer in module._buffers.items():
                if buffer is not None and buffer.dtype.kind == "f":
                    module._buffers[name] = buffer.astype(dtype)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # --- state ---

    def _state_entries(self) -> dict[str, tuple[Module, str, str]]:
        """name -> (owning module, attribute, "param" or "buffer"), in PyTorch's order."""
        entries = {}
        for prefix, module in self.named_modules():
            for kind, table in (("param", module._parameters), ("buffer", module._buffers)):
                for name, value in table.items():
                    if value is not None:
                        entries[f"{prefix}.{name}" if prefix else name] = (module, name, kind)
        return entries

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name."""
        state = {}
        for key, (module, name, kind) in self._state_entries().items():
            value = module._parameters[name].data if kind == "param" else module._buffers[name]
            state[key] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values into the parameters and buffers. Keys and shapes must match; every
        mismatch is listed. With strict=False, missing and unexpected keys are allowed."""
        entries = self._state_entries()
        problems = []
        if strict:
            problems += [f"missing key {k!r} (the model's is {self._value_shape(*entries[k])})" for k in entries if k not in state]
            problems += [f"unexpected key {k!r} (shape {np.shape(state[k])})" for k in state if k not in entries]
        for key in entries.keys() & state.keys():
            expected, given = self._value_shape(*entries[key]), tuple(np.shape(state[key]))
            if expected != given:
                problems.append(f"shape mismatch for {key!r}: the checkpoint has {given}, the model {expected}")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for key in entries.keys() & state.keys():
            module, name, kind = entries[key]
            if kind == "param":
                p = module._parameters[name]
                p.data = np.array(state[key], dtype=p.dtype, copy=True)
                p._changed_in_place()  # a graph built before the load must not backpropagate into it
            else:
                module._buffers[name] = np.array(state[key], dtype=module._buffers[name].dtype, copy=True)

    @staticmethod
    def _value_shape(module, name, kind) -> tuple[int, ...]:
        return module._parameters[name].shape if kind == "param" else module._buffers[name].shape

    # --- printing ---

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        own = sum(p.size for p in self._parameters.values() if p is not None)
        count = f"  # {own:,} parameters" if own else ""
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()}){count}"
        lines = [f"{type(self).__name__}("] + ([f"  {self.extra_repr()}"] if self.extra_repr() else [])
        for name, child in self._modules.items():
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        total = self.num_parameters()
        return "\n".join(lines) + f"\n)  # {total:,} parameters in all"


@contextmanager
def eval_mode(*modules: Module):
    """Evaluation mode and no_grad inside the block, each module's own mode back after it:
    `with eval_mode(G): samples = G(z)` samples as a trained model should (batch norm with
    its running statistics, no dropout) and records no graph."""
    modes = [[(m, m.training) for m in module.modules()] for module in modules]
    for module in modules:
        module.eval()
    try:
        with no_grad():
            yield
    finally:
        for saved in modes:
            for m, training in saved:
                object.__setattr__(m, "training", training)
