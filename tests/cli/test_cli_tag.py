"""`graftlab tag`: a CoNLL file in, entity scores per type out, a run folder with the model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from graftlab import TokenTagger
from graftlab.cli import app

SENTENCES = [("john lives in paris", "B-per O O B-loc"), ("mary visits london", "B-per O B-loc"),
             ("john loves new york", "B-per O B-loc I-loc"), ("the city of paris", "O O O B-loc"),
             ("mary and john", "B-per O B-per"), ("london and new york", "B-loc O B-loc I-loc")]


def _conll(path, sentences, bad_line: bool = False):
    blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(s.split(), tags.split(), strict=True))
              for s, tags in sentences]
    text = "\n\n".join(blocks) + "\n"
    path.write_text(text.replace("in\tO", "in\tI-loc") if bad_line else text)
    return path


def test_tag_a_conll_file_prints_entity_scores(tiny_tagging_bert, tmp_path):
    train = _conll(tmp_path / "train.conll", SENTENCES * 3)
    test = _conll(tmp_path / "test.conll", SENTENCES)
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
    bad = _conll(tmp_path / "bad.conll", SENTENCES, bad_line=True)
    result = CliRunner().invoke(app, ["tag", str(bad), f"model.backbone={tiny_tagging_bert}",
                                      f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2
    assert f"{bad}:3: 'I-loc' follows 'O'" in " ".join(result.output.split())
    good = _conll(tmp_path / "good.conll", SENTENCES * 2)
    result = CliRunner().invoke(app, ["tag", str(good), f"model.backbone={tiny_tagging_bert}",
                                      "model.head=linear", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2 and "head 'linear' gives one output per sample" in result.output
    result = CliRunner().invoke(app, ["tag", str(good), "model.backbone=efficientnet_lite0"])
    assert result.exit_code == 2 and "is not a text encoder" in result.output


def test_without_a_test_file_distinct_sentences_are_held_out(tiny_tagging_bert, tmp_path):
    train = _conll(tmp_path / "train.conll", SENTENCES * 2)  # 6 distinct sentences, twice
    result = CliRunner().invoke(app, ["tag", str(train), "--epochs", "1",
                                      f"model.backbone={tiny_tagging_bert}",
                                      "data.test_size=0.34", f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["train"], metrics["test"]) == (8, 4)  # 2 distinct held out, both copies
    assert metrics["test_data"] == f"34% of {train} held out (seed 0)"
