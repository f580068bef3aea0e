"""The fault-injection suite: every fault of ``fixtures.faults`` under every seal of the
manifest, on a copy of a valid set. Each case asserts that ``data check`` names the fault,
that the evaluation reader delivers every intact sample exactly once (one process, and
2 ranks x 2 workers) and counts exactly the damage by reason, that the training stream runs
its epochs on the damaged set counting the same, and that no payload ran. ``evaluate``
itself scores every intact sample once on a damaged copy of each fault (one process; a
few faults also over 2 gloo processes with 2 loader workers each). The suite's
summary (faults injected, detected, intact samples lost and duplicated) is printed at the
end of the test run and written to ``$LIGHTNING_HMD_FAULT_TABLE`` when that is set."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fixtures.clips import write_clip_set, write_mocap_set
from fixtures.faults import (
    FAULTS,
    MARKER,
    RESULTS,
    cases,
    inject,
    npy,
    read_members,
    write_members,
)

from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.check import check_shards, format_report
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.whole_tracks import build_track_loader
from lightning_hmd.evaluation.run import evaluate
from lightning_hmd.train.module import HMMRModule

T = 6  # frames per sample: one training window each
SHARDS = [4, 4, 4]
TARGET = 5  # the second sample of the middle shard


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("clean") / "val"
    write_clip_set(out, SHARDS, [T], jpeg=True)
    assert check_shards(out).ok
    return out


def evaluation_reads(set_dir, world_size: int, num_workers: int) -> tuple[Counter, Counter]:
    """(delivered sample keys, skips by reason) over every rank of the evaluation reader."""
    delivered, skipped = Counter(), Counter()
    for rank in range(world_size):
        loader = build_track_loader(
            [set_dir], rank=rank, world_size=world_size, num_workers=num_workers,
            inputs="images", img_size=16,
        )  # fmt: skip
        for item in loader:
            assert item.images is not None and len(item.images) == T
            delivered[item.key] += 1
        skipped.update(loader.collect().counts())
    return delivered, skipped


def training_reads(set_dir, num_workers: int) -> Counter:
    """Two epochs of the training stream on the damaged set: skips by reason."""
    loader = build_train_loader([set_dir], [1.0], [], batch_size=2, seq_len=T,
                                num_workers=num_workers, rank=0, world_size=1, seed=0,
                                inputs="images", img_size=16, augment=AugmentConfig(),
                                num_fake_poses=2, batches_per_epoch=6)  # fmt: skip
    for epoch in range(2):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert len(batches) == 6
    return Counter(loader.collect().counts())


@pytest.mark.parametrize(("fault", "seal"), cases(), ids=lambda c: getattr(c, "name", c))
def test_fault_is_named_skipped_and_costs_no_intact_sample(
    fault, seal, clean_set, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a payload that ran would leave MARKER here
    case = inject(clean_set, tmp_path / "damaged", fault, seal, TARGET)
    reason = fault.reason_under(seal)

    report = check_shards(case.set_dir)
    text = format_report(report)
    named = [p for p in report.problems if p.key == case.where and reason in p.message]
    assert named, f"data check does not name {reason} at {case.where}:\n{text}"
    if seal == "as_written":
        assert any("sha256 checksum differs" in p.message for p in report.problems)

    for world_size, num_workers in ((1, 0), (2, 2)):
        delivered, skipped = evaluation_reads(case.set_dir, world_size, num_workers)
        assert delivered == Counter(case.intact), (world_size, num_workers)
        assert skipped == case.counts, (world_size, num_workers)
    trained = training_reads(case.set_dir, num_workers=2)
    assert trained == case.counts
    assert not (tmp_path / MARKER).exists()

    RESULTS.append({
        "fault": fault.name, "seal": seal, "reason": reason, "detected": bool(named),
        "lost": len(set(case.intact) - set(delivered)),
        "duplicated": sum(n - 1 for n in delivered.values() if n > 1),
        "payload_ran": (tmp_path / MARKER).exists(),
    })  # fmt: skip


# ----------------------------------------------------------------- evaluate on damaged sets


def _eval_config(body_dir, inputs: str):
    extra = (["data.inputs=features", "model.feat_dim=8", "model.temporal.num_groups=8"]
             if inputs == "features" else ["data.inputs=images", "data.img_size=32"])  # fmt: skip
    return load_config("tiny", overrides=[f"body.model_dir={body_dir}", "data.seq_len=4",
                                          "data.num_workers=2", *extra])  # fmt: skip


def _checkpoint(cfg, path):
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    torch.save({"state_dict": module.state_dict(),
                "hyper_parameters": {"config": to_container(cfg)}}, path)  # fmt: skip
    return path


def _sequences(keys):
    return Counter(k.split("__")[1] for k in keys)


def scored_sequences(out) -> Counter:
    with open(out / "per_sequence.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(int(r["tracks"]) == 1 and int(r["frames"]) == T for r in rows)
    return Counter(r["sequence"] for r in rows)


EVAL_CASES = [(f, "resealed", "features") for f in FAULTS] + [
    (next(f for f in FAULTS if f.name == "corrupt_jpeg_body"), "sample_resealed", "images")
]


@pytest.mark.parametrize(("fault", "seal", "inputs"), EVAL_CASES,
                         ids=lambda c: getattr(c, "name", c))  # fmt: skip
def test_evaluate_scores_every_intact_sample_once(
    fault, seal, inputs, clean_set, tmp_path, synthetic_body_dir
):
    case = inject(clean_set, tmp_path / "damaged", fault, seal, TARGET)
    cfg = _eval_config(synthetic_body_dir, inputs)
    ckpt = _checkpoint(cfg, tmp_path / "model.ckpt")
    result = evaluate(cfg, ckpt, [case.set_dir], tmp_path / "out", "temporal", "hmmr")
    assert result["skipped_samples"] == case.counts
    assert result["num_videos"] == len(case.intact)
    assert result["num_frames"] == T * len(case.intact)
    assert scored_sequences(tmp_path / "out") == _sequences(case.intact)


def _evaluate_rank(rank, world, port, cfg_args, ckpt, sets, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        evaluate(_eval_config(*cfg_args), ckpt, sets, out, "temporal", "hmmr")
    finally:
        dist.destroy_process_group()


DDP_CASES = [("duplicate_sample", "resealed", "features", 29541),
             ("foreign_sample_at_start", "resealed", "features", 29542),
             ("truncated_tar", "resealed", "features", 29543),
             ("corrupt_jpeg_body", "sample_resealed", "images", 29544)]  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("name", "seal", "inputs", "port"), DDP_CASES)
def test_two_ranks_with_two_workers_each_score_every_intact_sample_once(
    name, seal, inputs, port, clean_set, tmp_path, synthetic_body_dir
):
    fault = next(f for f in FAULTS if f.name == name)
    case = inject(clean_set, tmp_path / "damaged", fault, seal, TARGET)
    cfg = _eval_config(synthetic_body_dir, inputs)
    ckpt = _checkpoint(cfg, tmp_path / "model.ckpt")
    single = evaluate(cfg, ckpt, [case.set_dir], tmp_path / "one", "temporal", "hmmr")
    args = (2, port, (synthetic_body_dir, inputs), ckpt, [case.set_dir], tmp_path / "two")
    mp.spawn(_evaluate_rank, args=args, nprocs=2, join=True)
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["skipped_samples"] == case.counts == single["skipped_samples"]
    assert two["metrics"] == single["metrics"] and two["num_videos"] == len(case.intact)
    assert scored_sequences(tmp_path / "two") == _sequences(case.intact)


def test_damaged_mocap_is_skipped_and_counted_with_the_clips(clean_set, tmp_path):
    """A NaN pose and an object-array payload in the mocap set: training's mocap bank skips
    both, counts them with the clips' skips, and the run's batches still carry mocap."""
    mocap = tmp_path / "mocap"
    write_mocap_set(mocap, 40, shard_size=20)
    shard = sorted(mocap.glob("*.tar"))[1]
    members = read_members(shard)
    for m in members:
        if m.name == "m00021.pose.npy":
            m.data = npy(np.full(72, np.nan, np.float32))
        if m.name == "m00025.betas.npy":
            m.data = npy(np.array([None], dtype=object), allow_pickle=True)
    write_members(shard, members)
    loader = build_train_loader([clean_set], [1.0], [mocap], batch_size=2, seq_len=T,
                                num_workers=2, rank=0, world_size=1, seed=0, inputs="images",
                                img_size=16, augment=AugmentConfig(), num_fake_poses=4,
                                batches_per_epoch=3)  # fmt: skip
    batches = list(loader)
    assert len(batches) == 3 and all(b.mocap is not None for b in batches)
    assert loader.collect().counts() == {"non_finite": 1, "unreadable_member": 1}
    assert loader.collect().damaged(loader.listed["mocap"].keys()) == 2
