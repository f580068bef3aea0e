"""End to end: data synth -> data check passes; a truncated shard fails the check by name,
and the reader skips and counts its lost samples while delivering the rest."""

from __future__ import annotations

import pytest

from lightning_hmd.cli import main
from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import build_eval_loader, build_train_loader
from lightning_hmd.data.shards import read_manifest


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

    manifest = read_manifest(out / "val")
    assert len(manifest.shards) == 2
    shard = out / "val" / manifest.shards[1].name
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) * 2 // 3])
    assert main(["data", "check", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"val/{manifest.shards[1].name}" in captured.err

    loader = build_eval_loader(
        [out / "val"],
        batch_size=4,
        seq_len=8,
        num_workers=2,
        rank=0,
        world_size=1,
        inputs="images",
        img_size=64,
    )
    keys = {k for b in loader for k in b.info.key}
    skipped = loader.stats.totals()
    assert sum(skipped.values()) >= 1
    assert set(skipped) <= {"truncated_tar", "missing_member", "unreadable_member"}
    assert len(keys) + sum(skipped.values()) == manifest.total_samples
    print(f"delivered {len(keys)} of {manifest.total_samples} samples; skipped {skipped}")

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
