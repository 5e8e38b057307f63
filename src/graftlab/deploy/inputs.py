"""Raw inputs as a model takes them: texts as a list of str; images as RGB uint8 (H, W, 3)
arrays, decoded from arrays, image files or raw bytes by :mod:`graftlab.data.images` (EXIF
orientation, 16-bit and transparency handled as when a folder loads). Every refusal names the
input (by its position) and what the model takes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graftlab.data.images import ImageProblem, read_image, to_rgb
from graftlab.data.tables import not_unicode
from graftlab.errors import DataError

IMAGE_INPUTS = "RGB uint8 arrays (H, W, 3), PIL images, image file paths or image bytes"
TEXT_INPUTS = "a list of texts (str)"


def as_list(inputs: Any, modality: str) -> list:
    """``inputs`` as a list of single inputs (one array of images (N, H, W, C) counts as N)."""
    if isinstance(inputs, str | bytes | Path):
        what = "one string" if isinstance(inputs, str) else f"one {type(inputs).__name__}"
        raise DataError(f"the model takes a list of inputs, got {what}.",
                        hint="wrap one input in a list: predict([x]).")
    if isinstance(inputs, np.ndarray) and modality == "image" and inputs.ndim == 4:
        return list(inputs)
    if isinstance(inputs, np.ndarray) and modality == "text" and inputs.dtype.kind in "UO":
        return inputs.tolist()
    if type(inputs).__name__ == "Series" and hasattr(inputs, "tolist"):  # df["text"]
        return list(inputs.tolist())
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence):
        shape = f" of shape {inputs.shape}" if isinstance(inputs, np.ndarray) else ""
        raise DataError(f"the model takes a list of inputs; got {type(inputs).__name__}{shape}.",
                        hint=f"this {modality} model takes "
                        f"{IMAGE_INPUTS if modality == 'image' else TEXT_INPUTS}.")
    return list(inputs)


def texts(items: list, offset: int = 0) -> list[str]:
    """Check that every item is a text (``offset``: the position of the first, for messages)."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            kind = _kind(item)
            raise DataError(f"input {offset + i} is {kind}, but this is a text model: it takes "
                            f"{TEXT_INPUTS}.",
                            hint="give an image model images, and this model texts.")
        problem = not_unicode(item)
        if problem:
            raise DataError(f"input {offset + i}: {problem}.", hint=UNICODE_HINT)
    return items


UNICODE_HINT = ("decode the text as UTF-8 (or its real encoding) before predicting, or drop "
                "the character.")




def images(items: list, offset: int = 0) -> list[np.ndarray]:
    """Each item decoded to an RGB uint8 (H, W, 3) array."""
    return [image(item, offset + i) for i, item in enumerate(items)]


def image(item: Any, position: int) -> np.ndarray:
    """One input as an RGB uint8 (H, W, 3) array."""
    if isinstance(item, np.ndarray):
        return _array(item, position)
    if hasattr(item, "getbands") and hasattr(item, "convert"):  # a PIL image, any mode
        return to_rgb(item)  # as a file of that mode loads: grey repeated, alpha on white
    if isinstance(item, bytes | bytearray | memoryview):
        try:
            return read_image(io.BytesIO(bytes(item)))
        except ImageProblem as problem:
            raise DataError(f"input {position}: its bytes are not an image that can be read "
                            f"({problem.reason}).",
                            hint=f"this image model takes {IMAGE_INPUTS}.") from None
    if isinstance(item, str | Path):
        path = Path(item)
        if not path.is_file():
            shown = str(item) if len(str(item)) <= 60 else str(item)[:57] + "..."
            raise DataError(f"input {position}: {shown!r} is not an image file (no such file); "
                            f"this is an image model: it takes {IMAGE_INPUTS}.",
                            hint="give texts to a text model; check the path of an image.")
        try:
            return read_image(path)
        except ImageProblem as problem:
            raise DataError(f"input {position}: {path} cannot be read as an image "
                            f"({problem.reason}).",
                            hint="fix or leave out the file (graftlab predict: --skip-corrupt)."
                            ) from None
    raise DataError(f"input {position} is {_kind(item)}; this image model takes {IMAGE_INPUTS}.")


def _array(item: np.ndarray, position: int) -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array as RGB: grey repeated,
    transparency composited on white (as an image file with them would load)."""
    if item.dtype != np.uint8:
        raise DataError(f"input {position} is a {item.dtype} array; images are uint8 (0-255).",
                        hint="convert it, e.g. (x * 255).round().astype('uint8') for values in "
                        "[0, 1].")
    if item.ndim in (2, 3) and 0 in item.shape[:2]:
        raise DataError(f"input {position} is an empty image (shape {item.shape}).",
                        hint="drop it: an image has at least one pixel.")
    if item.ndim == 3 and item.shape[-1] == 3:
        return item
    if item.ndim == 2 or (item.ndim == 3 and item.shape[-1] == 1):
        return np.repeat(item.reshape(item.shape[:2])[..., None], 3, axis=-1)
    if item.ndim == 3 and item.shape[-1] == 4:
        from PIL import Image

        return to_rgb(Image.fromarray(item, "RGBA"))
    raise DataError(f"input {position} has shape {item.shape}; an image is (H, W, 3) (also "
                    "(H, W), (H, W, 1) or (H, W, 4)).",
                    hint="a batch of images is a list of arrays or one (N, H, W, 3) array.")


def _kind(item: Any) -> str:
    if isinstance(item, np.ndarray):
        return f"an array of shape {item.shape} (an image?)"
    if isinstance(item, bytes | bytearray | memoryview):
        return "bytes (an image?)"
    if isinstance(item, str):
        return "a string (a text?)"
    return f"a {type(item).__name__}"
