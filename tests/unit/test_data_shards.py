"""Shard set writer: reproducible bytes, atomic shards and manifest."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_data_schema import assert_clips_equal, make_clip

from lightning_hmd.data.manifest import ManifestError, read_manifest
from lightning_hmd.data.schema import MocapSample, SchemaError, decode_clip, make_key
from lightning_hmd.data.shards import ShardSetWriter


def write_set(out: Path, n: int = 5, per_shard: int = 2, **kw) -> list:
    clips = [make_clip(T=3 + i, full=i % 2 == 0, seed=i) for i in range(n)]
    with ShardSetWriter(out, "train", per_shard, source="unit test", **kw) as w:
        for c in clips:
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))
    return clips


def test_manifest_counts_and_checksums(tmp_path: Path) -> None:
    clips = write_set(tmp_path)
    m = read_manifest(tmp_path)
    assert [s.name for s in m.shards] == [
        "train-000000.tar",
        "train-000001.tar",
        "train-000002.tar",
    ]
    assert [s.samples for s in m.shards] == [2, 2, 1]
    assert [s.frames for s in m.shards] == [3 + 4, 5 + 6, 7]
    assert m.total_samples == 5 and m.total_frames == sum(c.num_frames for c in clips)
    assert (m.kind, m.dataset, m.split, m.source, m.schema_version) == (
        "clip", "synthetic", "train", "unit test", 1,
    )  # fmt: skip
    for s in m.shards:
        data = (tmp_path / s.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == s.sha256 and len(data) == s.bytes
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert raw["totals"] == {"shards": 3, "samples": 5, "frames": 25, "bytes": m.total_bytes}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json", "train-000000.tar", "train-000001.tar", "train-000002.tar",
    ]  # fmt: skip


def test_members_and_round_trip_through_tar(tmp_path: Path) -> None:
    clips = write_set(tmp_path, n=2, per_shard=10)
    with tarfile.open(tmp_path / "train-000000.tar") as tar:
        infos = tar.getmembers()
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.mode) == (0, 0, 0, 0o444)
            assert info.name.split(".", 1)[0].isidentifier() and info.isfile()
        groups: dict[str, dict[str, bytes]] = {}
        for info in infos:
            key, member = info.name.split(".", 1)
            groups.setdefault(key, {})[member] = tar.extractfile(info).read()
    names = [i.name for i in infos]
    first = [n for n in names if n.startswith(names[0].split(".")[0] + ".")]
    assert first == sorted(first)
    assert len(groups) == 2
    for clip, members in zip(clips, groups.values(), strict=True):
        assert_clips_equal(clip, decode_clip(members))


def test_webdataset_groups_samples(tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    clips = write_set(tmp_path, n=3, per_shard=10)
    ds = wds.WebDataset(str(tmp_path / "train-000000.tar"), shardshuffle=False)
    samples = list(ds)
    assert len(samples) == 3
    for clip, s in zip(clips, samples, strict=True):
        members = {k: v for k, v in s.items() if not k.startswith("__")}
        assert_clips_equal(clip, decode_clip(members))


def test_byte_identical_rewrite(tmp_path: Path) -> None:
    write_set(tmp_path / "a")
    write_set(tmp_path / "b")
    write_set(tmp_path / "a", overwrite=True)
    for name in ["train-000000.tar", "train-000001.tar", "train-000002.tar", "manifest.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_existing_set_needs_overwrite(tmp_path: Path) -> None:
    write_set(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_set(tmp_path)
    write_set(tmp_path, n=1, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train-000000.tar"]


def test_no_partial_shard_or_manifest_on_error(tmp_path: Path) -> None:
    bad = make_clip(T=4, seed=9)
    bad.pose = bad.pose.copy()
    bad.pose[0, 0] = np.inf
    with (
        pytest.raises(SchemaError, match="pose.npy"),
        ShardSetWriter(tmp_path, "train", 2, "t") as w,
    ):
        for i in range(3):  # the first shard completes, the second is open
            c = make_clip(seed=i)
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))
        w.write(bad, "synthetic__bad__t0000_c0000")
    # The complete shard and its journal stay (for resume=True); no .tmp, no manifest.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000000.tar", "train.journal.json"]

    with (
        pytest.raises(RuntimeError, match="boom"),
        ShardSetWriter(tmp_path / "x", "train", 10, "t") as w,
    ):
        w.write(make_clip(), "synthetic__a__t0000_c0000")
        raise RuntimeError("boom")
    assert list((tmp_path / "x").iterdir()) == []


def test_writer_rejects_mixed_input(tmp_path: Path) -> None:
    with ShardSetWriter(tmp_path / "a", "train", 10, "t") as w:
        w.write(make_clip(), "k1")
        with pytest.raises(SchemaError, match="duplicate sample key 'k1'"):
            w.write(make_clip(), "k1")
        with pytest.raises(SchemaError, match="split 'val'"):
            w.write(make_clip(split="val"), "k2")
        with pytest.raises(SchemaError, match="mocap sample"):
            w.write(MocapSample(np.zeros(72, np.float32), np.zeros(10, np.float32)), "k3")
        with pytest.raises(SchemaError, match="no dots"):
            w.write(make_clip(), "a.b")
    assert read_manifest(tmp_path / "a").total_samples == 1


def test_mocap_set(tmp_path: Path) -> None:
    with ShardSetWriter(tmp_path, "train", 3, "t") as w:
        for i in range(4):
            w.write(
                MocapSample(np.full(72, i, np.float32), np.zeros(10, np.float32), "cmu"),
                f"cmu__m{i}",
            )
    m = read_manifest(tmp_path)
    assert (m.kind, m.dataset, m.total_samples, m.total_frames) == ("mocap", "cmu", 4, 4)


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path)
    write_set(tmp_path, n=1)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    raw["shards"][0]["name"] = "../evil.tar"
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="evil"):
        read_manifest(tmp_path)


class _InterruptError(RuntimeError):
    pass


def _write_interrupted(out: Path, clips: list, fail_at: int, per_shard: int = 2, **kw) -> None:
    with (
        pytest.raises(_InterruptError),
        ShardSetWriter(out, "train", per_shard, "unit test", **kw) as w,
    ):
        for i, c in enumerate(clips):
            if i == fail_at:
                raise _InterruptError
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))


def test_resume_after_interruption_is_byte_identical(tmp_path: Path) -> None:
    clips = write_set(tmp_path / "ref", n=7)  # uninterrupted reference (same clips, same order)
    out = tmp_path / "run"
    _write_interrupted(out, clips, fail_at=5)  # shards 0, 1 complete; shard 2 had one sample
    names = sorted(p.name for p in out.iterdir())
    assert names == ["train-000000.tar", "train-000001.tar", "train.journal.json"]
    with pytest.raises(FileExistsError, match="resume=True"):
        ShardSetWriter(out, "train", 2, "unit test").__enter__()
    with ShardSetWriter(out, "train", 2, "unit test", resume=True) as w:
        done = [w.is_done(make_key(c.dataset, c.sequence, c.track_id, c.chunk)) for c in clips]
        for c in clips:
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))
    assert done == [True] * 4 + [False] * 3 and w.skipped == 4
    ref, got = read_manifest(tmp_path / "ref"), read_manifest(out)
    assert [s.sha256 for s in got.shards] == [s.sha256 for s in ref.shards]
    assert got.total_samples == 7
    assert not (out / "train.journal.json").exists()


def test_resume_drops_a_shard_that_no_longer_matches_its_journal(tmp_path: Path) -> None:
    clips = [make_clip(T=3 + i, seed=i) for i in range(5)]
    _write_interrupted(tmp_path, clips, fail_at=4)
    shard1 = tmp_path / "train-000001.tar"
    shard1.write_bytes(shard1.read_bytes()[:-1024])  # damaged after the interruption
    with ShardSetWriter(tmp_path, "train", 2, "unit test", resume=True) as w:
        for c in clips:
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))
    assert w.skipped == 2  # shard 0 kept; shard 1 rewritten
    assert read_manifest(tmp_path).total_samples == 5


def test_resume_of_a_complete_set_needs_overwrite(tmp_path: Path) -> None:
    write_set(tmp_path, n=3)
    with pytest.raises(FileExistsError, match="complete set"):
        ShardSetWriter(tmp_path, "train", 2, "unit test", resume=True).__enter__()
