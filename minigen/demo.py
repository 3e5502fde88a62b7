"""`minigen demo`: a tiny network trained with nothing but the engine, the whole loop on one page."""

from __future__ import annotations

import itertools

import numpy as np

from . import functional as F
from .data import two_moons
from .engine.tensor import Tensor
from .random import Generator


def demo(steps: int = 500, hidden: int = 16, lr: float = 0.2, seed: int = 0) -> list[float]:
    """Fit a 2-16-16-1 tanh network to two moons by gradient descent with momentum, written
    with nothing but the engine. The loss is the logistic loss, the mean over points of
    softplus(-y f(x)) with labels y = +-1. Returns the loss at every step."""
    rng = np.random.default_rng(seed)
    x, moon = two_moons(256, noise=0.1, generator=Generator(seed))
    y = (1.0 - 2.0 * moon).astype(np.float32)  # labels +1 and -1
    sizes = [2, hidden, hidden, 1]
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1 / np.sqrt(fan_in)  # PyTorch's default for nn.Linear
        params.append(Tensor(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32), requires_grad=True))
        params.append(Tensor(rng.uniform(-bound, bound, fan_out).astype(np.float32), requires_grad=True))
    velocity = [np.zeros_like(p.data) for p in params]
    losses = []
    for step in range(steps):
        h = Tensor(x)
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = F.tanh(h)
        loss = F.softplus(-y[:, None] * h).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p, v in zip(params, velocity):
            v *= 0.9
            v -= lr * p.grad.data
            p.data += v
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            accuracy = np.mean(np.sign(h.data[:, 0]) == y)
            print(f"step {step:4d}   loss {loss.item():.4f}   accuracy {accuracy:.1%}")
    return losses
