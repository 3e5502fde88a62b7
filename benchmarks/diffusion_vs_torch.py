"""The digits' diffusion U-Net trained by minigen and by PyTorch, side by side, in one run.

Both start from the same weights (minigen's initialisation, copied into a PyTorch twin with
the same parameter names), see the same batches, steps t and noise, and use Adam with the
same settings. The script checks that the two networks agree on a batch before training,
then prints the loss of each, averaged over windows of steps (the curves should agree
within float32 noise), and the median time per training step of each and their ratio:
blocks of BLOCK steps of each library in turn (`in_turn.py`).

    python benchmarks/diffusion_vs_torch.py [--steps 300] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from in_turn import in_turn, ratio

import minigen as mg
from minigen import optim
from minigen.data import load_images, to_symmetric
from minigen.models.diffusion import NoiseSchedule, ResidualBlock, UNetDenoiser, q_sample, timestep_embedding

BLOCK = 20  # steps of one library before the other's turn


def plan(n_train: int, steps: int, batch: int, shape, timesteps: int, seed: int = 0):
    """Every step's batch indices, steps t and noise."""
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, n_train, batch), rng.integers(1, timesteps + 1, batch), rng.standard_normal((batch, *shape)).astype(np.float32))
        for _ in range(steps)
    ]


def torch_twin(torch, model: UNetDenoiser):
    """The same U-Net in PyTorch, with parameter names that match minigen's state_dict."""
    tnn, F = torch.nn, torch.nn.functional

    def group_norm(layer):
        return tnn.GroupNorm(layer.num_groups, layer.num_channels, eps=layer.eps)

    def conv(layer):
        return tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)

    class Block(tnn.Module):
        def __init__(self, block: ResidualBlock):
            super().__init__()
            self.norm1, self.conv1 = group_norm(block.norm1), conv(block.conv1)
            self.step = tnn.Linear(block.step.in_features, block.step.out_features)
            self.norm2, self.conv2 = group_norm(block.norm2), conv(block.conv2)
            self.shortcut = conv(block.shortcut) if block.shortcut is not None else None

        def forward(self, x, embedding):
            h = self.conv1(F.silu(self.norm1(x)))
            h = h + self.step(F.silu(embedding))[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return h + (x if self.shortcut is None else self.shortcut(x))

    def twin(layer):
        return Block(layer) if isinstance(layer, ResidualBlock) else conv(layer)

    class TorchUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            first = model.channels[0]
            self.embed = tnn.Sequential(tnn.Linear(first, 4 * first), tnn.SiLU(), tnn.Linear(4 * first, 4 * first))
            self.stem = conv(model.stem)
            self.down = tnn.Sequential(*[twin(layer) for layer in model.down])
            self.middle = Block(model.middle)
            self.up = tnn.Sequential(*[twin(layer) for layer in model.up])
            self.out_norm, self.out = group_norm(model.out_norm), conv(model.out)

        def forward(self, x, steps):
            embedding = self.embed(steps)
            h, skips = self.stem(x), []
            for layer in self.down:
                if isinstance(layer, Block):
                    h = layer(h, embedding)
                    skips.append(h)
                else:
                    h = layer(h)
            h = self.middle(h, embedding)
            for layer in self.up:
                if isinstance(layer, Block):
                    h = layer(torch.cat([h, skips.pop()], dim=1), embedding)
                else:
                    h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
            return self.out(F.silu(self.out_norm(h)))

    net = TorchUNet()
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()}
    net.load_state_dict(state, strict=True)
    return net


def minigen_trainer(model, x, schedule, lr):
    """One training step of minigen's U-Net on a batch; returns the loss."""
    opt = optim.Adam(model.parameters(), lr=lr)

    def step(idx, t, noise):
        loss = ((model(mg.Tensor(q_sample(schedule, x[idx], t, noise)), t) - mg.Tensor(noise)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def torch_trainer(torch, net, x, schedule, lr, embed_dim):
    """The same step of the PyTorch twin."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def step(idx, t, noise):
        x_t = torch.from_numpy(q_sample(schedule, x[idx], t, noise))
        steps = torch.from_numpy(timestep_embedding(t, embed_dim))
        loss = ((net(x_t, steps) - torch.from_numpy(noise)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def block_of_steps(step, batches, losses: list):
    """A block for `in_turn`: round r's BLOCK batches, their losses appended to `losses`;
    returns the block's seconds."""

    def block(r):
        start = time.perf_counter()
        losses.extend(step(*batch) for batch in batches[r * BLOCK : (r + 1) * BLOCK])
        return time.perf_counter() - start

    return block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: every core)")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare with (pip install torch)")
        return
    if args.threads:
        mg.set_num_threads(args.threads)
    torch.set_num_threads(mg.get_num_threads())

    mg.manual_seed(0)
    images = to_symmetric(load_images("digits", "train")[0])
    model = UNetDenoiser(images.shape[1:], (32, 64))
    for p in model.parameters():  # the last convolution starts at zero; perturb it so that the outputs compare
        p.data += 0.01 * np.random.default_rng(1).standard_normal(p.shape).astype(np.float32)
    net = torch_twin(torch, model)
    schedule = NoiseSchedule.cosine(1000)
    batches = plan(len(images), args.steps, args.batch, images.shape[1:], schedule.steps)

    idx, t, noise = batches[0]
    x_t = q_sample(schedule, images[idx], t, noise)
    with mg.no_grad(), torch.no_grad():
        ours = model(mg.Tensor(x_t), t).data
        theirs = net(torch.from_numpy(x_t), torch.from_numpy(timestep_embedding(t, model.channels[0]))).numpy()
    size = f"{model.num_parameters():,} parameters, batch {args.batch}, {mg.get_num_threads()} threads"
    print(f"U-Net {model.channels} on the 8x8 digits, {size}")
    print(f"before training, largest difference of the two networks' outputs: {np.abs(ours - theirs).max():.2e}")

    ours_loss, torch_loss = [], []
    seconds = in_turn(
        {
            "minigen": block_of_steps(minigen_trainer(model, images, schedule, args.lr), batches, ours_loss),
            "PyTorch": block_of_steps(torch_trainer(torch, net, images, schedule, args.lr, model.channels[0]), batches, torch_loss),
        },
        max(1, args.steps // BLOCK),  # (whole blocks only)
    )
    trained = len(ours_loss)
    window = max(1, trained // 6)
    print(f"\nmean loss over windows of {window} steps (the same batches, steps t and noise)")
    print(f"{'steps':>12} {'minigen':>9} {'PyTorch':>9}")
    for start in range(0, trained, window):
        end = min(start + window, trained)
        print(f"{start + 1:>5}-{end:<6} {np.mean(ours_loss[start:end]):9.4f} {np.mean(torch_loss[start:end]):9.4f}")
    ours_ms, torch_ms = (1000 * statistics.median(seconds[name]) / BLOCK for name in ("minigen", "PyTorch"))
    print(f"\nmedian time per training step: minigen {ours_ms:.1f} ms, PyTorch {torch_ms:.1f} ms")
    print(f"minigen / PyTorch: {ratio(seconds['minigen'], seconds['PyTorch'])}")


if __name__ == "__main__":
    main()
