"""Checks of the paths a user gives ``predict`` and ``hallucinate``, made before the model
or any heavy module is loaded, so a mistyped path fails at once with one line naming it.

Only the standard library is imported here: the checks look at the file system (existence,
kind, permissions, an image in a frame folder), not at the contents, which the readers check
when they open the files.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning_hmd.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class InputError(DataError):
    """An input that cannot be read: names the file and the problem."""


def _readable(path: Path, what: str) -> None:
    mode = os.R_OK | (os.X_OK if path.is_dir() else 0)
    if not os.access(path, mode):
        raise InputError(f"{path}: the {what} is not readable (permission denied)")


def _check_file(path: Path, *, missing: str, not_file: str, what: str, empty: str) -> Path:
    """``path`` exists, is a file, is readable and is not empty: the checks shared by a video
    file and an image. Each message reads ``"{path}: ..."``; ``what`` names the file in the
    permission message, ``empty`` in the empty-file one.

    Raises:
        InputError: the first check that fails, with its message.
    """
    if not path.exists():
        raise InputError(f"{path}: {missing}")
    if not path.is_file():
        raise InputError(f"{path}: {not_file}")
    _readable(path, what)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: {empty} is empty (0 bytes)")
    return path


def check_frames_input(path: str | Path) -> Path:
    """A video file, or a folder holding at least one image (``IMAGE_SUFFIXES``).

    Raises:
        InputError: missing, unreadable, an empty file, or a folder without images.
    """
    path = Path(path)
    if not path.is_dir():
        return _check_file(
            path,
            missing="no such video file or frame folder",
            not_file="not a video file nor a frame folder",
            what="video file",
            empty="the video file",
        )
    _readable(path, "frame folder")
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return path


def check_image_input(path: str | Path) -> Path:
    """One image file (its decoding is checked when it is read).

    Raises:
        InputError: missing, not a file, unreadable or empty.
    """
    return _check_file(
        Path(path),
        missing="no such image",
        not_file="not an image file",
        what="image",
        empty="the image file",
    )


def check_tracks_input(path: str | Path) -> Path:
    """A tracks file or an OpenPose folder (its format is checked when it is read).

    Raises:
        InputError: missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such tracks file or folder")
    _readable(path, "tracks file" if path.is_file() else "tracks folder")
    return path


def check_model_files(ckpt: str | Path, encoder: str | Path | None = None) -> None:
    """The checkpoint, and the encoder weights when given, are readable files.

    Raises:
        InputError: either is missing, not a file or unreadable.
    """
    for flag, path, what in (("--ckpt", ckpt, "checkpoint"), ("--encoder", encoder, "file")):
        if path is None:
            continue
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{flag} {path}: no such {what}")
        _readable(path, what)


def check_out_dir(out: str | Path) -> Path:
    """An output folder that exists or can be made: the nearest existing folder on its path
    is writable.

    Raises:
        InputError: ``out`` (or a path above it) is a file, or the folder is not writable.
    """
    out = Path(out)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == out else f" ({existing} is not a folder)"
        raise InputError(f"--out {out}: not a folder{where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == out else f" ({existing}, where it would be made)"
        raise InputError(f"--out {out}: the folder is not writable{where}")
    return out
