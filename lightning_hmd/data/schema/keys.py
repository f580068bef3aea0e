"""Sample keys (no dots, so WebDataset groups members by key) and member names."""

from __future__ import annotations

import hashlib

import numpy as np

from lightning_hmd.data.schema.members import (
    _DATASET_RE,
    _KEY_CHAR_RE,
    _KEY_RE,
    CLIP_MEMBERS,
    FRAME_MEMBER_RE,
    MAX_KEY_LENGTH,
    MOCAP_MEMBERS,
    MORE_PHI_RE,
    SchemaError,
)


def _check_dataset_name(dataset: str) -> None:
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset):
        raise SchemaError(
            f"dataset name {dataset!r} must be lower-case letters, digits, '-' and single '_', "
            "starting and ending with a letter or digit"
        )


def _sanitise(part: str, what: str) -> str:
    """Map ``part`` to ``[A-Za-z0-9_-]+``; a changed string gets a hash of the original."""
    if not isinstance(part, str) or not part:
        raise SchemaError(f"{what} must be a non-empty string, got {part!r}")
    clean = _KEY_CHAR_RE.sub("-", part)
    if clean != part:
        digest = hashlib.sha1(part.encode("utf-8")).hexdigest()[:8]
        clean = f"{clean}-{digest}"
    return clean


def _check_index(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise SchemaError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def make_key(dataset: str, sequence: str, track_id: int, chunk: int) -> str:
    """The sample key ``<dataset>__<sequence>__t<track>_c<chunk>``, without dots.

    ``dataset`` must already be a clean name (no ``__``); ``sequence`` is sanitised to
    ``[A-Za-z0-9_-]`` and, when that changes it, suffixed with a hash of the original so
    two different sequences never share a key. Raises :class:`SchemaError` on an empty
    or malformed part, or a key longer than ``MAX_KEY_LENGTH``.
    """
    _check_dataset_name(dataset)
    seq = _sanitise(sequence, "sequence")
    track = _check_index(track_id, "track_id")
    chunk_i = _check_index(chunk, "chunk")
    key = f"{dataset}__{seq}__t{track:04d}_c{chunk_i:04d}"
    return check_key(key)


def make_mocap_key(dataset: str, index: int) -> str:
    """The mocap sample key ``<dataset>__m<index>``, without dots."""
    _check_dataset_name(dataset)
    return check_key(f"{dataset}__m{_check_index(index, 'index'):09d}")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid sample key (no dots, no '/', no leading '_')."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SchemaError(
            f"sample key {key!r} must match [A-Za-z0-9][A-Za-z0-9_-]* (no dots, no '/')"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise SchemaError(f"sample key {key!r} is longer than {MAX_KEY_LENGTH} characters")
    return key


def split_member_name(name: str) -> tuple[str, str]:
    """Split a tar member name into ``(key, member)`` at the first dot, as WebDataset does."""
    if "." not in name:
        raise SchemaError(f"tar member {name!r} has no '.<member>' suffix")
    key, member = name.split(".", 1)
    return key, member


def frame_member(i: int) -> str:
    """Member name of the JPEG crop of frame ``i`` of a chunk: ``f000000.jpg``."""
    return f"f{i:06d}.jpg"


def is_known_member(member: str, kind: str = "clip") -> bool:
    """Whether ``member`` (the part after the key) is a member the schema defines."""
    if kind == "mocap":
        return member in MOCAP_MEMBERS
    return (
        member in CLIP_MEMBERS
        or FRAME_MEMBER_RE.match(member) is not None
        or MORE_PHI_RE.match(member) is not None
    )
