"""The training loop both model families share.

An *experiment* (a VAE run, a GAN run) knows its data, its models and its optimizers; it
provides one epoch of `batches()`, a `train_step(batch, epoch)` that updates the models and
returns numbers, an `evaluate(epoch)`, an `after_epoch(epoch, history)` that may record the
epoch's picture (it runs before the checkpoint, so what it records is saved with the epoch),
`draw(history)` for the pictures, and `state_dict()` / `load_state_dict()` for everything a
resumed run needs (weights, optimizer buffers, random generators, recorded frames).
`train()` does the rest, the same way for every model:

- a progress bar over the batches of each epoch, with the running losses (every reported
  number whose name ends in "loss"); bars are off when the output is not a terminal;
- one row per epoch in `metrics.csv` (training averages, evaluation, and the seconds each took);
- a checkpoint after every epoch (`checkpoint.npz`, written atomically), from which
  `resume=True` continues exactly where it stopped;
- a folder that holds one run: training into a folder with a run in it is refused unless
  asked to resume or to overwrite, and a lock file (`.lock`, with the owner's process id)
  keeps a second training out while one runs;
- a guard that stops at the first NaN or infinite number, saying where and what to try;
- the pictures at the end.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from .experiments.settings import SettingError
from .serialization import CheckpointError, load, save, write_text


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
LOCK = ".lock"


class RunExists(SettingError):
    """The output folder holds a run that this call would replace, or a training runs there now."""


def describe_run(out: Path) -> str:
    """ "vae-mlp-digits, 100 of 100 epochs done", read from the folder's checkpoint."""
    try:
        checkpoint = load(out / CHECKPOINT)
        config = checkpoint["config"]
        return f"{config['family']}-{config['model']}-{config['data']}, {int(checkpoint['epoch'])} of {config['epochs']} epochs done"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"a checkpoint minigen cannot read ({error})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@contextmanager
def run_folder(out: Path, resume: bool, overwrite: bool):
    """Hold `out` for one training: refuse a folder with a run in it (unless resuming or
    overwriting) or one that another training holds; clean what a killed run left behind."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingError(f"--out {out}: cannot make that folder ({error.strerror})") from None
    if not out.is_dir():
        raise SettingError(f"--out {out} is a file, not a folder")
    lock = out / LOCK
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _alive(owner):
                raise RunExists(
                    f"--out {out} is in use: process {owner} is training there now; wait for it or choose another --out"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
        except OSError as error:
            raise SettingError(f"--out {out}: cannot write there ({error.strerror})") from None
    else:
        raise RunExists(f"--out {out}: could not take its lock file {lock}")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(str(os.getpid()))
        for stale in out.glob(".*.tmp"):  # temporary files (atomic_file) of a run killed mid-write
            stale.unlink(missing_ok=True)
        if (out / CHECKPOINT).exists() and not resume and not overwrite:
            raise RunExists(
                f"--out {out} already holds a run ({describe_run(out)}); add --resume to continue it, "
                f"--overwrite to replace it, or choose another --out"
            )
        if overwrite and not resume:
            _clear_run(out)
        if resume and not (out / CHECKPOINT).exists():
            raise SettingError(f"--resume: {out} holds no {CHECKPOINT} to continue from")
        yield
    finally:
        lock.unlink(missing_ok=True)


def _clear_run(out: Path) -> None:
    """Remove what a run wrote that the next one might not write again (its per-epoch frames),
    with its checkpoint and metrics; the pictures of the new run replace the others."""
    for path in [out / CHECKPOINT, out / METRICS, *out.glob("frames/epoch_*.png")]:
        path.unlink(missing_ok=True)


def check_resumable(saved: dict, current: dict, path: Path, epochs: int, done: int) -> None:
    """Refuse a resume that would not continue the saved run: another family, other settings
    (where the data lives and the epoch count may change), or fewer epochs than are done."""
    if saved.get("family") != current.get("family"):
        family = str(saved.get("family")).upper()
        raise SettingError(
            f"--resume: {path} holds a {family} run ({saved.get('family')}-{saved.get('model')}-{saved.get('data')}), "
            f"not a {str(current.get('family')).upper()} run; continue it with `minigen train {saved.get('family')} --resume "
            f"--out {path.parent}`"
        )
    free = ("epochs", "out", "resume", "data_dir")
    saved = {k: v for k, v in saved.items() if k not in free}
    current = {k: v for k, v in current.items() if k not in free}
    if saved != current:
        changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
        given = ", ".join(f"{k} {saved.get(k)!r} saved, {current.get(k)!r} given" for k in changed)
        raise SettingError(f"--resume: {path} was trained with other settings ({given}); resume with the same ones")
    if epochs < done:
        raise SettingError(
            f"--epochs {epochs}: the run in {path.parent} has {done} epochs done already; give --epochs {done} or more to continue it"
        )


def restore(experiment: Experiment, state: dict, path: Path) -> None:
    """Load a checkpoint's state into the experiment, or say why it cannot be (a checkpoint of
    an earlier minigen lacks what this one saves)."""
    try:
        experiment.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(
            f"{path}: cannot restore this run ({type(error).__name__}: {str(error)[:200]}); it was probably "
            f"saved by an earlier version of minigen: train it again (--overwrite)"
        ) from None


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
    write_text(path, text.getvalue())


def train(experiment: Experiment, epochs: int, out, resume: bool = False, progress: bool = True, overwrite: bool = False) -> list[dict]:
    """Train for `epochs` epochs in all (counting those done before a resume); returns the history.

    `out` must not hold a run already, unless `resume` (continue it) or `overwrite` (replace it)."""
    out = Path(out)
    # NumPy's overflow warnings would come before the guard's message, which says more: where and what to try
    with run_folder(out, resume, overwrite), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _train(experiment, epochs, out, resume, progress)


def _train(experiment: Experiment, epochs: int, out: Path, resume: bool, progress: bool) -> list[dict]:
    history: list[dict] = []
    start = 0
    if resume:
        checkpoint = load(out / CHECKPOINT)
        check_resumable(checkpoint["config"], experiment.config, out / CHECKPOINT, epochs, int(checkpoint["epoch"]))
        restore(experiment, checkpoint["experiment"], out / CHECKPOINT)
        history, start = checkpoint["history"], int(checkpoint["epoch"])
    disable = None if progress else True  # None: tqdm shows bars on a terminal only, not in a log file
    epoch_bar = tqdm(range(start, epochs), desc=experiment.name, unit="epoch", disable=disable, initial=start, total=epochs)
    for epoch in epoch_bar:
        began = time.perf_counter()
        totals: dict[str, float] = {}
        seen: dict[str, int] = {}  # a metric may be reported on some steps only (the GAN's g_loss)
        batches = tqdm(experiment.batches(), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False, disable=disable)
        count = 0
        for count, batch in enumerate(batches, start=1):
            try:
                metrics = experiment.train_step(batch, epoch)
            except FloatingPointError as error:  # an optimizer met a non-finite gradient
                what = str(error).split(";")[0]  # the experiment's hint below says what to try
                raise TrainingDiverged(
                    f"{experiment.name}: at epoch {epoch + 1}, batch {count}, {what}. {experiment.divergence_hint}"
                ) from None
            _check_finite(experiment.name, metrics, epoch, count - 1, experiment.divergence_hint)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
                seen[key] = seen.get(key, 0) + 1
            batches.set_postfix({k: f"{totals[k] / seen[k]:.4g}" for k in totals if k.endswith("loss")}, refresh=False)
        row = {"epoch": epoch + 1, **{f"train_{k}": v / seen[k] for k, v in totals.items()}}
        trained = time.perf_counter()
        evaluation = experiment.evaluate(epoch)
        _check_finite(experiment.name, evaluation, epoch, None, experiment.divergence_hint)
        row.update(evaluation)
        row["train_seconds"], row["eval_seconds"] = trained - began, time.perf_counter() - trained
        history.append(row)
        experiment.after_epoch(epoch, history)  # before the checkpoint: what it records is saved with the epoch
        save(out / CHECKPOINT, {"experiment": experiment.state_dict(), "epoch": epoch + 1, "history": history, "config": experiment.config})
        write_metrics(out / METRICS, history)
        epoch_bar.set_postfix({k: f"{v:.4g}" for k, v in evaluation.items() if isinstance(v, float)}, refresh=False)
    experiment.draw(history, out)
    return history
