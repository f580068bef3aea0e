"""What every image-based converter shares: layout checks, image reading, and the track
writer of :mod:`lightning_hmd.data.tracks` (HMMR's cropping, chunking and writing; re-exported
here so converters import one module).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lightning_hmd.data.manifest import MANIFEST_NAME, Manifest, read_manifest
from lightning_hmd.data.safe_pickle import load_pickle
from lightning_hmd.data.schema import MocapSample, make_mocap_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.tracks import (
    DEFAULT_CHUNK_LEN,
    JPEG_QUALITY,
    Track,
    chunk_ranges,
    crop_size_for,
    encode_jpeg,
    write_track,
)
from lightning_hmd.errors import DataError

__all__ = [
    "DEFAULT_CHUNK_LEN",
    "DEFAULT_SHARD_SIZE",
    "JPEG_QUALITY",
    "LayoutError",
    "Track",
    "chunk_ranges",
    "crop_size_for",
    "encode_jpeg",
    "load_pickle",
    "read_image",
    "require_keys",
    "require_layout",
    "write_mocap",
    "write_split",
    "write_splits",
    "write_track",
]

# HMMR writes 50 tracks per tfrecord (the ``num_shards`` flag of e.g.
# ``src/datasets/upenn_to_tfrecords_video.py``)
DEFAULT_SHARD_SIZE = 50


class LayoutError(DataError, FileNotFoundError):
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


def write_split(
    out: Path,
    split: str,
    tracks: Iterable[Track],
    *,
    source: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
    chunk_len: int = DEFAULT_CHUNK_LEN,
    jpeg: bool = True,
    vis_threshold: float = 0.0,
    overwrite: bool = False,
    progress: bool = True,
    total: int | None = None,
) -> Manifest:
    """Write every track of one split to ``out/split`` and return its manifest.

    A complete set (one with a manifest) is kept unless ``overwrite``; an interrupted one
    resumes (chunks already in kept shards are not loaded again). Tracks are written in the
    order given, which the converters keep sorted so the shards are deterministic.
    """
    set_dir = Path(out) / split
    if not overwrite and (set_dir / MANIFEST_NAME).is_file():
        return read_manifest(set_dir)
    with ShardSetWriter(
        set_dir, split, shard_size, source, overwrite=overwrite, resume=not overwrite
    ) as writer:
        for track in tqdm(tracks, desc=split, total=total, disable=not progress, unit="track"):
            write_track(writer, track, chunk_len=chunk_len, jpeg=jpeg, vis_threshold=vis_threshold)
    return writer.manifest


def write_splits(
    out: Path, tracks: dict[str, Iterable[Track]], *, source: str, **options: object
) -> dict[str, Manifest]:
    """:func:`write_split` for every split of ``tracks`` (split -> lazily made tracks), in
    order; ``options`` are :func:`write_split`'s keyword arguments."""
    return {
        split: write_split(out, split, split_tracks, source=source, **options)
        for split, split_tracks in tracks.items()
    }


def write_mocap(
    out: Path,
    samples: Iterable[MocapSample],
    *,
    name: str = "mocap",
    source: str,
    shard_size: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Write mocap samples to ``out/name`` (split ``train``); keys number the samples.

    A complete set is kept unless ``overwrite``; an incomplete one is written again.
    """
    set_dir = Path(out) / name
    if not overwrite and (set_dir / MANIFEST_NAME).is_file():
        return read_manifest(set_dir)
    with ShardSetWriter(set_dir, "train", shard_size, source, overwrite=True) as writer:
        for i, sample in enumerate(tqdm(samples, desc=name, disable=not progress)):
            writer.write(sample, make_mocap_key(sample.dataset, i))
    return writer.manifest


def require_keys(obj: object, keys: Iterable[str], where: Path | str) -> dict:
    """``obj`` as a dict that has every key; the error names the file and the missing keys."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(missing)}; has {sorted(obj)}")
    return obj
