"""Frames of a user's input: a video file (decoded with PyAV) or a folder of images.

Frames are streamed in order, never all held at once, so long videos fit in memory; each
pass over a video decodes it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lightning_hmd.inference.inputs import IMAGE_SUFFIXES, InputError, check_frames_input

__all__ = ["IMAGE_SUFFIXES", "FrameSource", "InputError", "frame_number", "open_frames"]


@dataclass(frozen=True)
class FrameSource:
    """A video or an image folder.

    Attributes:
        path: the video file or folder.
        names: one name per frame (the image file names, or ``000000``, ``000001``... for a
            video), used to match tracks files that name frames.
        fps: frames per second (the video's; 25 for a folder, as HMMR's demo: ``make_video``
            in ``src/evaluation/run_video.py``).
        width, height: frame size in pixels.
    """

    path: Path
    names: tuple[str, ...]
    fps: float
    width: int
    height: int

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def is_video(self) -> bool:
        return self.path.is_file()

    def frames(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames in order."""
        if self.is_video:
            yield from _decode(self.path)
            return
        for name in self.names:
            image = cv2.imread(str(self.path / name), cv2.IMREAD_COLOR)
            if image is None:
                raise InputError(f"{self.path / name}: not a readable image")
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: cannot decode the video ({e})") from None


def frame_number(name: str) -> int | None:
    """The last run of digits in a frame's file stem (``frame000123.png`` -> 123)."""
    digits = re.findall(r"\d+", Path(name).stem)
    return int(digits[-1]) if digits else None


def open_frames(path: str | Path) -> FrameSource:
    """Open a video file or an image folder, checking that it has frames.

    Raises:
        InputError: missing path, unreadable or empty video, folder without images.
    """
    path = check_frames_input(path)
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        first = cv2.imread(str(path / names[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise InputError(f"{path / names[0]}: not a readable image")
        return FrameSource(path, tuple(names), 25.0, first.shape[1], first.shape[0])
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25.0)
            # the header's count, or (absent in some containers) a count of the decoded frames
            count = stream.frames or sum(1 for _ in container.decode(video=0))
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: not a readable video ({e})") from None
    if count == 0:
        raise InputError(f"{path}: the video has no frames")
    return FrameSource(path, tuple(f"{i:06d}" for i in range(count)), fps, width, height)
