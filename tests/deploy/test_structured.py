"""A TokenTagger and a MultiTaskGrafter through the deployment path: Predictor on the saved model
answers as the estimator does, the export answers the same, graftlab predict's columns, one
request to graftlab serve each, and the refusals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import TAG_TAGS, TAG_TEXTS, TEXTS, squares
from test_serve import running

from typer.testing import CliRunner

from graftlab import TokenTagger
from graftlab.cli import app
from graftlab.deploy import structured as st
from graftlab.deploy.export import export
from graftlab.deploy.predictor import Predictor
from graftlab.deploy.serve import create_app
from graftlab.errors import ConfigError, DataError
from graftlab.integrity import read_json
from graftlab.multitask import MultiTaskGrafter


def test_a_tagger_predicts_as_the_estimator_and_its_export_the_same(structured):
    words = [t.split() for t in TAG_TEXTS]
    expected = TokenTagger.load(structured["tagger"]).predict(words)
    eager = Predictor.load(structured["tagger"])
    onnx = Predictor.load(structured["tagger_export"])
    assert (eager.task, onnx.task, eager.labels) == ("tagging", "tagging", ["B-obj", "I-obj", "O"])
    assert eager.predict(TAG_TEXTS) == expected == eager.predict(words)  # texts or words
    assert onnx.predict(TAG_TEXTS) == expected
    answers = onnx.details(["good film and bad plot", ["a", "film"]])
    assert answers == eager.details(["good film and bad plot", ["a", "film"]])
    first = answers[0]
    assert first["words"] == ["good", "film", "and", "bad", "plot"]
    assert len(first["tags"]) == 5
    for entity in first["entities"]:  # each entity's text is its words
        assert entity["text"] == " ".join(first["words"][entity["start"]:entity["end"]])
        assert first["tags"][entity["start"]] == f"B-{entity['type']}"
    assert onnx.details([""]) == [{"words": [], "tags": [], "entities": []}]
    assert onnx.predict([]) == eager.predict([]) == []
    contract = read_json(structured["tagger_export"] / "contract.json")
    assert (contract["task"], contract["output"], contract["labels"]) == (
        "tagging", "token_logits", ["B-obj", "I-obj", "O"])
    assert contract["outputs"]["token_logits"] == ["batch", "tokens", 3]
    assert "tokenizer.json" in contract["inputs"]["tokenizer_files"]
    assert contract["parity"]["max_abs_diff"] <= 1e-4


def test_inputs_are_texts_or_lists_of_words():
    assert st.sentences(["New York  now", ("in", "Paris")]) == [["New", "York", "now"],
                                                                ["in", "Paris"]]
    with pytest.raises(DataError, match="input 1 is a list of words whose 'two words' is not "
                                        "one word"):
        st.sentences(["fine", ["two words"]])
    with pytest.raises(DataError, match="input 0 is an empty list"):
        st.sentences([[]])


def test_a_multitask_model_predicts_as_the_estimator_and_its_export_the_same(structured):
    est = MultiTaskGrafter.load(structured["multitask"])
    expected, proba = est.predict(TEXTS), est.predict_proba(TEXTS)
    eager = Predictor.load(structured["multitask"])
    onnx = Predictor.load(structured["multitask_export"])
    assert (eager.task, onnx.task, eager.labels) == ("multitask", "multitask", None)
    assert eager.tasks == onnx.tasks == read_json(structured["multitask"] / "config.json")[
        "outputs"]
    for p in (eager, onnx):
        answers = p.predict(TEXTS)
        assert [a["sentiment"] for a in answers] == expected["sentiment"].tolist()
        np.testing.assert_allclose([a["rating"] for a in answers], expected["rating"],
                                   atol=1e-4)
        got = p.predict_proba(TEXTS)
        assert set(got) == {"sentiment"}
        np.testing.assert_allclose(got["sentiment"], proba["sentiment"], atol=1e-4)
    assert onnx.predict([]) == []
    detail = onnx.details(TEXTS[:1])[0]["tasks"]
    assert set(detail["sentiment"]) == {"label", "probabilities"} and set(detail["rating"]) == {
        "value"}
    contract = read_json(structured["multitask_export"] / "contract.json")
    assert contract["tasks"] == eager.tasks and contract["task"] == "multitask"
    assert contract["outputs"]["task_outputs"] == ["batch", 3]
    assert [t["name"] for t in contract["card"]["tasks"]] == ["sentiment", "rating"]


def test_the_refusals_name_the_fix(structured, models, tmp_path):
    tagger = Predictor.load(structured["tagger"])
    with pytest.raises(ConfigError, match="tag per word.*\n.*details"):
        tagger.predict_proba(["a film"])
    with pytest.raises(DataError, match="input 0 is a int; a tagging model takes texts"):
        tagger.predict([3])
    with pytest.raises(ConfigError, match="details\\(\\) is for tagging and multi-task"):
        Predictor.load(models["text"]).details(["a film"])
    for name in ("tagger", "multitask"):
        with pytest.raises(ConfigError, match="--quantize: a .* model is not quantised"):
            export(structured[name], tmp_path / name, quantize="int8")
        assert not (tmp_path / name).exists()
    with pytest.raises(ConfigError, match="task 'spans' is of type 'tokens'.*\n.*"
                       "MultiTaskGrafter.load"):
        st.check_layout([{"name": "spans", "type": "tokens", "columns": [0, 3]}], "config.json")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_predict_writes_a_column_per_task_and_the_tags(structured, tmp_path, suffix):
    data = tmp_path / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TAG_TEXTS[:3]))
    for name in ("tagger_export", "multitask"):
        out = tmp_path / f"{name}{suffix}"
        result = CliRunner().invoke(app, ["predict", str(structured[name]), str(data),
                                          "--out", str(out)])
        assert result.exit_code == 0, result.output
        if suffix == ".csv":
            with open(out, newline="") as handle:
                reader = csv.DictReader(handle)
                rows, header = list(reader), reader.fieldnames
        else:
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            header = list(rows[0])
        p = Predictor.load(structured[name])
        assert header == st.columns(p) and len(rows) == 3
        if name == "tagger_export":
            assert header == ["id", "tags", "entities"]
            answers = p.details(TAG_TEXTS[:3])
            assert [r["tags"] for r in rows] == [" ".join(a["tags"]) for a in answers]
            entities = [json.loads(r["entities"]) if suffix == ".csv" else r["entities"]
                        for r in rows]
            assert entities == [a["entities"] for a in answers]
        else:
            assert header == ["id", "sentiment", "sentiment_prob_neg", "sentiment_prob_pos",
                              "rating"]
            answers = p.predict(TAG_TEXTS[:3])
            assert [r["sentiment"] for r in rows] == [a["sentiment"] for a in answers]
            np.testing.assert_allclose([float(r["rating"]) for r in rows],
                                       [a["rating"] for a in answers], rtol=1e-5)


def test_predict_reads_a_conll_file_for_a_tagger_and_refuses_it_for_a_classifier(
        structured, models, tmp_path, caplog):
    data = tmp_path / "test.conll"  # a tag column (ignored), a DOCSTART, blank-line sentences
    data.write_text("-DOCSTART-\tO\n\ngood\tO\nfilm\tB-obj\n\n\nbad\tO\nplot\tB-obj\n"
                    "now\tO\n")
    out = tmp_path / "tags.jsonl"
    result = CliRunner().invoke(app, ["predict", str(structured["tagger"]), str(data),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    answers = Predictor.load(structured["tagger"]).details([["good", "film"],
                                                            ["bad", "plot", "now"]])
    assert [r["id"] for r in rows] == [3, 7]  # the line of each sentence's first word
    assert [r["tags"] for r in rows] == [" ".join(a["tags"]) for a in answers]
    assert [len(r["tags"].split()) for r in rows] == [2, 3]
    refused = CliRunner().invoke(app, ["predict", str(models["text"]), str(data)])
    assert refused.exit_code == 2
    assert "holds sentences a word a line (CoNLL), but this model is not a tagger" in \
        " ".join(refused.output.split())
    # the same file by another name: a .txt is read a line a text, and said; a .tsv refused
    txt = tmp_path / "test.txt"
    txt.write_text(data.read_text())
    said = CliRunner().invoke(app, ["predict", str(structured["tagger"]), str(txt)])
    assert said.exit_code == 0 and "looks like a CoNLL file" in caplog.text
    tsv = tmp_path / "test.tsv"
    tsv.write_text(data.read_text())
    refused = CliRunner().invoke(app, ["predict", str(structured["tagger"]), str(tsv)])
    assert refused.exit_code == 2 and "rename it .conll" in " ".join(refused.output.split())


def test_a_file_of_words_is_read_a_sentence_at_a_time_and_its_problems_named(tmp_path):
    from graftlab.data.tagged import iter_word_sentences

    conllu = tmp_path / "t.conllu"  # comments, a multi-word token, an empty node: skipped
    conllu.write_text("# sent_id = 1\n1\tNew\tnew\tPROPN\n2\tYork\tyork\tPROPN\n\n"
                      "# sent_id = 2\n1-2\tdon't\t_\n1\tdo\tdo\n2\tn't\tnot\n2.1\tx\tx\n")
    assert list(iter_word_sentences(conllu)) == [(2, ["New", "York"]), (7, ["do", "n't"])]
    spaced = tmp_path / "spaced.conll"
    spaced.write_text("a\tO\nNew York\tB-loc\n")
    with pytest.raises(DataError, match="spaced.conll:2: the word 'New York' is not one word"):
        list(iter_word_sentences(spaced))
    latin = tmp_path / "latin.bio"
    latin.write_bytes("caf\u00e9\tO\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin.bio' is not UTF-8 text"):
        list(iter_word_sentences(latin))


def test_a_tagger_exports_with_a_conll_sample(structured, tmp_path):
    data = tmp_path / "sample.conll"
    data.write_text("good\tO\nfilm\tB-obj\n\nbad\tO\nplot\tB-obj\n")
    done = export(structured["tagger"], tmp_path / "exported", sample=str(data))
    assert done.samples == 2 and done.sample == f"{data} (first 2)"
    assert read_json(done.folder / "contract.json")["parity"]["sample"] == done.sample


def test_serve_answers_tags_and_tasks(structured):
    for name in ("tagger", "multitask_export"):
        p = Predictor.load(structured[name])
        with running(create_app(p)) as client:
            info = client.get("/info").json()
            answer = client.post("/predict", json={"inputs": TAG_TEXTS[:2]})
            if name == "tagger":  # lists of words too; a word with a space is refused
                words = client.post("/predict", json={"inputs": [["a", "film"], "a film"]})
                bad = client.post("/predict", json={"inputs": [["a film"]]})
                schema = client.get("/openapi.json").json()
        assert answer.status_code == 200
        assert answer.json()["predictions"] == json.loads(json.dumps(p.details(TAG_TEXTS[:2])))
        if name == "tagger":
            assert info["task"] == "tagging" and info["labels"] == ["B-obj", "I-obj", "O"]
            assert "lists of words" in info["accepts"]
            first, second = words.json()["predictions"]
            assert first == second and first["words"] == ["a", "film"]
            assert bad.status_code == 422
            assert "word 'a film' is not one word" in bad.json()["detail"]
            body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
            assert "anyOf" in body["application/json"]["schema"]["properties"]["inputs"]["items"]
        else:
            assert info["task"] == "multitask"
            assert [t["name"] for t in info["tasks"]] == ["sentiment", "rating"]


def test_an_estimator_the_predictor_does_not_load_is_named(models, tmp_path):
    import shutil

    folder = shutil.copytree(models["text"], tmp_path / "other")
    config = read_json(folder / "config.json")
    (folder / "config.json").write_text(json.dumps({**config, "estimator": "Segmenter"}))
    with pytest.raises(ConfigError, match="holds a 'Segmenter'; a Predictor loads Grafter, "
                       "GrafterRegressor, TokenTagger, MultiTaskGrafter.\nHINT: save the model "
                       "with the .save of one of them."):
        Predictor.load(folder)


def test_an_image_multitask_model_exports_and_answers_the_same(models, tmp_path):
    x, y = squares(12)
    weights = str(models["bert"].parent / "lite0-random.pth")  # the image fixture's weights
    est = MultiTaskGrafter(tasks={"corner": "classification", "row": "regression"},
                           epochs=1, batch_size=8, backbone="efficientnet_lite0",
                           backbone_options={"image_size": 32, "weights": weights})
    est.fit(x, {"corner": y, "row": np.arange(len(y), dtype=float)}).save(tmp_path / "m")
    done = export(tmp_path / "m", tmp_path / "exported")
    eager, onnx = Predictor.load(tmp_path / "m"), Predictor.load(done.folder)
    assert eager.modality == onnx.modality == "image" and done.max_abs_diff <= 1e-4
    expected = est.predict(x)
    for p in (eager, onnx):
        answers = p.predict(x)
        assert [a["corner"] for a in answers] == expected["corner"].tolist()
        np.testing.assert_allclose([a["row"] for a in answers], expected["row"], atol=1e-3)


@pytest.mark.slow  # a real pretrained backbone (MiniLM, six layers) through the ONNX exporter
def test_a_minilm_tagger_exports_with_parity(tmp_path):
    words = [t.split() for t in TAG_TEXTS]
    est = TokenTagger(backbone="minilm_l6", epochs=1, batch_size=3).fit(words, TAG_TAGS)
    est.save(tmp_path / "tagger")
    done = export(tmp_path / "tagger", tmp_path / "exported")
    assert done.max_abs_diff <= 1e-4
    texts = ["Paris in June", "the film was good", "naïve café, 2024!"]
    assert Predictor.load(done.folder).predict(texts) == est.predict([t.split() for t in texts])


def _fake(outputs, **kw):
    import types

    return types.SimpleNamespace(outputs=lambda _: outputs, output="logits", **kw)


def test_parity_names_the_task_and_the_token_that_differ():
    from graftlab.deploy.export import ExportError, parity

    layout = [{"name": "mood", "type": "classification", "classes": ["neg", "pos"],
               "columns": [0, 2]},
              {"name": "rating", "type": "regression", "columns": [2, 3]}]
    multi = {"labels": None, "task": "multitask", "tasks": layout}
    a = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]], np.float32)
    with pytest.raises(ExportError, match="on sample input 1, the logit of 'rating' is 3 in "
                       "PyTorch and 3.01 in ONNX Runtime"):
        parity(_fake(a, **multi), _fake(a + [[0, 0, 0], [0, 0, 0.01]], **multi), [None, None])
    near = np.array([[0.0, 1.5e-4, 2.0], [0.0, 1.0, 3.0]], np.float32)  # within 1e-4 ...
    swapped = near + [[0.9e-4, -0.9e-4, 0], [0, 0, 0]]  # ... but the best class flips
    with pytest.raises(ExportError, match="on 1 of 2 sample inputs \\(first: input 0, "
                       "'mood:pos' in PyTorch, 'mood:neg' in ONNX Runtime\\)"):
        parity(_fake(near, **multi), _fake(swapped, **multi), [None, None])
    tags = {"labels": ["B-x", "O"], "task": "tagging", "tasks": None}
    tokens = [np.array([[0.0, 1.0]], np.float32),
              np.array([[0.0, 1.0], [1.5e-4, 0.0]], np.float32)]
    other = [tokens[0], np.array([[0.0, 1.0], [0.6e-4, 0.9e-4]], np.float32)]
    with pytest.raises(ExportError, match="on 1 of 2 sample inputs \\(first: input 1, 'B-x' in "
                       "PyTorch, 'O' in ONNX Runtime\\)"):
        parity(_fake(tokens, **tags), _fake(other, **tags), [None, None])
    assert parity(_fake(tokens, **tags), _fake(tokens, **tags), [None, None]) == 0.0


def test_a_tagging_request_of_the_wrong_kind_is_422():
    from graftlab.deploy.payload import WORDS, Limits, Refused, json_inputs

    assert json_inputs(b'{"inputs": ["a b", ["a", "b"]]}', WORDS, Limits()) == ["a b", ["a", "b"]]
    with pytest.raises(Refused, match="input 1 is a number; this tagging model takes texts or "
                       "lists of words.\nHINT: send JSON"):
        json_inputs(b'{"inputs": ["a", 5]}', WORDS, Limits())
    with pytest.raises(Refused, match="input 0 has 11 characters"):
        json_inputs(b'{"inputs": [["aaaaa", "bbbbb"]]}', WORDS, Limits(max_text_chars=10))


def test_words_past_the_models_tokens_are_counted_and_said(structured, caplog):
    eager = Predictor.load(structured["tagger"])
    long = " ".join(["film"] * 600)
    answer, short = eager.details([long, "good film"])
    assert len(answer["tags"]) == 600 and answer["unread_words"] > 0
    assert set(answer["tags"][-answer["unread_words"]:]) == {"O"}
    assert "unread_words" not in short
    assert "1 of 2 sentences are longer than the model's" in caplog.text


def test_a_jsonl_list_of_words_is_a_taggers_words_not_its_repr(structured, tmp_path):
    path = tmp_path / "tok.jsonl"
    path.write_text(json.dumps({"tokens": ["good", "film", "and", "bad", "plot"]}) + "\n")
    out = tmp_path / "tags.jsonl"
    result = CliRunner().invoke(app, ["predict", str(structured["tagger"]), str(path),
                                      "--text-column", "tokens", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    eager = Predictor.load(structured["tagger"]).details([["good", "film", "and", "bad",
                                                            "plot"]])[0]
    assert row["tags"] == " ".join(eager["tags"]) and len(row["tags"].split()) == 5


def test_a_bad_jsonl_row_is_named_by_its_id_not_its_place_in_a_chunk(structured, tmp_path):
    path = tmp_path / "words.jsonl"
    rows = [{"text": ["good", "film"]}] * 7 + [{"text": ["New York", "is", "big"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["predict", str(structured["tagger"]), str(path),
                                      "--batch-size", "3"])
    assert result.exit_code == 2
    assert "row 8 is a list of words whose 'New York' is not one word" in \
        " ".join(result.output.split())
