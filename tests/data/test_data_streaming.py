"""Reading data a piece at a time (graftlab predict): table rows one by one, a folder's image
files listed without decoding, and outputs written atomically as they are computed."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from graftlab import _atomic
from graftlab.data.folders import list_images, unreadable_headers
from graftlab.data.images import read_image
from graftlab.data.tables import iter_texts
from graftlab.errors import DataError


def test_iter_texts_reads_csv_rows_one_at_a_time(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('review,stars\n"good, really",5\nbad,1\n"two\nlines",3\n')
    rows = iter_texts(path, text_column="review")
    assert next(rows) == (1, "good, really")  # a generator: nothing read past the first row
    assert list(rows) == [(2, "bad"), (3, "two\nlines")]


def test_iter_texts_reads_jsonl_and_skips_blank_lines(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b", "label": 1}\n')
    assert list(iter_texts(path)) == [(1, "a"), (2, "b")]


@pytest.mark.parametrize("name,content,message", [
    ("t.csv", "review\nfine\n", r"column\(s\) 'text' not found in '.*t\.csv'; its columns are: "
                                r"'review'\.\nHINT: name the column that holds the texts with "
                                r"--text-column"),
    ("t.jsonl", '{"text": "a"}\n{"body": "b"}\n', r"column\(s\) 'text' not found in line 2 of "
                                                  r"'.*t\.jsonl'; its fields are: 'body'"),
    ("t.csv", "text\nfine\n\"\"\n", r"text column 'text' of '.*t\.csv' is empty at line\(s\) 3"),
    ("t.csv", "text;label\nfine;1\n", r"'.*t\.csv' seems to separate its columns with ';', "
                                      r"not commas: its header reads as the one column "
                                      r"'text;label'.*\nHINT: re-save it with commas"),
    ("t.csv", "text\tlabel\nfine\t1\n", r"separate its columns with tabs, not commas"),
    ("t.csv", "text\n", r"table '.*t\.csv' is empty: it holds no data rows"),
    ("t.jsonl", "[1, 2]\n", r"line 1 of '.*t\.jsonl' holds a JSON list, not an object"),
    ("t.txt", "hello\n", r"unsupported extension '\.txt'; tables must be \.csv or \.jsonl"),
])
def test_iter_texts_errors_name_the_row(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        list(iter_texts(path))


def test_iter_texts_refuses_a_table_that_is_not_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"text\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"is not UTF-8 text \(byte \d+\)"):
        list(iter_texts(path))


def test_list_images_finds_loose_and_nested_files_without_decoding(tmp_path):
    for rel in ("b.png", "sub/a.png", "sub/deeper/c.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("not an image suffix: ignored")
    (tmp_path / "broken.png").write_text("a .png that is not one")
    files = list_images(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "b.png", "broken.png", "sub/a.png", "sub/deeper/c.png"]
    assert [(f.name, p.reason) for f, p in unreadable_headers(files)] == [
        ("broken.png", "not an image Pillow can identify")]


def test_list_images_errors(tmp_path):
    with pytest.raises(DataError, match=r"no such image folder"):
        list_images(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no images"):
        list_images(tmp_path / "empty")


def test_read_image_takes_bytes_in_a_file_object():
    buffer = io.BytesIO()
    Image.new("RGB", (5, 3), (10, 20, 30)).save(buffer, format="PNG")
    image = read_image(io.BytesIO(buffer.getvalue()))
    assert image.shape == (3, 5, 3) and tuple(image[0, 0]) == (10, 20, 30)


def test_write_stream_leaves_no_half_file(tmp_path):
    path = tmp_path / "out.jsonl"
    _atomic.write_stream(path, lambda h: h.write(b'{"a": 1}\n'))
    assert json.loads(path.read_text()) == {"a": 1}

    def fail_half_way(handle):
        handle.write(b'{"a": 2}\n')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic.write_stream(path, fail_half_way)
    assert json.loads(path.read_text()) == {"a": 1}  # the earlier file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temporary left
