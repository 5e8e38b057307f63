"""Load an image folder: one sub-folder per class, like torchvision's ``ImageFolder``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_SIZE = (224, 224)
LAYOUT = "expected one sub-folder per class, e.g. photos/cat/1.jpg, photos/dog/2.png"


def _preview(items: list[str], limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, ... and N more`` for long lists in error messages."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _as_hw(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ConfigError(
            f"image_size must be a positive int or a (height, width) pair, got {image_size!r}.",
            hint="pass e.g. image_size=224 or image_size=(224, 160).",
        )
    return int(size[0]), int(size[1])


def _class_files(root: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files below its sub-folder (hidden entries ignored)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        found = f" (it holds {len(loose)} loose image(s))" if loose else ""
        raise DataError(
            f"image folder {str(root)!r} has no class sub-folders{found}; {LAYOUT}.",
            hint="move each class's images into a sub-folder named after the class.",
        )
    files = {}
    for folder in folders:
        images = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not images:
            raise DataError(
                f"class folder {str(folder)!r} holds no images "
                f"({'/'.join(IMAGE_SUFFIXES)}).",
                hint=f"add images to {folder.name!r} or remove the empty folder.",
            )
        files[folder.name] = images
    if len(files) < 2:
        raise DataError(
            f"image folder {str(root)!r} has a single class {next(iter(files))!r}; "
            "classification needs at least two class sub-folders.",
            hint="add a sub-folder per further class.",
        )
    return files


def _read(path: Path) -> np.ndarray | None:
    """The image as an RGB uint8 array, or None when it cannot be decoded."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == hw:
        return image
    resized = Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def load_image_folder(
    path: str | Path,
    *,
    image_size: int | tuple[int, int] | None = None,
    skip_corrupt: bool = False,
    name: str | None = None,
) -> Domain:
    """Load ``path/<class>/<image>`` files into an image :class:`Domain`.

    Class names are the sorted sub-folder names. ``image_size`` (an int or ``(h, w)``) resizes
    every image; left as None, images keep their size when they all share one and are otherwise
    resized to 224x224. Unreadable files stop the load unless ``skip_corrupt`` is set, in which
    case they are left out and listed in ``meta["skipped"]``.
    """
    hw = _as_hw(image_size)
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"no such image folder: {str(root)!r}.",
                        hint=f"check the path; {LAYOUT}.")
    if not root.is_dir():
        raise DataError(
            f"{str(root)!r} is a file, not a folder; load_image_folder wants a folder ({LAYOUT}).",
            hint="for a .csv or .jsonl table of texts use load_table.",
        )
    class_files = _class_files(root)
    classes = list(class_files)
    images, labels, kept, bad = [], [], [], []
    for label, cls in enumerate(classes):
        for file in class_files[cls]:
            image = _read(file)
            if image is None:
                bad.append(file)
                continue
            images.append(image)
            labels.append(label)
            kept.append(file)
    if bad and not skip_corrupt:
        raise DataError(
            f"{len(bad)} image file(s) in {str(root)!r} cannot be read: "
            f"{_preview([str(p) for p in bad])}.",
            hint="fix or delete them, or pass skip_corrupt=True (CLI: --skip-corrupt) "
            "to leave them out.",
        )
    if bad:
        logger.warning("skipped %d unreadable image(s) in %s", len(bad), root)
        present = set(labels)
        empty = [c for i, c in enumerate(classes) if i not in present]
        if empty:
            raise DataError(
                f"every image of class(es) {_preview(empty)} in {str(root)!r} is unreadable.",
                hint="fix the files or remove those class folders.",
            )
    sizes = {im.shape[:2] for im in images}
    if hw is None and len(sizes) > 1:
        hw = DEFAULT_SIZE
        logger.warning(
            "images in %s have %d different sizes; resizing all to %dx%d "
            "(pass image_size=... to choose)", root, len(sizes), *hw,
        )
    if hw is not None:
        images = [_resize(im, hw) for im in images]
    meta = {"source": str(root), "files": [str(p) for p in kept]}
    if skip_corrupt:
        meta["skipped"] = [str(p) for p in bad]
    return Domain(name=name or root.name, modality="image", inputs=np.stack(images),
                  labels=np.asarray(labels), classes=classes, meta=meta)
