"""HMMR's boxes, smoothing and crops; the shared converter track writer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep.common import LayoutError, Track, chunk_ranges, require_layout, write_track
from lightning_hmd.body.joints import NUM_KEYPOINTS
from lightning_hmd.data.check import check_shards
from lightning_hmd.data.cropping import (
    BoxParams,
    CropBox,
    box_from_keypoints,
    crop_image,
    from_crop_normalised,
    smooth_boxes,
    to_crop_normalised,
    to_crop_pixels,
    visible_runs,
)
from lightning_hmd.data.manifest import read_manifest
from lightning_hmd.data.schema import decode_clip
from lightning_hmd.data.shards import ShardSetWriter


def test_box_from_keypoints_by_hand() -> None:
    kp = np.zeros((2, 4, 3))
    kp[0] = [[0, 0, 1], [30, 40, 1], [500, 500, 0], [10, 10, 1]]  # the invisible one is ignored
    box = box_from_keypoints(kp)
    np.testing.assert_allclose(box.center[0], [15, 20])
    np.testing.assert_allclose(box.scale[0], 150 / 50)  # diagonal 50 px -> 150 px
    assert np.isnan(box.scale[1]) and np.isnan(box.center[1]).all()  # nothing visible
    np.testing.assert_array_equal(box.valid, [True, False])


def test_smooth_boxes_interpolates_gaps_and_keeps_constant_boxes() -> None:
    t = 30
    center = np.tile([100.0, 50.0], (t, 1))
    scale = np.full(t, 2.0)
    center[[0, 1, 10, 11, 29]] = np.nan
    scale[[0, 1, 10, 11, 29]] = np.nan
    smoothed, start, stop = smooth_boxes(BoxParams(center, scale))
    assert (start, stop) == (2, 29)  # the first and after the last valid frame
    np.testing.assert_allclose(smoothed.center, np.tile([100.0, 50.0], (27, 1)), atol=1e-9)
    # medfilt zero-pads at the ends (as HMMR), so only the interior stays exactly constant
    np.testing.assert_allclose(smoothed.scale[8:-8], 2.0, atol=1e-6)


def test_smooth_boxes_removes_a_one_frame_outlier() -> None:
    t = 40
    scale = np.full(t, 1.0)
    scale[20] = 5.0  # a detector glitch
    smoothed, _, _ = smooth_boxes(BoxParams(np.zeros((t, 2)), scale))
    assert abs(smoothed.scale[20] - 1.0) < 1e-6  # the median filter removes it


def test_smooth_boxes_without_any_box() -> None:
    with pytest.raises(ValueError, match="no frame"):
        smooth_boxes(BoxParams(np.full((3, 2), np.nan), np.full(3, np.nan)))


def test_crop_puts_a_point_where_the_keypoint_map_says() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    img[40, 70] = 255  # row y=40, column x=70
    box = CropBox(cx=60.0, cy=50.0, scale=2.0, size=64)
    crop = crop_image(img, box)
    assert crop.shape == (64, 64, 3)
    y, x = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    np.testing.assert_allclose(to_crop_pixels([70, 40], box), [52, 12])
    assert abs(x - 52) <= 1 and abs(y - 12) <= 1
    np.testing.assert_allclose(box.extent, (44, 34, 76, 66))


def test_crop_pads_with_edge_pixels() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    img[:, -1] = 200  # the right edge column
    crop = crop_image(img, CropBox(cx=9.0, cy=5.0, scale=1.0, size=8))
    assert (crop[:, 5:, 0] == 200).all()  # beyond the image: repeated edge


def test_normalised_keypoints_round_trip_and_invisible_zero() -> None:
    box = CropBox(cx=200.0, cy=100.0, scale=0.5, size=224)
    kp = np.array([[200.0, 100.0, 1], [424.0, 100.0, 1], [5.0, 5.0, 0]])
    out = to_crop_normalised(kp, box)
    np.testing.assert_allclose(out[0], [0, 0, 1])
    np.testing.assert_allclose(out[1], [1, 0, 1])  # 224 px right = 112 crop px = the edge
    np.testing.assert_array_equal(out[2], [0, 0, 0])
    np.testing.assert_allclose(from_crop_normalised(out[:2, :2], box), kp[:2, :2], atol=1e-4)


def test_visible_runs() -> None:
    counts = np.array([9, 9, 9, 3, 9, 9, 9, 9, 2, 9])
    assert visible_runs(counts, min_visible=5, min_length=3) == [range(0, 3), range(4, 8)]
    assert visible_runs(counts, min_visible=5, min_length=4) == [range(4, 8)]


def test_chunk_ranges() -> None:
    assert chunk_ranges(2, 9, 3) == [range(2, 5), range(5, 8), range(8, 9)]


def test_require_layout_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    with pytest.raises(LayoutError, match=r"labels/\*\.mat.*frames/NNNN/"):
        require_layout(
            tmp_path, ["frames", "labels/*.mat"], "Penn Action", "frames/NNNN/ labels/NNNN.mat"
        )


def _dot_track(n: int = 7, split: str = "test") -> tuple[Track, np.ndarray]:
    rng = np.random.default_rng(0)
    kp = np.zeros((n, NUM_KEYPOINTS, 3))
    kp[:, :14, 0] = 200 + rng.uniform(-30, 30, (n, 14))
    kp[:, :14, 1] = 150 + rng.uniform(-60, 60, (n, 14))
    kp[:, :14, 2] = 1
    kp[3, :, 2] = 0  # a frame without labels gets an interpolated box
    dot = np.array([210.0, 140.0])

    def load(i: int) -> np.ndarray:
        img = np.zeros((300, 400, 3), np.uint8)
        img[int(dot[1]) - 1 : int(dot[1]) + 2, int(dot[0]) - 1 : int(dot[0]) + 2] = 255
        return img

    track = Track("penn-action", split, "0001", 0, 30.0, np.arange(n) + 10, kp, load, betas=None)
    return track, dot


def test_write_track_crops_chunks_and_keypoints(tmp_path: Path) -> None:
    track, dot = _dot_track()
    kp_dot = track.kp2d.copy()
    with ShardSetWriter(tmp_path, "test", 2, "unit") as w:
        assert write_track(w, track, chunk_len=3) == 3  # 7 frames -> 3 + 3 + 1
    assert check_shards(tmp_path).ok
    m = read_manifest(tmp_path)
    assert (m.total_samples, m.total_frames) == (3, 7)
    import tarfile

    members: dict[str, dict[str, bytes]] = {}
    with tarfile.open(tmp_path / m.shards[0].name) as tar:
        for info in tar.getmembers():
            key, member = info.name.split(".", 1)
            members.setdefault(key, {})[member] = tar.extractfile(info).read()
    clip = decode_clip(next(iter(members.values())))
    assert clip.frame_index.tolist() == [10, 11, 12] and clip.jpeg is not None
    img = np.asarray(Image.open(io.BytesIO(clip.jpeg[0])))
    assert img.shape == (224, 224, 3)
    # the dot's crop position from the recorded crop box equals where it is in the JPEG
    x0, y0, x1, y1 = clip.crop_box[0]
    scale = clip.crop_scale[0]
    assert abs((x1 - x0) * scale - 224) < 1e-3
    px = (dot - [x0, y0]) * scale
    y, x = np.unravel_index(np.argmax(img[..., 0]), img.shape[:2])
    assert abs(x - px[0]) <= 2 and abs(y - px[1]) <= 2
    # keypoints: the person's visible points are 150 px tall after scaling (diagonal)
    k = clip.kp2d[0]
    xy = (k[:14, :2] + 1) * 112
    diag = np.linalg.norm(xy.max(0) - xy.min(0))
    assert abs(diag - 150) < 25  # smoothing moves the box a little
    assert kp_dot.shape == (7, NUM_KEYPOINTS, 3)


def test_write_track_train_uses_300_px_precrops_and_resume_skips_done_chunks(
    tmp_path: Path,
) -> None:
    track, _ = _dot_track(split="train")
    frames_loaded: list[int] = []
    load = track.load_frame
    track.load_frame = lambda i: frames_loaded.append(i) or load(i)

    class StopError(RuntimeError):
        pass

    real_write = ShardSetWriter.write
    calls = []

    def failing_write(self: ShardSetWriter, sample: object, key: str) -> None:
        calls.append(key)
        if len(calls) == 2:
            raise StopError  # interrupted while writing the second chunk
        real_write(self, sample, key)

    ShardSetWriter.write = failing_write  # type: ignore[method-assign]
    try:
        with pytest.raises(StopError), ShardSetWriter(tmp_path, "train", 1, "unit") as w:
            write_track(w, track, chunk_len=4)
    finally:
        ShardSetWriter.write = real_write  # type: ignore[method-assign]
    assert frames_loaded == list(range(7))  # chunk 0 (4 frames) and chunk 1 (3) loaded
    frames_loaded.clear()
    with ShardSetWriter(tmp_path, "train", 1, "unit", resume=True) as w:
        assert write_track(w, track, chunk_len=4) == 1
    assert frames_loaded == [4, 5, 6]  # the kept chunk 0 is not cropped again
    assert check_shards(tmp_path).ok
    m = read_manifest(tmp_path)
    assert (m.total_samples, m.total_frames) == (2, 7)
    import tarfile

    with tarfile.open(tmp_path / m.shards[0].name) as tar:
        members = {i.name.split(".", 1)[1]: tar.extractfile(i).read() for i in tar.getmembers()}
    clip = decode_clip(members)
    assert Image.open(io.BytesIO(clip.jpeg[0])).size == (300, 300)
    np.testing.assert_allclose(
        (clip.crop_box[:, 2] - clip.crop_box[:, 0]) * clip.crop_scale, 300, rtol=1e-6
    )
