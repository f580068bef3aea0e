"""Windows cut from clips: random and strided starts, owned frames, cutting, padding."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_schema import make_clip

from lightning_hmd.data.windows import cut_window, pad_clip, strided_windows, window_starts


def test_strided_starts_cover_every_frame():
    assert window_starts(45, 20, "strided").tolist() == [0, 20, 25]
    assert window_starts(40, 20, "strided").tolist() == [0, 20]
    assert window_starts(20, 20, "strided").tolist() == [0]
    assert window_starts(21, 20, "strided").tolist() == [0, 1]


@pytest.mark.parametrize("n", range(1, 60))
@pytest.mark.parametrize("t", [1, 3, 7, 20])
def test_owned_ranges_partition_the_clip(n, t):
    if n < t:
        with pytest.raises(ValueError, match=f"{n} frames is shorter than seq_len={t}"):
            strided_windows(n, t)
        return
    owned = np.zeros(n, dtype=int)
    for w in strided_windows(n, t):
        assert w.start <= w.owned_start < w.owned_stop == w.start + w.length <= n
        owned[w.owned_start : w.owned_stop] += 1
    assert owned.tolist() == [1] * n


def test_random_start_is_uniform_over_valid_starts():
    rng = np.random.default_rng(0)
    starts = np.concatenate([window_starts(25, 20, "random", rng) for _ in range(3000)])
    assert set(starts.tolist()) == {0, 1, 2, 3, 4, 5}
    assert np.bincount(starts).min() > 400  # ~500 each
    with pytest.raises(ValueError, match="needs an rng"):
        window_starts(25, 20, "random")
    with pytest.raises(ValueError, match="unknown window mode"):
        window_starts(25, 20, "every")


def test_cut_window_slices_frames_and_keeps_track_fields():
    clip = make_clip(9)
    w = cut_window(clip, 3, 4)
    assert w.num_frames == 4
    np.testing.assert_array_equal(w.kp2d, clip.kp2d[3:7])
    np.testing.assert_array_equal(w.phi, clip.phi[3:7])
    np.testing.assert_array_equal(w.pose, clip.pose[3:7])
    np.testing.assert_array_equal(w.frame_index, clip.frame_index[3:7])
    assert w.jpeg == clip.jpeg[3:7]
    np.testing.assert_array_equal(w.betas, clip.betas)
    with pytest.raises(IndexError, match=r"window \[6, 10\) does not fit in clip 'seq0'.*9 frames"):
        cut_window(clip, 6, 4)


def test_pad_clip_repeats_edges_and_masks_real_frames():
    clip = make_clip(3, seed=1)
    padded, mask = pad_clip(clip, 8)
    assert padded.num_frames == 8
    # 5 missing frames: 2 before, 3 after
    assert mask.tolist() == [False, False, True, True, True, False, False, False]
    assert padded.frame_index.tolist() == [clip.frame_index[i] for i in [0, 0, 0, 1, 2, 2, 2, 2]]
    assert padded.jpeg == [clip.jpeg[i] for i in [0, 0, 0, 1, 2, 2, 2, 2]]
    same, mask = pad_clip(clip, 3)
    assert same is clip and mask.all()
