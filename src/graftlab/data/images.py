"""Decode one image file into an RGB uint8 array, whatever its mode, bit depth or orientation.

``Image.convert("RGB")`` alone is wrong for several modes: it clips 16-bit greyscale (``I;16``)
at 255, so a 16-bit PNG loads almost all white; it drops transparency instead of compositing;
and it ignores the EXIF orientation a phone photo carries. :func:`to_rgb` handles each mode:

* **EXIF orientation** is applied first (``ImageOps.exif_transpose``), so a portrait photo
  stored sideways loads upright, as every image viewer shows it.
* **16-bit** (``I;16``, ``I;16B``, ...) is scaled by the range of its type, 0..65535 -> 0..255
  (``v / 257``, rounded), never by the image's own min and max: a dark image stays dark, and
  every image of a data set keeps the same scale. An image that only uses 12 bits (0..4095, some
  scientific cameras) therefore loads dark; rescale it before saving if that matters.
* **32-bit integer** (``I``) has no fixed range worth using (+-2^31 would make every image
  mid-grey). Pillow uses this mode for 16-bit data from some formats and encoders, so values
  within 0..65535 are scaled as 16-bit; anything else (negative, or larger) is stretched from
  the image's minimum to its maximum, the only scale such data carries.
* **32-bit float** (``F``) follows the float convention of :func:`graftlab.data.from_arrays`:
  values in [0, 1] are scaled by 255; whole numbers within 0..255 (8-bit data stored as float)
  are kept; anything else is stretched from the image's minimum to its maximum. NaN and
  infinities load black.
* A transparent colour in a 16-bit or float image is ignored (the values are scaled as above).
* **Transparency** (``RGBA``, ``LA``, ``PA``, ``P``/``L``/``RGB`` with a transparent colour) is
  composited over **white**, the page colour most viewers show behind a transparent image, so
  the network sees what the user saw (a black logo on a transparent background stays a black
  logo; dropping alpha could turn it into a black square).
* **CMYK** goes through Pillow's conversion (Adobe's inverted CMYK JPEGs are handled by the
  decoder). No ICC colour management is applied to any mode, as in torchvision.
* Everything else (``L``, ``1``, ``P``, ``YCbCr``, ...) uses Pillow's own RGB conversion.
"""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps

BACKGROUND = (255, 255, 255)  # transparent pixels are composited over white
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_BOMB = re.compile(r"\((\d+) pixels\)")
# What a broken file raises in Pillow (a truncated PNG, bad EXIF, an unknown format...).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, TypeError, KeyError, IndexError,
                  EOFError, struct.error)


class ImageProblem(Exception):
    """An image file that cannot be loaded; ``too_large`` tells a valid but huge image."""

    def __init__(self, reason: str, *, too_large: bool = False, pixels: int | None = None
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large
        self.pixels = pixels


def pixel_limit() -> int | None:
    """The size (in pixels) above which Pillow refuses to decode an image: twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` (a guard against decompression bombs); None when disabled."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _too_large(error: Exception) -> ImageProblem:
    found = _BOMB.search(str(error))
    pixels = int(found.group(1)) if found else None
    return ImageProblem(f"{pixels:,} pixels" if pixels else "too many pixels", too_large=True,
                        pixels=pixels)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of the image as it will load (EXIF rotation included where the
    header tells it), read from the header without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                rotated = False
                # A PNG's EXIF may sit after its pixel data: asking for it would decode.
                if img.format != "PNG" or "exif" in img.info:
                    try:
                        rotated = img.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
                    except _DECODE_ERRORS:
                        rotated = False
    except Image.DecompressionBombError as e:
        raise _too_large(e) from None
    except _DECODE_ERRORS as e:
        raise ImageProblem(_reason(e)) from None
    return (width, height) if rotated else (height, width)


def _reason(error: Exception) -> str:
    if isinstance(error, Image.UnidentifiedImageError):
        return "not an image Pillow can identify"
    text = str(error).strip()
    return text[:120] if text else type(error).__name__


def read_image(path: str | Path | BinaryIO, size: tuple[int, int] | None = None) -> np.ndarray:
    """The image at ``path`` (or in a binary file object, e.g. ``io.BytesIO(data)``) as RGB
    uint8 ``(H, W, 3)``, resized (bilinear) to ``size`` ``(height, width)`` when given. Raises
    :class:`ImageProblem` when it cannot be loaded."""
    try:
        with Image.open(path) as img:
            rgb = to_rgb(img)
    except Image.DecompressionBombError as e:
        raise _too_large(e) from None
    except ImageProblem:
        raise
    except _DECODE_ERRORS as e:
        raise ImageProblem(_reason(e)) from None
    return rgb if size is None else resize(rgb, size)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 image resized (bilinear) to ``size`` ``(height, width)``."""
    if image.shape[:2] == tuple(size):
        return image
    resized = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (unchanged when it has none)."""
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        img.load()  # a broken file fails here, and is reported as unreadable
        return img  # only the EXIF block is broken: keep the pixels as stored


def to_rgb(img: Image.Image) -> np.ndarray:
    """An opened image as RGB uint8 ``(H, W, 3)``; see the module docstring for each mode."""
    img = _upright(img)
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I") or mode == "F":
        grey = _grey_8bit(np.asarray(img), mode)
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _grey_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float greyscale values as uint8 (rules in the module doc)."""
    if mode.startswith("I;16"):
        return _scale_16bit(values)
    if mode == "F":
        values = values.astype(np.float64)
        finite = np.isfinite(values)
        values = np.where(finite, values, 0.0)
        lo, hi = ((float(values[finite].min()), float(values[finite].max())) if finite.any()
                  else (0.0, 0.0))
        if lo >= 0 and hi <= 1:
            return np.rint(values * 255).astype(np.uint8)
        if lo >= 0 and hi <= 255 and np.array_equal(values, np.round(values)):
            return values.astype(np.uint8)
        return _stretch(values, lo, hi, finite)
    values = values.astype(np.int64)  # "I" (32-bit signed) and any other integer mode
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi <= 65535:
        return _scale_16bit(values)
    return _stretch(values.astype(np.float64), lo, hi, None)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded (v / 257), so 257 * k maps back to k exactly."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(values: np.ndarray, lo: float, hi: float, finite: np.ndarray | None) -> np.ndarray:
    """Min-max stretch to 0..255 (a constant image loads black); non-finite pixels black."""
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    out = np.rint((values - lo) * (255.0 / (hi - lo)))
    if finite is not None:
        out = np.where(finite, out, 0)
    return out.astype(np.uint8)
