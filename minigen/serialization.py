"""`save` and `load`: checkpoints as `.npz` files that cannot run code and are never half-written.

A checkpoint is a nested structure of dicts and lists whose leaves are arrays (or Tensors),
numbers, strings, booleans or None: typically

    {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": gen.state_dict(),
     "epoch": 3, "config": {...}}

Each array is stored as its own entry of the `.npz` (a zip of `.npy` files); the structure
and the other leaves are stored as JSON in the entry `__minigen__`. Loading never unpickles
(`allow_pickle=False`), so opening a checkpoint cannot execute code.

Writing goes to a temporary file in the same folder, which is flushed to disk and then
renamed over the target: a crash leaves either the old checkpoint or the new one, never a
broken one. Loading checks the file is a minigen checkpoint of a known version and that
every array it lists is there, and says what is wrong otherwise.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .engine.tensor import Tensor

FORMAT = "minigen-checkpoint"
VERSION = 1
_META = "__minigen__"


def _flatten(obj, arrays: dict, path: str):
    """The JSON-able structure of `obj`, with every array moved into `arrays` under its path."""
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"save: the array at {path or 'the top'} holds Python objects; only numeric arrays can be saved")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str):
                raise TypeError(f"save: dict keys must be strings, got {k!r} at {path or 'the top'}")
        return {"__dict__": {k: _flatten(v, arrays, f"{path}/{k}") for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot store a {type(obj).__name__} at {path or 'the top'}; use arrays, numbers, strings, lists and dicts")


def _unflatten(node, arrays, path: str):
    if isinstance(node, dict):
        if "__array__" in node:
            key = node["__array__"]
            if key not in arrays:
                raise ValueError(f"the array for {path or 'the top'} is missing")
            return arrays[key]
        if "__dict__" in node:
            return {k: _unflatten(v, arrays, f"{path}/{k}") for k, v in node["__dict__"].items()}
        if "__list__" in node:
            return [_unflatten(v, arrays, f"{path}/{i}") for i, v in enumerate(node["__list__"])]
        raise ValueError(f"unknown entry at {path or 'the top'}")
    return node


def file_mode() -> int:
    """The permissions a new file gets under the current umask (what `open` would give it)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path, mode: str = "wb"):
    """Open a file to write `path` atomically: a temporary file of a unique name beside it,
    renamed over `path` when the block ends, removed if it raises. A reader never sees half a
    file, and two writers never share a temporary name. Every file minigen writes goes so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as file:
            yield file
        os.chmod(temporary, file_mode())  # as any other new file (mkstemp's are private)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    """Write a text file atomically (see `atomic_file`)."""
    with atomic_file(path, "w") as file:
        file.write(text)
    return Path(path)


def save(path, obj) -> None:
    """Write `obj` to `path` (an `.npz` file) atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "version": VERSION, "tree": _flatten(obj, arrays, "")}
    arrays[_META] = np.array(json.dumps(meta))
    with atomic_file(path) as file:
        np.savez(file, **arrays)
        file.flush()
        os.fsync(file.fileno())  # a checkpoint reaches the disk before it replaces the last one


def load(path):
    """Read a checkpoint written by `save`; arrays come back as NumPy arrays."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}  # reads (and CRC-checks) everything
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ValueError(f"load: {path} is not a readable minigen checkpoint (truncated, damaged or not an .npz file): {error}") from None
    if _META not in arrays:
        raise ValueError(f"load: {path} is an .npz file but not a minigen checkpoint (it has no {_META} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except json.JSONDecodeError as error:
        raise ValueError(f"load: {path}: the checkpoint's description is damaged: {error}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"load: {path} is not a minigen checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"load: {path} has checkpoint version {meta.get('version')}, this minigen reads version {VERSION}")
    try:
        return _unflatten(meta["tree"], arrays, "")
    except ValueError as error:
        raise ValueError(f"load: {path} is damaged: {error}") from None
