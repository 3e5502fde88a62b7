r"""Weight initialisation, in place, with PyTorch's names and conventions.

Fan-in and fan-out follow `torch.nn.init`: for a weight of shape (a, b, k_h, k_w),
fan_in = b k_h k_w and fan_out = a k_h k_w (so for a transposed convolution's (in, out, ...)
weight, fan_in counts the *output* channels, as in PyTorch).

- Xavier / Glorot (Glorot and Bengio, 2010): keep the variance of activations and gradients
  alike across layers, $\mathrm{Var}(W) = \text{gain}^2 \cdot 2 / (\text{fan\_in} + \text{fan\_out})$.
- Kaiming / He (He et al., 2015): keep the variance through ReLU-like layers,
  $\mathrm{Var}(W) = \text{gain}^2 / \text{fan}$.
- DCGAN (Radford et al., 2015): every weight from $\mathcal N(0, 0.02^2)$, batch-norm scales
  from $\mathcal N(1, 0.02^2)$, biases 0.

Every function takes `generator=` (default: the one `minigen.manual_seed` resets).
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.tensor import Tensor
from ..random import Generator, rng


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    tensor.data[...] = values  # keeps the tensor's dtype and identity (optimizers hold it)
    tensor._changed_in_place()
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None) -> Tensor:
    return _fill(tensor, rng(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None) -> Tensor:
    return _fill(tensor, rng(generator).normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that makes up for what a nonlinearity does to the variance."""
    if nonlinearity in ("linear", "conv2d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (a, b, *kernel), as PyTorch computes them."""
    if tensor.ndim < 2:
        raise ValueError(f"fans: need a weight with at least 2 dimensions, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    fan_in, fan_out = fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    fan_in, fan_out = fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def _kaiming_std(tensor, a, mode, nonlinearity) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(tensor)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Generator | None = None
) -> Tensor:
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)  # U(-b, b) has variance b^2 / 3
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Generator | None = None
) -> Tensor:
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def dcgan_init_(model, generator: Generator | None = None):
    """DCGAN's initialisation. Radford et al. (2015) state only that all weights were drawn from
    N(0, 0.02); the batch-norm scales N(1, 0.02) and zero biases are the convention of the
    reference implementations that followed (PyTorch's DCGAN example among them)."""
    from .layers import BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Embedding, Linear

    for module in model.modules():
        if isinstance(module, (Conv2d, ConvTranspose2d, Linear, Embedding)):
            normal_(module.weight, 0.0, 0.02, generator)
        elif isinstance(module, (BatchNorm1d, BatchNorm2d)) and module.weight is not None:
            normal_(module.weight, 1.0, 0.02, generator)
        if getattr(module, "bias", None) is not None:
            zeros_(module.bias)
    return model
