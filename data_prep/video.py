"""Sequential access to the frames of a video file (PyAV)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from lightning_hmd.errors import MissingPathError


class VideoFrames:
    """``frames[i]`` -> frame ``i`` as (H, W, 3) uint8 RGB, decoded on demand.

    Converters read frames in increasing order, so the decoder runs forward and is reopened
    only when an earlier frame is asked for. Errors name the file and the frame.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._container = None
        self._frames = None
        self._next = 0
        self._last: np.ndarray | None = None

    def _open(self) -> None:
        self.close()
        if not self.path.is_file():
            raise MissingPathError(f"{self.path}: video not found")
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as err:
            raise OSError(f"{self.path}: unreadable video ({err})") from err
        self._frames = self._container.decode(video=0)
        self._next = 0
        self._last = None

    def __getitem__(self, index: int) -> np.ndarray:
        if self._container is None or index < self._next - 1:
            self._open()
        if index == self._next - 1 and self._last is not None:
            return self._last
        while self._next <= index:
            try:
                frame = next(self._frames)
            except StopIteration:
                raise IndexError(f"{self.path}: no frame {index} (it has {self._next})") from None
            except av.error.FFmpegError as err:
                raise OSError(f"{self.path}: decoding frame {self._next} failed ({err})") from err
            self._next += 1
            if self._next > index:
                self._last = frame.to_ndarray(format="rgb24")
        return self._last

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
