"""Wrap in-memory arrays (images) or a list of strings (texts) as a :class:`Domain`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from graftlab.data.domain import Domain
from graftlab.errors import DataError

IMAGE_HINT = "images go in as (N, H, W, 3) RGB or (N, H, W) greyscale arrays."


def _is_text(X: object) -> bool:
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "UO" and X.ndim == 1 and all(isinstance(t, str) for t in X)
    return isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], str)


def _texts(X: Sequence, name: str) -> list[str]:
    bad = [i for i, t in enumerate(X) if not isinstance(t, str)]
    if bad:
        raise DataError(f"domain {name!r}: texts must all be strings; item(s) {bad[:10]} are not.",
                        hint="convert them with str() or drop them.")
    empty = [i for i, t in enumerate(X) if not t.strip()]
    if empty:
        raise DataError(f"domain {name!r}: text item(s) {empty[:10]} are empty.",
                        hint="drop the empty texts (and their labels).")
    return list(X)


def _images(X: object, name: str) -> np.ndarray:
    arr = np.asarray(X)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        hint = IMAGE_HINT
        if arr.ndim == 4 and arr.shape[1] in (1, 3):
            hint = "this looks channels-first (N, C, H, W); pass X.transpose(0, 2, 3, 1)."
        elif arr.ndim == 2:
            hint = "flat rows of pixels? reshape them, e.g. X.reshape(-1, 28, 28)."
        raise DataError(f"domain {name!r}: cannot use an array of shape {arr.shape} as images.",
                        hint=hint)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise DataError(f"domain {name!r}: image array holds NaN or infinite values.",
                            hint="clean or drop those images.")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 1:
            raise DataError(
                f"domain {name!r}: float images must lie in [0, 1], got values in "
                f"[{lo:g}, {hi:g}].",
                hint="for 0-255 pixel values pass X.astype(np.uint8); otherwise rescale to "
                "[0, 1] first (undo any mean/std normalisation).",
            )
        return np.round(arr * 255).astype(np.uint8)
    if arr.dtype.kind == "b":  # a 1-bit image (PIL mode "1"): False black, True white
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(
                f"domain {name!r}: integer images must lie in 0..255, got {lo}..{hi}.",
                hint="rescale them to 0..255 (uint8).",
            )
        return arr.astype(np.uint8)
    raise DataError(f"domain {name!r}: cannot use dtype {arr.dtype} as images.", hint=IMAGE_HINT)


def _labels(y: object, n: int, classes: list[str] | None, name: str
            ) -> tuple[np.ndarray, list[str]]:
    values = np.asarray(y)
    if values.shape != (n,):
        raise DataError(f"domain {name!r}: {n} inputs but y has shape {values.shape}.",
                        hint="give exactly one label per input.")
    if classes is not None:
        classes = [str(c) for c in classes]
        if values.dtype.kind in "UO":
            index = {c: i for i, c in enumerate(classes)}
            unknown = sorted({str(v) for v in values} - set(index))
            if unknown:
                raise DataError(f"domain {name!r}: labels {unknown[:10]} are not in classes.",
                                hint=f"classes are {classes}; add the missing ones.")
            return np.asarray([index[str(v)] for v in values]), classes
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise DataError(f"domain {name!r}: y holds non-integer values.",
                            hint="give integer class ids into classes.")
        return values.astype(np.int64), classes
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise DataError(f"domain {name!r}: y holds non-integer values, not class labels.",
                        hint="give class ids or names (from_arrays is for classification).")
    if values.dtype.kind == "f":
        values = values.astype(np.int64)
    found, ids = np.unique(values, return_inverse=True)
    if len(found) < 2:
        raise DataError(
            f"domain {name!r}: y holds a single class {str(found[0])!r}.",
            hint="pass classes=[...] to name every class, or y=None for unlabelled data.",
        )
    return ids.astype(np.int64), [str(c) for c in found]


def from_arrays(
    X: np.ndarray | Sequence[str],
    y: np.ndarray | Sequence | None = None,
    *,
    classes: Sequence[str] | None = None,
    name: str = "arrays",
) -> Domain:
    """A :class:`Domain` from images in memory or a list of texts.

    Images: uint8 ``(N, H, W, 3)``, greyscale ``(N, H, W)`` (repeated to 3 channels), or floats in
    [0, 1] (scaled to 0-255). ``y`` holds class ids or names; without ``classes`` they become ids
    into the sorted unique values, with ``classes`` ints are kept as ids and names are looked up.
    """
    if np.size(X) == 0:
        raise DataError(f"domain {name!r}: X is empty; it holds no samples.",
                        hint="pass at least one image or text.")
    text = _is_text(X)
    inputs = _texts(X, name) if text else _images(X, name)
    labels, names = (None, list(classes or [])) if y is None else _labels(
        y, len(inputs), None if classes is None else list(classes), name)
    return Domain(name=name, modality="text" if text else "image", inputs=inputs,
                  labels=labels, classes=names)


def in_memory(X: object, modality: str, name: str = "inputs") -> Domain:
    """Inputs an estimator was handed in memory (``fit``/``predict``'s ``X``), checked for the
    mistakes that would otherwise pass silently, as a :class:`Domain` of ``modality``:

    - texts: a list (or 1-D array) of strings; one string alone (which would be read as its
      characters), a table, numbers or nested lists are refused;
    - images: as :func:`from_arrays` takes them ((N, H, W, 3) or greyscale (N, H, W), uint8
      0..255 or float 0..1), or a list of same-size arrays / PIL images; a single (H, W, 3)
      image (which would be read as H greyscale images), file paths and mixed sizes are
      refused, and uint8 images holding only 0 and 1 are warned about.
    """
    if isinstance(X, str | bytes):
        raise DataError(f"got one {type(X).__name__} where a sequence of inputs was expected.",
                        hint="wrap a single text in a list: [text]." if modality == "text" else
                        "images go in as an (N, H, W, 3) array.")
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a pandas DataFrame
        raise DataError(f"got a table (a DataFrame with columns {list(X.columns)[:10]}) where a "
                        "sequence of inputs was expected.",
                        hint="pass the column of inputs, e.g. df['text'].tolist().")
    if modality == "text":
        return Domain(name, "text", _checked_texts(X, name))
    return Domain(name, "image", _checked_images(X, name))


def _checked_texts(X: object, name: str) -> list[str]:
    if isinstance(X, np.ndarray) and (X.ndim != 1 or X.dtype.kind not in "UO"):
        raise DataError(f"{name!r}: an array of dtype {X.dtype} and shape {X.shape} is not a "
                        "list of texts, and this backbone reads texts.",
                        hint="for images pick an image backbone (`graftlab backbones`); texts "
                        "go in as a list of strings.")
    items = list(X)
    bad = [i for i, t in enumerate(items) if not isinstance(t, str)]
    if bad:
        kinds = sorted({type(items[i]).__name__ for i in bad})
        raise DataError(f"{name!r}: texts must all be strings; item(s) {bad[:10]} are "
                        f"{', '.join(kinds)}.",
                        hint="drop the missing ones (None, NaN); join a list of words with "
                        "' '.join(words); str() anything else that is text.")
    return items


def _checked_images(X: object, name: str) -> np.ndarray:
    if isinstance(X, tuple) and len(X) == 2 and np.ndim(X[0]) >= 3 and np.ndim(X[1]) == 1:
        raise DataError(f"{name!r}: got a pair (images, labels?) where images were expected.",
                        hint="pass the images alone (an adaptation's target takes no labels).")
    if isinstance(X, list | tuple):
        words = [i for i, x in enumerate(X) if isinstance(x, str | bytes) or hasattr(x, "suffix")]
        if words:
            raise DataError(f"{name!r}: item(s) {words[:10]} are strings or paths (texts, or "
                            "image files?), and this backbone reads images.",
                            hint="texts need a text backbone (minilm_l6); load image files "
                            "first (graftlab.data.load_image_folder, or PIL.Image.open); "
                            "graftlab predict and the Predictor read paths.")
        shapes = sorted({np.asarray(x).shape for x in X}, key=str)
        if len({shape[:2] for shape in shapes}) == 1 and len(shapes) > 1:
            raise DataError(f"{name!r}: the images are of one size but differ in channels "
                            f"({', '.join(map(str, shapes[:5]))}): greyscale, colour or "
                            "alpha mixed.", hint="convert each to RGB first (PIL: "
                            "image.convert('RGB')); load_image_folder does it for you.")
        if len(shapes) > 1:
            raise DataError(f"{name!r}: the images differ in size ({', '.join(map(str, shapes[:5]))}"
                            f"{' ...' if len(shapes) > 5 else ''}); an array needs one size.",
                            hint="resize them to one size first (e.g. PIL's Image.resize); the "
                            "backbone resizes to its own input size anyway.")
    arr = np.asarray(X)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise DataError(f"{name!r}: an array of shape {arr.shape} reads as {arr.shape[0]} "
                        f"greyscale images {arr.shape[2]} pixels wide; is it one RGB image?",
                        hint="pass one image as X[None] (shape (1, H, W, 3)); drop an alpha "
                        "channel with X[..., :3].")
    if arr.ndim == 4 and arr.shape[-1] == 4:
        raise DataError(f"{name!r}: the images have 4 channels (RGBA?).",
                        hint="drop the alpha channel: X[..., :3].")
    images = _images(arr, name)
    if arr.dtype == np.uint8 and images.size and int(images.max()) == 1:
        warnings.warn(f"{name!r}: these uint8 images hold only the values 0 and 1, while 0..255 "
                      "is expected; if they are binary masks or 0..1 pixels, multiply by 255.",
                      UserWarning, stacklevel=4)
    return images
