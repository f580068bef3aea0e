"""Typed containers that cross module boundaries, and the shape glossary.

Shape glossary, used in every docstring of the package:

    B  batch of sequences (clips)
    T  frames per sequence
    N  flattened frames, usually B*T
    J  body joints (24 SMPL joints, 14 LSP joints, 17 H36M joints: stated where used)
    K  2D keypoints (25 in the HMMR "cocoplus" order)
    V  mesh vertices (6890 for SMPL-topology models)
    D  feature channels (2048 for ResNet-50 features phi and the movie strip Phi)
    M  mocap samples fed to the discriminator
    S  shape coefficients (betas, 10)

Leading dimensions written ``...`` mean "any batch dimensions".
The packed 85-D HMMR vector ``[cam 3 | pose 72 | shape 10]`` appears only inside the
regressors (``models.regressor``) and in :meth:`SMPLParams.to_theta` for export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from lightning_hmd.body.joints import NUM_BETAS, NUM_SMPL_JOINTS, POSE_DIM

THETA_DIM = 3 + POSE_DIM + NUM_BETAS  # 85

__all__ = [
    "NUM_BETAS",
    "NUM_SMPL_JOINTS",
    "POSE_DIM",
    "THETA_DIM",
    "GeneratorOutput",
    "MocapBatch",
    "Predictions",
    "SMPLParams",
    "SequenceBatch",
]


@dataclass
class SMPLParams:
    """Weak-perspective camera and SMPL parameters for any leading dims ``...``.

    Attributes:
        cam: (..., 3) weak-perspective camera ``[s, tx, ty]``; projection is ``s * (X_xy + t)``.
        pose_aa: (..., 24, 3) axis-angle per SMPL joint; joint 0 is the global rotation.
        pose_rotmat: (..., 24, 3, 3) the same rotations as matrices.
        betas: (..., 10) shape coefficients.
    """

    cam: Tensor
    pose_aa: Tensor
    pose_rotmat: Tensor
    betas: Tensor

    def to_theta(self) -> Tensor:
        """Pack into HMMR's 85-D vector ``[cam 3 | pose 72 | shape 10]``: (..., 85). Export only."""
        pose = self.pose_aa.reshape(*self.pose_aa.shape[:-2], POSE_DIM)
        return torch.cat([self.cam, pose, self.betas], dim=-1)

    def detach(self) -> SMPLParams:
        return SMPLParams(
            cam=self.cam.detach(),
            pose_aa=self.pose_aa.detach(),
            pose_rotmat=self.pose_rotmat.detach(),
            betas=self.betas.detach(),
        )


@dataclass
class Predictions:
    """The regressors' outputs for one feature sequence (the movie strip or its hallucination).

    Attributes:
        current: SMPLParams with leading dims (B, T): the pose at frame t predicted from Phi_t.
        deltas: offset Δt -> SMPLParams with leading dims (B, T): the pose at frame t+Δt predicted
            from Phi_t. Shape (betas) is copied from ``current``; ``cam`` is the current frame's
            camera (losses replace it by the optimal camera).
    """

    current: SMPLParams
    deltas: dict[int, SMPLParams] = field(default_factory=dict)


@dataclass
class GeneratorOutput:
    """Everything the HMMR generator predicts for a batch of clips.

    Attributes:
        phi: (B, T, D) per-frame image features.
        movie_strip: (B, T, D) temporal encoding Phi.
        pred: predictions from the movie strip.
        hallucinated_strip: (B, T, D) Phi_hat predicted from phi alone, or None.
        hallucinated: predictions from ``hallucinated_strip``, or None.
    """

    phi: Tensor
    movie_strip: Tensor
    pred: Predictions
    hallucinated_strip: Tensor | None = None
    hallucinated: Predictions | None = None


@dataclass
class SequenceBatch:
    """A batch of ground-truth clips.

    Attributes:
        phi: (B, T, D) precomputed image features (float16 from the shards, or float32), or
            None when ``images`` are given.
        images: (B, T, 3, H, W) crops, uint8 from the reader or float in [-1, 1], or None
            (the generator normalises uint8 images on the device).
        kp2d: (B, T, K, 3) 2D keypoints in normalised crop coordinates with visibility (0/1)
            in the last channel; invisible keypoints are zeros.
        joints3d: (B, T, 14, 3) LSP joints in metres (zeros where ``has_3d_joints`` is 0).
        pose_aa: (B, T, 24, 3) SMPL pose (zeros where ``has_smpl`` is 0).
        betas: (B, 10) SMPL shape of each clip's person.
        has_3d_joints: (B,) 1 where ``joints3d`` is labelled.
        has_smpl: (B,) 1 where ``pose_aa`` and ``betas`` are labelled.
    """

    kp2d: Tensor
    joints3d: Tensor
    pose_aa: Tensor
    betas: Tensor
    has_3d_joints: Tensor
    has_smpl: Tensor
    phi: Tensor | None = None
    images: Tensor | None = None


@dataclass
class MocapBatch:
    """Real SMPL parameters for the discriminator.

    Attributes:
        pose_aa: (M, 24, 3) axis-angle poses.
        betas: (M, 10) shapes.
    """

    pose_aa: Tensor
    betas: Tensor


@dataclass
class MocapWindows:
    """Windows of consecutive real poses for a motion discriminator.

    Attributes:
        pose_aa: (N, W, 24, 3) axis-angle poses, W consecutive frames of one recording.
        betas: (N, W, 10) shapes.
    """

    pose_aa: Tensor
    betas: Tensor
