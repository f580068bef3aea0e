"""Windows of ``seq_len`` frames cut out of a clip (one chunk of one person track).

Training draws one random start per clip (HMMR's ``pick_sequences``); evaluation covers every
frame with strided windows. Overlapping evaluation windows "own" disjoint frame ranges, so a
metric averaged over owned frames counts each frame exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lightning_hmd.data.schema import ClipSample

PER_FRAME_ARRAYS = ("kp2d", "crop_box", "crop_scale", "frame_index", "phi", "joints3d", "pose")


@dataclass(frozen=True)
class Window:
    """One evaluation window: frames ``[start, start + length)``; it owns
    ``[owned_start, owned_stop)`` (absolute frame positions within the clip)."""

    start: int
    length: int
    owned_start: int
    owned_stop: int


def _check_lengths(num_frames: int, seq_len: int) -> None:
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if num_frames < seq_len:
        raise ValueError(
            f"a clip of {num_frames} frames is shorter than seq_len={seq_len}; "
            "pad it with pad_clip (evaluation) or skip it (training)"
        )


def window_starts(
    num_frames: int,
    seq_len: int,
    mode: str,
    rng: np.random.Generator | None = None,
    count: int = 1,
) -> np.ndarray:
    """Start frames of the windows of ``seq_len`` frames in a clip of ``num_frames`` frames.

    Args:
        mode: ``"random"``: ``count`` starts drawn independently and uniformly from
            ``[0, num_frames - seq_len]`` (needs ``rng``); ``"strided"``: every window for
            evaluation, stride ``seq_len``, the last one ending at the last frame (it may
            overlap the previous one), e.g. N = 45, T = 20 -> [0, 20, 25].
        count: how many random starts.

    Returns:
        (W,) int64 starts.

    Raises:
        ValueError: ``num_frames < seq_len`` (see :func:`pad_clip`), or an unknown mode.
    """
    _check_lengths(num_frames, seq_len)
    if mode == "random":
        if rng is None:
            raise ValueError("mode='random' needs an rng")
        return rng.integers(0, num_frames - seq_len + 1, size=count).astype(np.int64)
    if mode == "strided":
        starts = list(range(0, num_frames - seq_len + 1, seq_len))
        if starts[-1] + seq_len < num_frames:
            starts.append(num_frames - seq_len)
        return np.asarray(starts, dtype=np.int64)
    raise ValueError(f"unknown window mode {mode!r}; expected 'random' or 'strided'")


def strided_windows(num_frames: int, seq_len: int) -> list[Window]:
    """The evaluation windows of a clip with the frames each one owns.

    Windows follow :func:`window_starts` (``"strided"``); a window owns its frames that no
    earlier window covers, so the owned ranges partition ``[0, num_frames)``.
    """
    windows: list[Window] = []
    covered = 0
    for start in window_starts(num_frames, seq_len, "strided").tolist():
        stop = start + seq_len
        windows.append(Window(start, seq_len, max(start, covered), stop))
        covered = stop
    return windows


def cut_window(sample: ClipSample, start: int, seq_len: int) -> ClipSample:
    """Frames ``[start, start + seq_len)`` of every per-frame field; per-track fields kept.

    Raises:
        IndexError: naming the range and the clip length when it does not fit.
    """
    n = sample.num_frames
    if start < 0 or seq_len < 1 or start + seq_len > n:
        raise IndexError(
            f"window [{start}, {start + seq_len}) does not fit in clip "
            f"{sample.sequence!r} track {sample.track_id} chunk {sample.chunk} of {n} frames"
        )
    stop = start + seq_len
    fields = {
        name: getattr(sample, name)[start:stop]
        for name in PER_FRAME_ARRAYS
        if getattr(sample, name) is not None
    }
    if sample.jpeg is not None:
        fields["jpeg"] = sample.jpeg[start:stop]
    return replace(sample, **fields)


def pad_clip(sample: ClipSample, seq_len: int) -> tuple[ClipSample, np.ndarray]:
    """Pad a clip shorter than ``seq_len`` by repeating its edge frames, as HMMR's evaluation
    does for short tracks: the missing frames are split between the start and the end.

    Returns:
        (padded sample of ``max(seq_len, T)`` frames, (T',) bool mask of the real frames).
        A clip of at least ``seq_len`` frames comes back unchanged with an all-true mask.
    """
    n = sample.num_frames
    if n == 0:
        raise ValueError(f"clip {sample.sequence!r} track {sample.track_id} has no frames")
    if n >= seq_len:
        return sample, np.ones(n, dtype=bool)
    before = (seq_len - n) // 2
    index = np.clip(np.arange(seq_len) - before, 0, n - 1)
    fields = {
        name: getattr(sample, name)[index]
        for name in PER_FRAME_ARRAYS
        if getattr(sample, name) is not None
    }
    if sample.jpeg is not None:
        fields["jpeg"] = [sample.jpeg[i] for i in index]
    mask = np.zeros(seq_len, dtype=bool)
    mask[before : before + n] = True
    return replace(sample, **fields), mask
