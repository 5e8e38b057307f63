"""A Grafter's teacher: ``Grafter(distill_from=...)`` names a fitted classifier Grafter, a
saved one, or a ``graftlab fit`` run folder; this module checks it, names it (backbone and the
sha256 of its weights, which a saved student records instead of the teacher) and gives the
engine its :class:`~graftlab.methods.distill.Distillation` term.

Where the teacher's outputs come from is decided once per fit:

- **cached**: the student's inputs are the same at every step (cached features or activations,
  or raw inputs without augmentation): the teacher predicts every training sample once, and
  each batch carries its rows (``batch["teacher_logits"]``). Exact, and one teacher pass in all.
- **per step**: the student's images are augmented or mixed at each step: the teacher runs on
  each batch, on the very pixels the student saw (undone to [0, 1] RGB by the student's
  backbone, then resized and normalised as the teacher's backbone does). A cache would teach
  the un-augmented image's outputs for an augmented one.

A log line (INFO) says which one a fit uses; the run's record says it too.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graftlab import integrity
from graftlab.errors import ConfigError
from graftlab.methods.distill import Distillation, check_distill_settings
from graftlab.train.model import GraftedModel
from graftlab.train.targets import ClassTargets

log = logging.getLogger(__name__)
_FIX_CLASSES = "distil from a teacher fitted on the same labels (the same class names), or " \
               "drop distill_from."


def teacher_folder(path: str | Path) -> Path:
    """The saved model ``path`` names: a model folder (``config.json`` + ``model.safetensors``)
    or a run folder of ``graftlab fit`` holding one in ``model/``."""
    folder = Path(path).expanduser()
    for candidate in (folder, folder / "model"):
        if (candidate / "model.safetensors").is_file() and (candidate / "config.json").is_file():
            return candidate
    problem = ("does not exist" if not folder.exists() else
               "holds no saved model (config.json + model.safetensors, or model/ with them)")
    raise ConfigError(f"distill_from {path}: {problem}.",
                      hint="give a folder written by Grafter.save, or the run folder of "
                      "`graftlab fit` (the one that holds model/).")


def resolve_teacher(distill_from: Any, load: Callable[[Path], Any]) -> tuple[Any, Path | None]:
    """The teacher estimator and the folder it was loaded from (None for an object); ``load``
    reads a saved classifier (``Grafter.load``)."""
    if isinstance(distill_from, str | Path):
        folder = teacher_folder(distill_from)
        saved_as = integrity.read_json(folder / "config.json").get("estimator", "Grafter")
        if saved_as != "Grafter":
            raise _not_a_classifier(f"{folder} holds a {saved_as}")
        return load(folder), folder
    if not hasattr(distill_from, "decision_function") or not hasattr(distill_from, "get_params"):
        raise ConfigError(f"distill_from must be a fitted Grafter or the folder of a saved one, "
                          f"got {type(distill_from).__name__} {distill_from!r:.60}.",
                          hint="pass the teacher Grafter itself, or the folder Grafter.save "
                          "wrote (or a `graftlab fit` run folder).")
    if getattr(distill_from, "_targets", ClassTargets) is not ClassTargets:
        raise _not_a_classifier(f"the teacher is a {type(distill_from).__name__}")
    if not hasattr(distill_from, "model_"):
        raise ConfigError("the teacher given as distill_from is not fitted: it has no outputs "
                          "to learn from.", hint="fit the teacher first (teacher.fit(X, y)), "
                          "or give the folder of a saved, fitted one.")
    return distill_from, None


def _not_a_classifier(what: str) -> ConfigError:
    kind = ("a token tagger (a tag per word)" if "TokenTagger" in what else
            "a multi-task model" if "MultiTask" in what else "a regression model")
    return ConfigError(f"{what}, {kind}: distillation learns a classifier teacher's class "
                       "probabilities, one set per input, which it does not give.",
                       hint="distil from a classifier (Grafter) fitted on the same labels, or "
                       "drop distill_from.")


def check_teacher(teacher: Any, classes: np.ndarray, student: GraftedModel) -> None:
    """The teacher has a backbone of its own, takes the student's modality and predicts
    exactly the student's classes."""
    if teacher.model_.backbone is student.backbone:
        raise ConfigError("the teacher and the student share one backbone object: training "
                          "the student would change the teacher.",
                          hint="give the student a backbone of its own (a new module, or a "
                          "registered name such as efficientnet_lite0).")
    theirs, modality = teacher.model_.backbone.modality, student.backbone.modality
    if theirs != modality:
        raise ConfigError(f"the teacher takes {theirs} and the student {modality}: a teacher "
                          "must see the student's inputs.",
                          hint=f"distil from a teacher with a {modality} backbone, fitted on "
                          "the same labels.")
    mine, taught = np.asarray(classes).tolist(), np.asarray(teacher.classes_).tolist()
    if mine != taught:
        extra = sorted(set(map(str, taught)) - set(map(str, mine)))
        missing = sorted(set(map(str, mine)) - set(map(str, taught)))
        detail = "; ".join(part for part in (
            f"the teacher's own: {extra}" if extra else "",
            f"unknown to the teacher: {missing}" if missing else "") if part)
        raise ConfigError(f"the teacher was fitted on classes {taught[:10]} and y holds "
                          f"{mine[:10]} ({detail or 'of other types'}): distillation matches "
                          "their outputs class by class.", hint=_FIX_CLASSES)


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 of the ``model.safetensors`` file ``model`` saves as (the same digest as a saved
    teacher's file), so a student names its teacher the same way however it was given."""
    from safetensors.torch import save_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_model(model, str(path))
        return integrity.sha256_file(path)


def teacher_identity(teacher: Any, folder: Path | None) -> dict:
    """What a saved student records of its teacher (never the teacher itself)."""
    sha = (integrity.sha256_file(folder / "model.safetensors") if folder is not None
           else weights_sha256(teacher.model_))
    return {"backbone": teacher.model_.backbone.name, "strategy": teacher.strategy,
            "weights_sha256": sha, "source": str(folder) if folder is not None else None}


class OnlineTeacher:
    """The teacher's logits on the student's own model-ready images at this step: undone to
    [0, 1] RGB by the student's backbone, prepared as the teacher's backbone prepares images.
    A plain object, not a module: it stays out of the student's parameters and checkpoints."""

    def __init__(self, teacher: GraftedModel, student: GraftedModel) -> None:
        self.model, self.student_backbone = teacher.eval(), student.backbone
        try:
            probe = self.student_backbone.probe_batch()
            unit = self.student_backbone.unit_images(probe)
            if unit is None:
                raise NotImplementedError(self.student_backbone.name)
            self.model.backbone.from_unit_images(unit)
        except NotImplementedError as exc:
            raise ConfigError(
                "the student's images change at every step (augmentation or mixup), so its "
                "teacher must see each batch, but the pixels cannot be passed from one backbone "
                f"to the other ({exc}: a custom preprocess).",
                hint="train the student with augment=False and mixup=0: the teacher's outputs "
                "are then computed once on the training inputs.") from None

    def __call__(self, inputs: dict) -> torch.Tensor:
        images = self.student_backbone.unit_images(inputs)
        device = images.device
        if next(self.model.parameters()).device != device:  # a copy: the user's teacher stays
            self.model = copy.deepcopy(self.model).to(device)
        return self.model.eval()(self.model.backbone.from_unit_images(images))


@dataclass
class Teaching:
    """What a student's fit takes from its teacher: the engine's term, the teacher's logits for
    every sample of the training domain (None where it runs per step), and its identity."""

    term: Distillation
    logits: torch.Tensor | None
    identity: dict

    def batch(self, idx: np.ndarray) -> dict:
        """What a training batch carries for the term: the cached logits of its samples."""
        return {} if self.logits is None else {"teacher_logits": self.logits[idx]}

    def record(self) -> dict:
        return {"distillation": {**self.identity, "temperature": self.term.temperature,
                                 "weight": self.term.weight,
                                 "teacher_outputs": "cached" if self.logits is not None
                                 else "per step"}}


def teaching(student: Any, domain: Any, targets: Any, model: GraftedModel, *,
             per_step: bool, load: Callable[[Path], Any]) -> Teaching | None:
    """The teaching of a student estimator (its ``distill_from``, ``distill_temperature``,
    ``distill_weight``) for a fit on ``domain`` with ``targets`` (the student's, fitted to y)
    and ``model`` (the student's); None without a teacher. ``per_step``: whether
    the student's inputs change at every step (augmentation, mixup)."""
    if student.distill_from is None:
        return None
    if getattr(student, "_targets", ClassTargets) is not ClassTargets:
        raise ConfigError(f"a {type(student).__name__} cannot be distilled: distillation "
                          "matches a classifier's class probabilities.",
                          hint="use a Grafter (classifier) as the student, or drop distill_from.")
    check_distill_settings(student.distill_temperature, student.distill_weight)
    teacher, folder = resolve_teacher(student.distill_from, load)
    check_teacher(teacher, targets.classes, model)
    identity = teacher_identity(teacher, folder)
    options = {"temperature": student.distill_temperature, "weight": student.distill_weight}
    if per_step:
        log.info("distillation from %s: the teacher runs on each batch (the student's images "
                 "are augmented or mixed at every step)", identity["backbone"])
        return Teaching(Distillation(**options, teacher=OnlineTeacher(teacher.model_, model)),
                        None, identity)
    log.info("distillation from %s: the teacher's outputs on the %d training inputs are "
             "computed once and cached (the student's inputs are the same at every step)",
             identity["backbone"], len(domain))
    logits = torch.from_numpy(np.asarray(teacher.decision_function(domain), np.float32))
    return Teaching(Distillation(**options), logits, identity)
