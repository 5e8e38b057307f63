"""graftlab predict and graftlab export on the command line: folders, tables and stdin in; CSV or
JSONL out, streamed in chunks, written whole or not at all; every refusal as exit code 2."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TEXTS, squares
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.deploy import batch
from graftlab.deploy.predictor import Predictor


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args, code: int = 0, stdin: str | None = None):
        result = runner.invoke(app, [str(a) for a in args], input=stdin)
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def pngs(tmp_path):
    """Loose and nested PNGs of several sizes, unlabelled."""
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    x, _ = squares(6)
    other = np.random.default_rng(4).integers(0, 256, (2, 40, 52, 3), dtype=np.uint8)
    for rel, img in [("1.png", x[0]), ("a/2.png", x[1]), ("a/b/3.png", other[0]),
                     ("a/b/4.png", x[2]), ("5.png", other[1])]:
        Image.fromarray(img).save(root / rel)
    return root


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([["review", "stars"], *[[t, 3] for t in TEXTS]])
    return path


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("which", ["models", "exported"])
def test_a_folder_of_pngs_to_csv(request, cli, pngs, tmp_path, which):
    model = request.getfixturevalue(which)["image"]
    out = tmp_path / "pred.csv"
    result = cli("predict", model, pngs, "--out", out, "--batch-size", "2")
    assert f"5 predictions written to {out}" in result.stdout
    rows = _csv(out)
    files = sorted(str(p) for p in pngs.rglob("*.png"))
    assert [r["id"] for r in rows] == files
    assert list(rows[0]) == ["id", "label", "prob_br", "prob_tl", "prob_tr"]
    expected = Predictor.load(model).predict_proba(files)
    got = np.array([[float(r[f"prob_{c}"]) for c in ("br", "tl", "tr")] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["label"] for r in rows] == [["br", "tl", "tr"][i] for i in expected.argmax(1)]


def test_a_csv_to_jsonl_with_row_numbers(cli, models, reviews, tmp_path):
    out = tmp_path / "pred.jsonl"
    cli("predict", models["text"], reviews, "--out", out, "--text-column", "review")
    rows = _jsonl(out.read_text())
    assert [r["id"] for r in rows] == list(range(1, 11))
    expected = Predictor.load(models["text"]).predict(TEXTS)
    assert [r["label"] for r in rows] == expected.tolist()
    assert all(abs(r["prob_neg"] + r["prob_pos"] - 1) < 1e-5 for r in rows)


def test_stdout_is_jsonl_by_default_and_stdin_takes_texts(cli, models):
    result = cli("predict", models["text"], "-", stdin="good film\n\nawful plot\n")
    rows = _jsonl(result.stdout)
    assert [r["id"] for r in rows] == [1, 3]  # line numbers; the blank line is skipped
    assert [r["label"] for r in rows] == Predictor.load(models["text"]).predict(
        ["good film", "awful plot"]).tolist()
    assert "2 predictions" in result.stderr


def test_a_txt_file_holds_one_text_a_line(cli, models, tmp_path):
    (tmp_path / "texts.txt").write_text("good film\nawful plot\n")
    rows = _jsonl(cli("predict", models["text"], tmp_path / "texts.txt").stdout)
    assert [r["id"] for r in rows] == [1, 2]
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    assert "latin1.txt' is not UTF-8 text" in cli("predict", models["text"],
                                                   tmp_path / "latin1.txt", code=2).stderr


def test_stdin_takes_image_paths_for_an_image_model(cli, models, pngs):
    files = sorted(str(p) for p in pngs.rglob("*.png"))[:2]
    rows = _jsonl(cli("predict", models["image"], "-", stdin="\n".join(files) + "\n").stdout)
    assert [r["id"] for r in rows] == files


def test_a_regressor_writes_values(cli, models, reviews, tmp_path):
    out = tmp_path / "pred.csv"
    cli("predict", models["regressor"], reviews, "--out", out, "--text-column", "review")
    rows = _csv(out)
    assert list(rows[0]) == ["id", "value"]
    expected = Predictor.load(models["regressor"]).predict(TEXTS)
    np.testing.assert_allclose([float(r["value"]) for r in rows], expected, rtol=1e-5)


def test_unreadable_images_are_listed_or_skipped(cli, models, pngs, tmp_path):
    (pngs / "a" / "broken.png").write_text("not a png")
    result = cli("predict", models["image"], pngs, code=2)
    assert "1 image file in" in result.stderr and "a/broken.png (not an image Pillow can " \
        "identify)" in result.stderr and "--skip-corrupt" in result.stderr
    out = tmp_path / "pred.csv"
    result = cli("predict", models["image"], pngs, "--out", out, "--skip-corrupt")
    assert len(_csv(out)) == 5
    assert "skipped 1 unreadable file(s) (--skip-corrupt):" in result.stderr
    assert "broken.png" in result.stderr


@pytest.mark.parametrize("name,data,message", [
    ("image", "reviews", r"reviews\.csv' is a table of texts, but the model takes images"),
    ("text", "pngs", r"photos' is a folder \(of images\?\), but the model takes texts"),
    ("image", "-", r"line 1 of stdin: 'a great film' is not an image file \(no such file\), "
                   r"and the model takes images"),
])
def test_data_of_the_other_modality_is_named(request, cli, models, name, data, message):
    data = data if data == "-" else request.getfixturevalue(data)
    result = cli("predict", models[name], data, "--text-column", "review", code=2,
                 stdin="a great film\n")
    assert re.search(message, " ".join(result.stderr.split())), result.stderr


def test_empty_inputs_are_refused(cli, models, tmp_path):
    (tmp_path / "empty.csv").write_text("text\n")
    assert "is empty: it holds no data rows" in cli(
        "predict", models["text"], tmp_path / "empty.csv", code=2).stderr
    assert "stdin holds no input to predict" in cli(
        "predict", models["text"], "-", stdin="\n\n", code=2).stderr
    (tmp_path / "nothing").mkdir()
    assert "holds no images" in cli("predict", models["image"], tmp_path / "nothing",
                                    code=2).stderr
    out = tmp_path / "pred.csv"
    cli("predict", models["text"], "-", "--out", out, stdin="", code=2)
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["--out", "pred.txt"], "is neither .csv nor .jsonl"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    (["--text-column", "body"], "column(s) 'body' not found in"),
])
def test_options_are_checked(cli, models, reviews, tmp_path, args, message):
    args = [str(tmp_path / a) if a.endswith(".txt") else a for a in args]
    result = cli("predict", models["text"], reviews, *args, code=2)
    assert message in " ".join(result.stderr.split())


def test_a_missing_model_is_named(cli, reviews, tmp_path):
    result = cli("predict", tmp_path / "nope", reviews, code=2)
    assert "nope does not exist" in result.stderr and "HINT: give a saved model" in result.stderr


# ---------------------------------------------------------------------- streaming
class _Counting:
    """A generator of inputs that counts how many were taken."""

    def __init__(self, n):
        self.taken, self.n = 0, n

    def __iter__(self):
        for i in range(self.n):
            self.taken += 1
            yield i, TEXTS[i % len(TEXTS)]


def test_inputs_are_read_lazily_a_chunk_at_a_time(models, monkeypatch):
    p = Predictor.load(models["text"])
    sizes = []
    proba = p.predict_proba
    monkeypatch.setattr(p, "predict_proba", lambda x: sizes.append(len(x)) or proba(x))
    source = _Counting(1000)
    rows = batch.predict_rows(p, source, batch_size=4)
    first = next(rows)
    assert first["id"] == 0 and source.taken == 4  # one chunk read, not the 1,000
    assert len(list(itertools.islice(rows, 10))) == 10 and source.taken == 12
    assert sizes == [4, 4, 4]


def test_an_interrupted_run_leaves_no_half_file(models, tmp_path, monkeypatch):
    p = Predictor.load(models["text"])
    out = tmp_path / "pred.csv"
    out.write_text("an earlier result\n")
    calls = []

    def fail_on_the_third_chunk(x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.full((len(x), 2), 0.5, np.float32)

    monkeypatch.setattr(p, "predict_proba", fail_on_the_third_chunk)
    source = batch.Source("gen", iter(_Counting(100)))
    with pytest.raises(KeyboardInterrupt):
        batch.predict_to(p, source, out, batch_size=4)
    assert out.read_text() == "an earlier result\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["pred.csv"]


def test_the_progress_bar_is_drawn_on_a_terminal_only(cli, models, reviews, monkeypatch):
    """Off a terminal a plain line stands for the bar (the first update, then one each 10 s)."""
    cli_app = sys.modules["graftlab.cli.app"]  # the module (graftlab.cli.app is the Typer)
    plain = cli("predict", models["text"], reviews, "--text-column", "review")
    assert re.search(r"^\[\d+s\] predict \S+: \d+$", plain.stderr, re.M), plain.stderr
    assert "━" not in plain.stderr and '"label"' not in plain.stderr
    monkeypatch.setattr(cli_app.err, "_force_terminal", True)
    drawn = cli("predict", models["text"], reviews, "--text-column", "review")
    assert "predict " in drawn.stderr and '"label"' not in drawn.stderr  # the bar, no rows
    assert _jsonl(drawn.stdout) == _jsonl(plain.stdout)  # stdout keeps every row


def test_importing_the_cli_loads_no_deploy_code():
    code = ("import sys, graftlab.cli; loaded = [m for m in ('graftlab.deploy', 'numpy', "
            "'torch', 'onnxruntime') if m in sys.modules]; print(loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- export
def test_export_on_the_command_line(cli, models, tmp_path):
    result = cli("export", models["text"], "--out", tmp_path / "x")
    text = " ".join(result.stdout.split())
    assert f"exported {models['text']} to {tmp_path / 'x'}" in text
    assert "parity on 8 inputs of synthetic" in text and "every prediction the same" in text
    rows = _jsonl(cli("predict", tmp_path / "x", "-", stdin="good film\n").stdout)
    assert rows[0]["label"] == Predictor.load(models["text"]).predict(["good film"])[0]
    result = cli("export", models["text"], "--out", tmp_path / "x", code=2)
    assert "exists and is not an empty folder" in result.stderr


def test_out_is_never_the_input_and_never_replaced_unasked(cli, models, reviews, tmp_path):
    before = reviews.read_text()
    result = cli("predict", models["text"], reviews, "--out", reviews, "--text-column",
                 "review", "--overwrite", code=2)
    assert "is the input file" in " ".join(result.stderr.split())
    assert reviews.read_text() == before
    out = tmp_path / "pred.csv"
    out.write_text("mine\n")
    result = cli("predict", models["text"], reviews, "--out", out, "--text-column", "review",
                 code=2)
    assert "exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_text() == "mine\n"
    cli("predict", models["text"], reviews, "--out", out, "--text-column", "review",
        "--overwrite")
    assert out.read_text().startswith("id,label")


def test_a_text_that_is_not_unicode_is_named_not_a_traceback(cli, models):
    from graftlab.deploy.payload import Limits, Refused, _text
    from graftlab.errors import DataError

    with pytest.raises(DataError, match="input 1: character 3 .* is a lone surrogate"):
        Predictor.load(models["text"]).predict(["good film", "caf\udce9"])
    with pytest.raises(Refused) as refused:  # serve: a 422, not a 500
        _text("caf\udce9", 0, Limits())
    assert refused.value.status == 422
    result = cli("predict", models["text"], "-", stdin=b"good film\ncaf\xe9\n", code=2)
    assert "line 2 of stdin is not UTF-8" in result.stderr and "Traceback" not in result.output


def test_an_image_named_in_another_encoding_keeps_its_bytes_in_the_csv(cli, models, tmp_path):
    folder = tmp_path / "latin"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name on a UTF-8 system
    Image.fromarray(squares(1)[0][0]).save(folder / name)
    out = tmp_path / "pred.csv"
    cli("predict", models["image"], folder, "--out", out)
    assert b"caf\xe9.png" in out.read_bytes()


def test_a_closed_pipe_ends_predict_quietly(models):
    graftlab = Path(sys.executable).with_name("graftlab")
    line = (f"yes 'good film' | head -5000 | {graftlab} predict {models['text']} - "
            "--batch-size 8 | head -1; echo rc=${PIPESTATUS[2]} >&2")
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300)
    assert done.stdout.count("\n") == 1 and '"id": 1' in done.stdout
    assert "rc=141" in done.stderr and "error" not in done.stderr  # as SIGPIPE would end it


def test_a_series_of_texts_a_tsv_and_an_empty_image_are_handled_by_name(cli, models, tmp_path):
    import pandas as pd

    from graftlab.errors import DataError

    p = Predictor.load(models["text"])
    assert p.predict(pd.Series(["good film", "awful plot"])).tolist() == p.predict(
        ["good film", "awful plot"]).tolist()
    tsv = tmp_path / "t.tsv"
    tsv.write_text("text\tlabel\ngood\tpos\n")
    result = cli("predict", models["text"], tsv, code=2)
    assert "predict reads texts from .csv and .jsonl" in " ".join(result.stderr.split())
    with pytest.raises(DataError, match=r"input 0 is an empty image"):
        Predictor.load(models["image"]).predict([np.zeros((0, 28, 3), np.uint8)])
