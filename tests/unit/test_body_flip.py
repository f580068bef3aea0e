"""A reflected SMPL pose poses the body as the mirror image of the original."""

from __future__ import annotations

import torch

from lightning_hmd.body.joints import SMPL_FLIP_PERM
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.geometry.flip import flip_joints_3d, flip_smpl_pose
from lightning_hmd.geometry.rotations import axis_angle_to_matrix


def test_flipped_pose_gives_mirrored_kinematic_joints(synthetic_body_dir):
    body = BodyModel.from_dir(synthetic_body_dir)
    pose = 0.4 * torch.randn(8, 24, 3, generator=torch.Generator().manual_seed(0))
    betas = torch.zeros(8, 10)  # the mean shape is left/right symmetric
    joints = body(axis_angle_to_matrix(pose), betas, joints_only=True).smpl_joints
    flipped = body(axis_angle_to_matrix(flip_smpl_pose(pose)), betas, joints_only=True)
    mirrored = flip_joints_3d(joints, SMPL_FLIP_PERM)
    torch.testing.assert_close(flipped.smpl_joints, mirrored, atol=1e-5, rtol=0)
    # the mirror of a generic pose is a different pose
    assert (flipped.smpl_joints - joints).abs().max() > 0.05
