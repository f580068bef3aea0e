"""HMMR's evaluation windows: overlapping windows whose centre frames are kept.

The temporal encoder sees ``T = data.seq_len`` frames at a time (GroupNorm's statistics span
the window, so evaluation must use the training length). A frame's prediction is taken from
a window in which it lies at least ``margin`` frames from both ends (the receptive field's
half-width), except at the clip's own ends; windows step by ``T - 2 * margin`` and the kept
ranges partition the clip.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CentreWindow:
    """Frames ``start .. start + T`` go in; predictions for ``keep_start .. keep_stop`` are kept
    (absolute frame indices of the clip)."""

    start: int
    keep_start: int
    keep_stop: int


def receptive_margin(num_blocks: int, kernel_size: int = 3) -> int:
    """Half the temporal encoder's receptive field: two convolutions per residual block."""
    return num_blocks * 2 * (kernel_size // 2)


def centre_windows(num_frames: int, seq_len: int, margin: int) -> list[CentreWindow]:
    """Windows over a clip of ``num_frames >= seq_len`` frames (pad shorter clips first).

    Raises:
        ValueError: a clip shorter than ``seq_len``, or a margin leaving no centre frame.
    """
    if num_frames < seq_len:
        raise ValueError(f"clip of {num_frames} frames is shorter than seq_len={seq_len}: pad it")
    stride = seq_len - 2 * margin
    if stride < 1:
        raise ValueError(
            f"seq_len={seq_len} leaves no centre frame with a receptive-field margin of {margin}"
        )
    starts = sorted({*range(0, num_frames - seq_len, stride), num_frames - seq_len})
    out, keep = [], 0
    for i, s in enumerate(starts):
        stop = num_frames if i == len(starts) - 1 else s + seq_len - margin
        out.append(CentreWindow(s, keep, stop))
        keep = stop
    return out
