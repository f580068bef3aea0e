"""Adversarial prior: HMR/HMMR pose discriminator and HMR's optional shape discriminator.

Logit order matches HMR's ``Discriminator_separable_rotations`` (``src/models.py``; HMMR's
``PoseDiscriminator``, ``src/discriminators.py``): 23 per-joint logits, then the all-joints
logit, then (when present) the shape logit. All layers use the slim defaults (Xavier uniform
weights, zero biases).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lightning_hmd.models.initializers import init_layer_
from lightning_hmd.structures import NUM_BETAS, NUM_SMPL_JOINTS

NUM_BODY_JOINTS = NUM_SMPL_JOINTS - 1  # the root (global) rotation is not judged


class PerJointLinear(nn.Module):
    """Independent linear heads C -> 1, one per joint: (M, J, C) -> (M, J).

    Equivalent to HMR's ``pose_out_j{i}`` fully-connected layers (of
    ``Discriminator_separable_rotations``, HMR's ``src/models.py``); ``weight[i]`` /
    ``bias[i]`` hold head ``i``.
    """

    def __init__(self, num_joints: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_joints, channels))
        self.bias = nn.Parameter(torch.empty(num_joints))
        limit = math.sqrt(6.0 / (channels + 1))  # Xavier uniform of each (C, 1) kernel
        nn.init.uniform_(self.weight, -limit, limit)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (M, J, C) -> (M, J)."""
        return torch.einsum("mjc,jc->mj", x, self.weight) + self.bias


class PoseDiscriminator(nn.Module):
    """Rotation matrices of the non-root joints (M, J, 3, 3) -> logits (M, J + 1).

    A shared two-layer 1x1 "conv" (``conv1``, ``conv2``: Linear 9 -> C -> C with ReLU, applied to
    every joint) feeds (a) one linear head per joint and (b) an MLP over all joints
    (flatten J*C -> hidden ReLU -> hidden ReLU -> 1). The flattened order is joint-major, as TF's
    ``slim.flatten`` of (M, J, 1, C).
    """

    def __init__(self, num_joints: int = NUM_BODY_JOINTS, channels: int = 32, hidden: int = 1024):
        super().__init__()
        self.num_joints = num_joints
        self.conv1 = nn.Linear(9, channels)
        self.conv2 = nn.Linear(channels, channels)
        self.joint_heads = PerJointLinear(num_joints, channels)
        self.fc1 = nn.Linear(num_joints * channels, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc_out = nn.Linear(hidden, 1)
        for layer in (self.conv1, self.conv2, self.fc1, self.fc2, self.fc_out):
            init_layer_(layer)

    def forward(self, rotmats: Tensor) -> Tensor:
        """rotmats: (M, 23, 3, 3) -> logits (M, 24): 23 per-joint, then all-joints."""
        if rotmats.shape[-3:] != (self.num_joints, 3, 3):
            raise ValueError(
                f"rotmats must have shape (M, {self.num_joints}, 3, 3), got {tuple(rotmats.shape)}"
            )
        x = rotmats.flatten(-2)  # (M, J, 9), row-major like TF's reshape
        x = self.conv2(self.conv1(x).relu()).relu()  # (M, J, C)
        per_joint = self.joint_heads(x)  # (M, J)
        whole = self.fc_out(self.fc2(self.fc1(x.flatten(-2)).relu()).relu())  # (M, 1)
        return torch.cat([per_joint, whole], dim=-1)


class ShapeDiscriminator(nn.Module):
    """HMR's shape discriminator: betas (M, 10) -> logit (M, 1).

    The ``shape_fc1`` / ``shape_final`` layers of ``Discriminator_separable_rotations`` (HMR's
    ``src/models.py``).

    ``fc1`` hidden ReLU -> ``fc2`` hidden // 2 ReLU -> ``fc_out`` 1 (HMR: 10 -> 5 -> 1).
    """

    def __init__(self, num_betas: int = NUM_BETAS, hidden: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(num_betas, hidden)
        self.fc2 = nn.Linear(hidden, max(hidden // 2, 1))
        self.fc_out = nn.Linear(max(hidden // 2, 1), 1)
        for layer in (self.fc1, self.fc2, self.fc_out):
            init_layer_(layer)

    def forward(self, betas: Tensor) -> Tensor:
        """betas: (M, 10) -> (M, 1)."""
        return self.fc_out(self.fc2(self.fc1(betas).relu()).relu())


class Discriminator(nn.Module):
    """The full adversarial prior over SMPL parameters.

    Takes all 24 SMPL rotations and drops the root itself.
    """

    judges_windows = False  # one frame at a time

    def __init__(self, pose: PoseDiscriminator, shape: ShapeDiscriminator | None = None):
        super().__init__()
        self.pose = pose
        self.shape = shape

    @property
    def num_logits(self) -> int:
        return self.pose.num_joints + 1 + (self.shape is not None)

    def forward(self, pose_rotmat: Tensor, betas: Tensor | None = None) -> Tensor:
        """pose_rotmat: (M, 24, 3, 3), betas: (M, 10) -> logits (M, 24), or (M, 25) with the
        shape discriminator (then ``betas`` is required)."""
        logits = self.pose(pose_rotmat[:, 1:])  # (M, 24)
        if self.shape is None:
            return logits
        if betas is None:
            raise ValueError("this discriminator judges shape too: pass betas (M, 10)")
        return torch.cat([logits, self.shape(betas)], dim=-1)  # (M, 25)
