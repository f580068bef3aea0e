"""A reflected SMPL pose poses the body as the mirror image of the original."""

from __future__ import annotations

import numpy as np
import torch

from lightning_hmd.body.joints import H36M_FLIP_PERM, KEYPOINT_FLIP_PERM, SMPL_FLIP_PERM
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.augment import flip_joints3d, flip_pose_aa
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


def test_flipped_pose_gives_the_mirrored_mesh_and_keypoints(synthetic_body_dir):
    """The synthetic model is mirror-symmetric for any shape: a reflected pose gives the
    mirrored mesh, 25 keypoints and Human3.6M joints, and the augmentation's numpy flips of
    pose and LSP joints agree with the model."""
    body = BodyModel.from_dir(synthetic_body_dir, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    pose = 0.4 * torch.randn(6, 24, 3, generator=g, dtype=torch.float64)
    betas = torch.randn(6, 10, generator=g, dtype=torch.float64)
    out = body(axis_angle_to_matrix(pose), betas)
    flipped = body(axis_angle_to_matrix(flip_smpl_pose(pose)), betas)
    sign = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    # the mirrored mesh as a point set: every flipped vertex has a mirrored one at 0 distance
    dist = torch.cdist(flipped.vertices, out.vertices * sign).min(-1).values
    assert dist.max() < 1e-6  # cdist rounding; the model arrays are exactly symmetric
    torch.testing.assert_close(
        flipped.joints, flip_joints_3d(out.joints, KEYPOINT_FLIP_PERM), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(
        flipped.h36m_joints, flip_joints_3d(out.h36m_joints, H36M_FLIP_PERM), atol=1e-9, rtol=0
    )
    # the data augmentation's flips (numpy, axis-angle and LSP-14)
    pose_np = pose.reshape(6, 72).numpy()
    refl = body(axis_angle_to_matrix(torch.from_numpy(flip_pose_aa(pose_np)).view(6, 24, 3)), betas)
    lsp = out.joints[:, :14].numpy()
    np.testing.assert_allclose(refl.joints[:, :14].numpy(), flip_joints3d(lsp), atol=1e-9)
    assert np.abs(flip_joints3d(lsp) - lsp).max() > 0.05
