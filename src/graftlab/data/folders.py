"""Load an image folder: one sub-folder per class, like torchvision's ``ImageFolder``, or a folder
of loose images as an unlabelled domain.

Symbolic links are followed only where they cannot distort the data set: a link back to the
data root (or above it) would add a class holding every image, a link to a folder already
inside the root would load its images twice (under two labels, or on both sides of a train/test
split), and a link that loops never ends. Such links, broken ones, and links out of the root
(unless ``follow_symlinks=True``) are skipped and named in one warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graftlab.data.domain import Domain, check_labelled
from graftlab.data.images import ImageProblem, image_size, pixel_limit, read_image, resize
from graftlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                  ".ppm", ".pgm", ".pbm")
# image formats Pillow cannot read as installed: files of these are counted and named
UNREADABLE_IMAGES = (".heic", ".heif", ".avif", ".svg", ".dng", ".cr2", ".nef", ".arw", ".raw")
DEFAULT_SIZE = (224, 224)
LAYOUT = "expected one sub-folder per class, e.g. photos/cat/1.jpg, photos/dog/2.png"
SHOWN = 5  # file names a warning shows before "and N more"


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


def _files(n: int) -> str:
    return f"{n} image file" + ("" if n == 1 else "s")


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") for part in parts)


@dataclass
class _Listing:
    """The image files below a data root, found without following a link that escapes the
    root (unless asked), points back into it, or loops."""

    root: Path
    follow_symlinks: bool = False
    real_root: Path = field(init=False)
    classes: dict[str, list[Path]] = field(default_factory=dict)  # sub-folder -> its images
    loose: list[Path] = field(default_factory=list)  # images directly in the root
    links: list[tuple[str, str]] = field(default_factory=list)  # (link, why it was skipped)
    unreadable: list[str] = field(default_factory=list)  # images of a format not read
    seen: dict[Path, str] = field(default_factory=dict)  # real file -> where it was found

    def __post_init__(self) -> None:
        self.real_root = self.root.resolve()
        for path, real, is_dir in self._children(self.root, (self.real_root,)):
            if is_dir:
                self.classes[path.name] = self._images(path, (self.real_root, real))
            else:
                self.loose.append(path)

    def show(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _images(self, folder: Path, chain: tuple[Path, ...]) -> list[Path]:
        """Image files below ``folder`` in sorted order; ``chain`` holds the real folders
        walked down to it (to refuse a link that loops)."""
        found = []
        for path, real, is_dir in self._children(folder, chain):
            found += self._images(path, (*chain, real)) if is_dir else [path]
        return found

    def _children(self, folder: Path, chain: tuple[Path, ...]):
        """(path, real path, is a folder) of each usable entry of ``folder``, sorted."""
        try:
            with os.scandir(folder) as found:
                entries = sorted(found, key=lambda e: e.name)
        except OSError as e:
            raise DataError(f"cannot list folder {str(folder)!r}: {e.strerror or e}.",
                            hint="check that it exists and that you may read it.") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            image = path.suffix.lower() in IMAGE_SUFFIXES
            if path.suffix.lower() in UNREADABLE_IMAGES:
                self.unreadable.append(self.show(path))
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()  # both follow links
            except OSError:
                is_dir = is_file = False
            real = chain[-1] / entry.name
            if entry.is_symlink():
                if not (is_dir or image or (not is_file and not path.suffix)):
                    continue  # a link to some other file: ignored like any non-image
                real, why = self._follow(path, chain, is_dir)
                if why:
                    self.links.append((self.show(path), why))
                    continue
            if is_dir:
                yield path, real, True
            elif image and is_file:
                first = self.seen.setdefault(real, self.show(path))
                if first != self.show(path):
                    self.links.append((self.show(path), f"is the same file as {first}, "
                                                        "loaded once"))
                    continue
                yield path, real, False

    def _follow(self, link: Path, chain: tuple[Path, ...], is_dir: bool
                ) -> tuple[Path | None, str | None]:
        """The real target of ``link`` if it may be followed, else None and the reason."""
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError):
            return None, "is broken or loops (its target cannot be resolved)"
        root = self.real_root
        if target == root:
            return None, "points back at the data root (it would load every image again)"
        if target in root.parents:
            return None, f"points at {target}, a folder above the data root (it would load " \
                         "every image again)"
        if target.is_relative_to(root):
            inside = target.relative_to(root)
            if not _hidden(inside.parts):
                return None, f"points to {inside.as_posix()} inside the data root, which is " \
                             "loaded from there (not twice)"
        elif not self.follow_symlinks:
            return None, f"points outside the data root, to {target}"
        if is_dir and any(target == real or target in real.parents for real in chain):
            return None, f"loops back to {target}, a folder it is inside"
        return target, None

    def warn_links(self) -> None:
        if self.unreadable:
            logger.warning(
                "left out %d image(s) in %s of a format graftlab does not read (%s): %s; "
                "convert them (e.g. to .jpg or .png) to use them", len(self.unreadable),
                self.root, ", ".join(sorted({Path(u).suffix.lower() for u in self.unreadable})),
                _preview(self.unreadable, SHOWN))
        if not self.links:
            return
        shown = [f"{link} {why}" for link, why in self.links[:SHOWN]]
        more = f"; and {len(self.links) - SHOWN} more" if len(self.links) > SHOWN else ""
        escape = any("outside the data root" in why for _, why in self.links)
        logger.warning(
            "skipped %d symbolic link(s) in %s: %s%s. Links are not followed back into the data "
            "root, round a loop%s.%s", len(self.links), self.root, "; ".join(shown), more,
            "" if self.follow_symlinks else " or out of the root",
            " To include linked folders outside the root, copy them in or pass "
            "follow_symlinks=True." if escape else "",
        )


def _say_nested(listing: _Listing) -> None:
    """Warn when every class folder holds the same sub-folders (``split/train/cat``): those
    are more likely the classes, one level down, than ways of filing one class."""
    inner = []
    for name in listing.classes:
        try:
            inner.append({e.name for e in os.scandir(listing.root / name)
                          if e.is_dir() and not e.name.startswith(".")})
        except OSError:
            return
    if len(inner) >= 2 and len(inner[0]) >= 2 and all(i == inner[0] for i in inner):
        logger.warning(
            "%s: each class folder (%s) holds the same sub-folders (%s), read as part of its "
            "class; if those are the classes, point at one of the class folders instead "
            "(e.g. %s)", listing.root, ", ".join(listing.classes), ", ".join(sorted(inner[0])),
            listing.root / next(iter(listing.classes)))


def _labelled_files(listing: _Listing, min_classes: int = 2
                    ) -> tuple[list[Path], list[int], list[str]]:
    """Files, class ids and class names of a folder laid out one sub-folder per class."""
    root = listing.root
    if not listing.classes:
        found = f" (it holds {len(listing.loose)} loose image(s))" if listing.loose else ""
        raise DataError(
            f"image folder {str(root)!r} has no class sub-folders{found}; {LAYOUT}.",
            hint="move each class's images into a sub-folder named after the class; unlabelled "
            "images need none (`graftlab extract`, an adaptation's --target; in Python "
            "labelled=False).",
        )
    for name, images in listing.classes.items():
        if not images:
            raise DataError(
                f"class folder {str(root / name)!r} holds no images "
                f"({'/'.join(IMAGE_SUFFIXES)}).",
                hint=f"add images to {name!r} or remove the empty folder.",
            )
    if len(listing.classes) < min_classes:
        raise DataError(
            f"image folder {str(root)!r} has a single class {next(iter(listing.classes))!r}; "
            "classification needs at least two class sub-folders.",
            hint="add a sub-folder per further class; where no labels are needed "
            "(`graftlab extract`; in Python labelled=False) one folder of images will do.",
        )
    if listing.loose:
        logger.warning(
            "ignored %d image(s) directly in %s, outside any class folder: %s",
            len(listing.loose), root, _preview([listing.show(p) for p in listing.loose], SHOWN))
    _say_nested(listing)
    classes = list(listing.classes)
    files, labels = [], []
    for label, name in enumerate(classes):
        files += listing.classes[name]
        labels += [label] * len(listing.classes[name])
    return files, labels, classes


def _all_files(listing: _Listing) -> list[Path]:
    """Every image below the root, loose or in sub-folders, sorted by path."""
    files = sorted([*listing.loose, *(p for images in listing.classes.values() for p in images)])
    if not files:
        raise DataError(f"image folder {str(listing.root)!r} holds no images "
                        f"({'/'.join(IMAGE_SUFFIXES)}).",
                        hint="check the path, or add images to the folder.")
    return files


def unreadable_error(root: Path, problems: list[tuple[Path, ImageProblem]]) -> DataError:
    """The error for files below ``root`` that cannot be loaded: unreadable ones, and valid
    but huge ones (listed, with ``--skip-corrupt`` named)."""
    show = [(p.relative_to(root).as_posix(), problem) for p, problem in problems]
    broken = [f"{name} ({pr.reason})" for name, pr in show if not pr.too_large]
    large = [f"{name} ({pr.reason})" for name, pr in show if pr.too_large]
    parts, fixes = [], []
    if broken:
        parts.append(f"{_files(len(broken))} in {str(root)!r} cannot be read (corrupt, "
                     f"truncated or not an image): {_preview(broken)}.")
        fixes.append("fix or delete the unreadable files")
    if large:
        limit = pixel_limit() or 0
        largest = max([pr.pixels or 0 for _, pr in problems] + [limit])
        raised = -(-largest // 10**6) * 10**6  # whole millions, at least the largest image
        parts.append(f"{_files(len(large))} in {str(root)!r} {'is' if len(large) == 1 else 'are'} "
                     f"too large to load: "
                     f"{_preview(large)}; Pillow refuses images over {limit:,} pixels (twice "
                     "PIL.Image.MAX_IMAGE_PIXELS) as possible decompression bombs.")
        fixes.append(f"shrink the large images below {limit:,} pixels (the network sees a few "
                     "hundred pixels a side anyway), or, if you trust them, raise the limit in "
                     f"Python before loading: PIL.Image.MAX_IMAGE_PIXELS = {raised:_}")
    return DataError(" ".join(parts), hint="; ".join(fixes) + "; or pass skip_corrupt=True "
                     "(command line: --skip-corrupt) to leave them out.")


def _warn_skipped(root: Path, problems: list[tuple[Path, ImageProblem]], total: int) -> None:
    names = [p.relative_to(root).as_posix() + (" (too large)" if pr.too_large else "")
             for p, pr in problems]
    logger.warning("skipped %d of %s in %s that cannot be loaded (skip_corrupt): %s; "
                   "meta['skipped'] lists them all", len(problems), _files(total), root,
                   _preview(names, SHOWN))


def _decode(files: list[Path], hw: tuple[int, int] | None, root: Path
            ) -> tuple[np.ndarray, list[int], list[tuple[Path, ImageProblem]]]:
    """Decode ``files`` straight into one uint8 array (no list of images, no stacked copy).

    Returns the array, the indices of the files it holds, and the files that failed. Without
    ``hw``, images keep their size when the headers all agree, else go to 224x224.
    """
    problems: list[tuple[Path, ImageProblem]] = []
    sizes: dict[int, tuple[int, int]] = {}
    for i, file in enumerate(files):
        try:
            sizes[i] = image_size(file)
        except ImageProblem as problem:
            problems.append((file, problem))
    if hw is None and len(set(sizes.values())) > 1:
        hw = DEFAULT_SIZE
        logger.warning("images in %s have %d different sizes; resizing all to %dx%d (pass "
                       "image_size=... to choose)", root, len(set(sizes.values())), *hw)
    native = hw is None
    shape = hw or next(iter(sizes.values()), DEFAULT_SIZE)
    out = np.empty((len(sizes), *shape, 3), dtype=np.uint8)
    kept: list[int] = []
    for i in sizes:
        try:
            image = read_image(files[i], None if native else shape)
        except ImageProblem as problem:
            problems.append((files[i], problem))
            continue
        if image.shape[:2] != shape:  # the header's size was not the decoded one (EXIF)
            logger.warning("images in %s do not all share one size; resizing all to %dx%d "
                           "(pass image_size=... to choose)", root, *DEFAULT_SIZE)
            native, shape = False, DEFAULT_SIZE
            done, out = out[:len(kept)], np.empty((len(sizes), *shape, 3), dtype=np.uint8)
            for j in range(len(kept)):
                out[j] = resize(done[j], shape)
            image = resize(image, shape)
        out[len(kept)] = image
        kept.append(i)
    order = {file: i for i, file in enumerate(files)}
    problems.sort(key=lambda item: order[item[0]])
    return out[:len(kept)], kept, problems


def _root(path: str | Path) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"no such image folder: {str(root)!r}.",
                        hint=f"check the path; {LAYOUT}.")
    if not root.is_dir():
        raise DataError(
            f"{str(root)!r} is a file, not a folder; load_image_folder wants a folder ({LAYOUT}).",
            hint="for a .csv or .jsonl table of texts use load_table.",
        )
    return root


def list_images(path: str | Path, *, follow_symlinks: bool = False) -> list[Path]:
    """Every image file below ``path`` (loose or in sub-folders, sorted by path), found as
    ``load_image_folder(path, labelled=False)`` finds them (links that loop or leave the root
    skipped, with a warning), none decoded: for predicting over a folder of any size."""
    listing = _Listing(_root(path), follow_symlinks)
    listing.warn_links()
    return _all_files(listing)


def unreadable_headers(files: list[Path]) -> list[tuple[Path, ImageProblem]]:
    """The files whose header cannot be read (not an image, or over Pillow's pixel limit),
    found without decoding pixels."""
    problems = []
    for file in files:
        try:
            image_size(file)
        except ImageProblem as problem:
            problems.append((file, problem))
    return problems


def load_image_folder(
    path: str | Path,
    *,
    image_size: int | tuple[int, int] | None = None,
    skip_corrupt: bool = False,
    labelled: bool | None = True,
    follow_symlinks: bool = False,
    name: str | None = None,
    min_classes: int = 2,
) -> Domain:
    """Load the images below ``path`` into an image :class:`Domain`.

    ``labelled=True`` (the default) wants ``path/<class>/<image>``: class names are the sorted
    sub-folder names. ``labelled=False`` loads every image below ``path`` (loose in it or in
    sub-folders, sorted by path) without labels, for feature extraction or an adaptation
    target. ``labelled=None`` decides from the layout: labelled when there are two or more
    class sub-folders, else unlabelled. ``min_classes``: fewer labelled class folders are
    refused (1 for a held-out set, which may hold some of the training classes only).

    ``image_size`` (an int or ``(h, w)``) resizes every image; left as None, images keep their
    size when they all share one and are otherwise resized to 224x224. Each image mode is
    converted to RGB as :mod:`graftlab.data.images` describes (16-bit scaled, transparency on
    white, EXIF orientation applied).

    A file that cannot be loaded (corrupt, or larger than Pillow's decompression-bomb limit)
    stops the load with an error naming it, unless ``skip_corrupt`` is set: then it is left
    out, a warning names it, and ``meta["skipped"]`` lists it. Symbolic links that point back
    into the root, loop, or (unless ``follow_symlinks``) lead out of it are skipped with a
    warning (``meta["skipped_links"]``).
    """
    hw = _as_hw(image_size)
    check_labelled(labelled)
    root = _root(path)
    listing = _Listing(root, follow_symlinks)
    listing.warn_links()
    files, labels, classes = _chosen_files(listing, labelled, min_classes)
    images, kept, problems = _decode(files, hw, root)
    if problems and not skip_corrupt:
        raise unreadable_error(root, problems)
    if problems:
        _warn_skipped(root, problems, len(files))
    if not kept:
        raise DataError(f"no image in {str(root)!r} could be loaded ({len(files)} tried).",
                        hint="fix the files, or check that this is the right folder.")
    if labels is not None:
        labels = _kept_labels(labels, kept, classes, root)
    meta = {"source": str(root), "files": [str(files[i]) for i in kept]}
    if skip_corrupt:
        meta["skipped"] = [str(p) for p, _ in problems]
    if listing.links:
        meta["skipped_links"] = [f"{link} {why}" for link, why in listing.links]
    return Domain(name=name or root.name, modality="image", inputs=images, labels=labels,
                  classes=classes, meta=meta)


def _chosen_files(listing: _Listing, labelled: bool | None, min_classes: int = 2
                  ) -> tuple[list[Path], list[int] | None, list[str]]:
    """The files to load, their class ids (None unlabelled) and the class names;
    ``labelled=None`` decides from the layout (two or more class sub-folders: labelled)."""
    if labelled is None:
        filled = [name for name, images in listing.classes.items() if images]
        labelled = len(filled) >= 2
        logger.info("%s: loading %s", listing.root, "one class per sub-folder" if labelled else
                    "every image, unlabelled (fewer than two class sub-folders)")
        if len(filled) == 1:  # one class, or a folder of images: say which reading was taken
            logger.warning("%s: its images sit in one sub-folder (%r), read as unlabelled "
                           "images, not one class: a labelled set holds two classes or more",
                           listing.root, filled[0])
    if labelled:
        return _labelled_files(listing, min_classes)
    return _all_files(listing), None, []


def _kept_labels(labels: list[int], kept: list[int], classes: list[str], root: Path
                 ) -> np.ndarray:
    """The class ids of the images that loaded; refuses a class none of whose images did."""
    kept_labels = np.asarray(labels)[kept]
    empty = [c for i, c in enumerate(classes) if i not in set(kept_labels.tolist())]
    if empty:
        raise DataError(
            f"every image of class(es) {_preview(empty)} in {str(root)!r} is unreadable.",
            hint="fix the files or remove those class folders.",
        )
    return kept_labels
