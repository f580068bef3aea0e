"""Training windows of ``seq_len`` frames cut out of a clip (one chunk of one person track).

Training draws random starts per clip (HMMR's ``pick_sequences``, ``src/util/data_utils.py``).
Evaluation predicts whole tracks through a protocol's windows instead
(:mod:`lightning_hmd.evaluation.windows`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lightning_hmd.data.schema import ClipSample

PER_FRAME_ARRAYS = ("kp2d", "crop_box", "crop_scale", "frame_index", "phi", "joints3d", "pose")


def _check_lengths(num_frames: int, seq_len: int) -> None:
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if num_frames < seq_len:
        raise ValueError(
            f"a clip of {num_frames} frames is shorter than seq_len={seq_len}; "
            "training skips such clips"
        )


def window_starts(
    num_frames: int, seq_len: int, rng: np.random.Generator, count: int = 1
) -> np.ndarray:
    """``count`` start frames of windows of ``seq_len`` frames in a clip of ``num_frames``
    frames, drawn independently and uniformly from ``[0, num_frames - seq_len]``.

    Returns:
        (count,) int64 starts.

    Raises:
        ValueError: ``num_frames < seq_len``.
    """
    _check_lengths(num_frames, seq_len)
    return rng.integers(0, num_frames - seq_len + 1, size=count).astype(np.int64)


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
