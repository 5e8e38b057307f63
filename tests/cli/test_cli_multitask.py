"""`graftlab multitask CONFIG.yaml`: tasks from their own files, one model, a per-task table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.multitask import MultiTaskGrafter

GOOD = ["a great film", "truly wonderful", "lovely acting", "superb and moving"]
BAD = ["awful and dull", "boring mess", "terrible plot", "a waste of time"]


def _files(tmp_path):
    """Sentiment labels in one CSV, ratings in another; two texts are in both."""
    sent = tmp_path / "sentiment.csv"
    sent.write_text("text,label\n" + "".join(f"{t},pos\n" for t in GOOD * 2)
                    + "".join(f"{t},neg\n" for t in BAD * 2))
    rows = [(t, 3.0 - 0.1 * i) for i, t in enumerate(GOOD[:2] + ["nice", "fine film"])]
    rows += [(t, -3.0 + 0.1 * i) for i, t in enumerate(BAD[:2] + ["bad", "poor film"])]
    rate = tmp_path / "rating.csv"
    rate.write_text("text,stars\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return sent, rate


def _config(tmp_path, tasks: str) -> str:
    config = tmp_path / "mt.yaml"
    config.write_text(f"tasks:\n{tasks}"
                      "model: {max_length: 16, shared: 8}\n"
                      "train: {epochs: 2, batch_size: 8, test_size: 0.3}\n"
                      f"runs_dir: {tmp_path / 'runs'}\n")
    return str(config)


def _tasks(sent, rate) -> str:
    return (f"  - {{name: sentiment, type: classification, data: {sent}}}\n"
            f"  - {{name: rating, type: regression, data: {rate}, target_column: stars}}\n")


@pytest.mark.slow  # MiniLM end to end through the command (~15 s on a busy 2-core machine)
def test_multitask_fits_scores_each_task_and_saves_the_model(tmp_path):
    sent, rate = _files(tmp_path)
    result = CliRunner().invoke(app, ["multitask", _config(tmp_path, _tasks(sent, rate)),
                                      "model.weighting=equal,pcgrad", "train.single_task=true"])
    assert result.exit_code == 0, result.output
    assert "rating pearson_r" in result.output and "single-task: rating" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["labelled"] == {"sentiment": 8, "rating": 8}  # 12 texts, 4 in both
    assert results["samples"] == 12
    assert [r["model"] for r in results["summary"]] == [
        "multi-task, equal", "multi-task, pcgrad", "single-task: sentiment",
        "single-task: rating"]
    assert set(results["summary"][0]["metrics"]) == {
        "sentiment.accuracy", "sentiment.macro_f1", "rating.rmse", "rating.pearson_r"}
    assert set(results["summary"][3]["metrics"]) == {"rating.rmse", "rating.pearson_r"}
    summary = (folder / "summary.md").read_text()
    assert "| single-task: sentiment |" in summary and "| - |" in summary.replace(" - ", "| - |")
    pred = MultiTaskGrafter.load(folder / "model").predict(["a great film"])
    assert set(pred) == {"sentiment", "rating"} and np.isfinite(pred["rating"]).all()


def test_a_task_name_used_twice_in_the_config_is_refused(tmp_path):
    sent, rate = _files(tmp_path)
    twice = _tasks(sent, rate).replace("name: rating", "name: sentiment")
    result = CliRunner().invoke(app, ["multitask", _config(tmp_path, twice)])
    assert result.exit_code == 2
    assert "task name 'sentiment' is used twice" in result.output
    assert not (tmp_path / "runs").exists()


def test_regression_data_without_numbers_is_explained(tmp_path):
    sent, _ = _files(tmp_path)
    tasks = f"  - {{name: rating, type: regression, data: {sent}}}\n"
    result = CliRunner().invoke(app, ["multitask", _config(tmp_path, tasks)])
    assert result.exit_code == 2 and "has no numeric targets" in result.output


def test_an_unknown_weighting_is_refused_before_any_work(tmp_path):
    sent, rate = _files(tmp_path)
    result = CliRunner().invoke(app, ["multitask", _config(tmp_path, _tasks(sent, rate)),
                                      "model.weighting=equal,pcgard"])
    assert result.exit_code == 2
    assert "unknown loss weighting 'pcgard'" in result.output and "Did you mean 'pcgrad'" in \
        result.output
    assert not (tmp_path / "runs").exists()


def test_a_tokens_task_reads_tagged_sentences_beside_a_csv(tmp_path, tiny_tagging_bert):
    """NER tags from a CoNLL-style file, a class from a CSV; one model, entity F1 per seed."""
    conll = tmp_path / "ner.conll"
    sentences = [("john lives in paris", "B-per O O B-loc"),
                 ("mary visits london", "B-per O B-loc"), ("the city of paris", "O O O B-loc"),
                 ("mary and john", "B-per O B-per")] * 2
    conll.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(s.split(), g.split(),
                                                                         strict=True))
                                 for s, g in sentences) + "\n")
    mood = tmp_path / "mood.csv"
    mood.write_text("text,label\n" + "".join(f"{t},{m}\n" for t, m in [
        ("john loves paris", "love"), ("mary loves london", "love"), ("the city", "plain"),
        ("new york", "plain"), ("mary loves john", "love"), ("the city of london", "plain")]))
    tasks = (f"  - {{name: entities, type: tokens, data: {conll}}}\n"
             f"  - {{name: mood, type: classification, data: {mood}}}\n")
    config = _config(tmp_path, tasks)
    result = CliRunner().invoke(app, ["multitask", config, f"model.backbone={tiny_tagging_bert}"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["labelled"] == {"entities": 4, "mood": 6}  # repeated sentences: one sample
    assert {"entities.entity_f1", "mood.accuracy"} <= set(results["summary"][0]["metrics"])
    pred = MultiTaskGrafter.load(folder / "model").predict([["mary", "visits", "paris"]])
    assert len(pred["entities"][0]) == 3
