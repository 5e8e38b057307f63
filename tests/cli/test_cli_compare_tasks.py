"""`graftlab compare` on tagged sentences (entity F1 per strategy and per type) and on a
multi-task config (per-task tables, each strategy beside its single-task models)."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from graftlab import TokenTagger
from graftlab.cli import app
from graftlab.data import is_tagged
from tests._tagged import write_conll


def test_tagged_data_is_recognised_by_name_or_suffix(tmp_path):
    assert is_tagged("wnut16:train") and is_tagged("wnut16:test")
    assert not is_tagged("vader:movies") and not is_tagged("mnist")
    assert is_tagged(write_conll(tmp_path / "ner.conll"))
    assert is_tagged(tmp_path / "more.bio") and not is_tagged(tmp_path / "table.csv")


def test_compare_on_tagged_sentences_scores_entities_per_strategy_and_type(
        tiny_tagging_bert, tmp_path):
    train = write_conll(tmp_path / "train.conll", 3)
    test = write_conll(tmp_path / "test.conll")
    result = CliRunner().invoke(app, [
        "compare", "--data", str(train), "--test-data", str(test), "--backbone",
        tiny_tagging_bert, "--strategies", "head_only,last_k", "--seeds", "2", "--epochs", "3",
        "--lr", "0.05", "--batch-size", "4", "--no-scratch", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "entity F1 per type" in result.output and "finds entities best" in result.output
    assert "(paired by seed, 2 seeds)" in " ".join(result.output.split())
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["format"] == "graftlab.compare-tokens/1" and results["status"] == "complete"
    assert [(r["strategy"], r["seed"]) for r in results["runs"]] == [
        ("head_only", 0), ("last_k", 0), ("head_only", 1), ("last_k", 1)]
    assert results["test"] == 6 and all(r["train"]["lr"] == 0.05 for r in results["runs"])
    for row in results["summary"]:
        f1s = [100 * r["entity"]["micro"]["f1"] for r in results["runs"]
               if r["strategy"] == row["strategy"]]
        assert row["f1_mean"] == pytest.approx(statistics.mean(f1s))
        assert set(row["per_type"]) <= {"per", "loc"} and row["support"]["per"] == 5
    best = max(results["summary"], key=lambda r: r["f1_mean"])["strategy"]
    assert results["recommended"] == best == results["model"]["strategy"]
    assert TokenTagger.load(folder / "model").strategy == best
    assert not (folder / ".taggers").exists()  # the other strategies' taggers are gone
    md = (folder / "report.md").read_text()
    assert "## Entity F1 per type (%)" in md and "| loc |" in md.replace("  ", " ")
    assert "<svg" in (folder / "report.html").read_text()
    assert (folder / "figures" / "types.svg").read_text().startswith("<svg")


@pytest.mark.parametrize("args, message", [
    (["--strategies", "linear_probe"], "linear_probe pools a whole text"),
    (["--limit", "10"], "--limit cannot be used when comparing token taggers"),
    (["--backbone", "efficientnet_lite0"], "is not a text encoder"),
    (["--strategies", ","], "no strategies to compare"),
    (["--strategies", "head_only,lora,head_only"], "names 'head_only' more than once"),
    (["--text-column", "sentence"], "--text-column cannot be used when comparing token taggers"),
    (["--label-column", "ner"], "a multi-column CoNLL file: data.column=-1 names the tag's"),
])
def test_a_token_comparison_refuses_what_it_cannot_do(tmp_path, args, message):
    train = write_conll(tmp_path / "train.conll", 3)
    result = CliRunner().invoke(app, ["compare", "--data", str(train), "--backbone",
                                      "minilm_l6", *args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def _multitask_config(tmp_path, train: str = "") -> str:
    good = ["a great film", "truly wonderful", "lovely acting", "superb and moving"]
    bad = ["awful and dull", "boring mess", "terrible plot", "a waste of time"]
    sent = tmp_path / "sentiment.csv"
    sent.write_text("text,label\n" + "".join(f"{t},pos\n" for t in good * 2)
                    + "".join(f"{t},neg\n" for t in bad * 2))
    rate = tmp_path / "rating.csv"
    rate.write_text("text,stars\n" + "".join(f"{t},{3.0 - 0.2 * i}\n" for i, t in enumerate(good))
                    + "".join(f"{t},{-3.0 + 0.2 * i}\n" for i, t in enumerate(bad)))
    config = tmp_path / "mt.yaml"
    config.write_text(
        "tasks:\n"
        f"  - {{name: sentiment, type: classification, data: {sent}}}\n"
        f"  - {{name: rating, type: regression, data: {rate}, target_column: stars}}\n"
        "model: {max_length: 16, shared: 8}\n"
        f"train: {{epochs: 1, batch_size: 8, test_size: 0.3{train}}}\n"
        f"runs_dir: {tmp_path / 'runs'}\n")
    return str(config)


@pytest.mark.slow  # MiniLM end to end, four models
def test_compare_on_a_multitask_config_puts_each_strategy_beside_single_task_models(tmp_path):
    config = _multitask_config(tmp_path)
    result = CliRunner().invoke(app, ["compare", config, "--strategies", "head_only,last_k",
                                      "--seeds", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == [
        "multi-task, equal (head_only)", "single-task: sentiment (head_only)",
        "single-task: rating (head_only)", "multi-task, equal (last_k)",
        "single-task: sentiment (last_k)", "single-task: rating (last_k)"]
    assert {r["strategy"] for r in results["runs"]} == {"head_only", "last_k"}
    assert set(results["summary"][4]["metrics"]) == {"sentiment.accuracy", "sentiment.macro_f1"}
    assert "sentiment accuracy" in (folder / "summary.md").read_text()
    assert "<svg" in (folder / "report.html").read_text()
    assert (folder / "figures" / "tasks.svg").exists()


@pytest.mark.parametrize("args, message", [
    (["--limit", "10"], "--limit cannot be used with a multi-task config"),
    (["--strategies", "head_only,linear_probe"], "'linear_probe' solves one linear head"),
    (["--strategies", "head_only,head_only"], "names 'head_only' more than once"),
    (["--strategies", ","], "model.strategy names no strategy"),
])
def test_a_multitask_comparison_refuses_what_it_cannot_do(tmp_path, args, message):
    result = CliRunner().invoke(app, ["compare", _multitask_config(tmp_path), *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_task_tokens_reads_a_tagged_file_of_any_suffix(tiny_tagging_bert, tmp_path):
    train = write_conll(tmp_path / "train.txt", 3)
    assert not is_tagged(train)
    result = CliRunner().invoke(app, [
        "compare", "--data", str(train), "--task", "tokens", "--backbone", tiny_tagging_bert,
        "--strategies", "head_only", "--seeds", "1", "--epochs", "1", "--no-scratch",
        "--test-size", "0.34", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["test_data"] == f"34% of {train} held out (seed 0)"
    assert results["fixed_test"] and results["train"] + results["test"] == 18


def test_without_a_backbone_a_token_comparison_takes_minilm(tmp_path):
    train = write_conll(tmp_path / "train.conll", 3)
    result = CliRunner().invoke(app, ["compare", "--data", str(train), "--strategies",
                                      "head_only", "--seeds", "1", "--epochs", "1",
                                      "--no-scratch", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    assert json.loads((folder / "results.json").read_text())["config"]["model"][
        "backbone"] == "minilm_l6"


def _ctrl_c_at(cls, n: int, monkeypatch) -> None:
    """The ``n``-th ``cls.fit`` raises KeyboardInterrupt, as a Ctrl-C there would."""
    fit, calls = cls.fit, []

    def stop(self, *args, **kw):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return fit(self, *args, **kw)

    monkeypatch.setattr(cls, "fit", stop)


def test_ctrl_c_keeps_the_token_runs_that_finished(tiny_tagging_bert, tmp_path, monkeypatch):
    from graftlab.workflows.compare import CompareInterrupted

    train = write_conll(tmp_path / "train.conll", 3)
    _ctrl_c_at(TokenTagger, 2, monkeypatch)
    result = CliRunner().invoke(app, [
        "compare", "--data", str(train), "--backbone", tiny_tagging_bert, "--strategies",
        "head_only,last_k", "--seeds", "1", "--epochs", "1", "--no-scratch",
        "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 130 and "report of the 1 finished run(s)" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "interrupted" and len(results["runs"]) == 1
    assert results["model"]["strategy"] == "head_only" and (folder / "report.md").exists()
    assert TokenTagger.load(folder / "model").strategy == "head_only"
    assert not (folder / ".taggers").exists()
    assert isinstance(CompareInterrupted(results), KeyboardInterrupt)


def test_a_sigterm_stops_a_comparison_as_cleanly_as_a_ctrl_c(tiny_tagging_bert, tmp_path,
                                                            monkeypatch):
    """``timeout``, ``kill`` or a job scheduler: the finished runs keep their report and the
    folder says interrupted, not running; the command's SIGTERM handler is put back after."""
    import os
    import signal

    fit, calls = TokenTagger.fit, []

    def terminated(self, *args, **kw):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return fit(self, *args, **kw)

    monkeypatch.setattr(TokenTagger, "fit", terminated)
    caught = []  # without graftlab's own handler the signal lands here, not on pytest
    before = signal.signal(signal.SIGTERM, lambda signum, _frame: caught.append(signum))
    try:
        result = CliRunner().invoke(app, [
            "compare", "--data", str(write_conll(tmp_path / "train.conll", 3)), "--backbone",
            tiny_tagging_bert, "--strategies", "head_only,last_k", "--seeds", "1", "--epochs",
            "1", "--no-scratch", "--runs-dir", str(tmp_path / "runs")])
        restored = signal.getsignal(signal.SIGTERM)
    finally:
        fallback = signal.signal(signal.SIGTERM, before)
    assert result.exit_code == 130 and "report of the 1 finished run(s)" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "interrupted" and len(results["runs"]) == 1
    assert (folder / "report.md").exists() and caught == []
    assert restored is fallback


def test_the_graftlab_command_exits_143_after_a_sigterm(tiny_tagging_bert, tmp_path,
                                                      monkeypatch, capsys):
    """128 + SIGTERM, as a process the signal ended would (a Ctrl-C exits 130)."""
    import os
    import signal
    import sys

    from graftlab.cli.app import main

    fit = TokenTagger.fit

    def terminated(self, *args, **kw):
        os.kill(os.getpid(), signal.SIGTERM)
        return fit(self, *args, **kw)

    monkeypatch.setattr(TokenTagger, "fit", terminated)
    monkeypatch.setattr(sys, "argv", [
        "graftlab", "compare", "--data", str(write_conll(tmp_path / "train.conll", 3)),
        "--backbone", tiny_tagging_bert, "--strategies", "head_only", "--seeds", "1",
        "--epochs", "1", "--no-scratch", "--runs-dir", str(tmp_path / "runs")])
    caught = []
    before = signal.signal(signal.SIGTERM, lambda signum, _frame: caught.append(signum))
    try:
        with pytest.raises(SystemExit) as stop:
            main()
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stop.value.code == 143 and caught == []
    assert "interrupted" in capsys.readouterr().err


def test_ctrl_c_keeps_the_multitask_runs_that_finished(tiny_tagging_bert, tmp_path,
                                                       monkeypatch):
    from graftlab.multitask import MultiTaskGrafter

    _ctrl_c_at(MultiTaskGrafter, 3, monkeypatch)
    result = CliRunner().invoke(app, ["compare", _multitask_config(tmp_path), "--backbone",
                                      tiny_tagging_bert, "--seeds", "1"])
    assert result.exit_code != 0
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "interrupted" and len(results["runs"]) == 2
    assert [r["model"] for r in results["summary"]] == ["multi-task, equal",
                                                        "single-task: sentiment"]
    assert (folder / "report.html").exists() and (folder / "model").is_dir()


def test_single_task_false_in_the_file_is_kept_and_other_yaml_goes_to_compare(
        tiny_tagging_bert, tmp_path):
    config = _multitask_config(tmp_path, train=", single_task: false")
    result = CliRunner().invoke(app, ["compare", config, "--backbone", tiny_tagging_bert,
                                      "--strategies", "head_only,last_k", "--seeds", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == ["multi-task, equal (head_only)",
                                                        "multi-task, equal (last_k)"]
    plain = tmp_path / "plain.yaml"
    plain.write_text("data: {path: missing.csv}\nmodel: {backbon: minilm_l6}\n")
    result = CliRunner().invoke(app, ["compare", str(plain)])
    assert result.exit_code == 2 and "model.backbon" in result.output  # CompareConfig's check


def test_a_multi_column_conll_file_is_compared_with_its_tag_column(tiny_tagging_bert, tmp_path):
    """CoNLL 2003's layout (word, POS, chunk, NER): data.column=-1 reads the last as the tag,
    as graftlab tag does; without it the file is refused naming the option."""
    from tests._tagged import SENTENCES, TAGS

    blocks = ["\n".join(f"{w} NN I-NP {t}" for w, t in zip(words, tags, strict=True))
              for words, tags in zip(SENTENCES, TAGS, strict=True)]
    train = tmp_path / "train.conll"
    train.write_text("-DOCSTART- -X- -X- O\n\n" + "\n\n".join(blocks * 3) + "\n")
    args = ["compare", "--data", str(train), "--backbone", tiny_tagging_bert, "--strategies",
            "head_only", "--seeds", "1", "--epochs", "1", "--no-scratch",
            "--runs-dir", str(tmp_path / "runs")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "data.column=-1" in " ".join(refused.output.split())
    result = CliRunner().invoke(app, [*args, "data.column=-1"])
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["train"] + results["test"] == 18 and results["config"]["data"]["column"] == -1


def test_data_column_is_refused_where_the_data_is_not_tagged(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n"
                                             for i in range(6)))
    result = CliRunner().invoke(app, ["compare", "--data", str(data), "--backbone", "minilm_l6",
                                      "data.column=-1", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "data.column=-1 names the tag's column" in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()
