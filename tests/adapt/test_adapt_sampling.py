"""What ``graftlab adapt`` hands to training from its config: mnist digits that mnist_m was
made from are dropped before sampling, and ``--limit`` samples the target without reading its
labels (the source, whose labels are for training, stratified by them)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import graftlab.workflows.configured as configured
from graftlab.config import AdaptConfig
from graftlab.data.bundled import mnist_m_rows


def _table(path, texts, labels):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return str(path)


def _handed(monkeypatch, **data) -> list:
    seen = []
    monkeypatch.setattr(configured, "adapt_to_folder",
                        lambda *domains, **kw: seen.extend(domains) or {})
    config = AdaptConfig.model_validate({"data": data, "model": {"backbone": "minilm_l6"}})
    configured.run_adapt_config(config)
    return seen


def test_the_target_sample_does_not_depend_on_its_labels(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    texts = [f"review number {i}" for i in range(60)]
    labels = ["pos"] * 50 + ["neg"] * 10  # a stratified sample would keep 5 of 6 'pos'
    source = _table(tmp_path / "s.csv", texts, rng.permutation(labels))
    a = _table(tmp_path / "a.csv", texts, labels)
    b = _table(tmp_path / "b.csv", texts, labels[::-1])
    _, target_a = _handed(monkeypatch, source=source, target=a, limit=12)
    _, target_b = _handed(monkeypatch, source=source, target=b, limit=12)
    assert len(target_a) == 12 and target_a.inputs == target_b.inputs


@pytest.mark.slow  # builds mnist_m from the photos (seconds, more on a busy machine)
def test_mnist_digits_behind_mnist_m_never_reach_the_source(monkeypatch):
    source, target = _handed(monkeypatch, source="mnist", target="mnist_m", limit=300)
    used = set(mnist_m_rows())
    assert len(source) == 300 and len(target) == 300
    # limit_domain makes each sample a data set of its own: find its digits by content
    from graftlab.data import load_dataset

    mnist = load_dataset("mnist").inputs.reshape(5000, -1)
    rows = {mnist.tobytes()[i * mnist.shape[1]:(i + 1) * mnist.shape[1]]: i
            for i in range(5000)}
    picked = [rows[img.tobytes()] for img in source.inputs.reshape(300, -1)]
    assert not set(picked) & used


def test_a_target_of_another_pixel_size_is_resized_to_the_sources(caplog):
    from graftlab.data import Domain
    from graftlab.data.domain import dataset_rows

    source = Domain("s", "image", np.zeros((4, 28, 28, 3), np.uint8), labels=np.arange(4) % 2,
                    classes=["a", "b"])
    target = Domain("t", "image", np.full((3, 40, 40, 3), 90, np.uint8)).sample(2, stratify=False)
    same = configured._sized_like(target, source)
    assert same.inputs.shape == (2, 28, 28, 3) and (same.inputs == 90).all()
    assert (dataset_rows(same) == dataset_rows(target)).all()  # still found in its data set
    assert "target images are 40x40, the source's 28x28" in caplog.text
    assert configured._sized_like(source, source) is source


def test_the_target_table_may_name_its_own_columns(tmp_path, monkeypatch):
    texts = [f"review number {i}" for i in range(20)]
    source = _table(tmp_path / "s.csv", texts, ["pos", "neg"] * 10)
    target = tmp_path / "t.csv"
    with open(target, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tweet", "sentiment"])
        writer.writerows((f"tweet {i}", "pos" if i % 2 else "neg") for i in range(20))
    _, got = _handed(monkeypatch, source=source, target=str(target),
                     target_text_column="tweet", target_label_column="sentiment")
    assert got.inputs[:2] == ["tweet 0", "tweet 1"] and got.classes == ["neg", "pos"]
