"""In-memory synthetic clips and mocap made with a body model (smoke runs and tests).

Poses are smooth sinusoidal joint-angle trajectories around an upright body; ground truth is
exactly consistent: 3D joints come from the body model and 2D keypoints are their
weak-perspective projection.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_hmd.body.joints import NUM_LSP_JOINTS
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.batch import ClipBatch, WindowInfo
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.structures import (
    NUM_BETAS,
    NUM_SMPL_JOINTS,
    MocapBatch,
    MocapWindows,
    SequenceBatch,
)

# Upright in HMR's camera convention: a half turn about x (the regressor's mean global rotation).
UPRIGHT = (math.pi, 0.0, 0.0)


def smooth_poses(
    batch_size: int, seq_len: int, gen: torch.Generator, amplitude: float = 0.4
) -> Tensor:
    """Smooth random joint-angle trajectories.

    Returns:
        (B, T, 24, 3) axis-angle poses: global rotation near upright, every body joint a sum of
        two sinusoids with random frequency (0.02-0.1 cycles per frame) and phase.
    """
    shape = (batch_size, 1, NUM_SMPL_JOINTS, 3, 2)
    freq = 0.02 + 0.08 * torch.rand(shape, generator=gen)
    phase = 2 * math.pi * torch.rand(shape, generator=gen)
    amp = amplitude * torch.rand(shape, generator=gen) / 2
    t = torch.arange(seq_len, dtype=torch.float32).view(1, seq_len, 1, 1, 1)
    pose = (amp * torch.sin(2 * math.pi * freq * t + phase)).sum(-1)  # (B, T, 24, 3)
    pose[:, :, 0] = pose[:, :, 0] * 0.5 + torch.tensor(UPRIGHT)
    return pose


def synthetic_sequence_batch(
    body: BodyModel,
    batch_size: int,
    seq_len: int,
    feat_dim: int,
    gen: torch.Generator,
    occlusion: float = 0.1,
) -> SequenceBatch:
    """A fully labelled batch of synthetic clips with random features phi.

    Half the clips (the second half) are marked 2D-only, as in HMMR's half-3D batches (the
    ``split_balanced`` flag, ``src/config.py``).

    Returns:
        SequenceBatch with phi (B, T, D), kp2d (B, T, 25, 3), joints3d (B, T, 14, 3),
        pose_aa (B, T, 24, 3), betas (B, 10), has_3d_joints and has_smpl (B,).
    """
    B, T = batch_size, seq_len
    pose = smooth_poses(B, T, gen)
    betas = 0.5 * torch.randn(B, NUM_BETAS, generator=gen)
    with torch.no_grad():
        joints = body(axis_angle_to_matrix(pose), betas[:, None], joints_only=True).joints
    cam = torch.stack(
        [0.9 + 0.2 * torch.rand(B, generator=gen), *(0.1 * torch.randn(2, B, generator=gen))], -1
    )  # (B, 3)
    xy = project_weak_perspective(joints, cam[:, None].expand(B, T, 3))  # (B, T, K, 2)
    vis = (torch.rand(xy.shape[:-1], generator=gen) > occlusion).float()  # (B, T, K)
    kp2d = torch.cat([xy * vis[..., None], vis[..., None]], dim=-1)
    has_3d = (torch.arange(B) < (B + 1) // 2).float()
    return SequenceBatch(
        kp2d=kp2d,
        joints3d=joints[..., :NUM_LSP_JOINTS, :] * has_3d.view(B, 1, 1, 1),
        pose_aa=pose * has_3d.view(B, 1, 1, 1),
        betas=betas * has_3d.view(B, 1),
        has_3d_joints=has_3d,
        has_smpl=has_3d.clone(),
        phi=torch.randn(B, T, feat_dim, generator=gen),
    )


def synthetic_mocap_batch(num: int, gen: torch.Generator) -> MocapBatch:
    """(M,) real poses and shapes for the discriminator, from the same motion family."""
    pose = smooth_poses(num, 1, gen)[:, 0]  # (M, 24, 3)
    return MocapBatch(pose_aa=pose, betas=0.5 * torch.randn(num, NUM_BETAS, generator=gen))


def synthetic_mocap_windows(num: int, window: int, gen: torch.Generator) -> MocapWindows:
    """(N, W) windows of smooth real poses and their shapes, for a motion discriminator."""
    pose = smooth_poses(num, window, gen)  # (N, W, 24, 3)
    betas = 0.5 * torch.randn(num, 1, NUM_BETAS, generator=gen)
    return MocapWindows(pose_aa=pose, betas=betas.expand(num, window, NUM_BETAS).clone())


def synthetic_clip_batch(
    body: BodyModel,
    batch_size: int,
    seq_len: int,
    feat_dim: int,
    num_poses: int,
    gen: torch.Generator,
    mocap_window: int = 0,
) -> ClipBatch:
    """A training batch as the reader makes it: synthetic clips with features
    (:func:`synthetic_sequence_batch`), where they come from, and ``num_poses`` mocap poses
    (``mocap_window`` > 0: that many windows of ``mocap_window`` poses)."""
    B, T = batch_size, seq_len
    clips = synthetic_sequence_batch(body, B, T, feat_dim, gen)
    info = WindowInfo(
        key=[f"synthetic__smoke{i:03d}__t0000_c0000" for i in range(B)],
        dataset=["synthetic"] * B,
        sequence=[f"smoke{i:03d}" for i in range(B)],
        track_id=torch.zeros(B, dtype=torch.int64),
        start=torch.zeros(B, dtype=torch.int64),
        frame_index=torch.arange(T, dtype=torch.int64).expand(B, T).clone(),
    )
    mocap = (
        synthetic_mocap_windows(num_poses, mocap_window, gen)
        if mocap_window
        else synthetic_mocap_batch(num_poses, gen)
    )
    return ClipBatch(clips, info, mocap)
