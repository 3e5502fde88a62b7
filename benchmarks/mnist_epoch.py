"""`minigen train vae --data mnist`, the whole process, against PyTorch's training loop alone.

The target: the command's time per epoch, with everything it does counted (start-up, loading
Numba's cached kernels, every epoch's test-set evaluation, the pictures and the checkpoints)
at most 1.5x the time PyTorch's training steps alone take per epoch, for the same 784-400-20
VAE, batch 128, Adam (`vae_vs_torch.py`'s loop). The command runs as a user runs it, in a
fresh process: once to fill Numba's cache if needed, then timed with the cache warm; once more
with an empty cache (`NUMBA_CACHE_DIR`), which adds the compilation a first run on a machine pays.

With MNIST's files in $MINIGEN_DATA/mnist it uses them. Without (no network here), it writes
stand-in IDX files of MNIST's shape to a temporary folder: 60,000 + 10,000 images of 28x28
made from the bundled 8x8 digits, scaled up 3x and shifted; the time does not depend on what
the pixels show.

    python benchmarks/mnist_epoch.py [--epochs 10] [--torch-epochs 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import minigen as mg
from minigen.data import DataUnavailable, data_root, load_digits, load_mnist
from minigen.data.mnist import SPLITS
from minigen.models import VAE


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes: zero, zero, the type 0x08, the rank, the sizes (big endian), the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_stand_in(folder: Path, seed: int = 0) -> None:
    """MNIST-shaped IDX files in folder/mnist from the bundled digits (3x larger, shifted by 0-4 pixels)."""
    (train_x, train_y), (test_x, test_y) = load_digits("train"), load_digits("test")
    digits, labels = np.concatenate([train_x, test_x])[:, 0], np.concatenate([train_y, test_y])
    rng = np.random.default_rng(seed)
    (folder / "mnist").mkdir(parents=True)
    for split, count in (("train", 60_000), ("test", 10_000)):
        pick = rng.integers(0, len(digits), count)
        large = np.round(255 * digits[pick].repeat(3, axis=1).repeat(3, axis=2)).astype(np.uint8)  # (count, 24, 24)
        images = np.zeros((count, 28, 28), dtype=np.uint8)
        shifts = rng.integers(0, 5, (count, 2))
        for top in range(5):
            for left in range(5):
                these = (shifts[:, 0] == top) & (shifts[:, 1] == left)
                images[these, top : top + 24, left : left + 24] = large[these]
        images_file, labels_file = SPLITS[split]
        write_idx(folder / "mnist" / images_file, images)
        write_idx(folder / "mnist" / labels_file, labels[pick].astype(np.uint8))


def run_command(data_dir: Path, out: Path, epochs: int, env: dict) -> tuple[float, list[dict]]:
    """Wall-clock seconds of `minigen train vae --data mnist` in a fresh process, and its metrics.csv rows."""
    command = [sys.executable, "-m", "minigen", "train", "vae", "--data", "mnist", "--data-dir", str(data_dir)]
    command += ["--epochs", str(epochs), "--out", str(out), "--overwrite", "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    with open(out / "metrics.csv", newline="") as file:
        return seconds, list(csv.DictReader(file))


def torch_seconds_per_epoch(data_dir: Path, epochs: int) -> float | None:
    """PyTorch's training loop alone (vae_vs_torch.py's), median seconds per epoch."""
    try:
        import torch
    except ImportError:
        return None
    sys.path.insert(0, str(Path(__file__).parent))
    from vae_vs_torch import schedule, torch_epoch, torch_twin

    torch.set_num_threads(os.cpu_count())
    train_x, _ = load_mnist("train", root=data_dir, download_missing=False)  # (N, 1, 28, 28) in [0, 1]
    mg.manual_seed(0)
    twin = torch_twin(torch, VAE(x_shape=train_x.shape[1:], hidden=(400,), latent=20))
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    plan = schedule(len(train_x), epochs, 128, train_x.shape[1:], 20)
    return statistics.median(torch_epoch(torch, twin, opt, train_x, batches) for batches in plan)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the command (its default for MNIST: 10)")
    parser.add_argument("--torch-epochs", type=int, default=3, help="epochs of PyTorch's loop to take the median of")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        data_dir = data_root()
        try:
            load_mnist("test", root=data_dir, download_missing=False)
        except DataUnavailable:
            data_dir = scratch / "data"
            write_stand_in(data_dir)
            print(f"no MNIST files in {data_root() / 'mnist'}: stand-in images of MNIST's shape in {data_dir}")
        run_command(data_dir, scratch / "warm-up", 1, dict(os.environ))  # fills Numba's cache if it is empty
        warm_seconds, rows = run_command(data_dir, scratch / "warm", args.epochs, dict(os.environ))
        cold_seconds, _ = run_command(data_dir, scratch / "cold", args.epochs, dict(os.environ, NUMBA_CACHE_DIR=str(scratch / "numba")))
        torch_per_epoch = torch_seconds_per_epoch(data_dir, args.torch_epochs)
    train = statistics.median(float(row["train_seconds"]) for row in rows)
    evaluation = statistics.median(float(row["eval_seconds"]) for row in rows)
    print(f"minigen train vae --data mnist, {args.epochs} epochs, {os.cpu_count()} cores:")
    print(f"  whole process, Numba's cache warm: {warm_seconds:7.2f} s = {warm_seconds / args.epochs:.2f} s per epoch")
    print(f"  whole process, Numba's cache cold: {cold_seconds:7.2f} s = {cold_seconds / args.epochs:.2f} s per epoch")
    print(f"  inside (metrics.csv, medians): training {train:.2f} s and evaluation {evaluation:.2f} s per epoch")
    if torch_per_epoch is None:
        print("PyTorch is not installed: no ratio")
        return
    print(f"PyTorch's training loop alone: {torch_per_epoch:.2f} s per epoch (median of {args.torch_epochs})")
    warm_ratio, cold_ratio = warm_seconds / args.epochs / torch_per_epoch, cold_seconds / args.epochs / torch_per_epoch
    print(f"  minigen / PyTorch per epoch: {warm_ratio:.2f}x with the cache warm, {cold_ratio:.2f}x cold (target <= 1.5x)")


if __name__ == "__main__":
    main()
