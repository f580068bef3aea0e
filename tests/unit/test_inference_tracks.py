"""Tracks files in each tool's format -> the same people; bad files named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.video import (
    Person,
    write_alphapose,
    write_mot,
    write_openpose,
    write_poseflow,
    write_posetrack,
)

from lightning_hmd.inference.tracks import TracksError, link_by_overlap, read_tracks

T = 12
NAMES = [f"{t:06d}" for t in range(T)]


def _people() -> list[Person]:
    rng = np.random.default_rng(0)
    people = []
    for x in (60.0, 220.0):  # two people apart, walking right
        base = rng.uniform(-30, 30, (25, 2)) + np.array([x, 120.0])
        xy = base[None] + np.arange(T)[:, None, None] * np.array([2.0, 0.0])
        kp = np.concatenate([xy, np.ones((T, 25, 1))], axis=-1)
        people.append(Person(kp, np.zeros((T, 14, 3)), np.zeros((T, 72)), np.zeros(10), None))
    return people


@pytest.mark.parametrize("fmt", ["alphapose", "poseflow", "openpose", "posetrack"])
def test_keypoint_formats_give_the_people(fmt, tmp_path):
    people = _people()
    writer = {"alphapose": write_alphapose, "poseflow": write_poseflow,
              "openpose": write_openpose, "posetrack": write_posetrack}[fmt]  # fmt: skip
    target = tmp_path / ("op" if fmt == "openpose" else f"{fmt}.json")
    names = [f"{t}.png" for t in range(T)] if fmt == "poseflow" else NAMES
    tracks = read_tracks(writer(people, target), names)
    assert len(tracks) == 2
    k = 17 if fmt == "posetrack" else 25
    found = sorted(tracks, key=lambda t: t.keypoints[0, 0, 0])  # left person first
    for track, person in zip(found, people, strict=True):
        np.testing.assert_array_equal(track.frames, np.arange(T))
        np.testing.assert_allclose(track.keypoints[..., :2], person.keypoints[:, :k, :2], atol=1e-3)


def test_mot_boxes_and_their_crop_scale(tmp_path):
    people = _people()
    tracks = read_tracks(write_mot(people, tmp_path / "gt.txt"), NAMES)
    assert [t.track_id for t in tracks] == ["1", "2"] and tracks[0].keypoints is None
    kp = people[0].keypoints
    lo, hi = kp[..., :2].min(1), kp[..., :2].max(1)
    np.testing.assert_allclose(tracks[0].boxes, np.concatenate([lo, hi], 1), atol=2e-3)
    # a box gives the crop of the keypoints it was drawn around (150 px on the diagonal)
    from_boxes = tracks[0].box_params(T)
    from_kp = read_tracks(write_alphapose(people, tmp_path / "a.json"), NAMES)
    from_kp = min(from_kp, key=lambda t: t.keypoints[0, 0, 0]).box_params(T)
    np.testing.assert_allclose(from_boxes.scale, from_kp.scale, rtol=1e-4)
    np.testing.assert_allclose(from_boxes.center, from_kp.center, atol=0.01)


def test_untracked_detections_are_linked_by_overlap():
    a = np.array([[0, 0, 1], [10, 20, 1]], float)
    b = np.array([[100, 0, 1], [110, 20, 1]], float)
    shift = np.array([1.0, 0.0, 0.0])
    dets = {0: [a, b], 1: [b + shift, a + shift], 2: [a + 2 * shift], 5: [b]}
    tracks = link_by_overlap(dets)
    assert [sorted(t) for t in tracks] == [[0, 1, 2], [0, 1], [5]]  # b is lost at 2: new track
    np.testing.assert_array_equal(tracks[0][1], a + shift)


def test_bad_tracks_files_are_named(tmp_path):
    with pytest.raises(TracksError, match="nope.json: no such tracks file"):
        read_tracks(tmp_path / "nope.json", NAMES)
    (tmp_path / "odd.json").write_text(json.dumps({"people": 3}))
    with pytest.raises(TracksError, match="odd.json: unknown tracks format"):
        read_tracks(tmp_path / "odd.json", NAMES)
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(TracksError, match="empty.json: no person"):
        read_tracks(tmp_path / "empty.json", NAMES)
    (tmp_path / "far.json").write_text(json.dumps([{"image_id": "99.jpg", "keypoints": [1, 2, 1]}]))
    with pytest.raises(TracksError, match="frame '99.jpg' is outside the input's 12 frames"):
        read_tracks(tmp_path / "far.json", NAMES)
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": "1.jpg", "keypoints": [1, 2]}]))
    with pytest.raises(TracksError, match=r"entry 0: keypoints must be \[x, y, score\] \* K"):
        read_tracks(tmp_path / "bad.json", NAMES)
    (tmp_path / "mot.txt").write_text("1,1,10,10,5\n")
    with pytest.raises(TracksError, match="mot.txt: line 1 is not 'frame, id, left, top"):
        read_tracks(tmp_path / "mot.txt", NAMES)
    (tmp_path / "folder").mkdir()
    with pytest.raises(TracksError, match="OpenPose"):
        read_tracks(tmp_path / "folder", NAMES)
