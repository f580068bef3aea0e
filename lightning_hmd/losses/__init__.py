"""Unweighted HMMR loss terms (pure functions returning scalars) and ``weighted_sum``.

Reductions follow the original TensorFlow code (HMMR's ``src/ops.py``; see ``reductions`` for
the mask convention).
"""

from lightning_hmd.losses.adversarial import (
    DiscriminatorLoss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from lightning_hmd.losses.reductions import expand_mask, masked_mean
from lightning_hmd.losses.regularizers import (
    hallucination_loss,
    shape_constancy_loss,
    shape_prior_loss,
)
from lightning_hmd.losses.supervised import joints3d_loss, kp2d_loss, smpl_loss
from lightning_hmd.losses.temporal import delta_kp2d_loss, gt_overlap, overlap, pred_overlap
from lightning_hmd.losses.weighting import (
    ADV,
    BASE_NAMES,
    DISC,
    HAL,
    HALLUCINATE,
    JOINTS3D,
    KP2D,
    SHAPE_CONST,
    SHAPE_PRIOR,
    SMPL,
    base_name,
    dt_qualifier,
    term_name,
    weighted_sum,
)

__all__ = [
    "ADV",
    "BASE_NAMES",
    "DISC",
    "HAL",
    "HALLUCINATE",
    "JOINTS3D",
    "KP2D",
    "SHAPE_CONST",
    "SHAPE_PRIOR",
    "SMPL",
    "DiscriminatorLoss",
    "base_name",
    "delta_kp2d_loss",
    "dt_qualifier",
    "expand_mask",
    "gt_overlap",
    "hallucination_loss",
    "joints3d_loss",
    "kp2d_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "masked_mean",
    "overlap",
    "pred_overlap",
    "shape_constancy_loss",
    "shape_prior_loss",
    "smpl_loss",
    "term_name",
    "weighted_sum",
]
