"""compare's run folder is never left saying "running", and an explicit held-out set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _tiny import tiny_domain

from graftlab.data import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.workflows import compare as compare_module
from graftlab.workflows.common import align_test
from graftlab.workflows.compare import run_compare

pytestmark = pytest.mark.slow  # extracts features with the real backbone

QUICK = {"strategies": ["linear_probe"], "scratch": False, "seeds": 2, "image_size": 32,
         "feature_map": False, "test_size": 0.25}


def test_an_error_before_any_run_removes_the_folder(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(compare_module, "_one", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_compare(tiny_domain(), out=tmp_path / "run", **QUICK)
    assert not (tmp_path / "run").exists()  # the same --out works next time


def test_an_error_after_a_run_marks_the_folder_failed_with_the_message(tmp_path, monkeypatch):
    real, calls = compare_module._one, []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(compare_module, "_one", second_fails)
    with pytest.raises(RuntimeError):
        run_compare(tiny_domain(), out=tmp_path / "run", **QUICK)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["status"] == "failed" and saved["error"] == "disk on fire"
    assert len(saved["runs"]) == 1


def test_an_explicit_test_set_scores_every_seed_on_it(tmp_path):
    train = tiny_domain(16)
    test = tiny_domain(5)
    # the held-out set lists its classes in another order: its labels are recoded
    order = [2, 0, 1]
    test = Domain("held", "image", test.inputs, labels=np.array(
        [order.index(y) for y in test.labels]), classes=[test.classes[i] for i in order])
    results = run_compare(train, test=test, out=tmp_path / "run", **QUICK)
    assert results["config"]["test_data"]["name"] == "held"
    for run in results["runs"]:
        assert np.asarray(run["confusion"]).sum() == 15  # all of the held-out set
        assert run["accuracy"] > 0.6  # labels recoded right: the squares are easy


def test_a_held_out_set_with_another_class_or_modality_is_refused():
    train = tiny_domain(4)
    other = Domain("held", "image", train.inputs[:3], labels=np.array([0, 1, 1]),
                   classes=["tl", "middle"])
    with pytest.raises(DataError, match=r"--test-data 'held' has classes the training data "
                                        r"lacks: \['middle'\]"):
        align_test(train, other)
    texts = Domain("texts", "text", ["a", "b"], labels=np.array([0, 1]), classes=["tl", "br"])
    with pytest.raises(DataError, match="holds texts but the training data 'squares' holds "
                                        "images"):
        align_test(train, texts)


def test_a_limit_below_what_the_splits_need_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"--limit 12 is too few(.|\n)*raise --limit to 24 or more"):
        run_compare(tiny_domain(), limit=12, out=tmp_path / "run", **QUICK)
    with pytest.raises(ConfigError, match=r"--limit 2 is fewer than the 3 classes"):
        compare_module.limit_domain(tiny_domain(), 2, "classification")
    assert not (tmp_path / "run").exists()
