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
import math
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


class CheckpointError(ValueError):
    """The file is not a minigen checkpoint, or a damaged one; the message says which and why."""


_ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # a zip file's first bytes (with entries, or empty)
_DEFLATE_RATIO = 1032  # no DEFLATE stream expands more than this


def _what_it_is(head: bytes) -> str:
    """What a file that is not a zip archive looks like, from its first bytes."""
    if not head:
        return "an empty file"
    if head.startswith(b"\x93NUMPY"):
        return "a single NumPy array (.npy)"
    if head[:1] == b"\x80":
        return "a Python pickle (minigen never opens pickles: loading one can run any code)"
    return f"not an .npz (zip) file: it starts with {head[:8]!r}"


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, each checked before it is read: the size its header
    claims must be the size the archive holds, so a damaged or hostile file cannot make this
    allocate terabytes, and arrays of Python objects (pickles) are refused."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(8)
    if not head.startswith(_ZIP):
        raise CheckpointError(f"load: {path} is not a minigen checkpoint: {_what_it_is(head)}")
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            bound = size if info.compress_type == zipfile.ZIP_STORED else _DEFLATE_RATIO * min(info.compress_size, size)
            if info.compress_size > size or info.file_size > bound:
                raise CheckpointError(f"load: {path} is damaged: entry {name!r} claims {info.file_size:,} bytes in a file of {size:,}")
            with archive.open(info) as entry:
                version = np.lib.format.read_magic(entry)
                if version not in ((1, 0), (2, 0)):
                    raise CheckpointError(f"load: {path}: entry {name!r} has .npy format version {version}; minigen writes 1.0")
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran_order, dtype = read_header(entry)
                if dtype.hasobject:
                    raise CheckpointError(
                        f"load: {path}: entry {name!r} holds Python objects, which minigen does not load (only numbers and text)"
                    )
                nbytes = math.prod(shape) * dtype.itemsize
                if entry.tell() + nbytes != info.file_size:
                    raise CheckpointError(
                        f"load: {path} is damaged: entry {name!r} claims shape {shape} of {dtype} "
                        f"({nbytes:,} bytes) but holds {info.file_size - entry.tell():,} bytes"
                    )
                data = np.frombuffer(entry.read(nbytes), dtype=dtype)
                arrays[name] = data.reshape(shape, order="F" if fortran_order else "C").copy()
    return arrays


def load(path):
    """Read a checkpoint written by `save`; arrays come back as NumPy arrays.

    Anything else (a pickle, a plain .npz, a truncated, damaged or hostile file) raises
    `CheckpointError` saying what the file is or what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    if path.is_dir():
        raise CheckpointError(f"load: {path} is a folder; give the checkpoint file in it (e.g. {path / 'checkpoint.npz'})")
    try:
        arrays = _read_arrays(path)  # reads (and CRC-checks) everything
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"load: {path} is not a readable minigen checkpoint (truncated or damaged): {error}") from None
    if _META not in arrays:
        raise CheckpointError(f"load: {path} is an .npz file but not a minigen checkpoint (it has no {_META} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META)))
        if not isinstance(meta, dict):
            raise ValueError(f"a {type(meta).__name__} where a description belongs")
    except (ValueError, RecursionError) as error:  # RecursionError: JSON nested thousands deep
        raise CheckpointError(f"load: {path}: the checkpoint's description is damaged: {str(error)[:200]}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"load: {path} is not a minigen checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"load: {path} has checkpoint version {meta.get('version')}, this minigen reads version {VERSION}")
    try:
        return _unflatten(meta.get("tree"), arrays, "")
    except (ValueError, TypeError, AttributeError, RecursionError) as error:
        raise CheckpointError(f"load: {path} is damaged: {str(error)[:200]}") from None
