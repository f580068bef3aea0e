"""penn-action converter on a fixture in Penn Action's published layout."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import scipy.io
from fixtures.datasets import read_set, to_original_pixels, write_penn_action
from PIL import Image

from data_prep import penn_action
from data_prep.common import LayoutError
from lightning_hmd.commands import main


def test_every_tenth_test_video_is_validation(tmp_path):
    videos = {f"{i:04d}": (1, 1 if i % 3 == 0 else -1) for i in range(1, 26)}
    write_penn_action(tmp_path, videos)
    splits = penn_action.video_splits(list((tmp_path / "labels").glob("*.mat")))
    tests = sorted(n for n, (_, flag) in videos.items() if flag == -1)
    assert [p.stem for p in splits["train"]] == sorted(n for n in videos if n not in tests)
    assert [p.stem for p in splits["val"]] == tests[::10]
    assert len(splits["val"]) + len(splits["test"]) == len(tests) == 17


def test_conversion_keeps_keypoints_splits_and_cuts(tmp_path, capsys):
    src, out = tmp_path / "Penn_Action", tmp_path / "out"
    truth = write_penn_action(src, {"0001": (60, 1), "0002": (60, -1), "0003": (58, -1)})
    args = ["data", "convert", "penn-action", str(src), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    for split, name in (("train", "0001"), ("val", "0002"), ("test", "0003")):
        (sample,) = read_set(out / split)
        assert (sample.dataset, sample.split, sample.sequence) == ("penn-action", split, name)
        # frames 10-14 show 3 joints: the run before is too short, the track starts at 15
        n = len(truth[name])
        np.testing.assert_array_equal(sample.frame_index, np.arange(15, n))
        assert sample.joints3d is None and sample.pose is None
        kp = to_original_pixels(sample)
        idx = list(penn_action.PENN_TO_KEYPOINT)
        np.testing.assert_allclose(kp[:, idx], truth[name][15:, :, :2], atol=1e-3)
        vis = sample.kp2d[..., 2]
        assert vis[:, idx].all() and vis.sum() == 13 * (n - 15)
        with Image.open(io.BytesIO(sample.jpeg[0])) as im:
            assert im.size == ((300, 300) if split == "train" else (224, 224))
    assert main(["data", "check", str(out)]) == 0
    assert "OK: no problems" in capsys.readouterr().out


def test_bad_layouts_and_labels_are_named(tmp_path):
    with pytest.raises(LayoutError, match="labels/\\*.mat"):
        penn_action.convert(tmp_path, tmp_path / "out")
    write_penn_action(tmp_path, {"0001": (2, 1)})
    scipy.io.savemat(tmp_path / "labels" / "0001.mat", {"x": np.zeros((2, 13))})
    with pytest.raises(ValueError, match="0001.mat: missing key"):
        penn_action.convert(tmp_path, tmp_path / "out", progress=False)
    scipy.io.savemat(
        tmp_path / "labels" / "0001.mat",
        {"x": np.zeros((2, 12)), "y": np.zeros((2, 12)), "visibility": np.zeros((2, 12)),
         "train": 1},
    )  # fmt: skip
    with pytest.raises(ValueError, match="'x' has shape \\(2, 12\\), expected \\(N, 13\\)"):
        penn_action.convert(tmp_path, tmp_path / "out", progress=False)


def test_interrupted_conversion_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    src = tmp_path / "Penn_Action"
    write_penn_action(src, {f"{i:04d}": (60, 1) for i in range(1, 5)})
    whole = tmp_path / "whole"
    penn_action.convert(src, whole, shard_size=1, progress=False)

    real = penn_action.read_image

    def failing(path):
        if path.parent.name == "0003":
            raise OSError(f"{path}: disk went away")
        return real(path)

    out = tmp_path / "out"
    monkeypatch.setattr(penn_action, "read_image", failing)
    with pytest.raises(OSError, match="disk went away"):
        penn_action.convert(src, out, shard_size=1, progress=False)
    kept = sorted(p.name for p in (out / "train").iterdir())
    # two complete shards and their journal; no partial shard, no manifest
    assert kept == ["train-000000.tar", "train-000001.tar", "train.journal.json"]
    monkeypatch.setattr(penn_action, "read_image", real)
    penn_action.convert(src, out, shard_size=1, progress=False)
    assert not (whole / "val").exists() and not (whole / "test").exists()  # empty: not written
    for split in ("train",):
        names = sorted(p.name for p in (whole / split).iterdir())
        assert names == sorted(p.name for p in (out / split).iterdir())
        for name in names:
            assert (whole / split / name).read_bytes() == (out / split / name).read_bytes()
    assert [s.sequence for s in read_set(out / "train")] == ["0001", "0002", "0003", "0004"]


def test_an_empty_split_is_reported_and_not_written(tmp_path, caplog, capsys):
    src, out = tmp_path / "Penn_Action", tmp_path / "out"
    # one official test video: the first of them is validation, none is left for test
    write_penn_action(src, {"0001": (60, 1), "0002": (60, -1)})
    args = ["data", "convert", "penn-action", str(src), "--out", str(out), "--no-progress"]
    with caplog.at_level(logging.WARNING, logger="data_prep.penn_action"):
        assert main(args) == 0
    assert caplog.messages == [
        "penn-action: the test split is empty and was not written: the 1 official test "
        "video(s) (0002) all went to val (every 10th official test video, in sorted order "
        "from the first, is validation)"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["train", "val"]
    assert "test" not in capsys.readouterr().out  # the sets written, listed
    assert [s.sequence for s in read_set(out / "val")] == ["0002"]

    # a split whose videos have no track (every run of visible joints under 40 frames)
    caplog.clear()
    write_penn_action(src, {"0001": (60, 1), "0002": (60, -1), "0003": (30, -1)})
    with caplog.at_level(logging.WARNING, logger="data_prep.penn_action"):
        got = penn_action.convert(src, tmp_path / "o2", progress=False)
    assert sorted(got) == ["train", "val"]
    assert caplog.messages == [
        "penn-action: the test split is empty and was not written: none of its 1 video(s) "
        "(0003) has 40 consecutive frames with at least 5 visible joints"
    ]
    # a later conversion that finds the split's tracks writes it
    write_penn_action(src, {"0003": (60, -1)})
    assert sorted(penn_action.convert(src, tmp_path / "o2", progress=False)) == [
        "test", "train", "val"
    ]  # fmt: skip


def test_a_source_without_any_track_is_an_error(tmp_path):
    write_penn_action(tmp_path / "src", {"0001": (30, 1), "0002": (20, -1)})
    with pytest.raises(ValueError, match=r"src: no track in any split \(train: none of its 1"):
        penn_action.convert(tmp_path / "src", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
