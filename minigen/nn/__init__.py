"""Neural-network building blocks, named as in `torch.nn`.

`Module` and `Parameter` (`module.py`), the layers (`layers.py`), weight initialisation
(`init`), and `functional` (the same module as `minigen.functional`).
"""

from . import functional, init
from .layers import (
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Embedding,
    Flatten,
    GroupNorm,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Tanh,
    Unflatten,
)
from .module import Module, Parameter, eval_mode

# fmt: off
__all__ = [
    "module", "layers",  # the modules
    "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Dropout", "Embedding", "Flatten", "GroupNorm",
    "LeakyReLU", "Linear", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "SiLU", "Tanh", "Unflatten",
    "eval_mode", "functional", "init",
]
# fmt: on
