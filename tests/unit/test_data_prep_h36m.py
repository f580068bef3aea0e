"""h36m converter on a fixture in Human3.6M's published layout (MP4 videos, CDF pose files)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fixtures.datasets import read_set, to_original_pixels, write_h36m, write_video
from PIL import Image

from data_prep import h36m
from data_prep.video import VideoFrames
from lightning_hmd.body.joints import H36M_TO_LSP14
from lightning_hmd.commands import main

CAMERAS = ["54138969", "58860488"]


def test_subjects_cameras_frames_and_units(tmp_path, capsys):
    src, out = tmp_path / "h36m", tmp_path / "out"
    truth = write_h36m(src, ["S1", "S5", "S9", "S11"], CAMERAS, n=16)
    args = ["data", "convert", "h36m", str(src), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    expected = {
        "train": ["S1_Directions_1-54138969", "S1_Directions_1-58860488"],
        "val": ["S5_Directions_1-58860488"],  # camera 3 only
        "test": ["S11_Directions_1-58860488", "S9_Directions_1-58860488"],
    }
    lsp = [h36m.H36M32_TO_17[i] for i in H36M_TO_LSP14]
    for split, sequences in expected.items():
        samples = read_set(out / split)
        assert sorted(s.sequence.replace(" ", "_").replace(".", "-") for s in samples) == sequences
        for s in samples:
            subject, stem = s.sequence.split("_", 1)
            t = truth[f"{subject}/{stem}"]
            np.testing.assert_array_equal(s.frame_index, np.arange(0, 16, 2))  # 50 -> 25 fps
            assert s.fps == 25.0
            np.testing.assert_allclose(s.joints3d, t["d3"][::2, lsp] / 1000.0, atol=1e-6)
            np.testing.assert_allclose(to_original_pixels(s)[:, :14], t["d2"][::2, lsp], atol=1e-3)
            assert s.kp2d[:, :14, 2].all() and not s.kp2d[:, 14:, 2].any()
            assert s.pose is None and len(s.jpeg) == 8
            with Image.open(io.BytesIO(s.jpeg[0])) as im:
                assert im.size == ((300, 300) if split == "train" else (224, 224))
    assert main(["data", "check", str(out)]) == 0
    assert "OK: no problems" in capsys.readouterr().out


def test_video_frames_are_read_in_any_order(tmp_path):
    levels = [20 * i for i in range(10)]
    path = tmp_path / "v.mp4"
    write_video(path, [np.full((64, 64, 3), v, np.uint8) for v in levels])
    frames = VideoFrames(path)
    for i in (0, 5, 6, 2, 9):
        assert abs(frames[i].mean() - levels[i]) < 3
    with pytest.raises(IndexError, match="v.mp4: no frame 10"):
        frames[10]
    frames.close()
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        VideoFrames(tmp_path / "missing.mp4")[0]


def test_missing_2d_file_and_wrong_layout_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="D3_Positions_mono"):
        h36m.convert(tmp_path, tmp_path / "out")
    write_h36m(tmp_path, ["S1"], CAMERAS[:1], n=4)
    (tmp_path / "S1/MyPoseFeatures/D2_Positions/Directions 1.54138969.cdf").unlink()
    with pytest.raises(FileNotFoundError, match="D2_Positions/Directions 1.54138969.cdf: missing"):
        h36m.convert(tmp_path, tmp_path / "out", progress=False)
