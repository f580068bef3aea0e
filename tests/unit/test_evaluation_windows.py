"""Window plans against direct statements of the original codebases' window rules.

Each reference below is written from the original code (not from the plan functions):
HMMR's ``Tester.predict_all_images`` (src/evaluation/tester.py), VIBE's ``split_into_chunks``
with overlap 0 (lib/data_utils/img_utils.py) and TCMR's ``split_into_chunks`` with stride 1
plus ``get_sequence`` (lib/data_utils/_img_utils.py, evaluate.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from lightning_hmd.evaluation.windows import (
    PAD,
    centre_plan,
    chunk_plan,
    make_plan,
    receptive_margin,
    sliding_plan,
)


def hmmr_tester(n: int, T: int, fov: int, B: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """HMMR's tester on frame ids: returns (windows of padded-sequence values, the id each
    of the N outputs came from as (window, position)). Padding frames are -1 (front) and
    -2 (back), as its zero images."""
    margin = (fov - 1) // 2
    g = T - 2 * margin
    count = int(np.ceil(n / (g * B)))
    num_fill = count * B * g + T - n
    padded = np.concatenate([-np.ones(margin), np.arange(n), -2 * np.ones(num_fill)])
    windows = np.stack([padded[i * g : i * g + T] for i in range(count * B)])
    where = np.stack(np.meshgrid(np.arange(count * B), np.arange(T), indexing="ij"), -1)
    kept = where[:, margin:-margin].reshape(-1, 2)[:n] if margin else where.reshape(-1, 2)[:n]
    return windows, kept


@pytest.mark.parametrize("n", [1, 5, 8, 13, 20, 21, 45, 151])
@pytest.mark.parametrize(("T", "blocks"), [(20, 3), (20, 1), (8, 1), (12, 2)])
def test_centre_plan_is_hmmrs_tester(n, T, blocks):
    m = receptive_margin(blocks)
    windows, kept = hmmr_tester(n, T, 2 * m + 1)
    plan = centre_plan(n, T, m)
    for frame, (w, p) in enumerate(kept):
        assert plan.outputs[w, p] == frame  # the same window and position
        np.testing.assert_array_equal(
            np.where(windows[w] >= 0, windows[w], -1), np.where(
                (plan.inputs[w] >= 0) & (plan.inputs[w] < n), plan.inputs[w], -1)
        )  # fmt: skip
    assert sorted(plan.outputs[plan.outputs >= 0].tolist()) == list(range(n))
    assert plan.predicted.all()


def test_hmmr_numbers():
    assert receptive_margin(3) == 6  # receptive field 4 * 3 + 1 = 13 frames
    plan = centre_plan(30, 20, 6)  # g = 8: windows start at -6, 2, 10, 18
    assert plan.inputs[:, 0].tolist() == [-6, 2, 10, 18]
    assert plan.outputs[0, 6:14].tolist() == list(range(8))
    assert (plan.outputs[0, :6] == PAD).all() and (plan.outputs[0, 14:] == PAD).all()
    # 5 blocks (21 frames) at T = 20: the margin is capped at 9, each window keeps 2 frames
    capped = centre_plan(10, 20, receptive_margin(5))
    assert capped.inputs[:, 0].tolist() == [-9, -7, -5, -3, -1]
    assert capped.outputs[0, 9:11].tolist() == [0, 1]


def vibe_chunks(n: int, T: int) -> list[tuple[int, int]]:
    """VIBE's split_into_chunks for one video, overlap 0: (start, end) inclusive."""
    if n < T:
        return []
    idx = np.arange(n)
    starts = range(0, n - T + 1, T)  # skimage view_as_windows(idx, (T,), step=T)
    return [(int(idx[s]), int(idx[s + T - 1])) for s in starts]


@pytest.mark.parametrize("n", [5, 16, 17, 31, 32, 50])
def test_chunk_plan_is_vibes_test_windows(n):
    T = 16
    plan = chunk_plan(n, T)
    assert [(int(w[0]), int(w[-1])) for w in plan.inputs] == vibe_chunks(n, T)
    assert (plan.outputs == plan.inputs).all()
    assert plan.predicted.sum() == (n // T) * T  # the tail is dropped


def tcmr_windows(n: int, T: int) -> list[list[int]]:
    """TCMR's split_into_chunks(stride=1, is_train=False) then get_sequence for one video."""
    if n < T:
        return []
    start_finish = [[s, s + T - 1] for s in range(0, n - T + 1)]
    d = start_finish[0][0]
    for j in range(int(T / 2)):
        start_finish.insert(j, [d + j, d + j])
    d = start_finish[-1][0]
    for j in range(int(T / 2 + 0.5) - 1):
        start_finish.append([d + int(T / 2) + j + 1] * 2)
    return [list(range(a, b + 1)) if a != b else [a] * T for a, b in start_finish]


@pytest.mark.parametrize(("n", "T"), [(16, 16), (17, 16), (40, 16), (9, 5), (12, 8)])
def test_sliding_plan_is_tcmrs_test_windows(n, T):
    plan = sliding_plan(n, T)
    assert plan.inputs.tolist() == tcmr_windows(n, T)
    # TCMR's model outputs the middle frame of each window, frame t for window t
    assert plan.outputs[:, T // 2].tolist() == list(range(n))
    assert (np.delete(plan.outputs, T // 2, axis=1) == PAD).all()
    assert not sliding_plan(T - 1, T).predicted.any()


def test_make_plan_dispatches_and_rejects_empty_tracks():
    assert make_plan("chunks", 33, 16, 6).predicted.sum() == 32
    assert make_plan("sliding", 33, 16, 6).predicted.all()
    with pytest.raises(ValueError, match="at least one frame"):
        centre_plan(0, 20, 6)
    with pytest.raises(ValueError, match="not a valid Windowing"):
        make_plan("strided", 10, 5, 0)
