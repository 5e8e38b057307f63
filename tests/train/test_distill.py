"""Knowledge distillation in the one trainer: the loss is the formula, alpha=0 is plain
training, the teacher's outputs are what the student learns (cached or per step), a saved
student holds only itself and names its teacher, and every refusal says what to do."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from graftlab import Grafter, GrafterRegressor
from graftlab.backbones import wrap_module
from graftlab.distill import check_teacher, teacher_folder
from graftlab.errors import ConfigError
from graftlab.methods import ERM
from graftlab.methods.distill import Distillation, distill_loss

FAST = {"epochs": 2, "batch_size": 8, "lr": 1e-2}


def _tiny(seed: int = 0, width: int = 4, **options) -> nn.Module:
    """A seeded one-conv backbone (milliseconds a batch), built without touching the global
    RNG: two calls with one seed give two equal, separate backbones."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU()).eval()
    return wrap_module(net, name=f"tiny{width}", **options)


def _data(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array(["cat", "dog"] * (n // 2))
    x = rng.integers(0, 100, (n, 8, 8, 3), dtype=np.uint8)
    x[y == "dog", 2:6, 2:6] = 250  # a bright square: learnable
    return x, y


@pytest.fixture
def teacher() -> Grafter:
    x, y = _data()
    return Grafter(backbone=_tiny(1, 6), strategy="full", augment=False, **FAST).fit(x, y)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ----------------------------------------------------------------------------- the loss
def test_the_loss_is_the_formula_on_known_logits():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    taught = torch.tensor([[1.0, 1.5, 0.0], [3.0, -1.0, 0.5]])
    labels, T, alpha = torch.tensor([0, 2]), 3.0, 0.7
    p_t, p_s = _softmax(taught.numpy() / T), _softmax(student.numpy() / T)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(1).mean()
    ce = -np.log(_softmax(student.numpy())[[0, 1], [0, 2]]).mean()

    class Fixed(nn.Module):  # a "model" whose logits are the known ones
        def __init__(self):
            super().__init__()
            self.z = nn.Parameter(student.clone())

        def forward(self, inputs):
            return self.z

    term = Distillation(temperature=T, weight=alpha)
    out = ERM(Fixed(), num_classes=3, distill=term)(
        {"inputs": {}, "labels": labels, "teacher_logits": taught})
    assert out["loss"].item() == pytest.approx((1 - alpha) * ce + alpha * T * T * kl, rel=1e-5)
    assert out["distill"].item() == pytest.approx(T * T * kl, rel=1e-5)
    assert distill_loss(student, student, T).item() == pytest.approx(0.0, abs=1e-6)
    # the same logits shifted by a constant are the same probabilities: nothing to learn
    assert distill_loss(student, student + 5.0, T).item() == pytest.approx(0.0, abs=1e-5)


def test_a_per_step_teacher_sees_the_augmented_pixels():
    seen = []

    def spy(inputs):
        seen.append(inputs["pixel_values"].clone())
        return torch.zeros(len(inputs["pixel_values"]), 2)

    class Flip(nn.Module):
        def forward(self, x):
            return x.flip(-1)

    pixels = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    method = ERM(lambda_model(model), num_classes=2, augment=Flip(),
                 distill=Distillation(teacher=spy)).train()
    method({"inputs": {"pixel_values": pixels}, "labels": torch.tensor([0, 1])})
    assert len(seen) == 1 and torch.equal(seen[0], pixels.flip(-1))


def lambda_model(net: nn.Module) -> nn.Module:
    class OnPixels(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, inputs):
            return self.net(inputs["pixel_values"])

    return OnPixels()


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("strategy, augment, outputs", [
    ("full", False, "cached"),        # the inputs never change: the teacher runs once
    ("head_only", True, "per step"),  # augmented images: the teacher runs on each batch
])
def test_alpha_zero_trains_the_same_weights_as_no_teacher(teacher, strategy, augment, outputs):
    x, y = _data()
    plain = Grafter(backbone=_tiny(), strategy=strategy, augment=augment, **FAST).fit(x, y)
    taught = Grafter(backbone=_tiny(), strategy=strategy, augment=augment, distill_from=teacher,
                     distill_weight=0.0, **FAST).fit(x, y)
    assert taught.record_["distillation"]["teacher_outputs"] == outputs
    mine, theirs = plain.model_.state_dict(), taught.model_.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    # the loss it logged is the task loss alone, as the plain run's
    assert [h["train_loss"] for h in plain.history_] == [h["train_loss"] for h in taught.history_]


def test_the_cached_teacher_outputs_are_what_the_student_learns(teacher, monkeypatch, caplog):
    """A teacher (spied on) that says "dog" for every image: a student that learns from it
    alone (alpha=1) says "dog" everywhere, though the labels say otherwise."""
    x, y = _data()
    calls = []

    def always_dog(X, batch_size=64):
        calls.append(len(X))
        return np.tile([[-4.0, 4.0]], (len(X), 1)).astype(np.float32)

    monkeypatch.setattr(teacher, "decision_function", always_dog)
    kw = {"strategy": "head_only", "augment": False, "epochs": 6, "batch_size": 8, "lr": 0.1}
    plain = Grafter(backbone=_tiny(), **kw).fit(x, y)
    with caplog.at_level("INFO", logger="graftlab.distill"):
        student = Grafter(backbone=_tiny(), distill_from=teacher, distill_weight=1.0,
                          **kw).fit(x, y)
    assert calls == [len(x)]  # once, on every training input
    assert "outputs on the 24 training inputs are computed once and cached" in caplog.text
    assert set(plain.predict(x)) == {"cat", "dog"}
    assert set(student.predict(x)) == {"dog"}


def test_a_per_step_teacher_runs_on_every_batch(teacher, monkeypatch, caplog):
    x, y = _data()
    batches = []

    def always_dog(inputs):
        batches.append(tuple(inputs["x"].shape))
        return torch.tensor([[-4.0, 4.0]]).repeat(len(inputs["x"]), 1)

    monkeypatch.setattr(teacher.model_, "forward", always_dog)
    with caplog.at_level("INFO", logger="graftlab.distill"):
        student = Grafter(backbone=_tiny(), strategy="head_only", augment=True,
                          distill_from=teacher, distill_weight=1.0, epochs=6, batch_size=8,
                          lr=0.1).fit(x, y)
    assert batches == [(8, 3, 8, 8)] * 18  # 3 batches of 8 in each of 6 epochs
    assert "the teacher runs on each batch" in caplog.text
    assert set(student.predict(x)) == {"dog"}


def test_unit_images_pass_the_same_pixels_between_image_sizes():
    """The per-step bridge: a student's model-ready images, undone to [0, 1] and prepared by
    the teacher's backbone, are what the teacher's own preprocessing makes of the images."""
    from graftlab.backbones import create_backbone

    small = create_backbone("efficientnet_lite0", image_size=32, pretrained=False)
    large = create_backbone("efficientnet_lite0", image_size=64, pretrained=False)
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    unit = small.unit_images(small.preprocess(x))
    np.testing.assert_allclose(unit.permute(0, 2, 3, 1).numpy() * 255, x, atol=1e-3)
    torch.testing.assert_close(large.from_unit_images(unit)["pixel_values"],
                               large.preprocess(x)["pixel_values"], atol=1e-5, rtol=0)
    tiny = _tiny()
    assert torch.equal(tiny.unit_images(tiny.preprocess(x))[0], torch.as_tensor(x[0]).permute(
        2, 0, 1).float() / 255)


# ----------------------------------------------------------------------- the estimator API
def test_clone_keeps_the_fitted_teacher_and_params_round_trip(teacher):
    student = Grafter(backbone=_tiny(), distill_from=teacher, distill_temperature=2.0)
    twin = clone(student)
    assert twin.distill_from is teacher and hasattr(twin.distill_from, "model_")
    assert twin.get_params(deep=False)["distill_temperature"] == 2.0
    assert twin.set_params(distill_weight=0.5).distill_weight == 0.5
    assert clone(Grafter(distill_from="runs/fit-1")).distill_from == "runs/fit-1"


def test_a_saved_student_holds_only_itself_and_names_its_teacher(teacher, tmp_path):
    from safetensors import safe_open

    from graftlab.integrity import sha256_file

    x, y = _data()
    student = Grafter(backbone=_tiny(), strategy="full", augment=False, distill_from=teacher,
                      **FAST).fit(x, y)
    folder = student.save(tmp_path / "student")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "manifest.json",
                                                      "model.safetensors"]
    with safe_open(str(folder / "model.safetensors"), "pt") as saved:
        assert set(saved.keys()) == set(student.model_.state_dict())  # no teacher weights
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["distill_from"] is None  # the teacher object is not saved
    named = config["distilled_from"]
    teacher_file = teacher.save(tmp_path / "teacher") / "model.safetensors"
    assert named["weights_sha256"] == sha256_file(teacher_file)  # as if it had been saved
    assert (named["backbone"], named["strategy"], named["source"]) == ("tiny6", "full", None)
    assert (named["temperature"], named["weight"], named["teacher_outputs"]) == (4.0, 0.9,
                                                                                 "cached")


def test_a_teacher_folder_is_a_model_or_a_run_folder(tmp_path):
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (model / name).write_text("{}")
    assert teacher_folder(model) == model
    assert teacher_folder(tmp_path / "run") == model


# ----------------------------------------------------------------------------- refusals
def _fit_with(teacher, *, y=None, student=Grafter, **kw):
    x, labels = _data()
    est = student(backbone=_tiny(), distill_from=teacher, **{**FAST, **kw})
    return est.fit(x, labels if y is None else y)


def test_a_teacher_of_other_classes_is_refused(teacher):
    y = np.array(["cat", "bird"] * 12)
    with pytest.raises(ConfigError, match=r"the teacher was fitted on classes \['cat', 'dog'\] "
                       r"and y holds \['bird', 'cat'\] \(the teacher's own: \['dog'\]; unknown "
                       r"to the teacher: \['bird'\]\): distillation matches their outputs class "
                       r"by class(.|\n)*HINT: distil from a teacher fitted on the same labels"):
        _fit_with(teacher, y=y)


def test_a_regression_teacher_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"the teacher is a GrafterRegressor, a regression "
                       r"model: distillation learns a classifier teacher's class probabilities"
                       r"(.|\n)*HINT: distil from a classifier \(Grafter\)"):
        _fit_with(GrafterRegressor(backbone=_tiny()))
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"estimator": "GrafterRegressor"}))
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match=rf"{folder} holds a GrafterRegressor, a regression "
                       "model"):
        _fit_with(str(folder))


def test_an_unfitted_teacher_is_refused():
    with pytest.raises(ConfigError, match=r"the teacher given as distill_from is not fitted"
                       r"(.|\n)*HINT: fit the teacher first"):
        _fit_with(Grafter(backbone=_tiny()))


@pytest.mark.parametrize("given, message", [
    (3, r"distill_from must be a fitted Grafter or the folder of a saved one, got int 3\."),
    ("/nonexistent/teacher", r"distill_from /nonexistent/teacher: does not exist\."
                             r"(.|\n)*HINT: give a folder written by Grafter\.save"),
])
def test_a_teacher_that_is_no_model_is_refused(given, message):
    with pytest.raises(ConfigError, match=message):
        _fit_with(given)


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"holds no saved model \(config\.json \+ "
                       r"model\.safetensors, or model/ with them\)"):
        _fit_with(str(tmp_path))


def test_a_regression_student_is_refused(teacher):
    with pytest.raises(ConfigError, match=r"a GrafterRegressor cannot be distilled(.|\n)*HINT: "
                       "use a Grafter"):
        _fit_with(teacher, y=np.arange(24.0), student=GrafterRegressor)


@pytest.mark.parametrize("option, message", [
    ({"distill_temperature": 0.0}, r"distill_temperature must be a finite number > 0, got 0\.0"),
    ({"distill_temperature": math.inf}, r"distill_temperature must be a finite number > 0"),
    ({"distill_weight": 1.5}, r"distill_weight \(alpha\) must be a number in \[0, 1\], got 1\.5"),
])
def test_settings_out_of_range_are_refused(teacher, option, message):
    with pytest.raises(ConfigError, match=message):
        _fit_with(teacher, **option)


def test_numpy_numbers_are_settings_too():
    term = Distillation(temperature=np.float32(2.0), weight=np.float64(0.5))
    assert (term.temperature, term.weight) == (2.0, 0.5)


def test_a_shared_backbone_is_refused(teacher):
    x, y = _data()
    with pytest.raises(ConfigError, match=r"the teacher and the student share one backbone "
                       r"object(.|\n)*HINT: give the student a backbone of its own"):
        Grafter(backbone=teacher.model_.backbone, distill_from=teacher, **FAST).fit(x, y)


def test_a_teacher_of_another_modality_is_refused():
    teacher = SimpleNamespace(model_=SimpleNamespace(backbone=SimpleNamespace(modality="text")),
                              classes_=np.array(["cat", "dog"]))
    student = SimpleNamespace(backbone=_tiny())
    with pytest.raises(ConfigError, match=r"the teacher takes text and the student image"
                       r"(.|\n)*HINT: distil from a teacher with a image backbone"):
        check_teacher(teacher, np.array(["cat", "dog"]), student)


def test_per_step_teaching_through_a_custom_preprocess_is_refused(teacher):
    custom = _tiny(preprocess=lambda x: {"x": torch.as_tensor(np.asarray(x)).permute(
        0, 3, 1, 2).float()})
    x, y = _data()
    with pytest.raises(ConfigError, match=r"the student's images change at every step "
                       r"\(augmentation or mixup\)(.|\n)*HINT: train the student with "
                       r"augment=False and mixup=0"):
        Grafter(backbone=custom, strategy="head_only", augment=True, distill_from=teacher,
                **FAST).fit(x, y)


def test_a_term_without_teacher_or_cached_logits_says_so():
    with pytest.raises(ConfigError, match=r"needs batch\['teacher_logits'\]"):
        Distillation()(torch.tensor(0.0), torch.zeros(2, 2), {}, {})


# ------------------------------------------------------------------ real weights, slow
@pytest.mark.slow
def test_a_student_of_a_saved_teacher_round_trips(tmp_path):
    """EfficientNet-Lite0 at 32 px as teacher (saved in a run folder's model/) and as
    student: the student names the folder and the sha256 of its weights file, and loads back
    to the same predictions."""
    from graftlab.integrity import sha256_file

    x, y = _data(16)
    x = np.repeat(np.repeat(x, 4, 1), 4, 2)  # 32 px
    opts = {"backbone_options": {"image_size": 32}, "epochs": 1, "batch_size": 8}
    Grafter(strategy="last_k", **opts).fit(x, y).save(tmp_path / "run" / "model")
    student = Grafter(strategy="head_only", seed=1, distill_from=str(tmp_path / "run"),
                      **opts).fit(x, y)
    assert student.record_["distillation"]["teacher_outputs"] == "per step"  # augmented
    folder = student.save(tmp_path / "student")
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["distill_from"] == str(tmp_path / "run")
    named = config["distilled_from"]
    assert named["source"] == str(tmp_path / "run" / "model")
    assert named["weights_sha256"] == sha256_file(tmp_path / "run" / "model" /
                                                  "model.safetensors")
    loaded = Grafter.load(folder)
    assert loaded.distilled_from_ == named
    np.testing.assert_allclose(loaded.decision_function(x), student.decision_function(x),
                               atol=1e-5)


def test_the_soft_term_weighs_each_sample_as_the_task_loss_does():
    import torch

    from graftlab.methods.distill import Distillation, distill_loss

    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    even = distill_loss(student, teacher, 2.0, torch.ones(4))
    assert torch.allclose(even, distill_loss(student, teacher, 2.0))  # weights of 1: the mean
    only_first = distill_loss(student, teacher, 2.0, torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(only_first, distill_loss(student[:1], teacher[:1], 2.0))
    term = Distillation(temperature=2.0, weight=1.0)
    out = term(torch.tensor(0.0), student, {}, {"teacher_logits": teacher,
                                                "weights": torch.tensor([1.0, 0, 0, 0])})
    assert torch.allclose(out["distill"], only_first)
