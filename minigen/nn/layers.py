r"""The layers, with PyTorch's names, parameter names, shapes and default initialisations.

A PyTorch `state_dict` of the same architecture, converted to NumPy arrays, loads into these
unchanged and gives the same outputs (`tests/test_torch_crosscheck.py` does exactly that).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..engine.tensor import DEFAULT_DTYPE, Tensor, no_grad
from ..random import Generator, rng
from . import init
from .module import Module, Parameter


def _empty(*shape, dtype) -> Parameter:
    return Parameter(np.zeros(shape, dtype=dtype))


def _uniform_bias(bias: Parameter, fan_in: int, generator) -> None:
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    init.uniform_(bias, -bound, bound, generator)


class Linear(Module):
    r"""$y = x W^\top + b$, with W of shape (out_features, in_features).

    Initialised as in PyTorch: W and b uniform on $\pm 1/\sqrt{\text{in\_features}}$
    (`kaiming_uniform_` with $a = \sqrt 5$ comes to that bound).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=DEFAULT_DTYPE, generator: Generator | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty(out_features, in_features, dtype=dtype)
        self.register_parameter("bias", _empty(out_features, dtype=dtype) if bias else None)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            _uniform_bias(self.bias, in_features, generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels, kh, kw), PyTorch's default initialisation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias: bool = True,
        dtype=DEFAULT_DTYPE,
        generator: Generator | None = None,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            F.pair_of_ints(kernel_size, "kernel_size", type(self).__name__, 1),
        )
        self.stride, self.padding, self.dilation = (
            F.pair_of_ints(v, name, type(self).__name__, least)
            for v, name, least in ((stride, "stride", 1), (padding, "padding", 0), (dilation, "dilation", 1))
        )
        self.weight = _empty(out_channels, in_channels, *self.kernel_size, dtype=dtype)
        self.register_parameter("bias", _empty(out_channels, dtype=dtype) if bias else None)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            _uniform_bias(self.bias, init.fans(self.weight)[0], generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
            + (f", dilation={self.dilation}" if self.dilation != (1, 1) else "")
            + ("" if self.bias is not None else ", bias=False")
        )


class ConvTranspose2d(Module):
    """Transposed 2-D convolution; weight (in_channels, out_channels, kh, kw), as in PyTorch."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        bias: bool = True,
        dilation=1,
        dtype=DEFAULT_DTYPE,
        generator: Generator | None = None,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            F.pair_of_ints(kernel_size, "kernel_size", type(self).__name__, 1),
        )
        self.stride, self.padding, self.output_padding, self.dilation = (
            F.pair_of_ints(v, name, type(self).__name__, least)
            for v, name, least in (
                (stride, "stride", 1),
                (padding, "padding", 0),
                (output_padding, "output_padding", 0),
                (dilation, "dilation", 1),
            )
        )
        self.weight = _empty(in_channels, out_channels, *self.kernel_size, dtype=dtype)
        self.register_parameter("bias", _empty(out_channels, dtype=dtype) if bias else None)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            _uniform_bias(self.bias, init.fans(self.weight)[0], generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
            + (f", output_padding={self.output_padding}" if self.output_padding != (0, 0) else "")
            + ("" if self.bias is not None else ", bias=False")
        )


class _BatchNorm(Module):
    r"""Normalise each channel with the batch's mean and variance, then scale and shift:

    $$\hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta$$

    (Ioffe and Szegedy, 2015). $\sigma_B^2$ is the biased batch variance. In training the
    running estimates move toward the batch's:
    $\hat\mu \leftarrow (1 - m)\hat\mu + m\,\mu_B$ and $\hat\sigma^2 \leftarrow (1 - m)\hat\sigma^2 + m\,\sigma_B^2\, n/(n-1)$
    (the unbiased variance, with $n$ values per channel), and evaluation uses them instead.
    `momentum=None` makes them a plain average over all batches seen.
    """

    expected_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=DEFAULT_DTYPE,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter("weight", Parameter(np.ones(num_features, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dtype)) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x: Tensor, negative_slope: float | None = None) -> Tensor:
        """Normalise x; with `negative_slope`, also apply leaky_relu(., negative_slope) in the same
        pass (0: ReLU). `Sequential` passes it when a ReLU or LeakyReLU follows this layer."""
        name = type(self).__name__
        if x.ndim not in self.expected_dims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{name}({self.num_features}): expected input of {' or '.join(f'{d}' for d in self.expected_dims)} "
                f"dimensions with {self.num_features} channels in axis 1, got shape {x.shape}"
            )
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if self.training or not self.track_running_stats:
            count = x.size // self.num_features
            if self.training and count < 2:
                raise ValueError(
                    f"{name}: training needs more than one value per channel to estimate a variance, got input of shape {x.shape}"
                )
            mean, var = F.batch_norm_statistics(x.data)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean.reshape(-1), var.reshape(-1) * count / (count - 1))
            return F.batch_norm(x, self.weight, self.bias, self.eps, statistics=(mean, var), negative_slope=negative_slope)
        mean, var = Tensor(self.running_mean.reshape(shape)), Tensor(self.running_var.reshape(shape))
        y = (x - mean) / (var + self.eps).sqrt()
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        if negative_slope is None:
            return y
        return F.relu(y) if negative_slope == 0 else F.leaky_relu(y, negative_slope)

    @no_grad()
    def _update_running_stats(self, batch_mean: np.ndarray, batch_var_unbiased: np.ndarray) -> None:
        self.num_batches_tracked = self.num_batches_tracked + 1
        m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean = ((1 - m) * self.running_mean + m * batch_mean).astype(self.running_mean.dtype)
        self.running_var = ((1 - m) * self.running_var + m * batch_var_unbiased).astype(self.running_var.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, statistics per channel C."""

    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) images, statistics per channel C."""

    expected_dims = (4,)


class GroupNorm(Module):
    """Group normalisation (`F.group_norm`): each example's channels in `num_groups` groups,
    normalised by the group's own mean and variance, then scaled and shifted per channel. The
    same in training and evaluation (no running statistics)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype=DEFAULT_DTYPE):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: {num_channels} channels cannot be split into {num_groups} equal groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.register_parameter("weight", Parameter(np.ones(num_channels, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_channels, dtype=dtype)) if affine else None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm({self.num_groups}, {self.num_channels}): expected input (N, {self.num_channels}, ...), got shape {x.shape}"
            )
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class Dropout(Module):
    r"""In training, zero each element with probability p and scale the rest by $1/(1-p)$,
    so the expected value is unchanged; in evaluation, do nothing."""

    def __init__(self, p: float = 0.5, generator: Generator | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = rng(self.generator).random(x.shape) >= self.p
        return x * (keep / (1.0 - self.p)).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table: row i of the weight (num_embeddings, embedding_dim) is the vector for index i.
    Initialised N(0, 1), as in PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=DEFAULT_DTYPE, generator: Generator | None = None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = _empty(num_embeddings, embedding_dim, dtype=dtype)
        init.normal_(self.weight, generator=generator)

    def forward(self, indices) -> Tensor:
        indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            bad = indices.min() if indices.min() < 0 else indices.max()
            raise IndexError(f"Embedding: index {bad} is out of range for {self.num_embeddings} embeddings")
        return self.weight[indices]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


def _fused_slope(module: Module, following: Module | None) -> float | None:
    """The negative slope with which a `Sequential` runs `module` and `following` as one batch-norm
    operation (the same numbers in fewer passes; `F.batch_norm`), or None to run them one by one.

    A batch norm in training mode followed by a ReLU (slope 0) or a LeakyReLU with slope in
    [0, 1] is fused; in evaluation mode the batch norm is an affine map and stays apart. Only
    minigen's own classes: a subclass may have a forward of its own."""
    if type(module) not in (BatchNorm1d, BatchNorm2d) or not module.training:
        return None
    if type(following) is ReLU:
        return 0.0
    if type(following) is LeakyReLU and 0.0 <= following.negative_slope <= 1.0:
        return float(following.negative_slope)
    return None


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class SiLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class Flatten(Module):
    """Merge axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis `dim` into `unflattened_size`: (N, 784) -> (N, 1, 28, 28) with dim=1, size (1, 28, 28)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim
        if math.prod(self.unflattened_size) != x.shape[dim]:
            raise ValueError(
                f"Unflatten: axis {self.dim} of shape {x.shape} has {x.shape[dim]} elements, "
                f"not {math.prod(self.unflattened_size)} = {self.unflattened_size}"
            )
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Sequential(Module):
    """Modules applied in order; named "0", "1", ... (or by an OrderedDict's keys), as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                setattr(self, name, module)
        else:
            for i, module in enumerate(modules):
                setattr(self, str(i), module)

    def forward(self, x):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            slope = _fused_slope(modules[i], modules[i + 1] if i + 1 < len(modules) else None)
            if slope is None:
                x = modules[i](x)
                i += 1
            else:  # a batch norm and the activation after it, in one pass (see _fused_slope)
                x = modules[i](x, negative_slope=slope)
                i += 2
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
