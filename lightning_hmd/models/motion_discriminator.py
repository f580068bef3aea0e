"""VIBE's motion discriminator: one realism score per window of poses.

``MotionDiscriminator`` of VIBE (``lib/models/motion_discriminator.py``, with
``feature_pool="attention"`` and ``SelfAttention`` of ``lib/models/attention.py``): the body
joints' axis-angle rotations of each frame (23 x 3 = 69 numbers, the root rotation left out as
VIBE's ``thetas[:, :, 6:75]``) go through a GRU over the window; an attention MLP scores every
frame's GRU output, the softmax of the scores over the window weights their sum, and a linear
layer gives the window's score. It is trained with the same LSGAN terms as HMMR's per-frame
discriminator (``losses/adversarial.py``; VIBE's ``batch_adv_disc_l2_loss`` and
``batch_encoder_disc_l2_loss`` are those means) on windows of mocap poses, in frame order.

VIBE's defaults (``lib/core/config.py``, ``TRAIN.MOT_DISCR``): 2 GRU layers of 1024, attention
over 1024 channels with 3 layers and dropout 0.2, one output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_hmd.geometry.rotations import matrix_to_axis_angle
from lightning_hmd.structures import NUM_SMPL_JOINTS

MOTION_INPUT = (NUM_SMPL_JOINTS - 1) * 3  # 69: the body joints' axis-angle, no root


class WindowAttention(nn.Module):
    """VIBE's ``SelfAttention``: ``layers - 1`` blocks of (linear, tanh, dropout), then
    (linear to 1, tanh, dropout); softmax over the window; the weighted sum of the inputs.
    Linear weights start uniform in [-0.1, 0.1] and biases at 0.01, as VIBE's ``init_weights``.
    (B, T, C) -> ((B, C), (B, T) weights)."""

    def __init__(self, channels: int, layers: int = 3, dropout: float = 0.2):
        super().__init__()
        if layers < 1:
            raise ValueError(f"attention needs >= 1 layer, got {layers}")
        blocks: list[nn.Module] = []
        for _ in range(layers - 1):
            blocks += [nn.Linear(channels, channels), nn.Tanh(), nn.Dropout(dropout)]
        blocks += [nn.Linear(channels, 1), nn.Tanh(), nn.Dropout(dropout)]
        self.score = nn.Sequential(*blocks)
        with torch.no_grad():
            for m in self.score:
                if isinstance(m, nn.Linear):
                    m.weight.uniform_(-0.1, 0.1)
                    m.bias.fill_(0.01)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, T, C) -> pooled (B, C), weights (B, T)."""
        weights = self.score(x).squeeze(-1).softmax(dim=-1)
        return (x * weights.unsqueeze(-1)).sum(dim=1), weights


class MotionDiscriminator(nn.Module):
    """Windows of poses (B, T, 24, 3, 3) -> scores (B, 1)."""

    judges_windows = True  # the objective hands it windows, not single frames

    def __init__(
        self,
        hidden: int = 1024,
        num_layers: int = 2,
        attention_layers: int = 3,
        attention_dropout: float = 0.2,
    ):
        super().__init__()
        self.gru = nn.GRU(MOTION_INPUT, hidden, num_layers=num_layers, batch_first=True)
        self.attention = WindowAttention(hidden, attention_layers, attention_dropout)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, pose_rotmat: Tensor, betas: Tensor | None = None) -> Tensor:
        """pose_rotmat: (B, T, 24, 3, 3) rotation matrices -> (B, 1) one score per window
        (``betas`` is not judged, as in VIBE)."""
        if pose_rotmat.ndim != 5 or pose_rotmat.shape[2:] != (NUM_SMPL_JOINTS, 3, 3):
            raise ValueError(
                f"pose_rotmat must be (B, T, {NUM_SMPL_JOINTS}, 3, 3), "
                f"got {tuple(pose_rotmat.shape)}"
            )
        body = matrix_to_axis_angle(pose_rotmat[:, :, 1:])  # (B, T, 23, 3)
        outputs, _ = self.gru(body.flatten(2))  # (B, T, H)
        pooled, _ = self.attention(outputs)
        return self.fc(pooled)
