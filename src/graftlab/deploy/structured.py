"""The two models whose answer is more than one label: a token tagger and a multi-task model.

- **Tagging** (:class:`~graftlab.tagger.TokenTagger`): an input is a text (split on whitespace)
  or a list of words; the graph outputs per-token logits (B, T, C) (``output:
  "token_logits"``); each word takes the tag at its first sub-token
  (:func:`~graftlab.train.tokens.first_subtokens`, :func:`~graftlab.train.tokens.decode`, as
  ``TokenTagger.predict`` does). An answer: ``{"words", "tags", "entities"}``, each entity
  ``{"type", "start", "end", "text"}`` with ``words[start:end]`` its words (conlleval chunking,
  :func:`~graftlab.evaluate.entities.entity_spans`).
- **Multi-task** (:class:`~graftlab.multitask.MultiTaskGrafter`): the graph outputs every
  task's columns side by side (B, sum of task outputs) (``output: "task_outputs"``); the
  *layout* (config.json's ``outputs``, the export contract's ``tasks``) says each task's
  ``columns`` [a, b) and its ``classes`` or ``target_mean`` / ``target_std``. An answer:
  ``{"tasks": {name: {"label", "probabilities"} | {"value"}}}``.

:class:`~graftlab.deploy.predictor.Predictor` calls these; ``graftlab predict`` flattens the
answers into columns (:func:`columns`, :func:`flat_row`), ``graftlab serve`` returns them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from graftlab.deploy.engines import softmax
from graftlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TAGGING, MULTITASK = "tagging", "multitask"
KINDS = ("classification", "regression")  # the task types a multi-task export decodes


# ------------------------------------------------------------------ tagging
def sentences(items: list) -> list[list[str]]:
    """Each input's words: a text split on whitespace, or a list of words (each a str without
    whitespace); anything else is refused naming its position."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append(item.split())
            continue
        words = list(item) if isinstance(item, list | tuple | np.ndarray) else None
        bad = None if words is None else next(
            (w for w in words if not (isinstance(w, str) and w.split() == [w])), None)
        if words is None or bad is not None or not words:
            what = (f"a {type(item).__name__}" if words is None else "an empty list" if not
                    words else f"a list of words whose {bad!r} is not one word (a str without "
                    "whitespace)")
            error = DataError(f"input {i} is {what}; a tagging model takes texts (split on "
                              "whitespace) or lists of words.",
                              hint="e.g. ['John lives in Paris'] or [['John', 'lives', 'in', "
                              "'Paris']]; split a word that holds a space into two.")
            error.index = i  # which input, for a caller that knows its row's id
            raise error
        out.append(words)
    return out


def tokenizer_of(engine: Any) -> tuple[Any, int]:
    """The engine's tokenizer and max_length: the backbone's, or the exported folder's."""
    if getattr(engine, "tokenizer", None) is not None:
        return engine.tokenizer, int(engine.spec["max_length"])
    return engine.backbone.tokenizer, int(engine.backbone.max_length)


def tag(predictor: Any, items: list) -> list[dict]:
    """``{"words", "tags", "entities"}`` for each input."""
    from graftlab.evaluate.entities import entity_spans
    from graftlab.train.tokens import decode, first_subtokens, warn_unread

    words = sentences(items)
    if not words:
        return []
    outputs = predictor._token_outputs(words)
    tokenizer, max_length = tokenizer_of(predictor._engine)
    positions = first_subtokens(tokenizer, words, max_length)
    unread = warn_unread(positions, max_length, "tagged O")
    answers = []
    for sentence, logits, where, cut in zip(words, outputs, positions, unread, strict=True):
        tags = decode(logits, where, predictor.labels)
        entities = [{"type": kind, "start": first, "end": last + 1,
                     "text": " ".join(sentence[first:last + 1])}
                    for kind, first, last in entity_spans(tags)]
        answer = {"words": sentence, "tags": tags, "entities": entities}
        if cut:  # past max_length tokens: tagged O without being read, and said
            answer["unread_words"] = cut
        answers.append(answer)
    return answers


# ------------------------------------------------------------------ multi-task
def check_layout(layout: Any, where: str) -> list[dict]:
    """The multi-task layout, each task a classification or regression; another task type
    (one this version cannot decode) is refused naming it."""
    for task in layout:
        if task.get("type") not in KINDS:
            raise ConfigError(f"{where}: task {task.get('name')!r} is of type "
                              f"{task.get('type')!r}; graftlab.deploy decodes "
                              f"{' and '.join(KINDS)} tasks.",
                              hint="predict with MultiTaskGrafter.load(folder).predict.")
    return list(layout)


def task_answers(layout: list[dict], out: np.ndarray) -> list[dict]:
    """``{"tasks": {name: {"label", "probabilities"} | {"value"}}}`` for each row of the
    model's outputs ``out`` (N, sum of task outputs)."""
    per_task = {}
    for task in layout:
        a, b = task["columns"]
        if task["type"] == "classification":
            proba = softmax(out[:, a:b])
            classes = task["classes"]
            per_task[task["name"]] = [{"label": classes[int(p.argmax())],
                                       "probabilities": dict(zip(map(str, classes),
                                                                 p.tolist(), strict=True))}
                                      for p in proba]
        else:
            values = out[:, a].astype(np.float64) * task["target_std"] + task["target_mean"]
            per_task[task["name"]] = [{"value": float(v)} for v in values]
    return [{"tasks": {name: rows[i] for name, rows in per_task.items()}}
            for i in range(len(out))]


def task_probabilities(layout: list[dict], out: np.ndarray) -> dict[str, np.ndarray]:
    """Each classification task's probabilities (N, its classes), as
    ``MultiTaskGrafter.predict_proba``."""
    return {t["name"]: softmax(out[:, t["columns"][0]:t["columns"][1]])
            for t in layout if t["type"] == "classification"}


def card_tasks(layout: list[dict]) -> list[dict]:
    """What the model card says of each task: its name, type and classes."""
    return [{"name": t["name"], "type": t["type"],
             **({"classes": t["classes"]} if "classes" in t else {})} for t in layout]


# ------------------------------------------------------------------ output rows
def columns(predictor: Any) -> list[str]:
    """``graftlab predict``'s columns: for tagging ``id, tags, entities``; for multi-task one
    column per task (its label or value), then ``<task>_prob_<class>`` per class."""
    if predictor.task == TAGGING:
        return ["id", "tags", "entities"]
    out = ["id"]
    for task in predictor.tasks:
        out.append(task["name"])
        out += [f"{task['name']}_prob_{c}" for c in task.get("classes", [])] \
            if task["type"] == "classification" else []
    return out


def flat_row(answer: dict, short: Any) -> dict:
    """One answer as ``graftlab predict``'s row (without its id): the tags joined by spaces and
    the entities (a list, JSON text in a CSV); or each task's label / value and probabilities.
    ``short`` rounds a float as the other rows do."""
    if "tags" in answer:
        return {"tags": " ".join(answer["tags"]), "entities": answer["entities"]}
    row: dict[str, Any] = {}
    for name, value in answer["tasks"].items():
        if "value" in value:
            row[name] = short(value["value"])
            continue
        row[name] = value["label"]
        row.update({f"{name}_prob_{c}": short(p) for c, p in value["probabilities"].items()})
    return row
