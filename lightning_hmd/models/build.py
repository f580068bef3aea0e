"""The one place that reads ``cfg.model`` and wires the networks together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig
from torch import Tensor, nn

from lightning_hmd.models.discriminator import Discriminator, PoseDiscriminator, ShapeDiscriminator
from lightning_hmd.models.encoders import build_image_encoder
from lightning_hmd.models.generator import HMMRGenerator, delta_key
from lightning_hmd.models.hallucinator import Hallucinator
from lightning_hmd.models.motion_discriminator import MotionDiscriminator
from lightning_hmd.models.regressor import DeltaHead, SMPLHead
from lightning_hmd.models.temporal_registry import build_temporal_encoder

if TYPE_CHECKING:
    from lightning_hmd.config_tree import ModelConfig


def build_generator(
    model_cfg: DictConfig | ModelConfig,
    init_pose_aa: Tensor,
    init_betas: Tensor,
    with_image_encoder: bool = True,
) -> HMMRGenerator:
    """Build the generator described by ``cfg.model``.

    Args:
        model_cfg: the ``cfg.model`` node (DictConfig or
            :class:`~lightning_hmd.config_tree.ModelConfig`).
        init_pose_aa: (24, 3) mean pose for f_3D's starting point (its global rotation is
            replaced by [pi, 0, 0]).
        init_betas: (10,) mean shape.
        with_image_encoder: build the image encoder; without it the generator takes phi only.
    """
    feat_dim = model_cfg.feat_dim
    encoder = (
        build_image_encoder(model_cfg.encoder, feat_dim, freeze=model_cfg.freeze_encoder)
        if with_image_encoder
        else None
    )
    temporal = build_temporal_encoder(feat_dim, model_cfg.temporal)
    head_args = {
        "hidden": model_cfg.regressor_hidden,
        "dropout": model_cfg.regressor_dropout,
        "num_iters": model_cfg.ief_iters,
        "pose_repr": model_cfg.pose_repr,
    }
    smpl_head = SMPLHead(feat_dim, init_pose_aa, init_betas, **head_args)
    delta_heads = nn.ModuleDict(
        {delta_key(offset): DeltaHead(feat_dim, **head_args) for offset in model_cfg.delta_t}
    )
    hallucinator = (
        Hallucinator(feat_dim, model_cfg.hallucinator_hidden) if model_cfg.hallucinator else None
    )
    return HMMRGenerator(encoder, temporal, smpl_head, delta_heads, hallucinator)


def build_discriminator(model_cfg: DictConfig | ModelConfig) -> Discriminator | MotionDiscriminator:
    """Build the pose (and, if ``model.shape_discriminator``, shape) discriminator, or with
    ``model.discriminator=motion`` VIBE's motion discriminator (``model.motion_disc``)."""
    if model_cfg.discriminator == "motion":
        md = model_cfg.motion_disc
        return MotionDiscriminator(
            md.hidden, md.num_layers, md.attention_layers, md.attention_dropout
        )
    pose = PoseDiscriminator(channels=model_cfg.disc_channels, hidden=model_cfg.disc_hidden)
    shape = (
        ShapeDiscriminator(hidden=model_cfg.shape_disc_hidden)
        if model_cfg.shape_discriminator
        else None
    )
    return Discriminator(pose, shape)
