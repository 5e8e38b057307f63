"""Tiny trained models for the deploy tests, built once per session in a few seconds.

Text: a two-layer, 16-wide BERT with a 20-word vocabulary, saved as a local Hugging Face folder
(``hf:PATH``, the same family as minilm_l6). Images: EfficientNet-Lite0's architecture at
32 px with random weights whose BatchNorm statistics were measured on random images, passed as
``weights=`` (plain random weights give every image the same output in eval mode). Both are
real graftlab backbones, saved and loaded by name, so every path of save -> load -> export ->
predict runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graftlab import Grafter, GrafterRegressor

POSITIVE = ["good film", "great fun", "a lovely plot", "the film was great", "good and fun"]
NEGATIVE = ["bad film", "awful plot", "a dull film", "the plot was boring", "bad and dull"]
TEXTS = POSITIVE + NEGATIVE
LABELS = ["pos"] * 5 + ["neg"] * 5
WORDS = "good great fun lovely bad awful dull boring film plot the a and was it".split()


def _tiny_bert(folder: Path) -> Path:
    from tests._tiny_bert import tiny_bert

    return tiny_bert(folder, WORDS, max_length=24)


def _random_lite0(path: Path) -> Path:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    net = EfficientNet.from_name("efficientnet-lite0", image_size=32)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batch
            module.reset_running_stats()
    with torch.no_grad():
        net.train()(torch.randn(16, 3, 32, 32))
    torch.save(net.state_dict(), path)
    return path


def squares(n: int = 24, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by where a bright square sits."""
    rng = np.random.default_rng(0)
    y = np.array(["tl", "br", "tr"] * (n // 3))
    x = rng.integers(0, 90, (n, size, size, 3), dtype=np.uint8)
    corner = {"tl": (2, 2), "br": (18, 18), "tr": (2, 18)}
    for i, label in enumerate(y):
        r, c = corner[label]
        x[i, r:r + 12, c:c + 12] = 250
    return x, y


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Saved folders: ``text`` (Grafter, full fine-tuning), ``image`` (head_only),
    ``regressor`` (GrafterRegressor on texts), ``average`` (two text Grafters averaged)."""
    from graftlab.adapt.average import AveragedModel

    root = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAFTLAB_HOME", str(root / "home"))
        mp.setenv("GRAFTLAB_CACHE", str(root / "cache"))
        bert = f"hf:{_tiny_bert(root / 'tiny-bert')}"
        text = dict(backbone=bert, strategy="full", epochs=8, batch_size=4, lr=1e-2,
                    lr_backbone=1e-2)
        Grafter(**text).fit(TEXTS, LABELS).save(root / "text")
        GrafterRegressor(**text).fit(TEXTS, [4.0] * 5 + [1.5] * 5).save(root / "regressor")
        members = {f"lora{s}": Grafter(**{**text, "strategy": "lora"}, seed=s).fit(TEXTS, LABELS)
                   for s in (1, 2)}
        AveragedModel(members).save(root / "average")
        x, y = squares()
        weights = str(_random_lite0(root / "lite0-random.pth"))
        Grafter(strategy="last_k", epochs=3, batch_size=8, lr=1e-2,
                backbone_options={"image_size": 32, "weights": weights}).fit(x, y).save(
            root / "image")
    return {name: root / name for name in ("text", "regressor", "average", "image")} | {
        "bert": root / "tiny-bert"}


@pytest.fixture(scope="session")
def exported(models, tmp_path_factory) -> dict[str, Path]:
    """Each saved model of ``models`` exported once."""
    from graftlab.deploy.export import export

    root = tmp_path_factory.mktemp("exported")
    return {name: export(models[name], root / name).folder
            for name in ("text", "regressor", "average", "image")}


TAG_TEXTS = ["the film was good", "a bad plot", "good film and bad plot", "the plot was great",
             "a lovely film", "it was a dull film"]
TAG_TAGS = [["O", "B-obj", "O", "O"], ["O", "B-obj", "I-obj"],
            ["B-obj", "I-obj", "O", "B-obj", "I-obj"], ["O", "B-obj", "O", "O"],
            ["O", "B-obj", "I-obj"], ["O", "O", "O", "B-obj", "I-obj"]]


@pytest.fixture(scope="session")
def structured(models, tmp_path_factory) -> dict[str, Path]:
    """Saved ``tagger`` (TokenTagger) and ``multitask`` (MultiTaskGrafter: sentiment and a
    rating) on the tiny BERT of ``models``, and each ``<name>_export``."""
    from graftlab import TokenTagger
    from graftlab.deploy.export import export
    from graftlab.multitask import MultiTaskGrafter

    root = tmp_path_factory.mktemp("structured")
    bert = f"hf:{models['bert']}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAFTLAB_HOME", str(root / "home"))
        mp.setenv("GRAFTLAB_CACHE", str(root / "cache"))
        TokenTagger(backbone=bert, strategy="full", epochs=6, batch_size=3, lr=1e-2,
                    lr_backbone=1e-2).fit([t.split() for t in TAG_TEXTS], TAG_TAGS).save(
            root / "tagger")
        ratings = [4.0] * 5 + [1.5] * 5
        MultiTaskGrafter(backbone=bert, strategy="full", epochs=6, batch_size=4, lr=1e-2,
                         lr_backbone=1e-2,
                         tasks={"sentiment": "classification", "rating": "regression"}).fit(
            TEXTS, {"sentiment": LABELS, "rating": ratings}).save(root / "multitask")
    out = {name: root / name for name in ("tagger", "multitask")}
    for name in ("tagger", "multitask"):
        out[f"{name}_export"] = export(out[name], root / f"{name}-export").folder
    return out
