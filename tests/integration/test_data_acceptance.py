"""End to end: data synth -> data check passes; its tracks cut into chunks over uneven shards
come back whole, each exactly once, from 2 ranks x 2 loader workers; a truncated shard fails
the check by name, and the reader skips and counts its lost samples while delivering the
rest."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lightning_hmd.commands import main
from lightning_hmd.data.assign import read_shards
from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.manifest import read_manifest
from lightning_hmd.data.schema import make_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.skips import SkipCounter
from lightning_hmd.data.whole_tracks import build_track_loader, read_tracks
from lightning_hmd.data.windows import cut_window

CHUNKS = [5, 11, 8]  # each 24-frame synthetic track cut into 3 chunks
# 18 chunks; shard boundaries at 4, 7, 13, 15. The 4 slots' sample boundaries 4, 9 and 13:
# 4 and 13 fall inside tracks 1 (chunks at 3..5) and 4 (12..14), which also cross the shard
# boundaries there, and move to 6 and 15.
SHARDS = [4, 3, 6, 2, 3]


def track_loader(dirs, **kw):
    args = dict(rank=0, world_size=1, num_workers=2, inputs="images", img_size=64)
    args.update(kw)
    return build_track_loader(dirs, **args)


def write_chunked(tracks, out: Path) -> list[str]:
    """The tracks (reads) cut into CHUNKS, written over SHARDS; each one's first chunk key."""
    firsts = []
    with ShardSetWriter(out, "val", max(SHARDS), source="test") as w:
        sizes = iter(SHARDS)
        left = next(sizes)
        for read in tracks:
            s, start = read.sample, 0
            for c, n in enumerate(CHUNKS):
                chunk = replace(cut_window(s, start, n), chunk=c)
                key = make_key(s.dataset, s.sequence, s.track_id, c)
                w.write(chunk, key)
                firsts += [key] if c == 0 else []
                start += n
                left -= 1
                if left == 0:
                    w.end_shard()
                    left = next(sizes, 0)
    return firsts


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_synth_check_truncate_and_read(offscreen_gl, tmp_path, capsys):
    out = tmp_path / "synth"
    args = [
        "data",
        "synth",
        "--out",
        str(out),
        "--clips",
        "12",
        "--val-clips",
        "6",
        "--test-clips",
        "2",
        "--frames",
        "24",
        "--mocap",
        "200",
        "--shard-size",
        "3",
        "--no-progress",
    ]
    assert main(args) == 0
    assert main(["data", "check", str(out)]) == 0
    assert "OK: no problems" in capsys.readouterr().out

    # the whole tracks, as the converters would have cut them into chunks
    shards = read_shards([out / "val"], "clip")
    whole = list(read_tracks(shards, 0, 6, SkipCounter()))  # samples with their JPEG crops
    assert [r.sample.num_frames for r in whole] == [24] * 6
    reference = {it.key: it for it in track_loader([out / "val"], num_workers=0)}
    firsts = write_chunked(whole, tmp_path / "chunks")
    assert firsts == [r.key for r in whole] == sorted(reference)
    got, skipped = [], []
    for rank in range(2):
        loader = track_loader([tmp_path / "chunks"], rank=rank, world_size=2)
        got += [(it.key, it.slot, it) for it in loader]
        skipped.append(loader.collect().counts())
    assert skipped == [{}, {}]
    assert Counter(k for k, _, _ in got) == dict.fromkeys(firsts, 1)  # 0 lost, 0 duplicated
    slot_of = {k: slot for k, slot, _ in got}
    assert [slot_of[k] for k in firsts] == [0, 0, 1, 2, 2, 3]
    by_key = {k: it for k, _, it in got}
    for key in firsts:  # the same frames, crops and labels as the unchunked track
        item, ref = by_key[key], reference[key]
        assert item.sample.num_frames == 24 and item.images.shape == (24, 3, 64, 64)
        assert item.sample.frame_index.tolist() == ref.sample.frame_index.tolist()
        np.testing.assert_array_equal(item.images, ref.images)
        np.testing.assert_array_equal(item.sample.kp2d, ref.sample.kp2d)
        np.testing.assert_array_equal(item.sample.joints3d, ref.sample.joints3d)

    manifest = read_manifest(out / "val")
    assert len(manifest.shards) == 2
    shard = out / "val" / manifest.shards[1].name
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) * 2 // 3])
    assert main(["data", "check", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"val/{manifest.shards[1].name}" in captured.err

    loader = track_loader([out / "val"])
    items = list(loader)
    keys = {it.key for it in items}
    skipped = loader.collect().counts()
    assert len(keys) == len(items) and keys <= set(reference)
    assert all(it.images.shape == (24, 3, 64, 64) for it in items)
    assert sum(skipped.values()) >= 1
    assert set(skipped) <= {"truncated_tar", "missing_member", "unreadable_member"}
    assert len(keys) + sum(skipped.values()) == manifest.total_samples
    print(f"delivered {len(keys)} of {manifest.total_samples} tracks; skipped {skipped}")

    train = build_train_loader(
        [out / "train"],
        [1.0],
        [out / "mocap"],
        batch_size=4,
        seq_len=8,
        num_workers=2,
        rank=0,
        world_size=1,
        seed=0,
        inputs="images",
        img_size=64,
        augment=AugmentConfig(),
        num_fake_poses=16,
        batches_per_epoch=3,
    )
    batches = list(train)
    assert len(batches) == 3
    assert batches[0].clips.images.shape == (4, 8, 3, 64, 64)
    assert batches[0].mocap.pose_aa.shape == (16, 24, 3)
