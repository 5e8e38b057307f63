"""A content-addressed, on-disk feature cache.

An entry is keyed by everything that determines the features: the backbone's cache key
(name, weights sha256, preprocessing), the layer, the pooling and the data fingerprint. It is a
folder holding ``features.npy`` (read back memory-mapped) and ``meta.json`` (written last, with
the file's sha256). Extraction writes fixed-size chunks atomically under ``partial/``, so an
interrupted run resumes at the first missing chunk and a half-written entry is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graftlab import _atomic
from graftlab.errors import ConfigError
from graftlab.paths import feature_cache_dir

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def entry_key(key: dict) -> str:
    blob = json.dumps({"v": FORMAT_VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CacheEntry:
    """One cached feature matrix (possibly still being written)."""

    folder: Path
    key: dict

    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    @property
    def array_path(self) -> Path:
        return self.folder / "features.npy"

    @property
    def partial(self) -> Path:
        return self.folder / "partial"

    def chunk_path(self, start: int, stop: int) -> Path:
        """Chunks are named by their row span, so a resume with another chunk size can never
        take rows from the wrong place."""
        return self.partial / f"rows-{start:09d}-{stop:09d}.npy"

    @property
    def complete(self) -> bool:
        """Finished writing (cheap: no checksum; ``load`` verifies)."""
        return self.meta_path.is_file() and self.array_path.is_file()

    def meta(self) -> dict | None:
        try:
            return json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return None

    def load(self, *, verify: bool = True) -> np.ndarray | None:
        """The cached array (memory-mapped), or None if absent; a corrupt entry is removed."""
        meta = self.meta()
        if meta is None or not self.array_path.exists():
            return None
        try:
            array = np.load(self.array_path, mmap_mode="r", allow_pickle=False)
            if list(array.shape) != meta["shape"] or str(array.dtype) != meta["dtype"]:
                raise ValueError(f"shape {array.shape} != {meta['shape']}")
            if verify and _sha256(self.array_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError) as exc:
            log.warning("feature cache entry %s is corrupt (%s); rebuilding it", self.folder, exc)
            shutil.rmtree(self.folder, ignore_errors=True)
            return None
        return array

    def load_chunk(self, start: int, stop: int) -> np.ndarray | None:
        """Rows ``start:stop`` saved by an earlier (interrupted) run, or None."""
        path = self.chunk_path(start, stop)
        if not path.exists():
            return None
        try:
            chunk = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        if chunk.ndim != 2 or chunk.shape[0] != stop - start:
            path.unlink(missing_ok=True)
            return None
        return chunk

    def save_chunk(self, start: int, stop: int, chunk: np.ndarray) -> None:
        _atomic.write_npy(self.chunk_path(start, stop), np.ascontiguousarray(chunk))

    def finalize(self, spans: list[tuple[int, int]], info: dict) -> np.ndarray:
        """Join the chunks into one file (streamed: memory stays one chunk), then publish meta."""
        chunks = [np.load(self.chunk_path(a, b), mmap_mode="r") for a, b in spans]
        total, dim, dtype = spans[-1][1], int(chunks[0].shape[1]), chunks[0].dtype
        tmp = self.folder / ".features.npy.tmp"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(total, dim))
        for (a, b), chunk in zip(spans, chunks, strict=True):
            out[a:b] = chunk
        out.flush()
        del out, chunks
        os.replace(tmp, self.array_path)
        meta = {**info, "key": self.key, "shape": [total, dim], "dtype": str(dtype), "sha256": _sha256(self.array_path),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "bytes": self.array_path.stat().st_size}
        _atomic.write_json(self.meta_path, meta)
        shutil.rmtree(self.partial, ignore_errors=True)
        return self.load(verify=False)


class FeatureCache:
    """The cache folder (default ``~/.cache/graftlab/features``, or ``GRAFTLAB_CACHE``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else feature_cache_dir()

    def check_writable(self) -> None:
        """Fail before any work if the folder cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"feature cache folder {self.root} is not writable ({exc.strerror or exc}).",
                hint="point GRAFTLAB_CACHE (or cache_dir=) at a writable folder, or pass "
                "cache=False (CLI: --no-cache) to extract without caching.",
            ) from exc

    def entry(self, key: dict) -> CacheEntry:
        return CacheEntry(self.root / entry_key(key), key)

    def entries(self) -> list[dict]:
        """Complete entries with their metadata, newest first."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            meta = CacheEntry(folder, {}).meta() if folder.is_dir() else None
            if meta is not None:
                out.append({"id": folder.name, **meta})
        return sorted(out, key=lambda m: m.get("created", ""), reverse=True)

    def size_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def clear(self) -> int:
        """Remove every entry (complete or partial); returns how many folders went."""
        if not self.root.is_dir():
            return 0
        n = 0
        for folder in self.root.iterdir():
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                n += 1
        return n
