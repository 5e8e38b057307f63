"""`graftlab tag`: a CoNLL file in, entity scores per type out, a run folder with the model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from graftlab import TokenTagger
from graftlab.cli import app
from tests._tagged import write_conll


def _bad(path):
    """The sentences with one invalid tag: 'in' tagged I-loc after O (line 3)."""
    path = write_conll(path)
    path.write_text(path.read_text().replace("in\tO", "in\tI-loc"))
    return path


def test_tag_a_conll_file_prints_entity_scores(tiny_tagging_bert, tmp_path):
    train = write_conll(tmp_path / "train.conll", 3)
    test = write_conll(tmp_path / "test.conll")
    result = CliRunner().invoke(app, [
        "tag", str(train), "--test-data", str(test), "--strategy", "head_only", "--epochs", "20",
        f"model.backbone={tiny_tagging_bert}", "train.lr=0.05", "train.batch_size=4",
        f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "all (micro)" in result.output and "per" in result.output and "loc" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test"] == 6 and metrics["entity"]["micro"]["support"] == 11
    assert set(metrics["entity"]["per_type"]) <= {"per", "loc"}
    loaded = TokenTagger.load(folder / "model")
    assert len(loaded.predict([["mary", "visits", "paris"]])[0]) == 3


def test_tag_names_the_bad_line_and_the_bad_head(tiny_tagging_bert, tmp_path):
    bad = _bad(tmp_path / "bad.conll")
    result = CliRunner().invoke(app, ["tag", str(bad), f"model.backbone={tiny_tagging_bert}",
                                      f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2
    assert f"{bad}:3: 'I-loc' follows 'O'" in " ".join(result.output.split())
    good = write_conll(tmp_path / "good.conll", 2)
    result = CliRunner().invoke(app, ["tag", str(good), f"model.backbone={tiny_tagging_bert}",
                                      "model.head=linear", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2 and "head 'linear' gives one output per sample" in result.output
    result = CliRunner().invoke(app, ["tag", str(good), "model.backbone=efficientnet_lite0"])
    assert result.exit_code == 2 and "is not a text encoder" in result.output


def test_without_a_test_file_distinct_sentences_are_held_out(tiny_tagging_bert, tmp_path):
    train = write_conll(tmp_path / "train.conll", 2)  # 6 distinct sentences, twice
    result = CliRunner().invoke(app, ["tag", str(train), "--epochs", "1",
                                      f"model.backbone={tiny_tagging_bert}",
                                      "data.test_size=0.34", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["train"], metrics["test"]) == (8, 4)  # 2 distinct held out, both copies
    assert metrics["test_data"] == f"34% of {train} held out (seed 0)"


def test_an_interrupted_tag_or_multitask_says_so(monkeypatch):
    import graftlab.workflows.multitask as multitask_module
    import graftlab.workflows.tag as tag_module

    def stop(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(tag_module, "run_tag", stop)
    monkeypatch.setattr(multitask_module, "run_multitask", stop)
    for args in (["tag", "wnut16:train"],
                 ["multitask", "tasks=[{name: a, type: classification, data: digits}]"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 130 and "interrupted:" in result.output, result.output
