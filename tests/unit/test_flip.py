"""Left/right flips: hand examples, involution, axis-angle vs rotation-matrix reflection."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.body.joints import (
    KEYPOINT_FLIP_PERM,
    KEYPOINT_NAMES,
    L_HIP,
    LSP14_FLIP_PERM,
    LSP14_LIMBS,
    LSP14_NAMES,
    NUM_KEYPOINTS,
    R_HIP,
    SMPL_FLIP_PERM,
    SMPL_JOINT_NAMES,
)
from lightning_hmd.geometry.flip import (
    flip_joints_3d,
    flip_keypoints_2d,
    flip_keypoints_2d_pixels,
    flip_smpl_pose,
    flip_smpl_rotmat,
)
from lightning_hmd.geometry.rotations import axis_angle_to_matrix

L_WRIST_SMPL, R_WRIST_SMPL = SMPL_JOINT_NAMES.index("l_wrist"), SMPL_JOINT_NAMES.index("r_wrist")


def test_keypoint_flip_negates_x_and_swaps_hips():
    kp = torch.zeros(NUM_KEYPOINTS, 3)
    kp[R_HIP] = torch.tensor([0.2, 0.3, 1.0])
    out = flip_keypoints_2d(kp)
    torch.testing.assert_close(out[L_HIP], torch.tensor([-0.2, 0.3, 1.0]))
    torch.testing.assert_close(out[R_HIP], torch.zeros(3))


def test_pixel_flip_hand_example():
    kp = torch.zeros(1, NUM_KEYPOINTS, 3)
    kp[0, R_HIP] = torch.tensor([10.0, 40.0, 1.0])
    out = flip_keypoints_2d_pixels(kp, width=224)
    torch.testing.assert_close(out[0, L_HIP], torch.tensor([213.0, 40.0, 1.0]))  # 224 - 1 - 10


def test_flips_are_involutions():
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(2, 3, NUM_KEYPOINTS, 3, generator=g)
    joints = torch.randn(2, 14, 3, generator=g)
    pose = torch.randn(2, 24, 3, generator=g)
    rotmat = axis_angle_to_matrix(pose)
    torch.testing.assert_close(flip_keypoints_2d(flip_keypoints_2d(kp)), kp)
    torch.testing.assert_close(flip_keypoints_2d_pixels(flip_keypoints_2d_pixels(kp, 224), 224), kp)
    torch.testing.assert_close(
        flip_joints_3d(flip_joints_3d(joints, LSP14_FLIP_PERM), LSP14_FLIP_PERM), joints
    )
    torch.testing.assert_close(flip_smpl_pose(flip_smpl_pose(pose)), pose)
    torch.testing.assert_close(flip_smpl_rotmat(flip_smpl_rotmat(rotmat)), rotmat)
    assert not torch.allclose(flip_smpl_pose(pose), pose)


def test_pose_flip_equals_conjugation_by_mirror():
    g = torch.Generator().manual_seed(1)
    pose = torch.randn(4, 24, 3, generator=g, dtype=torch.float64)
    M = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    conjugated = M @ axis_angle_to_matrix(pose)[:, list(SMPL_FLIP_PERM)] @ M
    torch.testing.assert_close(axis_angle_to_matrix(flip_smpl_pose(pose)), conjugated)
    torch.testing.assert_close(flip_smpl_rotmat(axis_angle_to_matrix(pose)), conjugated)


def test_pose_flip_hand_example_swaps_wrists():
    pose = torch.zeros(24, 3)
    pose[L_WRIST_SMPL] = torch.tensor([0.1, 0.2, 0.3])
    pose[0] = torch.tensor([3.0, 0.5, -0.5])
    out = flip_smpl_pose(pose)
    torch.testing.assert_close(out[R_WRIST_SMPL], torch.tensor([0.1, -0.2, -0.3]))
    torch.testing.assert_close(out[L_WRIST_SMPL], torch.zeros(3))
    torch.testing.assert_close(out[0], torch.tensor([3.0, -0.5, 0.5]))  # global rotation too


def test_joint_flip_mirrors_x():
    joints = torch.zeros(NUM_KEYPOINTS, 3)
    joints[R_HIP] = torch.tensor([0.1, 0.2, 0.3])
    out = flip_joints_3d(joints, KEYPOINT_FLIP_PERM)
    torch.testing.assert_close(out[L_HIP], torch.tensor([-0.1, 0.2, 0.3]))


def test_wrong_permutation_length_raises():
    with pytest.raises(ValueError, match=r"joints has 25 entries .* permutation has 14"):
        flip_joints_3d(torch.zeros(25, 3), LSP14_FLIP_PERM)
    with pytest.raises(ValueError, match=r"kp must have at least 2 entries"):
        flip_keypoints_2d(torch.zeros(NUM_KEYPOINTS, 1))
    with pytest.raises(ValueError, match=r"pose_aa must have shape \(\.\.\., 24, 3\)"):
        flip_smpl_pose(torch.zeros(23, 3))


def test_lsp14_names_and_limbs_are_the_keypoints_skeleton():
    # the LSP names are the first 14 keypoints', the heel slots naming the ankles they hold
    assert [n.replace("heel", "ankle") for n in KEYPOINT_NAMES[:14]] == list(LSP14_NAMES)
    # 14 distinct limbs over all 14 joints: legs, arms and head hang off a torso loop
    # (hip, hip, side, shoulder, neck, shoulder, side)
    assert len(set(LSP14_LIMBS)) == 14
    assert {j for limb in LSP14_LIMBS for j in limb} == set(range(14))
    # a left/right flip maps the skeleton onto itself
    perm = list(LSP14_FLIP_PERM)
    flipped = {frozenset((int(perm[a]), int(perm[b]))) for a, b in LSP14_LIMBS}
    assert flipped == {frozenset(limb) for limb in LSP14_LIMBS}
