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
