"""minigen: generative image models from scratch, in NumPy, with a Numba-accelerated core.

The layers, bottom up: `minigen.engine` (the autograd `Tensor`, its operations and gradient
checking), `minigen.kernels` (Numba and BLAS compute kernels beside their NumPy twins),
`minigen.functional` (activations, layer operations and losses), then `minigen.nn` (modules),
`minigen.optim`, `minigen.data`, `minigen.random` and checkpoints (`save`, `load`), and the
command line in `minigen.cli`.
"""

import numpy as _np

from . import data, functional, models, nn, optim
from .engine import (
    Function,
    GradcheckError,
    Tensor,
    broadcast_to,
    clip,
    concatenate,
    enable_grad,
    grad,
    gradcheck,
    gradgradcheck,
    is_grad_enabled,
    matmul,
    maximum,
    minimum,
    no_grad,
    pad,
    reshape,
    stack,
    transpose,
    where,
)
from .kernels.threads import get_num_threads, set_num_threads
from .notebook import show_figures_in_notebooks as _show_figures_in_notebooks
from .random import Generator, manual_seed, rand, randn
from .serialization import load, save

_show_figures_in_notebooks()  # in Jupyter, every matplotlib Figure displays as a picture

__version__ = "0.1.0"


cat = concatenate  # PyTorch's name


def load_run(checkpoint):
    """The trained run in `checkpoint` (a `checkpoint.npz` written by `minigen train`): a
    `VAEExperiment` or `GANExperiment` with its models, data and config restored, ready to
    `generate` (GANs), `model.sample` (VAEs), `evaluate` or train on."""
    from .experiments import load_run

    return load_run(checkpoint)


def tensor(data, dtype=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Make a Tensor (Python numbers and lists become float32)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def zeros(*shape, dtype=_np.float32, requires_grad: bool = False) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=_np.float32, requires_grad: bool = False) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.ones(shape, dtype=dtype), requires_grad=requires_grad)


# fmt: off
__all__ = [
    # the engine
    "Function", "GradcheckError", "Tensor", "broadcast_to", "cat", "clip", "concatenate", "enable_grad", "grad", "gradcheck",
    "gradgradcheck", "is_grad_enabled", "matmul", "maximum", "minimum", "no_grad", "ones", "pad", "reshape", "stack",
    "tensor", "transpose", "where", "zeros",
    # randomness, threads and checkpoints
    "Generator", "get_num_threads", "load", "load_run", "manual_seed", "rand", "randn", "save", "set_num_threads",
    # the modules, bottom up (listed so that `pdoc minigen` documents every one)
    "engine", "kernels", "functional", "nn", "optim", "data", "models", "experiments", "train", "metrics", "exercises",
    "plots", "viz", "random", "serialization", "notebook", "demo", "cli",
]
# fmt: on
