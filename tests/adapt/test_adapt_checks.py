"""adapt checks before it creates its run folder (modality before labels, a --limit too small
for the source's held-out part), and never leaves the folder saying "running"."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_adapter import OPTS, _squares

from graftlab.data import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.workflows import adapt as adapt_module
from graftlab.workflows.adapt import adapt_to_folder
from graftlab.workflows.common import check_source_size


def _domains(n: int = 12):
    xs, ys = _squares(n)
    xt, yt = _squares(n, dark=True, seed=1)
    return (Domain("light", "image", xs, labels=ys, classes=["l", "r"]),
            Domain("dark", "image", xt, labels=yt, classes=["l", "r"]))


def test_a_text_source_and_an_image_target_is_a_modality_error_first(tmp_path):
    _, target = _domains()
    texts = Domain("reviews", "text", ["good", "bad"] * 6, labels=np.array([0, 1] * 6),
                   classes=["neg", "pos"])  # labels that differ too: modality comes first
    with pytest.raises(DataError, match=r"source 'reviews' holds texts but target 'dark' "
                                        r"holds images; adaptation needs one modality"):
        adapt_to_folder(texts, target, methods=["dann"], out=tmp_path / "run",
                        backbone_options=OPTS)
    assert not (tmp_path / "run").exists()


def test_a_source_too_small_for_its_held_out_part_names_the_limit():
    source, _ = _domains(4)
    with pytest.raises(ConfigError, match=r"--limit 8 is too few: source 'light' has 8 samples "
                                          r"of 2 classes(.|\n)*raise --limit to 20"):
        check_source_size(source, 0.1, limit=8)
    with pytest.raises(DataError, match=r"source 'light' has 8 samples(.|\n)*add source"):
        check_source_size(source, 0.1)


@pytest.mark.slow
def test_an_error_during_the_runs_never_leaves_running_behind(tmp_path, monkeypatch):
    source, target = _domains()

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(adapt_module, "_score", boom)  # after the first fit, before any run
    with pytest.raises(RuntimeError, match="out of memory"):
        adapt_to_folder(source, target, methods=["coral"], out=tmp_path / "run", epochs=1,
                        batch_size=8, backbone_options=OPTS, feature_map=False)
    assert not (tmp_path / "run").exists()  # nothing finished: the folder is gone

    def late(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.undo()
    monkeypatch.setattr(adapt_module, "_distances", late)  # after every run
    with pytest.raises(RuntimeError, match="disk full"):
        adapt_to_folder(source, target, methods=["coral"], out=tmp_path / "run", epochs=1,
                        batch_size=8, backbone_options=OPTS, feature_map=False)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["status"] == "failed" and saved["error"] == "disk full"
    assert len(saved["runs"]) == 2
