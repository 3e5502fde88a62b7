"""Time per GAN training step (one discriminator step, one generator step), minigen vs PyTorch CPU.

The same architectures in both libraries: the DCGAN for 28x28 images (latent 100, 64 base
channels, batch norm, batch 64) and the MLP GAN (784-256-256, latent 32, batch 64), trained
with Adam (2e-4, betas 0.5 and 0.999) on random images of MNIST's shape (the time does not
depend on what the pixels show). Blocks of BLOCK steps of each library in turn (`in_turn.py`):
each library's time per step, the median over its blocks, and the median of the blocks' ratios.

    python benchmarks/gan_vs_torch.py [--steps 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from in_turn import in_turn, ratio

import minigen as mg
from minigen import optim
from minigen.models.gan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, discriminator_loss, generator_loss

BATCH = 64
BLOCK = 5  # steps of one library before the other's turn (`in_turn.py`)


def minigen_step(G, D, latent):
    g_opt = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)

    def step():
        real = mg.Tensor(rng.uniform(-1, 1, (BATCH, 1, 28, 28)).astype(np.float32))
        with mg.no_grad():
            fake = G(mg.Tensor(rng.standard_normal((BATCH, latent)).astype(np.float32)))
        d_loss = discriminator_loss(D(real), D(fake))
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = generator_loss(D(G(mg.Tensor(rng.standard_normal((BATCH, latent)).astype(np.float32)))))
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()

    return step


def torch_models(torch, kind, latent):
    tnn = torch.nn
    # fmt: off  (one line per block of layers)
    if kind == "dcgan":
        G = tnn.Sequential(
            tnn.Linear(latent, 128 * 7 * 7, bias=False),
            tnn.Unflatten(1, (128, 7, 7)),
            tnn.BatchNorm2d(128),
            tnn.ReLU(),
            tnn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(64),
            tnn.ReLU(),
            tnn.ConvTranspose2d(64, 1, 4, 2, 1),
            tnn.Tanh(),
        )
        D = tnn.Sequential(
            tnn.Conv2d(1, 64, 4, 2, 1),
            tnn.LeakyReLU(0.2),
            tnn.Conv2d(64, 128, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(128),
            tnn.LeakyReLU(0.2),
            tnn.Flatten(),
            tnn.Linear(128 * 7 * 7, 1),
            tnn.Flatten(0),
        )
    else:
        G = tnn.Sequential(
            tnn.Linear(latent, 256),
            tnn.ReLU(),
            tnn.Linear(256, 256),
            tnn.ReLU(),
            tnn.Linear(256, 784),
            tnn.Unflatten(1, (1, 28, 28)),
            tnn.Tanh(),
        )
        D = tnn.Sequential(
            tnn.Flatten(),
            tnn.Linear(784, 256),
            tnn.LeakyReLU(0.2),
            tnn.Linear(256, 256),
            tnn.LeakyReLU(0.2),
            tnn.Linear(256, 1),
            tnn.Flatten(0),
        )
    # fmt: on
    return G, D


def torch_step(torch, G, D, latent):
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)

    def step():
        real = torch.rand(BATCH, 1, 28, 28) * 2 - 1
        with torch.no_grad():
            fake = G(torch.randn(BATCH, latent))
        d_loss = bce(D(real), ones) + bce(D(fake), zeros)
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = bce(D(G(torch.randn(BATCH, latent))), ones)
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()

    return step


def block_of_steps(step, steps: int):
    """A block for `in_turn`: `steps` training steps, returning their seconds."""

    def block(_round):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start

    return block


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both libraries (default: every core)")
    args = parser.parse_args()
    mg.set_num_threads(args.threads)  # minigen's chunk threads and Numba's loops
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"threads: {args.threads} (minigen: mg.set_num_threads; PyTorch: torch.set_num_threads)")
    print(f"ms per training step (one D step + one G step), batch {BATCH}, {args.steps} steps of each in blocks of {BLOCK} in turn")
    print(f"{'model':<26} {'minigen':>9} {'PyTorch':>9}   minigen/PyTorch")
    # the MLP GAN first: from a process's first convolution on, minigen runs its dense products
    # on its own threads (minigen/kernels/threads.py), and `minigen train gan --model mlp` has none
    for kind, latent in (("mlp", 32), ("dcgan", 100)):
        mg.manual_seed(0)
        if kind == "dcgan":
            G, D = DCGANGenerator(latent, (1, 28, 28), channels=64), DCGANDiscriminator((1, 28, 28), channels=64)
        else:
            G, D = MLPGenerator(latent, (1, 28, 28), (256, 256)), MLPDiscriminator((1, 28, 28), (256, 256))
        steps = {"minigen": minigen_step(G, D, latent)}
        if torch:
            steps["PyTorch"] = torch_step(torch, *torch_models(torch, kind, latent), latent)
        for step in steps.values():
            for _ in range(3):
                step()  # warm-up (and compilation)
        seconds = in_turn({name: block_of_steps(step, BLOCK) for name, step in steps.items()}, max(1, args.steps // BLOCK))
        ms = {name: 1e3 * statistics.median(block) / BLOCK for name, block in seconds.items()}
        name = "DCGAN 28x28" if kind == "dcgan" else "MLP GAN 784-256-256"
        if torch:
            print(f"{name:<26} {ms['minigen']:9.1f} {ms['PyTorch']:9.1f}   {ratio(seconds['minigen'], seconds['PyTorch'])}")
        else:
            print(f"{name:<26} {ms['minigen']:9.1f} {'-':>9}")


if __name__ == "__main__":
    main()
