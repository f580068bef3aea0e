"""f_3D and the past/future heads: HMR's iterative error feedback (IEF) regressors.

An IEF regressor is an MLP over the concatenated state ``[feature, theta]`` and so works on a
flat parameter vector. That packing, HMMR's 85-D ``[cam 3 | pose 72 | betas 10]``, stays inside
this file; the heads return named :class:`~lightning_hmd.structures.SMPLParams`.

The pose part is HMMR's axis-angle (``pose_repr="axis_angle"``, 24 x 3) or the continuous 6D
representation (``"rot6d"``, 24 x 6, then theta is 157-D): axis-angle is discontinuous near
pi, where an upright person's global rotation sits, and 6D trains more easily from scratch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lightning_hmd.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)
from lightning_hmd.models.initializers import init_layer_
from lightning_hmd.modes import PoseRepr
from lightning_hmd.structures import NUM_BETAS, NUM_SMPL_JOINTS, POSE_DIM, THETA_DIM, SMPLParams

CAM_DIM = 3
_CAM = slice(0, CAM_DIM)
_PER_JOINT = {PoseRepr.axis_angle: 3, PoseRepr.rot6d: 6}  # numbers per joint

INIT_CAM = (0.9, 0.0, 0.0)  # weak-perspective [s, tx, ty]
INIT_GLOBAL_ROT = (math.pi, 0.0, 0.0)  # upright when projected
OUTPUT_INIT_FACTOR = 0.01  # "small xavier" on the last layer


class IEFRegressor(nn.Module):
    """Shared MLP iterated as ``theta <- theta + MLP([feat, theta])``.

    MLP: ``fc1`` hidden ReLU -> dropout -> ``fc2`` hidden ReLU -> dropout -> ``fc3`` param_dim
    (linear). fc1/fc2 are Xavier uniform, fc3 variance scaling (factor 0.01, FAN_AVG, uniform),
    biases zero (the TF ``slim.fully_connected`` defaults HMR used: ``Encoder_fc3_dropout`` in
    HMR's ``src/models.py``). Only the final estimate is returned.
    """

    def __init__(
        self,
        feat_dim: int,
        param_dim: int,
        hidden: int = 1024,
        dropout: float = 0.5,
        num_iters: int = 3,
    ):
        super().__init__()
        if num_iters < 1:
            raise ValueError(f"num_iters must be >= 1, got {num_iters}")
        self.param_dim = param_dim
        self.num_iters = num_iters
        self.fc1 = nn.Linear(feat_dim + param_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, param_dim)
        self.dropout = nn.Dropout(dropout)
        init_layer_(self.fc1)
        init_layer_(self.fc2)
        init_layer_(self.fc3, factor=OUTPUT_INIT_FACTOR)

    def forward(self, feat: Tensor, init: Tensor) -> Tensor:
        """feat: (N, D), init: (N, P) or (P,) -> theta: (N, P)."""
        theta = init.expand(feat.shape[0], self.param_dim)
        for _ in range(self.num_iters):
            state = torch.cat([feat, theta], dim=-1)  # (N, D + P)
            hidden = self.dropout(self.fc1(state).relu())
            hidden = self.dropout(self.fc2(hidden).relu())
            theta = theta + self.fc3(hidden)
        return theta


def pose_dim(pose_repr: str) -> int:
    """Length of the flat pose part of theta: 72 (axis-angle) or 144 (6D)."""
    return NUM_SMPL_JOINTS * _PER_JOINT[PoseRepr.parse(pose_repr, "model.pose_repr")]


def encode_pose(pose_aa: Tensor, pose_rotmat: Tensor, pose_repr: str) -> Tensor:
    """(..., 24, 3) axis-angle and (..., 24, 3, 3) matrices -> (..., pose_dim) flat pose."""
    if pose_repr == PoseRepr.rot6d:
        return matrix_to_rot6d(pose_rotmat).flatten(-2)
    return pose_aa.flatten(-2)


def decode_pose(flat: Tensor, pose_repr: str) -> tuple[Tensor, Tensor]:
    """(..., pose_dim) -> ((..., 24, 3) axis-angle, (..., 24, 3, 3) rotation matrices)."""
    if pose_repr == PoseRepr.rot6d:
        rotmat = rot6d_to_matrix(flat.unflatten(-1, (NUM_SMPL_JOINTS, 6)))
        return matrix_to_axis_angle(rotmat), rotmat
    pose_aa = flat.unflatten(-1, (NUM_SMPL_JOINTS, 3))
    return pose_aa, axis_angle_to_matrix(pose_aa)


def initial_theta(
    init_pose_aa: Tensor, init_betas: Tensor, pose_repr: str = "axis_angle"
) -> Tensor:
    """HMR's mean parameters (85,; 157, in 6D; ``HMRTrainer.load_mean_param``, HMR's
    ``src/trainer.py``): camera [0.9, 0, 0], the given pose with the global rotation replaced
    by [pi, 0, 0], and the given betas.

    Args:
        init_pose_aa: (24, 3) axis-angle mean pose.
        init_betas: (10,) mean shape.
        pose_repr: ``axis_angle`` or ``rot6d`` (the pose part of theta).
    """
    if init_pose_aa.shape != (NUM_SMPL_JOINTS, 3) or init_betas.shape != (NUM_BETAS,):
        raise ValueError(
            f"expected init_pose_aa (24, 3) and init_betas (10,), got "
            f"{tuple(init_pose_aa.shape)} and {tuple(init_betas.shape)}"
        )
    dtype = torch.get_default_dtype()
    pose = init_pose_aa.to(dtype).clone()
    pose[0] = torch.tensor(INIT_GLOBAL_ROT, dtype=dtype, device=pose.device)
    cam = torch.tensor(INIT_CAM, dtype=dtype, device=pose.device)
    flat = encode_pose(pose, axis_angle_to_matrix(pose), pose_repr)
    return torch.cat([cam, flat, init_betas.to(dtype)])


def _split(theta: Tensor, pose_repr: str) -> SMPLParams:
    """(..., P) theta -> SMPLParams with leading dims ``...``."""
    n = pose_dim(pose_repr)
    pose_aa, rotmat = decode_pose(theta[..., CAM_DIM : CAM_DIM + n], pose_repr)
    return SMPLParams(
        cam=theta[..., _CAM], pose_aa=pose_aa, pose_rotmat=rotmat, betas=theta[..., CAM_DIM + n :]
    )


class SMPLHead(nn.Module):
    """f_3D: IEF from a learnable mean; features (..., D) -> SMPLParams with leading dims ``...``.

    For the movie strip ``...`` is (B, T). The mean ``theta_mean`` (85,) is a parameter, as
    HMR's ``mean_param`` variable (``HMRTrainer.load_mean_param``, ``src/trainer.py``; 157,
    with 6D poses).
    """

    def __init__(
        self,
        feat_dim: int,
        init_pose_aa: Tensor,
        init_betas: Tensor,
        hidden: int = 1024,
        dropout: float = 0.5,
        num_iters: int = 3,
        pose_repr: str = "axis_angle",
    ):
        super().__init__()
        self.pose_repr = pose_repr
        size = THETA_DIM - POSE_DIM + pose_dim(pose_repr)
        self.ief = IEFRegressor(feat_dim, size, hidden, dropout, num_iters)
        self.theta_mean = nn.Parameter(initial_theta(init_pose_aa, init_betas, pose_repr))

    def mean_params(self) -> SMPLParams:
        """The starting point of the iterations as SMPLParams with no leading dims."""
        return _split(self.theta_mean, self.pose_repr)

    def forward(self, feats: Tensor) -> SMPLParams:
        """feats: (B, T, D) -> SMPLParams (B, T)."""
        theta = self.ief(feats.flatten(0, -2), self.theta_mean)  # (N, P)
        return _split(theta.unflatten(0, feats.shape[:-1]), self.pose_repr)


class DeltaHead(nn.Module):
    """f_Δt: predicts the pose at frame t+Δt from the features of frame t.

    IEF over the pose only (72-D), started from the current frame's predicted pose (gradients
    flow through that start, as in HMMR's ``call_hmr_ief`` with ``use_delta_from_pred``,
    ``src/models.py``). Betas and camera are the current frame's.
    """

    def __init__(
        self,
        feat_dim: int,
        hidden: int = 1024,
        dropout: float = 0.5,
        num_iters: int = 3,
        pose_repr: str = "axis_angle",
    ):
        super().__init__()
        self.pose_repr = pose_repr
        self.ief = IEFRegressor(feat_dim, pose_dim(pose_repr), hidden, dropout, num_iters)

    def forward(self, feats: Tensor, current: SMPLParams) -> SMPLParams:
        """feats: (B, T, D), current: SMPLParams (B, T) -> SMPLParams (B, T) at t+Δt."""
        start = encode_pose(current.pose_aa, current.pose_rotmat, self.pose_repr)  # (B, T, P)
        pose = self.ief(feats.flatten(0, -2), start.flatten(0, -2))  # (N, P)
        pose_aa, rotmat = decode_pose(pose.unflatten(0, feats.shape[:-1]), self.pose_repr)
        return SMPLParams(cam=current.cam, pose_aa=pose_aa, pose_rotmat=rotmat, betas=current.betas)
