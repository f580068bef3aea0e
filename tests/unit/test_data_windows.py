"""Training windows cut from clips: random starts and cutting."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_schema import make_clip

from lightning_hmd.data.windows import cut_window, window_starts


def test_random_start_is_uniform_over_valid_starts():
    rng = np.random.default_rng(0)
    starts = np.concatenate([window_starts(25, 20, rng) for _ in range(3000)])
    assert starts.dtype == np.int64 and starts.shape == (3000,)
    assert set(starts.tolist()) == {0, 1, 2, 3, 4, 5}
    assert np.bincount(starts).min() > 400  # ~500 each


def test_random_starts_come_count_at_a_time_and_repeat_with_the_seed():
    many = window_starts(40, 8, np.random.default_rng(7), count=4000)
    assert many.shape == (4000,) and many.dtype == np.int64
    assert set(many.tolist()) == set(range(33))  # both ends: the last window ends at frame 39
    assert many.tolist() == window_starts(40, 8, np.random.default_rng(7), count=4000).tolist()
    assert window_starts(20, 20, np.random.default_rng(0), count=3).tolist() == [0, 0, 0]


@pytest.mark.parametrize(("n", "t"), [(4, 6), (0, 1), (19, 20)])
def test_a_clip_shorter_than_the_window_has_no_start(n, t):
    with pytest.raises(ValueError, match=f"{n} frames is shorter than seq_len={t}"):
        window_starts(n, t, np.random.default_rng(0))


def test_seq_len_below_one_is_refused():
    with pytest.raises(ValueError, match="seq_len must be >= 1, got 0"):
        window_starts(10, 0, np.random.default_rng(0))


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
