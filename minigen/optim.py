r"""Optimizers and learning-rate schedules, with `torch.optim`'s names, defaults and update rules.

Notation: $\theta$ a parameter, $g = \nabla_\theta L$ its gradient, $\eta$ the learning rate,
$\lambda$ the weight decay, $t$ the step count (from 1). Each `_update` below is the
equation in its docstring, written on the NumPy arrays in place: an optimizer step is not
part of any computation graph.

`state_dict()` / `load_state_dict()` save and restore the hyperparameters and every buffer
(momentum, moment estimates, step counts), so a resumed run continues exactly.
"""

from __future__ import annotations

import copy

import numpy as np

from .kernels.optim import adam_update
from .nn.module import Parameter


class Optimizer:
    """Holds the parameters (in groups with their own hyperparameters) and the per-parameter state."""

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got no parameters to optimize (did you pass model.parameters() of an empty model?)")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups = []
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Parameter) and not getattr(p, "requires_grad", False):
                    raise TypeError(f"{type(self).__name__}: can only optimize tensors that require grad, got {type(p).__name__}")
            self._check_hyperparameters(group)
            self.param_groups.append(group)
        self.state: dict[int, dict] = {}  # by the parameter's position across all groups

    def _check_hyperparameters(self, group: dict) -> None:
        """Refuse what torch.optim refuses: a negative (or NaN) rate, epsilon, decay or momentum."""
        for name in ("lr", "eps", "weight_decay", "momentum", "dampening", "alpha"):
            value = group.get(name)
            if value is not None and not 0 <= value < float("inf"):  # NaN fails both comparisons
                raise ValueError(f"{type(self).__name__}: {name} must be a finite number >= 0, got {value}")

    def _parameters(self):
        """(position, parameter, its group) for every parameter."""
        position = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield position, p, group
                position += 1

    def zero_grad(self) -> None:
        """Forget the gradients (backward adds to `.grad`, so clear it before each step's backward)."""
        for _, p, _ in self._parameters():
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient. Every gradient is checked first: if one
        holds a NaN or an infinity, nothing changes (no weight, no moment) and it raises."""
        for position, p, _ in self._parameters():
            if p.grad is not None and not np.isfinite(p.grad.data).all():
                raise FloatingPointError(
                    f"{type(self).__name__}.step: parameter {position} (shape {p.shape}) has a non-finite gradient, so nothing "
                    f"was updated; the loss or the model diverged: try a smaller learning rate"
                )
        for position, p, group in self._parameters():
            if p.grad is None:
                continue
            if not p.data.flags.c_contiguous:  # updated in place, element by element
                p.data = np.ascontiguousarray(p.data)
            self._update(p.data, p.grad.data, self.state.setdefault(position, {}), group)
            p._changed_in_place()  # a graph that used the old values can no longer backpropagate

    def _update(self, theta: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        """Update theta in place (`step` has checked that the gradient is finite)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        groups = []
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = len(group["params"])
            groups.append(entry)
        state = {str(i): {k: np.array(v, copy=True) for k, v in s.items()} for i, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        if [int(g["params"]) for g in groups] != sizes:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved groups hold {[int(g['params']) for g in groups]} parameters, "
                f"this optimizer's {sizes}"
            )
        params = [p for _, p, _ in self._parameters()]
        for key, buffers in state_dict["state"].items():
            p = params[int(key)]
            for name, value in buffers.items():
                if np.ndim(value) and np.shape(value) != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {key} has shape {np.shape(value)}, "
                        f"the parameter {p.shape}"
                    )
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {
            int(key): {name: (np.array(v, dtype=params[int(key)].dtype) if np.ndim(v) else int(v)) for name, v in buffers.items()}
            for key, buffers in state_dict["state"].items()
        }


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (PyTorch's form):

    $d = g + \lambda\theta$; with momentum $\mu$: $b \leftarrow \mu b + (1 - \tau) d$ ($b = d$ at the
    first step), then $d = b$, or $d = d + \mu b$ for Nesterov; finally $\theta \leftarrow \theta - \eta d$.
    """

    def __init__(
        self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, theta, grad, state, group):
        d = grad + group["weight_decay"] * theta if group["weight_decay"] else grad
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(d, dtype=theta.dtype, copy=True)
            else:
                state["momentum_buffer"] *= mu
                state["momentum_buffer"] += (1 - group["dampening"]) * d
            b = state["momentum_buffer"]
            d = d + mu * b if group["nesterov"] else b
        theta -= group["lr"] * d


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015), with L2 weight decay added to the gradient as in `torch.optim.Adam`:

    $g \leftarrow g + \lambda\theta$;
    $m \leftarrow \beta_1 m + (1 - \beta_1) g$; $v \leftarrow \beta_2 v + (1 - \beta_2) g^2$;
    $\hat m = m / (1 - \beta_1^t)$, $\hat v = v / (1 - \beta_2^t)$ (the bias corrections);
    $\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$.
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, theta, grad, state, group):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(theta), exp_avg_sq=np.zeros_like(theta))
        state["step"] += 1
        (beta1, beta2) = group["betas"]
        # The equations above, in one pass over memory (minigen.kernels.optim; its NumPy twin
        # there spells them out line by line).
        adam_update(
            theta,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled=self.decoupled,
            step=state["step"],
        )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov and Hutter, 2019): first
    $\theta \leftarrow \theta (1 - \eta\lambda)$, then the Adam step on the plain gradient."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), in `torch.optim.RMSprop`'s form:

    $g \leftarrow g + \lambda\theta$; $v \leftarrow \alpha v + (1 - \alpha) g^2$; with `centered`, also
    $\bar g \leftarrow \alpha \bar g + (1 - \alpha) g$ and $v$ is replaced by $v - \bar g^2$ below;
    $s = g / (\sqrt{v} + \epsilon)$; with momentum $\mu$: $b \leftarrow \mu b + s$, $s = b$;
    $\theta \leftarrow \theta - \eta s$.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered))

    def _update(self, theta, grad, state, group):
        alpha, eps, mu = group["alpha"], group["eps"], group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * theta
        if not state:
            state.update(step=0, square_avg=np.zeros_like(theta))
            if mu:
                state["momentum_buffer"] = np.zeros_like(theta)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(theta)
        state["step"] += 1
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * grad * grad
        if group["centered"]:
            state["grad_avg"] *= alpha
            state["grad_avg"] += (1 - alpha) * grad
            denominator = np.sqrt(v - state["grad_avg"] ** 2) + eps
        else:
            denominator = np.sqrt(v) + eps
        step = grad / denominator
        if mu:
            state["momentum_buffer"] *= mu
            state["momentum_buffer"] += step
            step = state["momentum_buffer"]
        theta -= group["lr"] * step


class _Schedule:
    """Sets each group's learning rate from its initial one and the number of `step()` calls."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Call once per epoch, after the optimizer's steps."""
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]


class StepLR(_Schedule):
    r"""$\eta_t = \eta_0\, \gamma^{\lfloor t / \text{step\_size} \rfloor}$: multiply by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def factor(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)


class ExponentialLR(_Schedule):
    r"""$\eta_t = \eta_0\, \gamma^t$: multiply by gamma every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = gamma

    def factor(self, epoch: int) -> float:
        return self.gamma**epoch


class ExponentialMovingAverage:
    r"""A moving average of a model's weights, updated after every optimizer step:
    $\bar\theta \leftarrow d_n\,\bar\theta + (1 - d_n)\,\theta$ (Polyak averaging in its exponential
    form; diffusion models sample from it). Early on the decay is smaller,
    $d_n = \min\big(d, \frac{1 + n}{10 + n}\big)$ after $n$ updates (TensorFlow's `num_updates` rule), so that
    the average does not keep the untrained initial weights for long. `model` is the averaged
    copy, to evaluate and sample with; with decay 0 it is the trained model itself."""

    def __init__(self, model, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be in [0, 1), got {decay!r}")
        self.decay, self.updates = decay, 0
        self.model = model if decay == 0.0 else copy.deepcopy(model)

    def update(self, model) -> None:
        if self.decay == 0.0:
            return
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, theta in zip(self.model.parameters(), model.parameters()):
            average.data *= decay
            average.data += (1.0 - decay) * theta.data
        self.updates += 1

    def state_dict(self) -> dict:
        return {} if self.decay == 0.0 else {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if self.decay != 0.0:
            self.model.load_state_dict(state["model"])
            self.updates = int(state["updates"])


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "StepLR", "ExponentialLR", "ExponentialMovingAverage"]
