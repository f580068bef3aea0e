"""What every image-based converter shares: layout checks, image reading, and the track
writer of :mod:`lightning_hmd.data.tracks` (HMMR's cropping, chunking and writing; re-exported
here so converters import one module).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from lightning_hmd.data.tracks import (
    DEFAULT_CHUNK_LEN,
    JPEG_QUALITY,
    Track,
    chunk_ranges,
    crop_size_for,
    encode_jpeg,
    write_track,
)

__all__ = [
    "DEFAULT_CHUNK_LEN",
    "DEFAULT_SHARD_SIZE",
    "JPEG_QUALITY",
    "LayoutError",
    "Track",
    "chunk_ranges",
    "crop_size_for",
    "encode_jpeg",
    "read_image",
    "require_layout",
    "write_track",
]

DEFAULT_SHARD_SIZE = 50  # HMMR writes 50 tracks per tfrecord


class LayoutError(FileNotFoundError):
    """The source folder does not have the dataset's original layout."""


def require_layout(root: Path, patterns: Iterable[str], dataset: str, layout: str) -> None:
    """Fail at once unless every glob pattern matches something below ``root``.

    Args:
        root: the folder the user pointed the converter at.
        patterns: globs relative to ``root`` that the original layout always has.
        dataset: dataset name for the message.
        layout: a short description of the expected layout for the message.
    """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder; expected the {dataset} layout: {layout}")
    for pattern in patterns:
        if next(root.glob(pattern), None) is None:
            raise LayoutError(
                f"{root} does not look like {dataset}: nothing matches {pattern!r}; "
                f"expected the original layout: {layout}"
            )


def read_image(path: Path) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB; the error names the file."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as err:
        raise OSError(f"{path}: unreadable image ({err})") from err
