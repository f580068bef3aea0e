"""``data check``: shards against their manifests, hostile members, CLI exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fixtures.clips import jpeg_frames
from test_data_schema import make_clip

from lightning_hmd.commands import main
from lightning_hmd.data.check import check_shards, format_report
from lightning_hmd.data.manifest import sample_sha256
from lightning_hmd.data.schema import make_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.tario import iter_shard_members


def write_set(out: Path, split: str = "train", n: int = 5, per_shard: int = 2) -> Path:
    with ShardSetWriter(out, split, per_shard, source="unit test") as w:
        for i in range(n):
            c = make_clip(T=3 + i, full=i % 2 == 0, seed=i, split=split)
            if c.jpeg is not None:
                c.jpeg = jpeg_frames(len(c.jpeg), seed=i)
            w.write(c, make_key(c.dataset, c.sequence, c.track_id, c.chunk))
    return out


def add_member(shard: Path, name: str, data: bytes, *, rehash: bool = True) -> None:
    """Put a member into ``shard`` (after the last member of its sample key when the shard
    has that key, replacing a member of the same name; else at the end) and, with
    ``rehash``, update the manifest's size and sha256 of the shard to match."""
    with tarfile.open(shard) as tar:
        members = [(i, tar.extractfile(i).read()) for i in tar.getmembers()]
    key = name.split(".", 1)[0]
    if any(i.name == name for i, _ in members):
        members = [(i, data if i.name == name else d) for i, d in members]
    else:
        at = max((n + 1 for n, (i, _) in enumerate(members) if i.name.split(".", 1)[0] == key),
                 default=len(members))  # fmt: skip
        members.insert(at, (tarfile.TarInfo(name), data))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, payload in members:
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    shard.write_bytes(buf.getvalue())
    if rehash:
        path = shard.parent / "manifest.json"
        m = json.loads(path.read_text())
        for s in m["shards"]:
            if s["name"] == shard.name:
                s["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
                s["bytes"] = len(buf.getvalue())
        path.write_text(json.dumps(m))


def test_good_set_passes(tmp_path: Path) -> None:
    write_set(tmp_path)
    report = check_shards(tmp_path)
    assert report.ok, format_report(report)
    assert [r.samples for r in report.rows] == [2, 2, 1]
    text = format_report(report)
    assert "train-000002.tar" in text and "OK: no problems" in text
    assert "total: 5 samples, 25 frames" in text


def test_nested_sets(tmp_path: Path) -> None:
    write_set(tmp_path / "train", "train")
    write_set(tmp_path / "val", "val", n=2)
    report = check_shards(tmp_path)
    assert report.ok and report.sets == ["train", "val"] and len(report.rows) == 4


def test_empty_dir_fails(tmp_path: Path) -> None:
    report = check_shards(tmp_path)
    assert not report.ok and "no manifest.json" in str(report.problems[0])


def test_truncated_shard_named(tmp_path: Path) -> None:
    write_set(tmp_path)
    shard = tmp_path / "train-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    report = check_shards(tmp_path)
    assert not report.ok
    assert report.bad_shards == ["train-000001.tar"]
    text = format_report(report)
    assert "train-000001.tar: sha256 checksum differs" in text
    assert "train-000001.tar: no end-of-archive marker" in text
    assert all(p.where == "train-000001.tar" for p in report.problems)


def test_changed_checksum_named(tmp_path: Path) -> None:
    write_set(tmp_path)
    path = tmp_path / "manifest.json"
    m = json.loads(path.read_text())
    m["shards"][2]["sha256"] = "0" * 64
    path.write_text(json.dumps(m))
    report = check_shards(tmp_path)
    assert report.bad_shards == ["train-000002.tar"]
    assert [p.message for p in report.problems] == ["sha256 checksum differs from the manifest"]


def test_missing_shard_and_stray_files(tmp_path: Path) -> None:
    write_set(tmp_path)
    (tmp_path / "train-000000.tar").unlink()
    (tmp_path / "train-000007.tar").write_bytes(b"")
    (tmp_path / "train-000008.tar.tmp").write_bytes(b"")
    text = format_report(check_shards(tmp_path))
    assert "train-000000.tar: shard file is missing" in text
    assert "train-000007.tar: file is not listed" in text
    assert "train-000008.tar.tmp: file is not listed" in text


@pytest.mark.parametrize(
    ("member", "expect"),
    [
        ("../evil.npy", "escapes the shard"),
        ("/etc/evil.npy", "absolute member path"),
        ("dir/evil.npy", "directory part"),
        ("synthetic__seq0__t0000_c0000.payload.pyd", "unknown member kind"),
        ("synthetic__seq0__t0000_c0000.notes.txt", "unknown member kind"),
    ],
)
def test_hostile_members_rejected(tmp_path: Path, member: str, expect: str) -> None:
    write_set(tmp_path)
    pickle_bomb = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94."
    add_member(tmp_path / "train-000000.tar", member, pickle_bomb)
    report = check_shards(tmp_path)
    assert report.bad_shards == ["train-000000.tar"]
    text = format_report(report)
    assert expect in text and member in text


def test_bad_sample_in_shard_named(tmp_path: Path) -> None:
    write_set(tmp_path, n=1)
    key = "synthetic__seq0__t0000_c0000"
    kp2d = make_clip(T=3, full=True, seed=0).kp2d
    kp2d[0, 0, 0] = np.nan
    buf = io.BytesIO()
    np.save(buf, kp2d)
    shard = tmp_path / "train-000000.tar"
    add_member(shard, f"{key}.kp2d.npy", buf.getvalue())
    report = check_shards(tmp_path)
    # named by key and reason; the shard's checksum was resealed, so that is all
    assert [str(p) for p in report.problems] == [
        f"train-000000.tar [{key}]: non_finite: kp2d.npy: 1 non-finite value(s) (NaN or inf)"
    ]
    assert report.bad_shards == ["train-000000.tar"]


def test_every_frame_is_decoded_unless_quick(tmp_path: Path) -> None:
    write_set(tmp_path, n=1)
    key = "synthetic__seq0__t0000_c0000"
    frame = jpeg_frames(1, seed=0)[0]
    garbage = frame[:4] + bytes(range(256)) * 4  # JPEG magic, then no valid JPEG body
    add_member(tmp_path / "train-000000.tar", f"{key}.f000001.jpg", garbage)
    assert check_shards(tmp_path, quick=True).problems[0].message.startswith("checksum_mismatch")
    problems = [str(p) for p in check_shards(tmp_path).problems]
    assert problems[0] == (f"train-000000.tar [{key}]: checksum_mismatch: members differ from "
                           "the manifest's sha256 of the sample")  # fmt: skip
    # with the sample's digest resealed as well, only decoding every frame finds it
    path = tmp_path / "manifest.json"
    m = json.loads(path.read_text())
    ((_, members, _),) = list(iter_shard_members(tmp_path / "train-000000.tar", "clip"))
    m["shards"][0]["entries"][0]["sha256"] = sample_sha256(members)
    path.write_text(json.dumps(m))
    assert check_shards(tmp_path, quick=True).ok
    assert [str(p) for p in check_shards(tmp_path).problems] == [
        f"train-000000.tar [{key}]: undecodable_frame: JPEG frame 1 (f000001.jpg) does not decode"
    ]
    assert main(["data", "check", "--quick", str(tmp_path)]) == 0
    assert main(["data", "check", str(tmp_path)]) == 1


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_set(tmp_path)
    assert main(["data", "check", str(tmp_path)]) == 0
    assert "OK: no problems" in capsys.readouterr().out
    shard = tmp_path / "train-000001.tar"
    shard.write_bytes(shard.read_bytes()[:-2000])
    assert main(["data", "check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "train-000001.tar" in captured.err and "FAILED" in captured.out
