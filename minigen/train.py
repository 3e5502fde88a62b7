"""The training loop both model families share.

An *experiment* (a VAE run, a GAN run) knows its data, its models and its optimizers; it
provides one epoch of `batches()`, a `train_step(batch, epoch)` that updates the models and
returns numbers, an `evaluate(epoch)`, `draw(history)` for the pictures, and `state_dict()`
/ `load_state_dict()` for everything a resumed run needs (weights, optimizer buffers,
random generators). `train()` does the rest, the same way for every model:

- a progress bar over the batches of each epoch, with the running loss;
- one row per epoch in `metrics.csv` (training averages, evaluation, seconds);
- a checkpoint after every epoch (`checkpoint.npz`, written atomically), from which
  `resume=True` continues exactly where it stopped;
- a guard that stops at the first NaN or infinite number, saying where and what to try;
- the pictures at the end.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from .serialization import load, save


class Experiment(Protocol):
    name: str
    config: dict
    divergence_hint: str

    def batches(self): ...
    def train_step(self, batch, epoch: int) -> dict: ...
    def evaluate(self, epoch: int) -> dict: ...
    def after_epoch(self, epoch: int, history: list[dict]) -> None: ...
    def draw(self, history: list[dict], out: Path) -> list[Path]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class TrainingDiverged(RuntimeError):
    """A loss or metric became NaN or infinite."""


CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.csv"


def _check_finite(name: str, metrics: dict, epoch: int, batch: int | None, hint: str) -> None:
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            where = f"epoch {epoch + 1}, batch {batch + 1}" if batch is not None else f"the evaluation after epoch {epoch + 1}"
            raise TrainingDiverged(f"{name}: {key} became {value} at {where}. {hint}")


def write_metrics(path: Path, history: list[dict]) -> None:
    """Rewrite metrics.csv from the history, atomically (it always matches the checkpoint)."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text.getvalue())
    temporary.replace(path)


def train(experiment: Experiment, epochs: int, out, resume: bool = False, progress: bool = True) -> list[dict]:
    """Train for `epochs` epochs in all (counting those done before a resume); returns the history."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    start = 0
    if resume:
        checkpoint = load(out / CHECKPOINT)
        saved = {k: v for k, v in checkpoint["config"].items() if k not in ("epochs", "out", "resume")}
        current = {k: v for k, v in experiment.config.items() if k not in ("epochs", "out", "resume")}
        if saved != current:
            changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
            raise ValueError(f"resume: {out / CHECKPOINT} was trained with other settings ({', '.join(changed)}); resume with the same ones")
        experiment.load_state_dict(checkpoint["experiment"])
        history, start = checkpoint["history"], int(checkpoint["epoch"])
    epoch_bar = tqdm(range(start, epochs), desc=experiment.name, unit="epoch", disable=not progress, initial=start, total=epochs)
    for epoch in epoch_bar:
        began = time.perf_counter()
        totals: dict[str, float] = {}
        seen: dict[str, int] = {}  # a metric may be reported on some steps only (the GAN's g_loss)
        batches = tqdm(experiment.batches(), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False, disable=not progress)
        count = 0
        for count, batch in enumerate(batches, start=1):
            try:
                metrics = experiment.train_step(batch, epoch)
            except FloatingPointError as error:  # an optimizer met a non-finite gradient
                raise TrainingDiverged(f"{experiment.name}: {error}, at epoch {epoch + 1}, batch {count}. {experiment.divergence_hint}") from None
            _check_finite(experiment.name, metrics, epoch, count - 1, experiment.divergence_hint)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
                seen[key] = seen.get(key, 0) + 1
            batches.set_postfix(loss=f"{totals['loss'] / seen['loss']:.4g}", refresh=False)
        row = {"epoch": epoch + 1, **{f"train_{k}": v / seen[k] for k, v in totals.items()}}
        evaluation = experiment.evaluate(epoch)
        _check_finite(experiment.name, evaluation, epoch, None, experiment.divergence_hint)
        row.update(evaluation)
        row["seconds"] = time.perf_counter() - began
        history.append(row)
        save(out / CHECKPOINT, {"experiment": experiment.state_dict(), "epoch": epoch + 1, "history": history, "config": experiment.config})
        write_metrics(out / METRICS, history)
        experiment.after_epoch(epoch, history)
        epoch_bar.set_postfix({k: f"{v:.4g}" for k, v in evaluation.items() if isinstance(v, float)}, refresh=False)
    experiment.draw(history, out)
    return history
