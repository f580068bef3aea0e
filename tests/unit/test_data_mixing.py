"""Groups of training sets: a fixed share of every batch per group, and the sets of a group
sharing it in proportion to their sizes (HMMR's one shuffled queue over its 2D sets)."""

from __future__ import annotations

from collections import Counter

import pytest
from fixtures.clips import write_clip_set

from lightning_hmd.data.assign import read_shards
from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.train_stream import group_shares

T = 6


def _loader(sources, weights, groups, batches):
    return build_train_loader(
        sources, weights, [], batch_size=8, seq_len=T, num_workers=0, rank=0, world_size=1,
        seed=3, inputs="features", img_size=16, augment=AugmentConfig(), num_fake_poses=0,
        batches_per_epoch=batches, groups=groups,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    write_clip_set(root / "h36m", [6], [30], dataset="h36m", split="train")
    # Penn Action: 6 clips of 30 frames = 30 windows per pass; InstaVariety: 2 of 30 = 10
    write_clip_set(root / "penn", [6], [30], dataset="penn-action", split="train", with_3d=False)
    write_clip_set(root / "insta", [2], [30], dataset="insta-variety", split="train",
                   with_3d=False)  # fmt: skip
    return [root / "h36m", root / "penn", root / "insta"]


def test_group_shares_are_windows_per_pass(sets):
    shards = [read_shards([d], "clip") for d in sets]
    assert group_shares(shards, T) == [30.0, 30.0, 10.0]


def test_a_pool_of_2d_sets_shares_half_of_every_batch_by_size(sets):
    batches = list(_loader(sets, [0.5, 0.5], [0, 1, 1], 200))
    total = Counter()
    for b in batches:
        per = Counter(b.info.dataset)
        assert per["h36m"] == 4 and per["penn-action"] + per["insta-variety"] == 4
        total.update(per)
    # 800 pooled windows, P(penn) = 30 / 40: binomial sd = sqrt(800 * 0.75 * 0.25) = 12.2
    assert total["penn-action"] + total["insta-variety"] == 800
    assert abs(total["penn-action"] - 600) < 4 * 12.2, total
    assert total["insta-variety"] > 100  # both sets are drawn


def test_without_groups_every_set_gets_its_fixed_count(sets):
    for b in _loader(sets, [0.5, 0.25, 0.25], None, 5):
        assert Counter(b.info.dataset) == {"h36m": 4, "penn-action": 2, "insta-variety": 2}


def test_weights_must_match_the_groups(sets):
    with pytest.raises(ValueError, match="2 training groups but 3 weights"):
        _loader(sets, [0.5, 0.25, 0.25], [0, 1, 1], 1)
