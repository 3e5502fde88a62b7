"""The same MLP VAE trained by minigen and by PyTorch, side by side, in one run.

Both start from the same weights (copied from minigen's initialisation into PyTorch), see
the same batches in the same order, binarised the same way, with the same noise eps, and
use Adam with the same settings, one epoch of each in turn (`in_turn.py`). The script prints
both test ELBOs (on the same fixed binarisation of the test set), the median time per epoch
of each, and the median of the epochs' ratios. On the bundled digits always; on MNIST too
when its files are present (`python -m minigen ...` downloads them, or copy them into
$MINIGEN_DATA/mnist).

    python benchmarks/vae_vs_torch.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from in_turn import in_turn, ratio

import minigen as mg
from minigen import optim
from minigen.data import binarize_fixed, data_root, load_digits, load_mnist
from minigen.models import VAE


def schedule(n_train: int, epochs: int, batch: int, pixels_shape, latent: int, seed: int = 0):
    """Every epoch's batches: indices, a binarisation threshold per pixel, and eps."""
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(epochs):
        order = rng.permutation(n_train)
        batches = []
        for start in range(0, n_train, batch):
            idx = order[start : start + batch]
            batches.append(
                (idx, rng.random((len(idx), *pixels_shape), dtype=np.float32), rng.standard_normal((len(idx), latent), dtype=np.float32))
            )
        plan.append(batches)
    return plan


def minigen_epoch(model, opt, train_x, batches):
    """One epoch of minigen's training; returns its time in seconds."""
    start = time.perf_counter()
    for idx, threshold, eps in batches:
        x = (threshold < train_x[idx]).astype(np.float32)
        loss = -model.elbo(x, eps=eps).elbo.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def minigen_test_elbo(model, test_x, eps):
    with mg.no_grad():
        return float(model.elbo(test_x, eps=eps).elbo.data.mean())


def torch_twin(torch, model: VAE):
    """The same network in PyTorch, with parameter names that match minigen's state_dict."""
    tnn = torch.nn

    class TorchVAE(tnn.Module):
        def __init__(self):
            super().__init__()
            hidden = model.to_mu.in_features
            self.encoder = tnn.Sequential(tnn.Linear(model.pixels, hidden))
            self.to_mu = tnn.Linear(hidden, model.latent)
            self.to_logvar = tnn.Linear(hidden, model.latent)
            self.decoder = tnn.Sequential(tnn.Sequential(tnn.Linear(model.latent, hidden), tnn.ReLU(), tnn.Linear(hidden, model.pixels)))

        def elbo(self, x, eps):
            h = torch.relu(self.encoder(x.reshape(len(x), -1)))
            mu, logvar = self.to_mu(h), self.to_logvar(h)
            z = mu + torch.exp(0.5 * logvar) * eps
            logits = self.decoder(z)
            reconstruction = -tnn.functional.binary_cross_entropy_with_logits(logits, x.reshape(len(x), -1), reduction="none").sum(dim=1)
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)
            return reconstruction - kl

    twin = TorchVAE()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return twin


def torch_epoch(torch, twin, opt, train_x, batches):
    """The same epoch in PyTorch; returns its time in seconds."""
    start = time.perf_counter()
    for idx, threshold, eps in batches:
        x = torch.from_numpy((threshold < train_x[idx]).astype(np.float32))
        loss = -twin.elbo(x, torch.from_numpy(eps)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def compare(name, train_x, test_x, hidden, latent, batch, epochs, lr, torch):
    mg.manual_seed(0)
    model = VAE(x_shape=train_x.shape[1:], hidden=(hidden,), latent=latent)
    twin = torch_twin(torch, model) if torch else None
    plan = schedule(len(train_x), epochs, batch, train_x.shape[1:], latent)
    test_bin = binarize_fixed(test_x, seed=1)
    test_eps = np.random.default_rng(2).standard_normal((len(test_x), latent)).astype(np.float32)
    opt = optim.Adam(model.parameters(), lr=lr)
    blocks = {"minigen": lambda epoch: minigen_epoch(model, opt, train_x, plan[epoch])}
    if torch:
        topt = torch.optim.Adam(twin.parameters(), lr=lr)
        blocks["PyTorch"] = lambda epoch: torch_epoch(torch, twin, topt, train_x, plan[epoch])
    seconds = in_turn(blocks, epochs)
    ours = seconds["minigen"]
    steps = len(plan[0])
    print(f"\n{name}: {model.pixels}-{hidden}-{latent} VAE, batch {batch}, {epochs} epochs of {steps} steps, Adam lr {lr}")
    print(
        f"  minigen  test ELBO {minigen_test_elbo(model, test_bin, test_eps):8.3f} nats   "
        f"{statistics.median(ours):.3f} s per epoch ({1e3 * statistics.median(ours) / steps:.2f} ms per step)"
    )
    if torch:
        theirs = seconds["PyTorch"]
        with torch.no_grad():
            elbo = twin.elbo(torch.from_numpy(test_bin), torch.from_numpy(test_eps)).mean().item()
        print(
            f"  PyTorch  test ELBO {elbo:8.3f} nats   "
            f"{statistics.median(theirs):.3f} s per epoch ({1e3 * statistics.median(theirs) / steps:.2f} ms per step)"
        )
        print(f"  minigen / PyTorch time per epoch: {ratio(ours, theirs)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
        print("PyTorch is not installed: minigen's figures only")
    (train_x, _), (test_x, _) = load_digits("train"), load_digits("test")
    compare("digits (8x8)", train_x, test_x, hidden=128, latent=8, batch=32, epochs=args.epochs, lr=1e-3, torch=torch)
    if (data_root() / "mnist").exists():
        (train_x, _), (test_x, _) = load_mnist("train", download_missing=False), load_mnist("test", download_missing=False)
        compare("MNIST (28x28)", train_x, test_x, hidden=400, latent=20, batch=128, epochs=args.epochs, lr=1e-3, torch=torch)
    else:
        print(f"\nMNIST: no files in {data_root() / 'mnist'}; timing the same network on random 28x28 images instead")
        rng = np.random.default_rng(3)
        train_x, test_x = rng.random((60_000 // 10, 1, 28, 28), dtype=np.float32), rng.random((1000, 1, 28, 28), dtype=np.float32)
        compare(
            "random 28x28 images (speed only; the ELBOs mean nothing)",
            train_x,
            test_x,
            hidden=400,
            latent=20,
            batch=128,
            epochs=args.epochs,
            lr=1e-3,
            torch=torch,
        )


if __name__ == "__main__":
    main()
