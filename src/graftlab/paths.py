"""Where graftlab keeps things on disk. One root, overridable by ``GRAFTLAB_HOME``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root folder for fetched data and the feature cache (default ``~/.cache/graftlab``)."""
    root = os.environ.get("GRAFTLAB_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "graftlab"


def data_dir() -> Path:
    """Fetched data sets (e.g. the VADER sdist) live here."""
    return Path(os.environ.get("GRAFTLAB_DATA", home() / "data")).expanduser()


def feature_cache_dir() -> Path:
    """The content-addressed feature cache lives here."""
    return Path(os.environ.get("GRAFTLAB_CACHE", home() / "features")).expanduser()


def onnx_dir() -> Path:
    """Exported ONNX trunks (a per-machine compile cache, shared by every feature cache)."""
    return Path(os.environ.get("GRAFTLAB_ONNX", home() / "onnx")).expanduser()
