"""What ``graftlab serve`` accepts in a request, checked before anything reaches the model.

A request's inputs become the list a :class:`~graftlab.deploy.predictor.Predictor` takes (texts,
or RGB uint8 arrays decoded here), or a :class:`Refused` that says what was wrong and the HTTP
status to answer with: 400 for a body that cannot be parsed, 413 for a limit (its option and
value named), 422 for inputs of the wrong kind (type, base64, not an image, an empty list, a
text for an image model). Every check runs before the micro-batcher sees the request, so one bad
request never fails the others it would have been batched with. No web framework here: the
server (:mod:`graftlab.deploy.serve`) calls these with the raw body.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from graftlab.data.images import ImageProblem, image_size, read_image
from graftlab.deploy.inputs import UNICODE_HINT, not_unicode
from graftlab.errors import ConfigError, DataError

JSON_FORM = 'JSON {"inputs": [...]}'
IMAGE_FORM = (f'{JSON_FORM} with base64-encoded image files, or multipart/form-data with one '
              'image file per part')
TEXT_FORM = f"{JSON_FORM} with texts (str)"
WORDS = "words"  # what a tagging model's request holds: texts, or lists of words
WORDS_FORM = f"{JSON_FORM} with texts (str, split on whitespace) or lists of words"


@dataclass(frozen=True)
class Limits:
    """What one request may hold; each is an option of ``graftlab serve``."""

    max_body_mb: float = 16.0  # --max-body-mb: the request body
    max_pixels: int = 16_000_000  # --max-pixels: one image, height x width
    max_text_chars: int = 10_000  # --max-text-chars: one text
    max_items: int = 256  # --max-items: inputs in one request
    max_request_pixels: int = 64_000_000  # --max-request-pixels: all images of a request

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (value > 0 and math.isfinite(value)):
                option = "--" + name.replace("_", "-")
                raise ConfigError(f"{option} must be a finite number > 0, got {value}.",
                                  hint=f"the default is {getattr(Limits, name)}.")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)


class Refused(DataError):
    """A request answered with ``status`` and ``message`` (and the limit it broke, if one)."""

    def __init__(self, status: int, message: str, *, hint: str | None = None,
                 limit: tuple[str, float] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status, self.limit = status, limit

    def body(self) -> dict:
        out: dict[str, Any] = {"detail": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.limit:
            out["limit"] = {"option": self.limit[0], "value": self.limit[1]}
        return out


def too_large(what: str, option: str, value: float) -> Refused:
    """A 413 naming the limit's option and value."""
    return Refused(413, f"{what}; the limit is {option} {value:,}.",
                   hint=f"send less per request, or start the server with a larger {option}.",
                   limit=(option, value))


def json_inputs(body: bytes, modality: str, limits: Limits) -> list:
    """The inputs of a JSON body ``{"inputs": [...]}``, checked and decoded; ``modality``
    :data:`WORDS` (a tagging model) takes texts or lists of words."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not JSON ({str(exc)[:80]}).",
                      hint=f"send Content-Type: application/json with {_form(modality)}."
                      ) from None
    except RecursionError:  # "[[[[..." thousands deep: Python's parser gives up
        raise Refused(400, "the body is JSON nested too deeply to parse.",
                      hint=f"send {_form(modality)}.") from None
    if not isinstance(data, dict) or "inputs" not in data:
        got = "an object without 'inputs'" if isinstance(data, dict) else _kind(data)
        raise Refused(422, f"the body must be a JSON object with 'inputs'; got {got}.",
                      hint=f"send {_form(modality)}.")
    extra = sorted(set(data) - {"inputs"})
    if extra:
        raise Refused(422, f"unknown field(s) {', '.join(map(repr, extra))}; the body holds "
                      "only 'inputs'.", hint=f"send {_form(modality)}.")
    items = data["inputs"]
    if not isinstance(items, list):
        raise Refused(422, f"'inputs' must be a list; got {_kind(items)}.",
                      hint="wrap one input in a list: {\"inputs\": [x]}.")
    _count(len(items), limits)
    if modality == WORDS:
        return [_words(item, i, limits) for i, item in enumerate(items)]
    if modality == "text":
        return [_text(item, i, limits) for i, item in enumerate(items)]
    return images([_base64(item, i) for i, item in enumerate(items)], limits)


def file_inputs(files: list[bytes], modality: str, limits: Limits) -> list[np.ndarray]:
    """Images uploaded as multipart/form-data parts, decoded."""
    if modality != "image":
        raise Refused(422, "this is a text model: it takes no file uploads.",
                      hint=f"send {TEXT_FORM}.")
    if not files:
        raise Refused(422, "the multipart body holds no file part: there is nothing to predict.",
                      hint="send one image file per part (curl -F file=@photo.jpg).")
    _count(len(files), limits)
    return images(files, limits)


def images(files: list[bytes], limits: Limits) -> list[np.ndarray]:
    """Each image file decoded, once the request's pixels in all (read from the headers) are
    known to fit ``max_request_pixels``: a request of many large images is refused before
    any is decoded (decoded, each pixel takes 3 bytes, and more while it is resized)."""
    total = 0
    for i, data in enumerate(files):
        try:
            height, width = image_size(io.BytesIO(data))
        except ImageProblem:
            continue  # image() names it, in order
        _check_pixels(height, width, i, limits)  # one image over its own limit: that one
        total += height * width
        if total > limits.max_request_pixels:
            raise too_large(f"the request's images hold over {total:,} pixels (up to input "
                            f"{i})", "--max-request-pixels", limits.max_request_pixels)
    return [image(data, i, limits) for i, data in enumerate(files)]


def _check_pixels(height: int, width: int, position: int, limits: Limits) -> None:
    if height * width > limits.max_pixels:
        raise too_large(f"input {position} is {width}x{height} = {height * width:,} pixels",
                        "--max-pixels", limits.max_pixels)


def image(data: bytes, position: int, limits: Limits) -> np.ndarray:
    """One image file's bytes as RGB uint8; its size is read from the header and checked
    against ``max_pixels`` before any pixel is decoded."""
    try:
        height, width = image_size(io.BytesIO(data))
        _check_pixels(height, width, position, limits)
        return read_image(io.BytesIO(data))
    except ImageProblem as problem:
        if problem.too_large:
            raise too_large(f"input {position} has {problem.reason} (over Pillow's "
                            "decompression-bomb guard)", "--max-pixels", limits.max_pixels
                            ) from None
        raise Refused(422, f"input {position} is not an image that can be read "
                      f"({problem.reason}).", hint=f"this image model takes {IMAGE_FORM}."
                      ) from None


def _count(n: int, limits: Limits) -> None:
    if n == 0:
        raise Refused(422, "'inputs' is empty: there is nothing to predict.",
                      hint="send at least one input.")
    if n > limits.max_items:
        raise too_large(f"the request holds {n:,} inputs", "--max-items", limits.max_items)


def _text(item: Any, position: int, limits: Limits) -> str:
    if not isinstance(item, str):
        raise Refused(422, f"input {position} is {_kind(item)}; this text model takes texts.",
                      hint=f"send {TEXT_FORM}.")
    if len(item) > limits.max_text_chars:
        raise too_large(f"input {position} has {len(item):,} characters", "--max-text-chars",
                        limits.max_text_chars)
    problem = not_unicode(item)
    if problem:
        raise Refused(422, f"input {position}: {problem}.", hint=UNICODE_HINT)
    return item


def _words(item: Any, position: int, limits: Limits) -> str | list[str]:
    """A tagging model's input: a text, or a list of words (str, no whitespace inside)."""
    if isinstance(item, str):
        return _text(item, position, limits)
    if not isinstance(item, list):
        _refuse_words(f"input {position} is {_kind(item)}")
    bad = [w for w in item if not isinstance(w, str) or w.split() != [w]]
    if bad:
        _refuse_words(f"input {position}: word {bad[0]!r} is not one word (a str without "
                      "whitespace)")
    _text(" ".join(item), position, limits)  # the limit on characters, as for a text
    return item


def _refuse_words(what: str) -> None:
    raise Refused(422, f"{what}; this tagging model takes texts or lists of words.",
                  hint=f"send {WORDS_FORM}.")


def _base64(item: Any, position: int) -> bytes:
    """An image file's bytes from base64 text (a ``data:image/...;base64,`` prefix allowed)."""
    if not isinstance(item, str):
        raise Refused(422, f"input {position} is {_kind(item)}; this image model takes "
                      "base64-encoded image files (str).", hint=f"send {IMAGE_FORM}.")
    if item.startswith("data:") and "," in item:
        item = item.partition(",")[2]
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(422, f"input {position} is not valid base64; this is an image model: it "
                      "takes base64-encoded image files.",
                      hint=f"send {IMAGE_FORM} (e.g. base64 -w0 photo.jpg)."
                      ) from None


def _form(modality: str) -> str:
    return {"text": TEXT_FORM, WORDS: WORDS_FORM}.get(modality, IMAGE_FORM)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
