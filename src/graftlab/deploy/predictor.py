"""``Predictor``: one trained model behind one small interface, however it was saved.

    p = Predictor.load("runs/compare-20250101-120000")   # or model/, an average, an export
    p.modality, p.labels, p.task, p.card                  # what it takes, says and is
    p.predict_proba(["a lovely film", "dull"])            # (2, len(p.labels)), rows sum to 1
    p.predict(["a lovely film", "dull"])                  # array(['pos', 'neg'])

This is the interface ``graftlab predict`` uses, and the one a server builds on: load once,
then call ``predict_proba`` / ``predict`` on lists of inputs. One Predictor is not meant to be
called from several threads at once (a text model's fast tokenizer refuses concurrent calls):
a server serialises its calls (a micro-batcher does) or holds one per worker.

Inputs: texts as a list of ``str``; images as a list of RGB uint8 arrays ``(H, W, 3)`` (also
``(H, W)``, ``(H, W, 1)``, ``(H, W, 4)``, or one ``(N, H, W, 3)`` array), image file paths
or raw image bytes, decoded as folders load (:mod:`graftlab.data.images`). Each image is
resized from its own size, as the Grafter resizes one image. Inputs run in batches of
``batch_size``, so a long list never holds more than one batch of decoded images.

A saved :class:`~graftlab.tagger.TokenTagger` (``task == "tagging"``: texts or lists of words
in, a tag per word out) and :class:`~graftlab.multitask.MultiTaskGrafter` (``"multitask"``: a
label or value per task) load too; :meth:`Predictor.details` gives their full answers
(:mod:`graftlab.deploy.structured`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from graftlab import integrity
from graftlab.deploy import inputs as raw
from graftlab.deploy import structured
from graftlab.deploy.card import AVERAGE, EXPORT_FORMAT, EXPORTED, Located, locate, model_card
from graftlab.deploy.engines import (LOGITS, PROBABILITIES, STANDARDISED, TASK_OUTPUTS,
                                      TOKEN_LOGITS, OnnxEngine, TorchEngine, softmax)
from graftlab.deploy.structured import MULTITASK, TAGGING
from graftlab.errors import ConfigError


class Predictor:
    """A trained model ready to predict; build it with :meth:`load`.

    Attributes: ``modality`` ("image" or "text"), ``labels`` (the class names, str, in the
    order of ``predict_proba``'s columns; the tag names of a tagger; None for a regression or
    multi-task model), ``task`` ("classification", "regression", "tagging" or "multitask"),
    ``tasks`` (a multi-task model's output layout: per task its name, type, columns and
    classes or target scale; else None), ``card`` (a dict: backbone, strategy, head, data and
    metrics where the run recorded them, labels, the graftlab version that saved it),
    ``kind`` ("grafter", "average" or "exported": what was loaded), ``output`` (what the
    graph computes: "logits", "probabilities" for an average, "standardised" values for
    regression, "token_logits" of a tagger, "task_outputs" side by side) and ``batch_size``.
    """

    def __init__(self, engine: TorchEngine | OnnxEngine, *, modality: str,
                 labels: list[str] | None, output: str, card: dict, kind: str,
                 target: tuple[float, float] | None = None, batch_size: int = 32,
                 tasks: list[dict] | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size}.")
        self._engine, self._target = engine, target
        self.modality, self.labels, self.output, self.card = modality, labels, output, card
        self.kind, self.batch_size, self.tasks = kind, batch_size, tasks
        self.task = (MULTITASK if tasks is not None else TAGGING if output == TOKEN_LOGITS
                     else "regression" if labels is None else "classification")

    @classmethod
    def load(cls, path: str | Path, *, batch_size: int = 32,
             threads: int | None = None) -> Predictor:
        """Load a saved Grafter or GrafterRegressor folder, an average of adapted models
        (``average.json``), a run folder of ``graftlab fit`` / ``compare`` / ``adapt`` (its
        ``model/``), or a folder from ``graftlab export`` (run by ONNX Runtime; no PyTorch
        model is built). Checksums are verified first; a missing file, or a folder of another
        graftlab format, is a :class:`ConfigError` naming the file and the fix. ``threads``:
        ONNX Runtime's threads per run for an exported folder (None: all cores); eager PyTorch
        takes ``torch.set_num_threads``, which is process-wide and the caller's to set."""
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, got {threads}.")
        found = locate(path)
        if found.kind == EXPORTED:
            return cls._exported(found, batch_size, threads)
        return cls._saved(found, batch_size)

    # ------------------------------------------------------------------ prediction
    def outputs(self, inputs: Any) -> np.ndarray | list[np.ndarray]:
        """What the model computes for ``inputs``, float32 (N, K): see ``output``; for a tagger
        a list of (T, C) arrays, one per input (its tokens, special ones included). The
        export's parity check compares these between PyTorch and ONNX Runtime."""
        items = raw.as_list(inputs, self.modality)
        if self.task == TAGGING:
            return self._token_outputs(structured.sentences(items))
        decode = raw.texts if self.modality == "text" else raw.images
        width = (self.tasks[-1]["columns"][1] if self.tasks else
                 len(self.labels) if self.labels is not None else 1)
        out = np.zeros((len(items), width), np.float32)
        for i in range(0, len(items), self.batch_size):
            chunk = decode(items[i:i + self.batch_size], i)
            runs = length_groups(chunk) if self.modality == "text" else [np.arange(len(chunk))]
            for rows in runs:
                out[i + rows] = self._engine.run(self._engine.prepare([chunk[r] for r in rows]))
        return out

    def _token_outputs(self, words: list[list[str]]) -> list[np.ndarray]:
        """Each sentence's per-token outputs (T, C), T its token count (special tokens
        included, padding cut), in runs of similar length as texts run."""
        texts = [" ".join(w) for w in words]
        out = [np.zeros((0, len(self.labels)), np.float32)] * len(texts)
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            for rows in length_groups(chunk):
                batch = self._engine.prepare([chunk[r] for r in rows])
                lengths = np.asarray(batch["attention_mask"]).sum(1)
                for row, values, n in zip(rows, self._engine.run(batch), lengths, strict=True):
                    out[start + row] = values[:int(n)]
        return out

    def predict_proba(self, inputs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """Class probabilities (N, len(labels)), float32, rows summing to 1; for a multi-task
        model ``{task: probabilities}`` of each classification task."""
        if self.task == MULTITASK:
            return structured.task_probabilities(self.tasks, self.outputs(inputs))
        if self.task == TAGGING:
            raise ConfigError("a tagging model's answer is a tag per word, not one set of "
                              "class probabilities.", hint="use predict(inputs) for the tags, "
                              "details(inputs) for words, tags and entities.")
        if self.labels is None:
            raise ConfigError("this model predicts a number (regression): it has no class "
                              "probabilities.", hint="use predict(inputs) for the values.")
        out = self.outputs(inputs)
        return out if self.output == PROBABILITIES else softmax(out)

    def predict(self, inputs: Any) -> np.ndarray | list:
        """The predicted label (str) of each input, or its value (float) for regression; for a
        tagger a list of tags per input (one per word); for a multi-task model a dict per input,
        ``{task: label or value}``."""
        if self.task == TAGGING:
            return [answer["tags"] for answer in self.details(inputs)]
        if self.task == MULTITASK:
            return [{name: v["label"] if "label" in v else v["value"]
                     for name, v in answer["tasks"].items()}
                    for answer in self.details(inputs)]
        out = self.outputs(inputs)
        if self.labels is None:
            mean, std = self._target
            return out[:, 0].astype(np.float64) * std + mean
        return np.asarray(self.labels)[out.argmax(-1)] if len(out) else np.asarray([], str)

    def details(self, inputs: Any) -> list[dict]:
        """Each input's whole answer, JSON-ready (what ``graftlab serve`` returns): a tagger's
        ``{"words", "tags", "entities"}`` (each entity ``{"type", "start", "end", "text"}``,
        its words ``words[start:end]``); a multi-task model's ``{"tasks": {name: {"label",
        "probabilities"} or {"value"}}}``."""
        if self.task == TAGGING:
            return structured.tag(self, raw.as_list(inputs, self.modality))
        if self.task != MULTITASK:
            raise ConfigError(f"details() is for tagging and multi-task models; this is a "
                              f"{self.task} model.", hint="use predict or predict_proba.")
        return structured.task_answers(self.tasks, self.outputs(inputs))

    def __repr__(self) -> str:
        what = (f"tasks={[t['name'] for t in self.tasks]}" if self.tasks else
                f"labels={self.labels}" if self.labels is not None else "regression")
        return (f"Predictor({self.kind}, {self.modality}, {what}, "
                f"backbone={self.card.get('backbone')!r})")

    # ------------------------------------------------------------------ loading
    @classmethod
    def _saved(cls, found: Located, batch_size: int) -> Predictor:
        """A saved Grafter / GrafterRegressor, or an average of Grafters, in eager PyTorch."""
        if found.kind == AVERAGE:
            from graftlab.adapt.average import AveragedModel

            average = AveragedModel.load(found.folder)
            names = list(average.members)
            estimators = list(average.members.values())
            configs = [integrity.read_json(found.folder / "members" / n / "config.json")
                       for n in names]
        else:
            names, estimators, configs = None, [_load_estimator(found.folder)], []
            configs.append(integrity.read_json(found.folder / "config.json"))
        first = estimators[0]
        if configs[0].get("estimator") in ("TokenTagger", "MultiTaskGrafter"):
            return cls._structured(first, configs[0], found, batch_size)
        regression = hasattr(first, "target_mean_")
        labels = None if regression else [str(c) for c in first.classes_]
        card = model_card(configs, found.run, labels=labels,
                          task="regression" if regression else "classification", members=names)
        engine = TorchEngine([e.model_ for e in estimators], first.model_.backbone)
        output = STANDARDISED if regression else PROBABILITIES if names else LOGITS
        target = (float(first.target_mean_), float(first.target_std_)) if regression else None
        return cls(engine, modality=first.model_.backbone.modality, labels=labels,
                   output=output, card=card, kind=found.kind, target=target,
                   batch_size=batch_size)

    @classmethod
    def _structured(cls, est: Any, config: dict, found: Located, batch_size: int) -> Predictor:
        """A saved TokenTagger or MultiTaskGrafter, in eager PyTorch."""
        where = str(found.folder / "config.json")
        layout = (structured.check_layout(config["outputs"], where) if "outputs" in config
                  else None)
        labels = None if layout else [str(c) for c in est.classes_]
        card = model_card([config], found.run, labels=labels,
                          task=MULTITASK if layout else TAGGING)
        if layout:
            card["tasks"], card["head"] = structured.card_tasks(layout), "multitask"
        return cls(TorchEngine([est.model_], est.model_.backbone),
                   modality=est.model_.backbone.modality, labels=labels,
                   output=TASK_OUTPUTS if layout else TOKEN_LOGITS, card=card,
                   kind=found.kind, batch_size=batch_size, tasks=layout)

    @classmethod
    def _exported(cls, found: Located, batch_size: int, threads: int | None) -> Predictor:
        """A folder written by :func:`graftlab.deploy.export.export`, in ONNX Runtime."""
        from graftlab.features.onnx_backend import first_line
        from graftlab.saving import check_format

        integrity.verify_manifest(found.folder)
        path = found.folder / "contract.json"
        contract = integrity.read_json(path)
        check_format(contract, path, EXPORT_FORMAT)
        try:
            engine = OnnxEngine(found.folder, contract, threads=threads)
        except Exception as exc:  # what ONNX Runtime or the tokenizer raise: one line
            raise ConfigError(f"{found.folder} cannot be loaded ({type(exc).__name__}: "
                              f"{first_line(exc)}).",
                              hint="export the model again with this graftlab version.") from exc
        target = contract.get("target")
        return cls(engine, modality=contract["inputs"]["modality"], labels=contract["labels"],
                   output=contract["output"], card=contract["card"], kind=EXPORTED,
                   target=(target["mean"], target["std"]) if target else None,
                   batch_size=batch_size, tasks=contract.get("tasks"))


def _load_estimator(folder: Path) -> Any:
    """The saved Grafter, GrafterRegressor, TokenTagger or MultiTaskGrafter in ``folder``
    (its config says which)."""
    from graftlab.grafter import Grafter
    from graftlab.multitask import MultiTaskGrafter
    from graftlab.regressor import GrafterRegressor
    from graftlab.saving import FORMAT, check_format
    from graftlab.tagger import TokenTagger

    config = integrity.read_json(folder / "config.json")  # the checksums: in load, below
    check_format(config, folder / "config.json", FORMAT)
    classes = {"Grafter": Grafter, "GrafterRegressor": GrafterRegressor,
               "TokenTagger": TokenTagger, "MultiTaskGrafter": MultiTaskGrafter}
    name = config.get("estimator", "Grafter")
    if name not in classes:
        raise ConfigError(f"{folder / 'config.json'} holds a {name!r}; a Predictor loads "
                          f"{', '.join(classes)}.",
                          hint="save the model with the .save of one of them.")
    return classes[name].load(folder)


def length_groups(texts: list[str], waste: float = 0.25) -> list[np.ndarray]:
    """Indices of ``texts`` in runs of similar length, shortest first: a run grows while
    padding every text to its longest costs at most ``waste`` more characters than the texts
    hold. A batch pads each text to its longest, and a text encoder's cost grows with the
    padded length, so one long text in a micro-batch would make all the short ones pay for it.
    Character counts stand in for token counts (no second tokenisation). ``waste`` = 0.25 was
    chosen by CPU time per text on VADER nyt texts; benchmarks/serve.py measures on VADER
    movies."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    groups, current, total = [], [], 0
    for index in order:
        n = len(texts[index])
        if current and (len(current) + 1) * n > (1 + waste) * (total + n):
            groups.append(np.asarray(current))
            current, total = [], 0
        current.append(index)
        total += n
    if current:
        groups.append(np.asarray(current))
    return groups
