"""A content-addressed, on-disk feature cache.

An entry is keyed by everything that determines the features: the backbone's cache key
(name, weights sha256, preprocessing), the layer, the pooling and the data fingerprint. It is a
folder holding ``features.npy`` (read back memory-mapped) and ``meta.json`` (written last, with
the file's sha256). Extraction writes fixed-size chunks atomically under ``partial/``, so an
interrupted run resumes at the first missing chunk and a half-written entry is never read.
Unpooled activations are entries too: an image layer's maps ``(N, C, H, W)`` as they are, a
text layer's token states unpadded (:class:`RaggedEntry`: rows plus each sample's length).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graftlab import _atomic
from graftlab.integrity import sha256_file
from graftlab.errors import ConfigError, GraftlabError
from graftlab.paths import feature_cache_dir

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
_ENTRY_NAME = re.compile(r"[0-9a-f]{24}")  # entry_key's names: nothing else is cleared


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX ``flock``; elsewhere, none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def entry_key(key: dict) -> str:
    blob = json.dumps({"v": FORMAT_VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


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
            if verify and sha256_file(self.array_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError) as exc:
            log.warning("feature cache entry %s is corrupt (%s); rebuilding it", self.folder, exc)
            shutil.rmtree(self.folder, ignore_errors=True)
            return None
        return array

    def load_chunk(self, start: int, stop: int, rows: int | None = None) -> np.ndarray | None:
        """Samples ``start:stop`` saved by an earlier (interrupted) run, or None. A chunk holds
        one row per sample unless ``rows`` says otherwise (a :class:`RaggedEntry`'s tokens)."""
        path = self.chunk_path(start, stop)
        if not path.exists():
            return None
        try:
            chunk = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        if chunk.ndim == 0 or chunk.shape[0] != (stop - start if rows is None else rows):
            path.unlink(missing_ok=True)
            return None
        return chunk

    def save_chunk(self, start: int, stop: int, chunk: np.ndarray) -> None:
        path = self.chunk_path(start, stop)
        path.parent.mkdir(parents=True, exist_ok=True)  # another process may have finished
        _atomic.write_npy(path, np.ascontiguousarray(chunk))

    def finalize(self, spans: list[tuple[int, int]], info: dict) -> np.ndarray:
        """Join the chunks into one file (streamed: memory stays one chunk), then publish meta.
        Processes that extract the same entry at once (tune's workers) take turns here: the
        first publishes it, the others load what it published."""
        with _locked(self.folder / ".lock"):
            if self.complete:
                done = self.load(verify=False)
                if done is not None:
                    shutil.rmtree(self.partial, ignore_errors=True)  # this worker's chunks
                    return done
            array = self._join(spans, info)
        if array is None:
            raise GraftlabError(f"feature cache entry {self.folder} could not be read back after "
                             "it was written.", hint="check the disk (space, permissions) and "
                             "run again; graftlab cache clear removes broken entries.")
        return array

    def _join(self, spans: list[tuple[int, int]], info: dict) -> np.ndarray | None:
        chunks = [np.load(self.chunk_path(a, b), mmap_mode="r") for a, b in spans]
        shape = (sum(len(chunk) for chunk in chunks), *chunks[0].shape[1:])
        tmp = self.folder / f".features.{os.getpid()}.npy.tmp"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=chunks[0].dtype, shape=shape)
        row = 0
        for chunk in chunks:
            out[row:row + len(chunk)] = chunk
            row += len(chunk)
        out.flush()
        del out
        os.replace(tmp, self.array_path)
        meta = {**info, "key": self.key, "shape": list(shape), "dtype": str(chunks[0].dtype),
                "sha256": sha256_file(self.array_path), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "bytes": self.array_path.stat().st_size}
        del chunks
        _atomic.write_json(self.meta_path, meta)
        shutil.rmtree(self.partial, ignore_errors=True)
        return self.load(verify=False)


@dataclass
class RaggedEntry:
    """Rows of different counts per sample (a text's token activations, unpadded): ``rows``
    ``(R, D)`` in a :class:`CacheEntry`, and the samples' row counts ``(N,)`` in another one
    inside its folder, published first (so a complete ``rows`` entry implies its lengths)."""

    rows: CacheEntry

    @property
    def lengths(self) -> CacheEntry:
        return CacheEntry(self.rows.folder / "lengths", {**self.rows.key, "part": "lengths"})

    @property
    def complete(self) -> bool:
        return self.rows.complete and self.lengths.complete

    def load(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(rows, lengths)`` (rows memory-mapped), or None; an inconsistent pair is removed."""
        lengths = self.lengths.load()
        rows = self.rows.load() if lengths is not None else None
        if rows is None:
            return None
        if lengths.ndim != 1 or len(rows) != int(lengths.sum()):
            log.warning("feature cache entry %s is corrupt (%d rows for %d tokens); rebuilding "
                        "it", self.rows.folder, len(rows), int(lengths.sum()))
            shutil.rmtree(self.rows.folder, ignore_errors=True)
            return None
        return rows, np.array(lengths)

    def load_chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray] | None:
        lengths = self.lengths.load_chunk(start, stop)
        if lengths is None:
            return None
        rows = self.rows.load_chunk(start, stop, rows=int(lengths.sum()))
        return None if rows is None else (rows, lengths)

    def save_chunk(self, start: int, stop: int, chunk: tuple[np.ndarray, np.ndarray]) -> None:
        rows, lengths = chunk
        self.rows.save_chunk(start, stop, rows)
        self.lengths.save_chunk(start, stop, lengths)  # last: a saved length implies its rows

    def finalize(self, spans: list[tuple[int, int]], info: dict
                 ) -> tuple[np.ndarray, np.ndarray]:
        lengths = self.lengths.finalize(spans, {**info, "part": "lengths"})
        return self.rows.finalize(spans, info), np.array(lengths)


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

    def ragged_entry(self, key: dict) -> RaggedEntry:
        """An entry whose samples hold different numbers of rows (see :class:`RaggedEntry`)."""
        return RaggedEntry(self.entry(key))

    def entries(self) -> list[dict]:
        """Complete entries with their metadata, newest first."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            meta = CacheEntry(folder, {}).meta() if folder.is_dir() else None
            if isinstance(meta, dict) and isinstance(meta.get("shape"), list):
                out.append({"id": folder.name, **meta})  # else not an entry graftlab wrote
        return sorted(out, key=lambda m: m.get("created", ""), reverse=True)

    def size_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def clear(self) -> int:
        """Remove every entry (complete or partial); returns how many folders went."""
        if not self.root.is_dir():
            return 0
        n, other = 0, []
        for folder in self.root.iterdir():
            if folder.is_dir() and _ENTRY_NAME.fullmatch(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
                n += 1
            elif not folder.name.startswith("."):
                other.append(folder.name)
        if other:  # GRAFTLAB_CACHE pointed somewhere with other things in it
            log.warning("left %d item(s) in %s that are not feature cache entries: %s",
                        len(other), self.root, ", ".join(sorted(other)[:5]))
        return n
