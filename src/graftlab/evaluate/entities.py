"""Entity-level precision, recall and F1 for tagged sentences, as seqeval scores them by default
(conlleval-style chunking; https://github.com/chakki-works/seqeval, ``mode=None``), so numbers
compare with published NER results. The tests check equality with seqeval itself.

An entity is a chunk ``(type, start, end)`` within one sentence; it counts as found only when
a predicted chunk has the same type and the same boundaries. Chunking is lenient as in
conlleval: an ``I-X`` after ``O`` or after another type starts a new chunk, so predictions
need not be valid BIO. Tags are ``O`` or ``B-``/``I-``/``E-``/``S-`` + a type (IOB2, IOBES).

    P = correct / predicted    R = correct / true    F1 = 2PR / (P + R)    (0 where 0/0)

``micro`` counts every entity of every type; ``per_type`` scores each type on its own (types
that occur in the truth or the predictions, sorted); ``macro_f1`` is their unweighted mean (0 where no
entity is true or predicted; seqeval gives nan there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from graftlab.errors import DataError

Entity = tuple[str, int, int]  # (type, first position, last position)


@dataclass(frozen=True)
class EntityScore:
    precision: float
    recall: float
    f1: float
    support: int  # true entities
    predicted: int
    correct: int


@dataclass(frozen=True)
class EntityReport:
    """Entity-level scores: over all types (``micro``), per type, and the types' mean F1."""

    micro: EntityScore
    per_type: dict[str, EntityScore]
    macro_f1: float

    def as_dict(self) -> dict:
        return {"micro": asdict(self.micro), "macro_f1": self.macro_f1,
                "per_type": {k: asdict(v) for k, v in self.per_type.items()}}


def _split(tag: str) -> tuple[str, str]:
    """``(prefix, type)``: ``("O", "")`` for outside, else e.g. ``("B", "geo-loc")``."""
    if tag == "O":
        return "O", ""
    if not isinstance(tag, str) or len(tag) < 3 or tag[0] not in "BIES" or tag[1] != "-":
        raise DataError(f"tag {tag!r} is neither 'O' nor a prefix B-, I-, E-, S- and a type.",
                        hint="score BIO (IOB2) or IOBES tags such as 'B-person', 'I-person'.")
    return tag[0], tag[2:]


def _ends(prev: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether the chunk open before this tag ends (conlleval's endOfChunk)."""
    return (prev in "ES" or (prev in "BI" and tag in "BSO")
            or (prev != "O" and prev_type != type_))


def _starts(prev: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk starts at this tag (conlleval's startOfChunk)."""
    return (tag in "BS" or (prev in "ESO" and tag in "EI")
            or (tag != "O" and prev_type != type_))


def entity_spans(tags: Sequence[str]) -> list[Entity]:
    """The chunks of one sentence's tags, e.g. ``['B-per', 'I-per', 'O', 'I-loc']`` ->
    ``[('per', 0, 1), ('loc', 3, 3)]``."""
    chunks: list[Entity] = []
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, type_ = _split(tag)
        if _ends(prev, prefix, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _starts(prev, prefix, prev_type, type_):
            begin = i
        prev, prev_type = prefix, type_
    return chunks


def _score(correct: int, predicted: int, true: int) -> EntityScore:
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EntityScore(precision, recall, f1, true, predicted, correct)


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]
                  ) -> EntityReport:
    """Entity-level scores of predicted tag sequences against the true ones (one list of tags
    per sentence, the same lengths)."""
    if len(y_true) != len(y_pred):
        raise DataError(f"{len(y_true)} true tag sequences but {len(y_pred)} predicted.",
                        hint="give one predicted sequence per sentence.")
    true: set[tuple[int, str, int, int]] = set()
    pred: set[tuple[int, str, int, int]] = set()
    for s, (t, p) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(t) != len(p):
            raise DataError(f"sentence {s}: {len(t)} true tags but {len(p)} predicted.",
                            hint="predict one tag per word.")
        true.update((s, *e) for e in entity_spans(t))
        pred.update((s, *e) for e in entity_spans(p))
    types = sorted({e[1] for e in true | pred})
    per_type = {}
    for kind in types:
        t = {e for e in true if e[1] == kind}
        p = {e for e in pred if e[1] == kind}
        per_type[kind] = _score(len(t & p), len(p), len(t))
    macro = sum(s.f1 for s in per_type.values()) / len(types) if types else 0.0
    return EntityReport(_score(len(true & pred), len(pred), len(true)), per_type, macro)
