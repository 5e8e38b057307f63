"""Atomic writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def _replace_from_temp(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file usual permissions
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_stream(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(handle)`` fills a temporary file beside ``path`` (a binary file), renamed over
    ``path`` only once ``write`` returns: an error or a Ctrl-C part-way leaves no half file
    (and any earlier ``path`` as it was). For outputs written as they are computed."""
    _replace_from_temp(Path(path), write)


def write_bytes(path: str | Path, data: bytes) -> None:
    _replace_from_temp(Path(path), lambda h: h.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_npy(path: str | Path, array: np.ndarray) -> None:
    _replace_from_temp(Path(path), lambda h: np.save(h, array, allow_pickle=False))
