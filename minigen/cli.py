"""The `minigen` command (also `python -m minigen`).

So far one job: `minigen demo`, which trains a tiny network with the engine and prints its
loss falling. The training, sampling and evaluation commands for the VAE and GAN models
arrive with those models.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import functional as F
from .engine.tensor import Tensor


def two_moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles in 2-D with labels +1 and -1 (a classic toy problem)."""
    angle = rng.uniform(0, np.pi, size=n)
    label = rng.choice([-1.0, 1.0], size=n)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    points = np.where(label[:, None] > 0, upper, lower) + rng.normal(0, noise, size=(n, 2))
    return points.astype(np.float32), label.astype(np.float32)


def demo(steps: int = 500, hidden: int = 16, lr: float = 0.2, seed: int = 0) -> list[float]:
    """Fit a 2-16-16-1 tanh network to two moons by gradient descent with momentum.

    The loss is the logistic loss, mean over points of softplus(-y f(x)) with labels y = +-1.
    Returns the loss at every step.
    """
    rng = np.random.default_rng(seed)
    x, y = two_moons(256, rng)
    sizes = [2, hidden, hidden, 1]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minigen", description="Generative image models from scratch, in NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_parser = commands.add_parser("demo", help="train a tiny network with the autograd engine and watch the loss fall")
    demo_parser.add_argument("--steps", type=int, default=500)
    demo_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        losses = demo(steps=args.steps, seed=args.seed)
        print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f} in {len(losses)} steps")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
