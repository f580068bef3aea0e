"""The fault-injection suite: every fault of ``fixtures.faults`` under every seal of the
manifest, on a copy of a valid set. Each case asserts that ``data check`` names the fault,
that the evaluation reader delivers every intact sample exactly once (one process, and
2 ranks x 2 workers) and counts exactly the damage by reason, that the training stream runs
its epochs on the damaged set counting the same, and that no payload ran. The suite's
summary (faults injected, detected, intact samples lost and duplicated) is printed at the
end of the test run and written to ``$LIGHTNING_HMD_FAULT_TABLE`` when that is set."""

from __future__ import annotations

from collections import Counter

import pytest
from fixtures.clips import write_clip_set
from fixtures.faults import MARKER, RESULTS, cases, inject

from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.check import check_shards, format_report
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.whole_tracks import build_track_loader

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
