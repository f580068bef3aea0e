"""Horizontal (left/right) flips of keypoints, 3D joints and SMPL poses.

Each flip mirrors x and swaps left/right entries with a permutation from ``body.joints``; applying
a flip twice is the identity. The SMPL pose reflection is HMMR's ``reflect_pose``
(``src/util/data_utils.py``): swap the left/right joints, then negate the y and z components of
every axis-angle (the global rotation included), which equals conjugating each rotation matrix
by ``M = diag(-1, 1, 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_hmd.body.joints import KEYPOINT_FLIP_PERM, SMPL_FLIP_PERM
from lightning_hmd.geometry._checks import check_min_size, check_trailing


def _permute(x: Tensor, perm: Sequence[int], dim: int, name: str) -> Tensor:
    if x.shape[dim] != len(perm):
        raise ValueError(
            f"{name} has {x.shape[dim]} entries in dim {dim} but the flip permutation has "
            f"{len(perm)}; got shape {tuple(x.shape)}"
        )
    return x.index_select(dim, torch.as_tensor(perm, device=x.device))


def flip_keypoints_2d(kp: Tensor, perm: Sequence[int] = KEYPOINT_FLIP_PERM) -> Tensor:
    """Flip keypoints in normalised crop coordinates: ``x' = -x``, left/right swapped.

    Args:
        kp: (..., K, C) keypoints, C >= 2 (``[x, y, (visibility, ...)]``; extra channels kept).
        perm: length-K flip permutation (default: the 25 HMMR keypoints).

    Returns:
        (..., K, C) flipped keypoints.
    """
    check_trailing(kp, "kp", (None, None))
    check_min_size(kp, "kp", -1, 2)
    sign = torch.ones(kp.shape[-1], dtype=kp.dtype, device=kp.device)
    sign[0] = -1.0
    return _permute(kp, perm, -2, "kp") * sign


def flip_keypoints_2d_pixels(
    kp: Tensor, width: float, perm: Sequence[int] = KEYPOINT_FLIP_PERM
) -> Tensor:
    """Flip keypoints in pixel coordinates of an image ``width`` pixels wide: ``x' = W - 1 - x``.

    Invisible keypoints are transformed like the others; zero them afterwards if needed.

    Args:
        kp: (..., K, C) keypoints, C >= 2, x in pixels.
        width: image width W in pixels.
        perm: length-K flip permutation.

    Returns:
        (..., K, C) flipped keypoints.
    """
    check_trailing(kp, "kp", (None, None))
    check_min_size(kp, "kp", -1, 2)
    out = _permute(kp, perm, -2, "kp").clone()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def flip_joints_3d(joints: Tensor, perm: Sequence[int]) -> Tensor:
    """Mirror 3D joints in the x = 0 plane and swap left/right: ``x' = -x``.

    HMMR additionally subtracted the joint mean after the flip (``reflect_joints3d``,
    ``src/util/data_utils.py``); losses and metrics here are pelvis-aligned, so that
    re-centring is left to the caller.

    Args:
        joints: (..., J, 3) joints.
        perm: length-J flip permutation, e.g. ``LSP14_FLIP_PERM`` or ``KEYPOINT_FLIP_PERM``.

    Returns:
        (..., J, 3) flipped joints.
    """
    check_trailing(joints, "joints", (None, 3))
    sign = joints.new_tensor([-1.0, 1.0, 1.0])
    return _permute(joints, perm, -2, "joints") * sign


def flip_smpl_pose(pose_aa: Tensor) -> Tensor:
    """Reflect an SMPL pose given as axis-angle: swap left/right joints, negate y and z.

    Args:
        pose_aa: (..., 24, 3) axis-angle per SMPL joint.

    Returns:
        (..., 24, 3) reflected pose.
    """
    check_trailing(pose_aa, "pose_aa", (len(SMPL_FLIP_PERM), 3))
    sign = pose_aa.new_tensor([1.0, -1.0, -1.0])
    return _permute(pose_aa, SMPL_FLIP_PERM, -2, "pose_aa") * sign


def flip_smpl_rotmat(pose_rotmat: Tensor) -> Tensor:
    """Reflect an SMPL pose given as rotation matrices: swap left/right, ``R' = M R M``.

    ``M = diag(-1, 1, 1)``, so ``R'_ij = m_i m_j R_ij``; same result as ``flip_smpl_pose``.

    Args:
        pose_rotmat: (..., 24, 3, 3) rotation matrices per SMPL joint.

    Returns:
        (..., 24, 3, 3) reflected pose.
    """
    check_trailing(pose_rotmat, "pose_rotmat", (len(SMPL_FLIP_PERM), 3, 3))
    m = pose_rotmat.new_tensor([-1.0, 1.0, 1.0])
    sign = m[:, None] * m[None, :]  # (3, 3)
    return _permute(pose_rotmat, SMPL_FLIP_PERM, -3, "pose_rotmat") * sign
