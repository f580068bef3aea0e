"""HMMR augmentation: jitter ranges, pixel/keypoint agreement, flips, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_data_schema import make_clip

from lightning_hmd.body.joints import KEYPOINT_NAMES
from lightning_hmd.data.augment import (
    AugmentConfig,
    Jitter,
    augment_clip,
    center_crop,
    crop_frames,
    flip_joints3d,
    flip_pose_aa,
    jitter_keypoints,
    sample_jitter,
)
from lightning_hmd.geometry.flip import flip_smpl_pose

S, C = 64, 48


def dot_images(kp2d: np.ndarray, size: int) -> np.ndarray:
    """Black frames with one 3x3 white dot at keypoint 0 of each frame."""
    images = np.zeros((len(kp2d), size, size, 3), np.uint8)
    for t, (x, y, _) in enumerate(kp2d[:, 0]):
        px, py = round((x + 1) * size / 2), round((y + 1) * size / 2)
        images[t, py - 1 : py + 2, px - 1 : px + 2] = 255
    return images


def clip_with_dots(t: int = 6, seed: int = 0):
    clip = make_clip(t, seed=seed)
    rng = np.random.default_rng(seed)
    kp = np.zeros((t, 25, 3), np.float32)
    px = rng.integers(16, S - 16, size=(t, 25, 2))
    kp[..., :2] = 2.0 * px / S - 1.0
    kp[..., 2] = 1.0
    clip = replace(clip, kp2d=kp)
    return clip, dot_images(kp, S)


def brightest(image: np.ndarray) -> np.ndarray:
    gray = image[..., 0].astype(float)
    ys, xs = np.nonzero(gray == gray.max())
    return np.array([xs.mean(), ys.mean()])


def test_jitter_ranges_and_determinism():
    cfg = AugmentConfig()
    j = sample_jitter(5000, cfg, np.random.default_rng(0))
    assert j.scale.min() >= 2**-0.3 and j.scale.max() <= 2**0.3
    assert j.scale.min() < 2**-0.28 and j.scale.max() > 2**0.28
    assert np.abs(j.translation).max() <= 20.0 and np.abs(j.translation).max() > 19.5
    # trans_max is in pixels of a 224-pixel crop: a 64-pixel crop gets 2/7 of it
    small = sample_jitter(5000, cfg, np.random.default_rng(0), out_size=64)
    np.testing.assert_allclose(small.translation, j.translation * 64 / 224)
    again = sample_jitter(5000, cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(j.scale, again.scale)
    one = sample_jitter(7, replace(cfg, per_frame=False), np.random.default_rng(1))
    assert np.unique(one.scale).size == 1 and np.unique(one.translation[:, 0]).size == 1
    flips = [sample_jitter(1, cfg, np.random.default_rng(s)).flip for s in range(2000)]
    assert 0.45 < np.mean(flips) < 0.55


@pytest.mark.parametrize("flip", [False, True])
def test_warped_dot_lies_under_the_mapped_keypoint(flip):
    clip, images = clip_with_dots()
    rng = np.random.default_rng(3)
    jitter = Jitter(2.0 ** rng.uniform(-0.3, 0.3, 6), rng.uniform(-5, 5, (6, 2)), flip)
    out = crop_frames(images, jitter, C)
    kp = jitter_keypoints(clip.kp2d, jitter, S, C)
    # After a flip keypoint 0 (right heel) sits in the left-heel slot.
    slot = KEYPOINT_NAMES.index("l_heel") if flip else 0
    assert KEYPOINT_NAMES[0] == "r_heel"
    for t in range(6):
        expected = (kp[t, slot, :2] + 1.0) * C / 2.0
        assert np.abs(brightest(out[t]) - expected).max() < 1.0


def test_keypoints_leaving_the_crop_stay_visible_and_invisible_ones_become_zeros():
    # HMMR's tube augmentation zeroes the invisible keypoints only
    kp = np.zeros((1, 25, 3), np.float32)
    kp[0, :, 2] = 1.0
    kp[0, 0, :2] = [0.95, 0.0]  # near the right edge: scaled by 1.5 it leaves the crop
    kp[0, 1, :2] = [0.1, 0.1]
    kp[0, 2] = [0.3, 0.3, 0.0]  # invisible: zero
    out = jitter_keypoints(kp, Jitter(np.array([1.5]), np.zeros((1, 2)), False), S, C)
    np.testing.assert_allclose(out[0, 0], [1.425, 0.0, 1.0], atol=1e-6)
    assert out[0, 2].tolist() == [0, 0, 0]
    np.testing.assert_allclose(out[0, 1], [0.15, 0.15, 1.0], atol=1e-6)


def test_label_flips_are_involutions():
    clip = make_clip(6)
    once = flip_joints3d(clip.joints3d)
    assert not np.array_equal(once, clip.joints3d)
    np.testing.assert_array_equal(flip_joints3d(once), clip.joints3d)
    np.testing.assert_allclose(flip_pose_aa(flip_pose_aa(clip.pose)), clip.pose, atol=0)


def test_numpy_pose_flip_matches_the_torch_reflection():
    pose = np.random.default_rng(0).normal(size=(4, 72)).astype(np.float32)
    expected = flip_smpl_pose(torch.from_numpy(pose).view(4, 24, 3)).reshape(4, 72).numpy()
    np.testing.assert_array_equal(flip_pose_aa(pose), expected)


def test_augment_without_images_returns_the_sample_unchanged():
    clip = make_clip(5)
    out, images = augment_clip(clip, None, AugmentConfig(), np.random.default_rng(0), C)
    assert out is clip and images is None


def test_augment_is_deterministic_and_disabled_equals_center_crop():
    clip, images = clip_with_dots()
    a = augment_clip(clip, images, AugmentConfig(), np.random.default_rng(7), C)
    b = augment_clip(clip, images, AugmentConfig(), np.random.default_rng(7), C)
    np.testing.assert_array_equal(a[0].kp2d, b[0].kp2d)
    np.testing.assert_array_equal(a[1], b[1])
    off = augment_clip(clip, images, AugmentConfig(enabled=False), np.random.default_rng(7), C)
    cc = center_crop(clip, images, C)
    np.testing.assert_array_equal(off[1], cc[1])
    np.testing.assert_allclose(cc[0].kp2d[..., :2], clip.kp2d[..., :2] * 1.0, atol=1e-6)
    assert cc[1].shape == (6, C, C, 3)
