"""Integrity of saved model folders: what was written is what gets loaded, or one line says why not.

A save ends with :func:`write_manifest`: ``manifest.json`` beside the files, holding each one's
sha256 and size. A load starts with :func:`verify_manifest`, which names the first file that is
missing, truncated, changed (a flipped bit) or edited (a config), or a config that is no longer
JSON. :func:`explain_load_error` turns what the weight loader raises when weights and config
disagree anyway (a folder saved before manifests existed) into one line instead of a
200-line size-mismatch dump.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from graftlab import _atomic
from graftlab.errors import ConfigError, DataError, GraftlabError

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT = "graftlab.manifest/1"
_AGAIN = "copy the model folder again from where it was saved, or save the model again."


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's contents, read in blocks (the one file hash graftlab uses:
    saved models, the feature cache, weight files, fetched data)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_manifest(folder: str | Path, files: Iterable[str]) -> None:
    """Record the sha256 and size of each of ``files`` (names inside ``folder``, written
    already) in ``folder/manifest.json``, atomically."""
    folder = Path(folder)
    entries = {name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
               for name in files}
    _atomic.write_json(folder / MANIFEST, {"format": FORMAT, "files": entries})


def discard_manifest(folder: str | Path) -> None:
    """Call before rewriting files a manifest lists: a save interrupted half-way then leaves a
    folder without a manifest (loaded unverified), not one whose manifest raises a false alarm."""
    (Path(folder) / MANIFEST).unlink(missing_ok=True)


def read_json(path: str | Path, *, hint: str | None = None) -> Any:
    """The JSON in ``path``; a :class:`ConfigError` saying where it breaks if it is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        problem = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    raise ConfigError(f"{path} is not valid JSON ({problem}).",
                      hint=hint or "undo the edit that broke it, or save the model again.")


def verify_manifest(folder: str | Path) -> None:
    """Check every file ``folder/manifest.json`` lists; raise on the first one that is missing,
    truncated, changed or (a ``.json``) broken. A folder without a manifest (saved by an older
    graftlab) is not checked; a WARNING says so."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            log.warning("%s has no %s (saved by a graftlab without checksums, or not a saved "
                        "model): its files are not verified; save it again to add them",
                        folder, MANIFEST)
        return
    manifest = read_json(path, hint=f"delete {path} to load the model unverified, or {_AGAIN}")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ConfigError(f"{path} is not a graftlab manifest of format {FORMAT!r} "
                          f"(found {found!r}).",
                          hint="load the model with the graftlab version that saved it.")
    for name, saved in manifest.get("files", {}).items():
        _verify_file(folder, name, saved)


def _verify_file(folder: Path, name: str, saved: Mapping[str, Any]) -> None:
    path = folder / name
    if not path.is_file():
        raise DataError(f"{path} is missing (the folder's {MANIFEST} lists it).", hint=_AGAIN)
    if name.endswith(".json"):  # a config: broken or edited, either way a person's doing
        edited = ("undo the edit: a saved model's config must describe its weights. To change "
                  "a setting (backbone, image size...), fit and save a new model.")
        read_json(path, hint=edited)
        digest = sha256_file(path)
        if digest != saved["sha256"]:
            raise ConfigError(f"{path} was edited after saving (sha256 {saved['sha256'][:12]} "
                              f"when saved, {digest[:12]} now).", hint=edited)
        return
    size, expected = path.stat().st_size, int(saved["bytes"])
    if size < expected:
        raise DataError(f"{path} is truncated: {size:,} of its {expected:,} bytes are there "
                        "(an interrupted copy or download?).", hint=_AGAIN)
    if size > expected:
        raise DataError(f"{path} has {size:,} bytes but {expected:,} were saved: it was written "
                        "to after saving.", hint=_AGAIN)
    digest = sha256_file(path)
    if digest != saved["sha256"]:
        raise DataError(f"{path} does not match its checksum (sha256 {saved['sha256'][:12]} when "
                        f"saved, {digest[:12]} now): it changed after saving (a flipped bit on "
                        "disk or in a copy).", hint=_AGAIN)


_SIZE = re.compile(r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\)"
                   r" from checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)")
_KEYS = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)")


def explain_load_error(exc: BaseException, config: Mapping[str, Any], *,
                       folder: str | Path | None = None) -> GraftlabError:
    """One line for what loading saved weights into the model ``config`` describes raised:
    shapes or names that differ (the config was edited to another backbone, image size...), or
    a weight file that cannot be read."""
    text = str(exc)
    where = f"{Path(folder) / 'model.safetensors'}: " if folder else ""
    sizes = _SIZE.findall(text)
    keys = {kind: value.count('"') // 2 for kind, value in _KEYS.findall(text)}
    if sizes or keys:
        params = config.get("params", {})
        described = ", ".join(f"{k} {params[k]!r}" for k in ("backbone", "backbone_options",
                                                               "strategy", "head")
                              if params.get(k) is not None)
        parts = []
        if sizes:
            name, saved, built = sizes[0]
            verb = "differs" if len(sizes) == 1 else "differ"
            parts.append(f"{_count(len(sizes), 'tensor')} {verb} in shape (first: {name} is "
                         f"{saved} saved, {built} built)")
        parts += [_count(n, f"{kind.lower()} tensor") for kind, n in keys.items()]
        return ConfigError(
            f"{where}the saved weights do not fit the model its config.json describes "
            f"({described}): {'; '.join(parts)}.",
            hint="config.json was probably edited after saving (another backbone, image size, "
            "head or strategy): undo the edit, or fit and save a model with those settings.")
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return DataError(f"{where}the saved weights cannot be read ({type(exc).__name__}: {first}): "
                     "the file is damaged or truncated.", hint=_AGAIN)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
