"""Runs: each wires a data set, a model family and its optimizers to `minigen.train.train`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def notebook_run(name: str) -> Path:
    """The folder a notebook's training run writes to: `$MINIGEN_RUNS/<name>`, by default
    `<the system's temporary folder>/minigen-runs/<name>`.

    Not the notebook's own folder: that is the folder students hand in, and graders and tests
    run notebooks from copies of it."""
    return Path(os.environ.get("MINIGEN_RUNS") or Path(tempfile.gettempdir()) / "minigen-runs") / name


def load_run(checkpoint):
    """The run saved in `checkpoint` (the `checkpoint.npz` that `minigen train` writes), rebuilt
    from its config and restored: its models, optimizers and random state as after its last
    epoch, with `epochs_done` and `history` (the rows of metrics.csv) set. A file that is not a
    run's checkpoint raises SettingError saying what it is."""
    from ..serialization import CheckpointError, load
    from ..train import restore
    from .diffusion import DiffusionExperiment
    from .gan import GANExperiment
    from .settings import SettingError
    from .vae import VAEExperiment

    try:
        saved = load(checkpoint)
    except (FileNotFoundError, CheckpointError) as error:
        raise SettingError(str(error).removeprefix("load: ")) from None
    config = saved.get("config") if isinstance(saved, dict) else None
    if not isinstance(config, dict) or "experiment" not in saved:
        raise SettingError(
            f"{checkpoint} is a minigen checkpoint but not one of a training run (it has no run settings); "
            f"give the checkpoint.npz that `minigen train` wrote"
        )
    families = {"vae": VAEExperiment, "gan": GANExperiment, "diffusion": DiffusionExperiment}
    if config.get("family") not in families:
        raise SettingError(f"{checkpoint} holds a {config.get('family')!r} run, which this minigen does not know")
    try:
        experiment = families[config["family"]](config)
    except (KeyError, TypeError) as error:  # a setting this version's config has and the saved one lacks
        raise SettingError(
            f"{checkpoint}: cannot rebuild this run (no setting {error}); it was probably saved by an earlier version of minigen"
        ) from None
    try:
        restore(experiment, saved["experiment"], Path(checkpoint))
    except CheckpointError as error:
        raise SettingError(str(error)) from None
    experiment.epochs_done, experiment.history = int(saved["epoch"]), saved["history"]
    return experiment
