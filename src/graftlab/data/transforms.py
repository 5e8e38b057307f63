"""Preprocessing that makes two image domains look alike before any network sees them.

Colour is often a domain's surface, not its content: MNIST digits are grey, MNIST-M's are
coloured photo crops. Turning both domains to luminance removes that cue for every method
at no cost (an earlier benchmark, on an MNIST-M that shared its digits with the source, saw
source-only gain far more from it than the best adaptation method did). It is a choice about
the data, so it is explicit:
``to_grayscale(domain)`` in Python, ``graftlab adapt --grayscale`` on the command line.
"""

from __future__ import annotations

import numpy as np

from graftlab.data.domain import ROWS, Domain, dataset_rows
from graftlab.errors import DataError

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L"


def to_grayscale(domain: Domain) -> Domain:
    """The same images as luminance, repeated over the three channels (shape unchanged)."""
    if domain.modality != "image":
        raise DataError(f"to_grayscale works on images, but domain {domain.name!r} holds "
                        f"{domain.modality}.", hint="drop --grayscale for text data.")
    grey = np.rint(domain.inputs.astype(np.float32) @ _LUMA).clip(0, 255).astype(np.uint8)
    return Domain(domain.name, "image", np.repeat(grey[..., None], 3, axis=-1),
                  None if domain.labels is None else domain.labels.copy(),
                  list(domain.classes), domain.targets,
                  {**domain.meta, "grayscale": True, ROWS: dataset_rows(domain)})


def resized(domain: Domain, size: tuple[int, int]) -> Domain:
    """The same images resized (bilinear) to ``size`` ``(height, width)``: a domain of
    another pixel size brought to the size of the one it is trained beside."""
    from graftlab.data.images import resize

    if domain.modality != "image" or domain.inputs.shape[1:3] == tuple(size):
        return domain
    images = np.stack([resize(image, size) for image in domain.inputs])
    return Domain(domain.name, "image", images,
                  None if domain.labels is None else domain.labels.copy(),
                  list(domain.classes), domain.targets,
                  {**domain.meta, "resized_from": list(domain.inputs.shape[1:3]),
                   ROWS: dataset_rows(domain)})
