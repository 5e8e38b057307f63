"""Prediction over a folder, a table, a text file or stdin, streamed (``graftlab predict``).

Inputs are read lazily and predicted in chunks of ``batch_size``: a folder's file names are
listed, but only one chunk of images is decoded at a time; a table is read row by row, a .txt
file or stdin line by line. Rows go out as they are computed, to JSONL on stdout or to a CSV /
JSONL file written under a temporary name and renamed at the end, so an interrupted run leaves
no half file. Each row holds an ``id`` (the image's path; the table's row number counting from
1; the line number of a text read from lines), the predicted ``label`` and one
``prob_<label>`` column per label, or the ``value`` for regression; a tagger's ``tags``
(joined by spaces) and ``entities`` (JSON), a multi-task model's label or value per task and
``<task>_prob_<class>`` per class (:mod:`graftlab.deploy.structured`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from graftlab import _atomic
from graftlab.data.folders import IMAGE_SUFFIXES, list_images, unreadable_error, unreadable_headers
from graftlab.data.images import ImageProblem, read_image
from graftlab.data import TAGGED_SUFFIXES
from graftlab.data.tables import SUFFIXES, iter_texts
from graftlab.deploy.inputs import not_unicode
from graftlab.data.tagged import iter_word_sentences
from graftlab.deploy import structured
from graftlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

OUT_SUFFIXES = (".csv", ".jsonl")
Progress = Callable[[int, int | None], None]


@dataclass
class Source:
    """``(id, input)`` pairs read lazily; ``total`` when known; ``skipped``: files left out."""

    name: str
    items: Iterator[tuple[Any, Any]]
    total: int | None = None
    skipped: list[str] = field(default_factory=list)


def open_source(data: str, modality: str, *, text_column: str = "text",
                skip_corrupt: bool = False, stdin: TextIO | None = None,
                task: str | None = None, shuffle_seed: int | None = None) -> Source:
    """The inputs ``data`` names for a ``modality`` model: a folder of images (recursive), one
    image file, a .csv/.jsonl table of texts, a .txt file or ``-`` for stdin (one text, or one
    image path, a line); for a tagger (``task="tagging"``) also a CoNLL-style file (.conll,
    .bio, ...: one word a line, a blank line between sentences, any tag column ignored; id: the
    line of the sentence's first word). Data of the other modality is refused, naming both.
    ``shuffle_seed``: a folder's images in a seeded random order (a sample of the first N is
    then a random draw, not the first classes' files)."""
    if data == "-":
        return _lines(stdin or _stdin(), "stdin", modality, skip_corrupt)
    path = Path(data).expanduser()
    table = path.suffix.lower() in SUFFIXES
    if not path.exists():
        raise DataError(f"no such file or folder: {str(path)!r}.",
                        hint="give a folder of images, a .csv/.jsonl table of texts, a .txt "
                        "file (one text or image path a line), or - to read stdin.")
    if path.is_file() and path.suffix.lower() in TAGGED_SUFFIXES:
        if task != structured.TAGGING:
            raise DataError(f"{str(path)!r} holds sentences a word a line (CoNLL), but this "
                            f"model is not a tagger ({task or modality}).",
                            hint="give it a .csv/.jsonl table or a .txt file with one text a "
                            "line; a file of words goes to a tagger (graftlab tag).")
        return Source(str(path), iter_word_sentences(path))
    if path.is_file() and path.suffix.lower() == ".txt":
        if task == structured.TAGGING and _looks_tagged(path):
            log.warning("%s looks like a CoNLL file (a word and a BIO tag a line): read as one "
                        "text a line, as every .txt is; to tag its sentences rename it .conll",
                        path)
        return _lines(_read_lines(path), str(path), modality, skip_corrupt)
    if modality == "text" and not table:
        if task == structured.TAGGING and path.is_file() and _looks_tagged(path):
            raise DataError(f"{str(path)!r} looks like a CoNLL file (a word and a BIO tag a "
                            "line), but its name does not say so.",
                            hint="rename it .conll (or .bio) so it is read a sentence at a "
                            "time, or give a .txt/.csv/.jsonl of texts.")
        if path.is_file() and path.suffix.lower() in (".tsv", ".json", ".parquet", ".xlsx"):
            raise DataError(f"{str(path)!r} is a {path.suffix} file; predict reads texts from "
                            ".csv and .jsonl tables and .txt files (one text a line).",
                            hint="save it as .csv (comma-separated) or .jsonl (one JSON object "
                            "a line).")
        what = "a folder (of images?)" if path.is_dir() else f"a {path.suffix or 'plain'} file"
        raise DataError(f"{str(path)!r} is {what}, but the model takes texts.",
                        hint="give a .csv/.jsonl table (--text-column names the column), a .txt "
                        "file or - (stdin) with one text a line.")
    if modality == "text":
        return Source(str(path), iter_texts(path, text_column=text_column))
    if table:
        raise DataError(f"{str(path)!r} is a table of texts, but the model takes images.",
                        hint="give a folder of images, or - with one image path a line on "
                        "stdin.")
    if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"{str(path)!r} is neither an image file ({'/'.join(IMAGE_SUFFIXES)}) "
                        "nor a folder of images.", hint="give a folder of images.")
    root = path if path.is_dir() else path.parent
    files = list_images(path) if path.is_dir() else [path]
    if shuffle_seed is not None:
        files = [files[i] for i in np.random.default_rng(shuffle_seed).permutation(len(files))]
    problems = unreadable_headers(files)
    if problems and not skip_corrupt:
        raise unreadable_error(root, problems)
    source = Source(str(path), iter(()), len(files) - len(problems),
                    [str(p) for p, _ in problems])
    bad = {p for p, _ in problems}
    source.items = _decoded((f for f in files if f not in bad), root, skip_corrupt, source)
    return source


def _decoded(files: Iterable[Path], root: Path, skip_corrupt: bool, source: Source
             ) -> Iterator[tuple[str, Any]]:
    """``(path, RGB array)`` of each file, decoded when reached; a file whose pixels fail to
    decode is skipped (and listed) with ``skip_corrupt``, else the error names it."""
    for file in files:
        try:
            yield str(file), read_image(file)
        except ImageProblem as problem:
            if not skip_corrupt:
                raise unreadable_error(root, [(file, problem)]) from None
            source.skipped.append(str(file))


def _read_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            yield from handle
    except UnicodeDecodeError as exc:
        raise DataError(f"{str(path)!r} is not UTF-8 text (byte {exc.start}).",
                        hint="re-save it as UTF-8.") from None


def _stdin() -> TextIO:
    """stdin as UTF-8 whatever the locale, bytes that are not UTF-8 kept (as surrogates) so
    that the line holding them is named, not a decoding traceback."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="surrogateescape")


def _looks_tagged(path: Path, lines: int = 20) -> bool:
    """Whether a file's first lines are ``word<sep>tag`` with a BIO tag: a CoNLL file by
    another name."""
    import re

    seen = 0
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or not re.fullmatch(r"O|[BIES]-\S+", fields[1]):
                    return False
                seen += 1
                if seen >= lines:
                    break
    except OSError:
        return False
    return seen >= 2


def _lines(stream: Iterable[str], name: str, modality: str, skip_corrupt: bool) -> Source:
    """One text a line (id: the line number), or one image path a line (id: the path); blank
    lines are skipped."""
    source = Source(name, iter(()))

    def lines() -> Iterator[tuple[Any, Any]]:
        for number, line in enumerate(stream, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            if modality == "text":
                if not_unicode(text):
                    raise DataError(f"line {number} of {name} is not UTF-8 text.",
                                    hint="re-encode it as UTF-8 (e.g. iconv -f latin1 -t "
                                    "utf-8).")
                yield number, text
                continue
            path = Path(text.strip())
            if not path.is_file():
                shown = text if len(text) <= 60 else text[:57] + "..."
                raise DataError(f"line {number} of {name}: {shown!r} is not an image file (no "
                                "such file), and the model takes images.",
                                hint="an image model reads one image path a line; texts go to "
                                "a text model.")
            try:
                yield text.strip(), read_image(path)
            except ImageProblem as problem:
                if not skip_corrupt:
                    raise DataError(f"line {number} of {name}: {path} cannot be read as an "
                                    f"image ({problem.reason}).",
                                    hint="fix or delete the file, or pass --skip-corrupt to "
                                    "leave it out.") from None
                source.skipped.append(str(path))

    source.items = lines()
    return source


def predict_to(predictor: Any, source: Source, out: Path | None, *, batch_size: int,
               progress: Progress | None = None, stdout: TextIO | None = None) -> int:
    """Predict every input of ``source`` into ``out`` (see :func:`write_rows`); the number
    of rows. No input at all (once unreadable files are left out) is an error, and writes
    nothing."""
    rows = predict_rows(predictor, source.items, batch_size, progress, source.total)
    return write_rows(_not_empty(rows, source), columns_of(predictor), out, stdout)


def _not_empty(rows: Iterator[dict], source: Source) -> Iterator[dict]:
    count = 0
    for row in rows:
        count += 1
        yield row
    if not count:
        skipped = f" ({len(source.skipped)} unreadable file(s) left out)" if source.skipped \
            else ""
        raise DataError(f"{source.name} holds no input to predict{skipped}.",
                        hint="check that this is the right data.")


def predict_rows(predictor: Any, items: Iterable[tuple[Any, Any]], batch_size: int,
                 progress: Progress | None = None, total: int | None = None
                 ) -> Iterator[dict]:
    """One output row per ``(id, input)``, predicting ``batch_size`` inputs at a time: no more
    than one chunk is read ahead of the rows given out."""
    labels, done = predictor.labels, 0
    items = iter(items)
    while chunk := list(itertools.islice(items, batch_size)):
        ids = [i for i, _ in chunk]
        inputs = [x for _, x in chunk]
        if predictor.task in (structured.TAGGING, structured.MULTITASK):
            try:
                answers = predictor.details(inputs)
            except DataError as exc:  # "input 5" of this chunk: name its row's id instead
                index = getattr(exc, "index", None)
                if index is None:
                    raise
                raise DataError(exc.message.replace(f"input {index}", f"row {ids[index]}", 1),
                                hint=exc.hint) from None
            rows = [{"id": i, **structured.flat_row(answer, _short)} for i, answer in
                    zip(ids, answers, strict=True)]
        elif labels is None:
            rows = [{"id": i, "value": _short(v)} for i, v in
                    zip(ids, predictor.predict(inputs), strict=True)]
        else:
            proba = predictor.predict_proba(inputs)
            rows = [{"id": i, "label": labels[int(p.argmax())],
                     **{f"prob_{name}": _short(v) for name, v in zip(labels, p, strict=True)}}
                    for i, p in zip(ids, proba, strict=True)]
        done += len(rows)
        if progress:
            progress(done, total)
        yield from rows


def _short(value: float) -> float:
    return float(f"{float(value):.6g}")  # float32's precision, without its noise digits


def columns_of(predictor: Any) -> list[str]:
    if predictor.task in (structured.TAGGING, structured.MULTITASK):
        return structured.columns(predictor)
    if predictor.labels is None:
        return ["id", "value"]
    return ["id", "label", *(f"prob_{name}" for name in predictor.labels)]


def check_out(out: str | Path | None, data: str | None = None, overwrite: bool = False
              ) -> Path | None:
    """``--out`` before any work: a .csv or .jsonl file name in a folder that exists, not the
    input ``data`` itself, and new unless ``overwrite``."""
    if out is None:
        return None
    out = Path(out).expanduser()
    if data is not None and data != "-" and out.exists() and Path(data).expanduser().exists() \
            and out.resolve() == Path(data).expanduser().resolve():
        raise ConfigError(f"--out {out} is the input file: writing the predictions would "
                          "replace the data they are made from.",
                          hint="write them to another file, e.g. --out predictions.csv.")
    if out.is_file() and not overwrite:
        raise ConfigError(f"--out {out} exists; predict never replaces a file unasked.",
                          hint="give a new file name, or add --overwrite to replace it.")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name, e.g. "
                          f"{out / 'predictions.csv'}.")
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ConfigError(f"--out {out}: the suffix says the format, and "
                          f"{out.suffix or '(none)'!r} is neither .csv nor .jsonl.",
                          hint="name it predictions.csv or predictions.jsonl.")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist.",
                          hint="create it first, or write somewhere else.")
    return out


def write_rows(rows: Iterable[dict], columns: list[str], out: Path | None,
               stdout: TextIO | None = None) -> int:
    """Write ``rows`` as JSONL to ``stdout`` (``out`` None) or as CSV / JSONL (by ``out``'s
    suffix) to ``out``, atomically; the number of rows."""
    count = 0

    def fill(text: TextIO) -> None:
        nonlocal count
        csv_out = csv.DictWriter(text, columns) if out is not None and \
            out.suffix.lower() == ".csv" else None
        if csv_out:
            csv_out.writeheader()
        for row in rows:
            if csv_out:  # a list or dict (a tagger's entities) as JSON text
                csv_out.writerow({k: json.dumps(v, ensure_ascii=False)
                                  if isinstance(v, list | dict) else v for k, v in row.items()})
            else:
                text.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
            if out is None and count % 256 == 0:
                text.flush()

    if out is None:
        fill(stdout or sys.stdout)
        (stdout or sys.stdout).flush()
        return count

    def write(handle) -> None:
        # a file name that is not UTF-8 (a Latin-1 disk) keeps its bytes in the id
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
        fill(text)
        text.flush()
        text.detach()

    _atomic.write_stream(out, write)
    return count
