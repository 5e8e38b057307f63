"""Tagged sentences for token classification (NER-style BIO tags), and the CoNLL-style files
they come in: one ``token<TAB or space>tag`` per line, a blank line between sentences.

    sentences = read_conll("train.conll")     # TaggedSentences: .tokens, .tags, .classes
    sentences.tokens[0], sentences.tags[0]     # ['Empire', 'State', ...], ['B-facility', ...]

Errors name the file and the line: a line with no tag (or more than one), and a BIO sequence
that is not valid (an ``I-X`` after ``O``, after ``B-Y`` / ``I-Y`` of another type, or at a
sentence's start; a tag that is neither ``O`` nor ``B-``/``I-`` + a type).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graftlab.errors import DataError

OUTSIDE = "O"


@dataclass
class TaggedSentences:
    """Sentences as word lists with one tag per word; ``source`` says where they came from."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str = "arrays"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_tagged(self.tokens, self.tags, where=self.source)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def classes(self) -> list[str]:
        """Every tag that occurs, sorted."""
        return sorted({t for sent in self.tags for t in sent})

    @property
    def texts(self) -> list[str]:
        """Each sentence's words joined by single spaces (what a text encoder reads)."""
        return [" ".join(words) for words in self.tokens]

    def entity_types(self) -> list[str]:
        return sorted({t[2:] for sent in self.tags for t in sent if t != OUTSIDE})

    def subset(self, index: Sequence[int] | np.ndarray) -> TaggedSentences:
        index = [int(i) for i in index]
        return TaggedSentences([self.tokens[i] for i in index], [self.tags[i] for i in index],
                               source=self.source, meta=dict(self.meta))


def check_tagged(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *,
                 where: str = "arrays") -> None:
    """One tag per word in every sentence, and valid BIO; errors name the sentence."""
    if isinstance(tokens, str) or isinstance(tags, str):
        raise DataError("sentences must be lists of words and tags lists of tags, got a str.",
                        hint="give [['John', 'lives'], ...] and [['B-person', 'O'], ...].")
    if len(tokens) != len(tags):
        raise DataError(f"{where}: {len(tokens)} sentences but {len(tags)} tag sequences.",
                        hint="give one tag sequence per sentence.")
    check_words(tokens, where=where)
    for i, (words, labels) in enumerate(zip(tokens, tags, strict=True)):
        if isinstance(labels, str):
            raise DataError(f"{where}, sentence {i}: its tags are a str, not a list of tags.",
                            hint="give one tag per word: ['B-person', 'O', ...].")
        if len(words) != len(labels):
            raise DataError(f"{where}, sentence {i}: {len(words)} words but {len(labels)} tags.",
                            hint="give exactly one tag per word.")
        problem = bio_problem(labels)
        if problem is not None:
            raise DataError(f"{where}, sentence {i}: {problem[1]}", hint=BIO_HINT)


def check_words(tokens: Sequence[Sequence[str]], *, where: str = "arrays") -> None:
    """Sentences as non-empty lists of words, each word a str without whitespace."""
    if isinstance(tokens, str):
        raise DataError("sentences must be lists of words, got a str.",
                        hint="give [['John', 'lives', 'here'], ...] (text.split() per sentence).")
    for i, words in enumerate(tokens):
        if isinstance(words, str):
            raise DataError(f"{where}, sentence {i}: a sentence is a list of words, got a str.",
                            hint="split the sentence into words: text.split().")
        if not len(words):
            raise DataError(f"{where}, sentence {i} is empty.", hint="drop empty sentences.")
        bad = [w for w in words if not isinstance(w, str) or w.split() != [w]]
        if bad:
            raise DataError(f"{where}, sentence {i}: word {bad[0]!r} is empty or holds "
                            "whitespace.", hint="a word is one token without spaces: split it.")


LINE_HINT = "each line is 'token<TAB>tag'; a blank line ends a sentence."
BIO_HINT = ("tags follow the BIO scheme: B-TYPE starts an entity, I-TYPE continues one of "
            "the same TYPE, O is outside; fix the tag (often the I- should be a B-).")


def _why(tag: str) -> str:
    """What a tag outside BIO most likely is (said beside the refusal)."""
    if tag == "0":
        return " (a zero where the letter O was meant?)"
    if tag[:2] in ("b-", "i-") or tag.lower() == "o":
        return " (BIO prefixes are capitals: B-, I-, O)"
    if tag[:2] in ("S-", "E-", "L-", "U-"):
        return (" (BIOES/BILOU: write S-/U- as B-, and E-/L- as I-, to read it as BIO)")
    return ""


def bio_problem(tags: Sequence[str]) -> tuple[int, str] | None:
    """``(position, what is wrong)`` for the first tag that breaks BIO, else None."""
    previous = OUTSIDE
    for pos, tag in enumerate(tags):
        if not isinstance(tag, str):
            return pos, f"tag {tag!r} is not a string."
        if tag != OUTSIDE and (tag[:2] not in ("B-", "I-") or len(tag) < 3):
            return pos, f"tag {tag!r} is neither 'O' nor 'B-TYPE' / 'I-TYPE'" + _why(tag) + "."
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            after = "the sentence's start" if pos == 0 else f"{previous!r}"
            return pos, f"{tag!r} follows {after}: an I- tag must continue an entity of its type."
        previous = tag
    return None


def read_conll(path: str | Path, *, column: int | None = None) -> TaggedSentences:
    """Read a CoNLL-style file: ``word<TAB or spaces>tag`` per line; a line holding only
    whitespace separates sentences; ``-DOCSTART-`` lines are skipped. A line must hold exactly
    a token and a tag, unless ``column`` names the tag's column in a multi-column file (CoNLL
    2003: ``column=-1``; the token is the first). In a ``.conllu`` file the token is FORM (the
    second field), and multi-word (``1-2``) and empty-node (``1.1``) lines are skipped, as
    prediction reads them. Errors name the file and line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file.", hint="give the path of a CoNLL-style file.")
    sentences: list[tuple[list[str], list[str], list[int]]] = []
    current: tuple[list[str], list[str], list[int]] = ([], [], [])
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of the first word
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line} is not UTF-8 text (byte {exc.start}).",
                        hint="re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8).") from None
    conllu = path.suffix.lower() == ".conllu"
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [f.strip() for f in (line.split("\t") if "\t" in line.strip()
                                      else line.split()) if f.strip()]
        if is_comment(line, fields, conllu, column):
            continue  # a comment ('# a note'), not the token '#' with its tag
        if not fields:
            if current[0]:
                sentences.append(current)
            current = ([], [], [])
            continue
        if fields[0] == "-DOCSTART-":
            continue
        if conllu:  # ID FORM ... : the word is FORM; multi-word (1-2) and empty (1.1) lines go
            if not fields[0].isdigit():
                continue
            fields = fields[1:]
        where = f"{path}:{number}: {line.strip()!r}"
        if len(fields) < 2:
            raise DataError(f"{where} has a token but no tag.", hint=LINE_HINT)
        if column is None and len(fields) > 2:
            raise DataError(f"{where} holds {len(fields)} fields, not one token and one tag.",
                            hint=LINE_HINT + " For a multi-column file (CoNLL 2003) pass "
                            "column=-1, the tag's column (graftlab tag or compare: "
                            "data.column=-1).")
        if len(fields[0].split()) != 1:
            raise DataError(f"{where}: the token {fields[0]!r} holds whitespace.",
                            hint="one word per line: split it over lines, one tag each.")
        if column is not None and not -len(fields) <= column < len(fields):
            raise DataError(f"{where} holds {len(fields)} fields: there is no column {column}.",
                            hint="column counts from 0 (the token); -1 is the last field.")
        current[0].append(fields[0])
        current[1].append(fields[-1 if column is None else column])
        current[2].append(number)
    if current[0]:
        sentences.append(current)
    if not sentences:
        raise DataError(f"{path} holds no tagged tokens.", hint=LINE_HINT)
    for words, tags, lines in sentences:
        problem = bio_problem(tags)
        if problem is not None:
            raise DataError(f"{path}:{lines[problem[0]]}: {problem[1]}", hint=BIO_HINT)
    return TaggedSentences([s[0] for s in sentences], [s[1] for s in sentences],
                           source=str(path))


def is_comment(line: str, fields: list[str], conllu: bool, column: int | None = None
               ) -> bool:
    """A ``#`` line that is a comment, not the token '#' with its tag: in a .conllu file any,
    elsewhere one of more than two fields when no tag column was named. Training and
    prediction read files by this one rule."""
    return line.startswith("#") and (conllu or (column is None and len(fields) > 2))


def iter_word_sentences(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """The sentences of a CoNLL-style file for prediction, read lazily: ``(line number of the
    first word, words)``. The word is a line's first field (CoNLL-U's FORM, the second, for a
    .conllu file, whose ``#`` comments and multi-word or empty-node lines are skipped); a tag
    column, when there is one, is ignored; a blank line ends a sentence; ``-DOCSTART-`` lines
    are skipped. Errors name the file and line."""
    path = Path(path).expanduser()
    conllu = path.suffix.lower() == ".conllu"
    words: list[str] = []
    start = 0
    with path.open(encoding="utf-8-sig") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                fields = line.rstrip("\r\n").split("\t") if "\t" in line.strip() \
                    else line.split()
                fields = [f.strip() for f in fields]
                if not line.strip():
                    if words:
                        yield start, words
                    words = []
                    continue
                if is_comment(line, [f for f in fields if f], conllu):
                    continue
                if conllu and not fields[0].isdigit():
                    continue  # a multi-word token (1-2) or an empty node (1.1)
                word = fields[1] if conllu and len(fields) > 1 else fields[0]
                if word == "-DOCSTART-":
                    continue
                if not word or len(word.split()) != 1:
                    raise DataError(f"{path}:{number}: the word {word!r} is not one word.",
                                    hint="one word a line, its tag (if any) after a tab; "
                                    "split a word that holds spaces over lines.")
                if not words:
                    start = number
                words.append(word)
        except UnicodeDecodeError as exc:
            raise DataError(f"{str(path)!r} is not UTF-8 text (byte {exc.start}).",
                            hint="re-save it as UTF-8.") from None
    if words:
        yield start, words


def held_out_split(keys: Sequence, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` positions of the samples whose ``keys`` are given: the distinct keys
    are shuffled (seeded) and the last ``round(fraction * distinct)`` held out, so repeated
    samples (a retweet) fall on one side only; each part in the original order."""
    distinct = list(dict.fromkeys(keys))
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_test = int(round(fraction * len(distinct)))
    held = {distinct[i] for i in order[len(distinct) - n_test:]}
    test = np.array([i for i, key in enumerate(keys) if key in held], dtype=np.int64)
    return np.setdiff1d(np.arange(len(keys)), test), test
