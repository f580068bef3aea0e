"""Window plans: which frames go into each evaluation window and which outputs are kept.

The temporal encoder sees ``T = data.seq_len`` frames at a time (GroupNorm's statistics span
the window, so evaluation uses the training length). A plan lists, for W windows, the frame
fed at each of the T positions (outside ``[0, N)``: a frame before or after the track, i.e.
padding) and the frame each output position predicts (``-1``: discarded). Every predicted frame is
predicted exactly once; frames a protocol does not score are predicted by no window.

- :func:`centre_plan`: HMMR's ``Tester.predict_all_images`` (``src/evaluation/tester.py``).
- :func:`chunk_plan`: VIBE's test windows (``split_into_chunks`` with overlap 0).
- :func:`sliding_plan`: TCMR's test windows (``split_into_chunks`` with stride 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_hmd.evaluation.protocols import Windowing

PAD = -1


@dataclass(frozen=True)
class WindowPlan:
    """W windows of T positions over a track of ``num_frames`` frames.

    Attributes:
        inputs: (W, T) int64 frame fed at each position; outside ``[0, N)``: padding before
            or after the track.
        outputs: (W, T) int64 frame each output position predicts, ``PAD`` if discarded.
        num_frames: N, the track's length.
    """

    inputs: np.ndarray
    outputs: np.ndarray
    num_frames: int

    @property
    def predicted(self) -> np.ndarray:
        """(N,) bool: the frames some window predicts."""
        mask = np.zeros(self.num_frames, dtype=bool)
        mask[self.outputs[self.outputs >= 0]] = True
        return mask


def receptive_margin(num_blocks: int, kernel_size: int = 3) -> int:
    """Half the temporal encoder's receptive field: two convolutions per residual block."""
    return num_blocks * 2 * (kernel_size // 2)


def _check(num_frames: int, seq_len: int) -> None:
    if num_frames < 1:
        raise ValueError(f"a track needs at least one frame, got {num_frames}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")


def _empty(num_frames: int, seq_len: int) -> WindowPlan:
    none = np.zeros((0, seq_len), dtype=np.int64)
    return WindowPlan(none, none.copy(), num_frames)


def centre_plan(num_frames: int, seq_len: int, margin: int) -> WindowPlan:
    """HMMR's windows (``Tester.predict_all_images``, ``src/evaluation/tester.py``): start
    ``margin`` frames before the track, slide by ``g = T - 2m``, keep the ``g`` centre outputs
    of each window; the last windows run past the track's end.

    A receptive field as long as the window (5 blocks, 21 frames, at T = 20) leaves HMMR's
    tester no centre frame (g = 0); the margin is then capped at ``(T - 1) // 2`` so each
    window keeps its most central frames.
    """
    _check(num_frames, seq_len)
    m = max(0, min(margin, (seq_len - 1) // 2))
    g = seq_len - 2 * m
    count = -(-num_frames // g)
    pos = np.arange(seq_len)
    inputs = np.arange(count)[:, None] * g - m + pos[None, :]  # (W, T)
    outputs = np.where((pos >= m) & (pos < m + g), inputs, PAD)
    outputs = np.where(outputs < num_frames, outputs, PAD)
    return WindowPlan(inputs.astype(np.int64), outputs.astype(np.int64), num_frames)


def chunk_plan(num_frames: int, seq_len: int) -> WindowPlan:
    """VIBE's windows: ``N // T`` non-overlapping windows; the tail after the last one and
    tracks shorter than T are not predicted."""
    _check(num_frames, seq_len)
    count = num_frames // seq_len
    if count == 0:
        return _empty(num_frames, seq_len)
    frames = np.arange(count * seq_len, dtype=np.int64).reshape(count, seq_len)
    return WindowPlan(frames, frames.copy(), num_frames)


def sliding_plan(num_frames: int, seq_len: int) -> WindowPlan:
    """TCMR's windows: frame t from the window ``[t - T//2, t - T//2 + T)``; the frames that no
    such window holds (the first ``T//2`` and the last ``T - T//2 - 1``) from a window of
    that frame repeated T times; tracks shorter than T are not predicted."""
    _check(num_frames, seq_len)
    if num_frames < seq_len:
        return _empty(num_frames, seq_len)
    mid = seq_len // 2
    t = np.arange(num_frames)
    start = t - mid
    full = (start >= 0) & (start + seq_len <= num_frames)
    inputs = np.where(full[:, None], start[:, None] + np.arange(seq_len)[None, :], t[:, None])
    outputs = np.full((num_frames, seq_len), PAD, dtype=np.int64)
    outputs[:, mid] = t
    return WindowPlan(inputs.astype(np.int64), outputs, num_frames)


def make_plan(windowing: Windowing | str, num_frames: int, seq_len: int, margin: int) -> WindowPlan:
    """The plan of a protocol's windowing for one track."""
    w = Windowing(windowing)
    if w is Windowing.CENTRE:
        return centre_plan(num_frames, seq_len, margin)
    if w is Windowing.CHUNKS:
        return chunk_plan(num_frames, seq_len)
    return sliding_plan(num_frames, seq_len)
