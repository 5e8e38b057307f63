"""Shared set-up: each test gets its own graftlab home and feature cache, and runs offline.

The fetched data (VADER) is the exception: GRAFTLAB_DATA keeps pointing at the real data folder
(``$GRAFTLAB_DATA``, else ``$GRAFTLAB_HOME/data``, else ``~/.cache/graftlab/data``, resolved
once here, before any test changes the environment), so tests over fetched data still see it.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager

# Offline, and one intra-op thread: the test batches are tiny, and two OpenMP threads on a busy
# 2-core machine spin-wait each other (tens of times slower). An explicit setting wins.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graftlab import paths  # noqa: E402

REAL_DATA_DIR = paths.data_dir()


@pytest.fixture(autouse=True)
def graftlab_home(tmp_path):
    """A private GRAFTLAB_HOME and GRAFTLAB_CACHE per test; GRAFTLAB_DATA stays the real one.

    Its own MonkeyPatch, so a test calling ``monkeypatch.undo()`` cannot undo the isolation.
    """
    home = tmp_path / "graftlab-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAFTLAB_HOME", str(home))
        mp.setenv("GRAFTLAB_CACHE", str(tmp_path / "graftlab-cache"))
        mp.setenv("GRAFTLAB_DATA", str(REAL_DATA_DIR))
        yield home


def _refuse(*args, **kwargs):
    raise OSError("network access attempted: graftlab must work offline")


@contextmanager
def _offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _refuse)
        mp.setattr(socket, "create_connection", _refuse)
        yield


@pytest.fixture(scope="session")
def offline():
    """A context manager under which any socket connection fails (proves 'never downloads')."""
    return _offline


@pytest.fixture(scope="session")
def lite0():
    """The real EfficientNet-Lite0 (pretrained, checksummed) at 32 px, in eval mode."""
    from graftlab.backbones import create_backbone

    with _offline():
        return create_backbone("efficientnet_lite0", image_size=32).eval()


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 encoder, in eval mode."""
    from graftlab.backbones import create_backbone

    with _offline():
        return create_backbone("minilm_l6").eval()


@pytest.fixture
def make_net():
    """A factory for a tiny, seeded conv net: children '0' (conv), '1' (relu), '2' (conv)."""
    import torch
    from torch import nn

    def make(seed: int = 0, width: int = 16) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(8, width, 3, padding=1, stride=2)).eval()

    return make


@pytest.fixture
def tiny_backbone(make_net):
    """A fresh wrap_module backbone over the tiny conv net (fast: no pretrained weights)."""
    from graftlab.backbones import wrap_module

    return wrap_module(make_net(), name="tiny")


@pytest.fixture
def images():
    """A factory for random uint8 RGB images (N, H, W, 3)."""

    def make(n: int, size: int = 12, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    return make


@pytest.fixture(scope="session")
def tiny_tagging_bert(tmp_path_factory) -> str:
    """``hf:PATH`` of a two-layer, 16-wide BERT (random weights) whose vocabulary splits
    'paris' and 'london' into two sub-tokens each: for token classification."""
    from tests._tiny_bert import tiny_bert

    pieces = ["john", "mary", "lives", "visits", "in", "par", "##is", "lon", "##don", "new",
              "york", "the", "city", "of", "and", "loves"]
    folder = tiny_bert(tmp_path_factory.mktemp("tiny-bert"), pieces, max_length=16)
    return f"hf:{folder}"
