"""Load text data from a .csv or .jsonl (JSON lines) table: one row per sample."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from graftlab.data.domain import Domain
from graftlab.errors import DataError

SUFFIXES = (".csv", ".jsonl")

Row = tuple[int, dict]  # (line number in the file, record)


def _preview(items: list, limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, ... and N more`` for long lists in error messages."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _read_csv(path: Path) -> tuple[list[str], list[Row]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = [(reader.line_num, row) for row in reader]
    return columns, rows


def _read_jsonl(path: Path) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows = []
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
            columns.update(dict.fromkeys(record))
            rows.append((number, record))
    return list(columns), rows


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _class_key(name: str) -> tuple:
    """Sort integer-like class names numerically ("2" before "10"), others as text."""
    try:
        return (0, int(name), "")
    except ValueError:
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


def _labels(rows: list[Row], column: str, path: Path) -> tuple[np.ndarray, list[str]]:
    missing = [line for line, row in rows if _blank(row.get(column))]
    if missing:
        raise DataError(
            f"label column {column!r} of {str(path)!r} is empty at line(s) {_preview(missing)}.",
            hint="fill in those labels, drop the rows, or pass label_column=None to load the "
            "table unlabelled.",
        )
    names = [str(row[column]).strip() for _, row in rows]
    classes = sorted(set(names), key=_class_key)
    if len(classes) < 2:
        raise DataError(
            f"label column {column!r} of {str(path)!r} holds a single class {classes[0]!r}; "
            "classification needs at least two.",
            hint="add rows of other classes, pass label_column=None for unlabelled data, or "
            "target_column=... for regression.",
        )
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[n] for n in names], dtype=np.int64), classes


def load_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    target_column: str | None = None,
    name: str | None = None,
) -> Domain:
    """Load a text :class:`Domain` from a .csv (with a header row) or .jsonl file.

    Labels (strings or ints) become class ids into the sorted class names; pass
    ``label_column=None`` for unlabelled data. ``target_column`` keeps a float per row as
    ``targets`` for regression.
    """
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
    reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
    try:
        columns, rows = reader(path)
    except UnicodeDecodeError as e:
        raise DataError(f"table {str(path)!r} is not UTF-8 text (byte {e.start}).",
                        hint="re-save it as UTF-8.") from None
    except csv.Error as e:
        raise DataError(f"cannot parse {str(path)!r} as CSV: {e}.",
                        hint="check the quoting, or re-save it as a plain UTF-8 CSV.") from None
    if not rows:
        raise DataError(f"table {str(path)!r} is empty: it holds no data rows.",
                        hint="add rows, or check that you passed the right file.")
    wanted = [c for c in (text_column, label_column, target_column) if c is not None]
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise DataError(
            f"column(s) {_preview([repr(c) for c in absent])} not found in {str(path)!r}; "
            f"its columns are: {_preview([repr(c) for c in columns], 30) or '(none)'}.",
            hint="pass text_column=..., label_column=... (None for unlabelled data) or "
            "target_column=... naming existing columns.",
        )
    empty = [line for line, row in rows if _blank(row.get(text_column))]
    if empty:
        raise DataError(
            f"text column {text_column!r} of {str(path)!r} is empty at line(s) {_preview(empty)}.",
            hint="fill in or drop those rows.",
        )
    labels, classes = (None, []) if label_column is None else _labels(rows, label_column, path)
    return Domain(
        name=name or path.stem,
        modality="text",
        inputs=[str(row[text_column]) for _, row in rows],
        labels=labels,
        classes=classes,
        targets=None if target_column is None else _targets(rows, target_column, path),
        meta={"source": str(path)},
    )
