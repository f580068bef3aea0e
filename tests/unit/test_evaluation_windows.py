"""Evaluation windows keep centre frames and cover every frame exactly once."""

from __future__ import annotations

import itertools

import pytest

from lightning_hmd.evaluation.windows import centre_windows, receptive_margin


@pytest.mark.parametrize("n", [20, 21, 27, 28, 45, 100, 151])
@pytest.mark.parametrize(("T", "m"), [(20, 6), (20, 0), (8, 2), (5, 2)])
def test_kept_ranges_partition_and_stay_inside_the_margin(n, T, m):
    if n < T:
        return
    wins = centre_windows(n, T, m)
    assert wins[0].keep_start == 0 and wins[-1].keep_stop == n
    for a, b in itertools.pairwise(wins):
        assert a.keep_stop == b.keep_start and a.keep_stop > a.keep_start
    for i, w in enumerate(wins):
        assert w.start >= 0 and w.start + T <= n
        lo = w.start if i == 0 else w.start + m
        hi = w.start + T if i == len(wins) - 1 else w.start + T - m
        assert lo <= w.keep_start and w.keep_stop <= hi, (w, lo, hi)


def test_hmmr_numbers_and_errors():
    assert receptive_margin(3) == 6  # receptive field 4 * 3 + 1 = 13 frames
    wins = centre_windows(30, 20, 6)
    assert [(w.start, w.keep_start, w.keep_stop) for w in wins] == [
        (0, 0, 14),
        (8, 14, 22),
        (10, 22, 30),
    ]
    with pytest.raises(ValueError, match="shorter than seq_len"):
        centre_windows(5, 20, 6)
    with pytest.raises(ValueError, match="no centre frame"):
        centre_windows(30, 12, 6)
