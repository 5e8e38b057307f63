"""Load text data from a .csv or .jsonl (JSON lines) table: one row per sample."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import numpy as np

from graftlab.data.domain import Domain, check_labelled
from graftlab.errors import DataError

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".jsonl")
# Python's csv module refuses fields over 131,072 characters by default; a long document is a
# legitimate text, so the limit is lifted while a table is read (to the largest C long that
# every platform accepts).
FIELD_LIMIT = 2**31 - 1
OLD_FIELD_LIMIT = 131_072
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")

Row = tuple[int, dict]  # (line number in the file, record)


def _preview(items: list, limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, ... and N more`` for long lists in error messages."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _read_csv(path: Path) -> tuple[list[str], list[Row]]:
    """Header and rows (with the line each row starts on) of a CSV file."""
    with _csv_reader(path) as reader:
        columns = _csv_header(reader, path)
        return columns, list(_csv_rows(reader, path))


@contextmanager
def _csv_reader(path: Path) -> Iterator[csv.DictReader]:
    """A DictReader over ``path`` with the field size limit lifted while it is open."""
    previous = csv.field_size_limit(FIELD_LIMIT)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            yield csv.DictReader(f)
    finally:
        csv.field_size_limit(previous)


def _csv_error(path: Path, reader: csv.DictReader, error: csv.Error) -> DataError:
    return DataError(f"cannot parse {str(path)!r} as CSV at line {reader.line_num}: {error}.",
                     hint="check the quoting, or re-save it as a plain UTF-8 CSV.")


def not_unicode(text: str) -> str | None:
    """What makes ``text`` unusable by a tokenizer: a lone surrogate (from bytes that were not
    UTF-8, decoded with errors='surrogateescape', or a broken \\u escape); None if it is fine."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"character {exc.start} ({text[exc.start]!r}) is a lone surrogate, not a "
                "Unicode character (bytes that were not UTF-8, or a broken \\u escape)")
    return None


def table_columns(path: Path) -> list[str]:
    """A .csv's header or a .jsonl's first record's keys, read cheaply; [] when unreadable
    (loading the table names what is wrong)."""
    try:
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8-sig") as f:
                first = next((line for line in f if line.strip()), "{}")
            record = json.loads(first)
            return list(record) if isinstance(record, dict) else []
        with _csv_reader(path) as reader:
            return _csv_header(reader, path)
    except (OSError, UnicodeDecodeError, ValueError, DataError):
        return []


def _csv_header(reader: csv.DictReader, path: Path) -> list[str]:
    try:
        return list(reader.fieldnames or [])
    except csv.Error as e:
        raise _csv_error(path, reader, e) from None


def _csv_rows(reader: csv.DictReader, path: Path) -> Iterator[Row]:
    """Each row with its line (messages name a row's last line), read one at a time; a quote
    left open on the last row is refused once it is reached."""
    start, last_start, last = reader.line_num + 1, 0, None
    try:
        for row in reader:
            extra = [v for v in row.pop(None, None) or [] if v and v.strip()]
            if extra:  # DictReader files fields beyond the header's under None
                raise DataError(
                    f"line {reader.line_num} of {str(path)!r} has "
                    f"{len(reader.fieldnames or []) + len(extra)} fields but the header "
                    f"{len(reader.fieldnames or [])}: the extra {extra[0][:40]!r} would be "
                    "lost and the columns shifted.",
                    hint='quote a text that holds a comma ("great, really great film") or '
                    "re-save the table from a spreadsheet as CSV.")
            yield reader.line_num, row
            last, last_start, start = row, start, reader.line_num + 1
    except csv.Error as e:
        raise _csv_error(path, reader, e) from None
    if last is not None:
        _check_last_row(path, last_start, last, reader.line_num)


def _check_last_row(path: Path, start: int, row: dict, end: int) -> None:
    """Refuse a quote opened on the last row and never closed: the csv module reads the rest
    of the file into one field without complaint. Only a last row that spans lines or holds a
    huge field can be one, and only those are re-read strictly."""
    values = [v for v in row.values() if isinstance(v, str)]
    if not any("\n" in v or "\r" in v or len(v) > OLD_FIELD_LIMIT for v in values):
        return
    with path.open(newline="", encoding="utf-8-sig") as f:
        try:
            for _ in csv.reader(f, strict=True):
                pass
        except csv.Error as e:
            if "unexpected end of data" not in str(e):
                return  # another strict-only complaint, which the normal reading tolerates
            raise DataError(
                f"{str(path)!r}: the quoted field that opens on line {start} is never closed, "
                f"so lines {start}-{end} (the rest of the file) would be read as one text.",
                hint='close the quote; a quote inside a quoted text is written twice ("" '
                "stands for one \"); or re-save the table from a spreadsheet as CSV UTF-8.",
            ) from None


def _read_jsonl(path: Path) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows = []
    for number, record in _jsonl_rows(path):
        columns.update(dict.fromkeys(record))
        rows.append((number, record))
    return list(columns), rows


def _jsonl_rows(path: Path) -> Iterator[Row]:
    """Each JSON object with its line number, read one line at a time (blank lines skipped)."""
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"line {number} of {str(path)!r} is not valid JSON "
                    f"({e.msg}, column {e.colno}).",
                    hint="each line of a .jsonl file must be one JSON object, "
                    'e.g. {"text": "great film", "label": "positive"}.',
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"line {number} of {str(path)!r} holds a JSON {type(record).__name__}, "
                    "not an object.",
                    hint='each line must be one JSON object, e.g. {"text": "...", "label": "..."}.',
                )
            for key, value in record.items():
                problem = not_unicode(value) if isinstance(value, str) else None
                if problem:
                    raise DataError(f"line {number} of {str(path)!r}, field {key!r}: {problem}.",
                                    hint="repair or drop the character (a cut-off emoji "
                                    "leaves half a \\ud83d-style pair).")
            yield number, record


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _class_key(name: str) -> tuple:
    """Sort numeric class names by value ("2" before "10", "2.5" before "007"), others as
    text after them."""
    if _NUMBER.fullmatch(name):
        return (0, Decimal(name), name)
    return (1, 0, name)


def _targets(rows: list[Row], column: str, path: Path) -> np.ndarray:
    values, bad = [], []
    for line, row in rows:
        try:
            value = float(row.get(column))
        except (TypeError, ValueError):
            value = math.nan
        if math.isnan(value):
            bad.append(line)
        values.append(value)
    if bad:
        raise DataError(
            f"target column {column!r} of {str(path)!r} needs a number on every row; "
            f"missing or not numeric at line(s) {_preview(bad)}.",
            hint="fill in those values or drop the rows.",
        )
    return np.asarray(values, dtype=np.float32)


def canonical_number(name: str) -> str | None:
    """The canonical spelling of a label that is a plain decimal number ("01", "1.0" and
    "+1" -> "1"; "2.50" -> "2.5"), else None."""
    if not _NUMBER.fullmatch(name):
        return None
    value = Decimal(name)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _merge_spellings(names: list[str], column: str, path: Path) -> tuple[list[str], dict]:
    """Labels that spell one number several ways ("1", "01", "1.0") name one class, not three:
    they become the number's plain spelling, with a warning naming them. Numeric labels that do
    not collide keep their spelling (codes such as "007" stay as written)."""
    spellings: dict[str, dict[str, None]] = {}  # canonical -> spellings, first seen first
    for name in dict.fromkeys(names):
        canonical = canonical_number(name)
        if canonical is not None:
            spellings.setdefault(canonical, {})[name] = None
    merged = {c: list(s) for c, s in spellings.items() if len(s) > 1}
    if not merged:
        return names, {}
    rename = {s: c for c, group in merged.items() for s in group}
    logger.warning(
        "label column %r of %s spells the same number in several ways; each group is merged "
        "into one class: %s. Write each label one way to silence this.", column, path,
        "; ".join(f"{', '.join(map(repr, group))} -> {c!r}" for c, group in sorted(
            merged.items(), key=lambda item: _class_key(item[0]))),
    )
    return [rename.get(n, n) for n in names], merged


MISSING_LABELS = {"nan", "null"}  # how a missing value is spelt once written out


def _missing_label(value: object) -> bool:
    """Blank, a float NaN (JSON's NaN), or a missing value written out ('nan', 'null'): a
    class of that name is almost always a hole in the data, not a class."""
    if isinstance(value, float) and math.isnan(value):
        return True
    return _blank(value) or (isinstance(value, str) and value.strip().lower() in MISSING_LABELS)


def _labels(rows: list[Row], column: str, path: Path, min_classes: int = 2
            ) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    missing = [line for line, row in rows if _missing_label(row.get(column))]
    if missing:
        raise DataError(
            f"label column {column!r} of {str(path)!r} is empty (or nan/null) at line(s) "
            f"{_preview(missing)}.",
            hint="fill in those labels, drop the rows, or pass label_column=None to load the "
            "table unlabelled.",
        )
    names, merged = _merge_spellings([str(row[column]).strip() for _, row in rows], column,
                                     path)
    classes = sorted(set(names), key=_class_key)
    if len(classes) < min_classes:
        raise DataError(
            f"label column {column!r} of {str(path)!r} holds a single class {classes[0]!r}; "
            "classification needs at least two.",
            hint="add rows of other classes, or for regression name a numeric column as the "
            "target (--target-column, target_column=...).",
        )
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[n] for n in names], dtype=np.int64), classes, merged


def load_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    target_column: str | None = None,
    labelled: bool | None = True,
    name: str | None = None,
    min_classes: int = 2,
) -> Domain:
    """Load a text :class:`Domain` from a .csv (with a header row) or .jsonl file.

    Labels (strings or ints) become class ids into the sorted class names; pass
    ``label_column=None`` for unlabelled data. Labels that spell one number several ways
    (``1``, ``01``, ``1.0``) are merged into one class with a warning (``meta["merged_labels"]``).
    ``target_column`` keeps a float per row as ``targets`` for regression. ``labelled=False``
    ignores the label and target columns; ``labelled=None`` uses them only where the table has
    them (and, for labels, holds two classes or more); True (the default) uses them as given.
    ``min_classes``: labels of fewer classes are refused (1 for a held-out set, which may
    hold some of the training classes only).
    """
    check_labelled(labelled)
    path = _table_path(path)
    columns, rows = _read_table(path)
    if labelled is False:
        label_column = target_column = None
    elif labelled is None:
        label_column, target_column = _present(rows, columns, label_column, target_column)
    _check_columns(path, columns, rows, text_column, label_column, target_column)
    labels, classes, merged = ((None, [], {}) if label_column is None
                               else _labels(rows, label_column, path, min_classes))
    meta = {"source": str(path)}
    if merged:
        meta["merged_labels"] = merged
    return Domain(
        name=name or path.stem,
        modality="text",
        inputs=[str(row[text_column]) for _, row in rows],
        labels=labels,
        classes=classes,
        targets=None if target_column is None else _targets(rows, target_column, path),
        meta=meta,
    )


def _read_table(path: Path) -> tuple[list[str], list[Row]]:
    """Columns and rows of the .csv or .jsonl file at ``path``; refuses text that is not
    UTF-8 and a table without rows."""
    reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
    try:
        columns, rows = reader(path)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None
    if not rows:
        raise _empty(path)
    return columns, rows


def _present(rows: list[Row], columns: list[str], label_column: str | None,
             target_column: str | None) -> tuple[str | None, str | None]:
    """``labelled=None``: the label and target columns the table has (labels only when they
    hold two classes or more), None for the others."""
    target_column = target_column if target_column in columns else None
    values = {str(row.get(label_column)).strip() for _, row in rows} \
        if label_column in columns else set()
    if len(values) == 1:
        logger.warning("label column %r holds one class (%r): the table is read as unlabelled "
                       "(labels that score a model need two classes or more)", label_column,
                       next(iter(values)))
    if len(values) < 2:
        label_column = None
    return label_column, target_column


def _check_columns(path: Path, columns: list[str], rows: list[Row], text_column: str,
                   label_column: str | None, target_column: str | None) -> None:
    """Refuse a wanted column the table lacks, and a blank text."""
    wanted = [c for c in (text_column, label_column, target_column) if c is not None]
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise _absent(path, absent, columns, "name existing columns with --text-column, "
                      "--label-column or --target-column (in Python text_column=..., "
                      "label_column=..., None for unlabelled data, target_column=...).")
    empty = [line for line, row in rows if _blank(row.get(text_column))]
    if empty:
        raise _empty_texts(path, text_column, empty)


def iter_texts(path: str | Path, *, text_column: str = "text") -> Iterator[tuple[int, str]]:
    """``(row number, text)`` of each row of a .csv or .jsonl table (rows count from 1), read
    one row at a time: for predicting over a table of any size. The checks of
    :func:`load_table` on the text column, each raised when its row is reached (a column a
    CSV's header lacks: before the first row)."""
    path = _table_path(path)
    try:
        if path.suffix.lower() == ".csv":
            with _csv_reader(path) as reader:
                columns = _csv_header(reader, path)
                if text_column not in columns:
                    raise _absent(path, [text_column], columns, _TEXT_COLUMN_HINT)
                yield from _texts(_csv_rows(reader, path), path, text_column)
        else:
            yield from _texts(_jsonl_rows(path), path, text_column)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None


_TEXT_COLUMN_HINT = "name the column that holds the texts with --text-column (text_column=...)."


def _texts(rows: Iterator[Row], path: Path, column: str) -> Iterator[tuple[int, str]]:
    number = 0
    for number, (line, row) in enumerate(rows, start=1):
        if column not in row:
            raise _absent(path, [column], list(row), _TEXT_COLUMN_HINT, line=line)
        if _blank(row[column]):
            raise _empty_texts(path, column, [line])
        value = row[column]
        if isinstance(value, list) and value and all(isinstance(w, str) for w in value):
            yield number, value  # a JSONL list of words: a tagger's input as it is
            continue
        if isinstance(value, list | dict):
            raise DataError(f"line {line} of {str(path)!r}: column {column!r} holds a JSON "
                            f"{type(value).__name__}, not a text.",
                            hint="give a text (or, for a tagger, a list of words).")
        yield number, str(value)
    if not number:
        raise _empty(path)


def _table_path(path: str | Path) -> Path:
    """``path`` as a Path, if it names a .csv or .jsonl file; else the error saying why not."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"table {str(path)!r} {what}.",
                        hint="give the path of a .csv or .jsonl file (a folder of class "
                        "sub-folders loads with load_image_folder).")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"cannot read {str(path)!r}: unsupported extension {path.suffix or '(none)'!r}; "
            "tables must be .csv or .jsonl.",
            hint="save the table as .csv (with a header row) or .jsonl (one JSON object per line).",
        )
    return path


def _not_utf8(path: Path, error: UnicodeDecodeError) -> DataError:
    return DataError(f"table {str(path)!r} is not UTF-8 text (byte {error.start}).",
                     hint="re-save it as UTF-8.")


def _empty(path: Path) -> DataError:
    return DataError(f"table {str(path)!r} is empty: it holds no data rows.",
                     hint="add rows, or check that you passed the right file.")


def _absent(path: Path, absent: list[str], columns: list[str], hint: str,
            line: int | None = None) -> DataError:
    if not columns and line is None:  # no header at all: the file is empty
        return DataError(f"table {str(path)!r} is empty: it has no header and no rows.",
                         hint="check that you passed the right file (a CSV starts with a "
                         "header line naming its columns).")
    where = f"line {line} of {str(path)!r}" if line is not None else repr(str(path))
    kind = "fields" if line is not None else "columns"
    sep = next((c for c in ";\t|" if len(columns) == 1 and c in columns[0]), None)
    if sep is not None and path.suffix.lower() == ".csv":  # a spreadsheet's ';' or a TSV
        shown = {";": "';'", "\t": "tabs", "|": "'|'"}[sep]
        return DataError(
            f"{str(path)!r} seems to separate its columns with {shown}, not commas: its header "
            f"reads as the one column {columns[0]!r}, so column(s) "
            f"{_preview([repr(c) for c in absent])} cannot be found.",
            hint="re-save it with commas between columns (in a spreadsheet: CSV UTF-8, "
                 "comma-delimited), or as JSON lines (.jsonl).")
    return DataError(
        f"column(s) {_preview([repr(c) for c in absent])} not found in {where}; "
        f"its {kind} are: {_preview([repr(c) for c in columns], 30) or '(none)'}.", hint=hint)


def _empty_texts(path: Path, column: str, lines: list[int]) -> DataError:
    return DataError(
        f"text column {column!r} of {str(path)!r} is empty at line(s) {_preview(lines)}.",
        hint="fill in or drop those rows.")
