"""load_table: .csv and .jsonl text tables, labels, targets and every error path."""

import json

import numpy as np
import pytest

from graftlab.data import load_table
from graftlab.errors import DataError


def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_csv_string_labels(tmp_path):
    path = _csv(tmp_path / "reviews.csv",
                'text,label\n"great, really",pos\nawful,neg\n"fine\nreally",pos\n')
    d = load_table(path)
    assert d.name == "reviews" and d.modality == "text"
    assert d.inputs == ["great, really", "awful", "fine\nreally"]
    assert d.classes == ["neg", "pos"] and d.labels.tolist() == [1, 0, 1]
    assert d.targets is None and d.meta["source"] == str(path)


def test_csv_with_bom_and_custom_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\ufeffbody,y,score\nhello,a,0.5\nbye,b,-1\n", encoding="utf-8")
    d = load_table(path, text_column="body", label_column="y", target_column="score", name="n")
    assert d.name == "n" and d.inputs == ["hello", "bye"] and d.classes == ["a", "b"]
    np.testing.assert_allclose(d.targets, [0.5, -1.0])


def test_jsonl_int_labels_sort_numerically(tmp_path):
    rows = [{"text": f"t{i}", "label": lab} for i, lab in enumerate([10, 2, 1, 2])]
    d = load_table(_jsonl(tmp_path / "t.jsonl", rows))
    assert d.classes == ["1", "2", "10"] and d.labels.tolist() == [2, 1, 0, 1]


def test_jsonl_skips_blank_lines_and_csv_int_like_labels(tmp_path):
    path = tmp_path / "t.JSONL"
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n')
    assert len(load_table(path)) == 2
    d = load_table(_csv(tmp_path / "n.csv", "text,label\na,10\nb,9\n"))
    assert d.classes == ["9", "10"]


def test_unlabelled_and_regression(tmp_path):
    rows = [{"text": "a", "rating": 1.5}, {"text": "b", "rating": -2}]
    d = load_table(_jsonl(tmp_path / "t.jsonl", rows), label_column=None, target_column="rating")
    assert d.labels is None and d.classes == []
    assert d.targets.dtype == np.float32 and d.targets.tolist() == [1.5, -2.0]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"table .*nope.csv' does not exist"):
        load_table(tmp_path / "nope.csv")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match=r"is a folder, not a file(.|\n)*load_image_folder"):
        load_table(tmp_path)


def test_unsupported_extension(tmp_path):
    path = _csv(tmp_path / "t.tsv", "text\tlabel\n")
    with pytest.raises(DataError, match=r"unsupported extension '.tsv'; tables must be .csv or "
                                        r"\.jsonl"):
        load_table(path)


def test_missing_columns_list_the_existing_ones(tmp_path):
    path = _csv(tmp_path / "t.csv", "sentence,sentiment\nhi,pos\n")
    with pytest.raises(DataError, match=r"column\(s\) 'text', 'label' not found.*its columns "
                                        r"are: 'sentence', 'sentiment'(.|\n)*text_column="):
        load_table(path)


def test_missing_target_column(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": "x"}])
    with pytest.raises(DataError, match=r"column\(s\) 'score' not found"):
        load_table(path, target_column="score")


@pytest.mark.parametrize(("file", "content"), [("e.csv", ""), ("h.csv", "text,label\n"),
                                               ("e.jsonl", "\n\n")])
def test_empty_table(tmp_path, file, content):
    with pytest.raises(DataError, match="is empty: it holds no data rows"):
        load_table(_csv(tmp_path / file, content))


def test_empty_text_cells_name_lines(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,label\nok,a\n  ,b\nfine,a\n,b\n")
    with pytest.raises(DataError, match=r"text column 'text' .* is empty at line\(s\) 3, 5"):
        load_table(path)


def test_empty_text_in_jsonl_null_or_missing(tmp_path):
    rows = [{"text": "a", "label": "x"}, {"text": None, "label": "y"}, {"label": "y"}]
    with pytest.raises(DataError, match=r"empty at line\(s\) 2, 3"):
        load_table(_jsonl(tmp_path / "t.jsonl", rows))


def test_many_empty_cells_are_abbreviated(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,label\n" + "a,x\nb,y\n" + ",x\n" * 12)
    with pytest.raises(DataError, match=r"4, 5, 6, 7, 8, 9, 10, 11, 12, 13 and 2 more"):
        load_table(path)


def test_empty_label_cells(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,label\na,x\nb,\nc,y\n")
    with pytest.raises(DataError, match=r"label column 'label' .* empty \(or nan/null\) at "
                                        r"line\(s\) 3"
                                        r"(.|\n)*label_column=None"):
        load_table(path)


def test_single_class(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,label\na,pos\nb,pos\n")
    with pytest.raises(DataError, match=r"single class 'pos'; classification needs at least two"):
        load_table(path)


def test_malformed_json_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match=r"line 2 of .* is not valid JSON"):
        load_table(path)


def test_json_line_not_an_object(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n["b", "y"]\n')
    with pytest.raises(DataError, match=r"line 2 of .* holds a JSON list, not an object"):
        load_table(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("text,label\ncaf\u00e9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"is not UTF-8 text(.|\n)*re-save it as UTF-8"):
        load_table(path)


def test_unclosed_quote_is_named_with_its_line(tmp_path):
    """Not 'field larger than field limit' (it was), nor silently one giant text."""
    path = _csv(tmp_path / "t.csv", 'text,label\nfine,a\n"an unclosed quote,x\nmore,b\n'
                + "y" * 200_000)
    with pytest.raises(DataError, match=r"the quoted field that opens on line 3 is never closed, "
                                        r"so lines 3-5 \(the rest of the file\) would be read "
                                        r"as one text(.|\n)*close the quote"):
        load_table(path)
    small = _csv(tmp_path / "s.csv", 'text,label\nfine,a\n"unclosed,b\nnext,b\n')
    with pytest.raises(DataError, match=r"opens on line 3 is never closed"):
        load_table(small)


def test_text_longer_than_the_csv_field_limit(tmp_path):
    """csv refuses fields over 131,072 characters by default; a long document is fine."""
    import csv

    long_text = "word " * 40_000  # 200,000 characters
    path = _csv(tmp_path / "t.csv", f'text,label\n"{long_text}",a\n"multi\nline, ""quoted""",b\n')
    before = csv.field_size_limit()
    d = load_table(path)
    assert d.inputs == [long_text, 'multi\nline, "quoted"'] and d.classes == ["a", "b"]
    assert csv.field_size_limit() == before  # the process-wide limit is put back


def test_stray_quote_inside_a_text_is_still_accepted(tmp_path):
    d = load_table(_csv(tmp_path / "t.csv", 'text,label\na 12" pizza,a\n"x"y,b\n'))
    assert d.inputs == ['a 12" pizza', "xy"]


def test_other_csv_errors_name_the_line(tmp_path, monkeypatch):
    import csv

    path = _csv(tmp_path / "t.csv", "text,label\na,b\nc,d\n")

    class Broken:
        def __init__(self, f):
            self.fieldnames, self.line_num = ["text", "label"], 1

        def __iter__(self):
            self.line_num = 2
            raise csv.Error("something odd")

    monkeypatch.setattr(csv, "DictReader", Broken)
    with pytest.raises(DataError, match=r"cannot parse .* as CSV at line 2: something odd"):
        load_table(path)


@pytest.mark.parametrize("file", ["t.csv", "t.jsonl"])
def test_one_number_spelt_several_ways_is_one_class(tmp_path, caplog, file):
    import logging

    labels = ["1", "01", "1.0", "2", "+2", "2.50", "2.5", "007"]
    path = tmp_path / file
    if file.endswith(".csv"):
        _csv(path, "text,label\n" + "".join(f"t{i},{lab}\n" for i, lab in enumerate(labels)))
    else:
        _jsonl(path, [{"text": f"t{i}", "label": lab} for i, lab in enumerate(labels)])
    with caplog.at_level(logging.WARNING, logger="graftlab.data.tables"):
        d = load_table(path)
    assert d.classes == ["1", "2", "2.5", "007"]
    assert d.labels.tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert d.meta["merged_labels"] == {"1": ["1", "01", "1.0"], "2": ["2", "+2"],
                                       "2.5": ["2.50", "2.5"]}
    assert ("spells the same number in several ways; each group is merged into one class: "
            "'1', '01', '1.0' -> '1'; '2', '+2' -> '2'; '2.50', '2.5' -> '2.5'") in caplog.text


def test_jsonl_int_and_float_labels_merge(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 1.0}, {"text": "c", "label": 0}]
    d = load_table(_jsonl(tmp_path / "t.jsonl", rows))
    assert d.classes == ["0", "1"] and d.labels.tolist() == [1, 1, 0]


def test_distinct_numbers_and_codes_keep_their_spelling(tmp_path, caplog):
    d = load_table(_csv(tmp_path / "t.csv", "text,label\na,01\nb,02\nc,10\nd,1e3\n"))
    assert d.classes == ["01", "02", "10", "1e3"] and "merged_labels" not in d.meta
    assert not caplog.records


def test_labelled_false_and_auto(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,label,score\na,x,1\nb,y,2\n")
    off = load_table(path, labelled=False, target_column="score")
    assert off.labels is None and off.targets is None
    auto = load_table(path, labelled=None)
    assert auto.classes == ["x", "y"]
    no_column = _csv(tmp_path / "n.csv", "text\na\nb\n")
    assert load_table(no_column, labelled=None).labels is None
    one_class = _csv(tmp_path / "o.csv", "text,label\na,x\nb,x\n")
    assert load_table(one_class, labelled=None).labels is None
    with pytest.raises(DataError, match="single class"):
        load_table(one_class)


def test_non_numeric_target(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,score\na,1.5\nb,high\nc,\n")
    with pytest.raises(DataError, match=r"not numeric at line\(s\) 3, 4"):
        load_table(path, label_column=None, target_column="score")


def test_labels_of_one_class_are_read_as_none_and_that_is_said(tmp_path, caplog):
    from PIL import Image

    from graftlab.data import load_data

    table = tmp_path / "t.csv"
    table.write_text("text,label\ngood,positive\nfine,positive\n")
    domain = load_data(table, labelled=None)
    assert not domain.labelled and "holds one class ('positive')" in caplog.text
    (tmp_path / "imgs" / "3").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "3" / f"{i}.png")
    domain = load_data(tmp_path / "imgs", labelled=None)
    assert not domain.labelled and "one sub-folder ('3'), read as unlabelled" in caplog.text


def test_an_empty_csv_is_called_empty_not_short_of_a_column(tmp_path):
    from graftlab.data.tables import iter_texts
    from graftlab.errors import DataError

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty: it has no header and no rows"):
        list(iter_texts(empty))


def test_an_unquoted_comma_is_refused_not_shifted_and_a_trailing_one_is_fine(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngreat, really great film,pos\nawful,neg\n")
    with pytest.raises(DataError, match=r"line 2 of .* has 3 fields but the header 2"):
        load_table(bad)
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("text,label\ngreat film,pos,\nawful,neg,\n")
    assert load_table(trailing).inputs == ["great film", "awful"]


def test_a_cut_off_emoji_in_jsonl_is_named_by_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "fine", "label": "neg"}\n'
                    '{"text": "broken emoji \\ud83d here", "label": "pos"}\n')
    with pytest.raises(DataError, match=r"line 2 of .*field 'text': character 13 .* lone "
                       "surrogate"):
        load_table(path)


def test_a_nan_or_null_label_is_a_missing_label_not_a_class(tmp_path):
    path = _csv(tmp_path / "t.csv", "text,label\nok,pos\nbad,neg\nmeh,nan\nfine,pos\nugh,NULL\n")
    with pytest.raises(DataError, match=r"label column 'label' .* is empty \(or nan/null\) at "
                                        r"line\(s\) 4, 6"):
        load_table(path)
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"text": "ok", "label": "pos"}\n{"text": "no", "label": NaN}\n'
                     '{"text": "bad", "label": "neg"}\n')
    with pytest.raises(DataError, match=r"is empty \(or nan/null\) at line\(s\) 2"):
        load_table(jsonl)
