"""Losses against labels: 2D keypoints, 3D joints, SMPL parameters (HMMR section 4.1)."""

from __future__ import annotations

from torch import Tensor

from lightning_hmd.body.joints import NUM_LSP_JOINTS
from lightning_hmd.geometry._checks import check_min_size, check_trailing
from lightning_hmd.geometry.alignment import align_by_pelvis
from lightning_hmd.losses.reductions import expand_mask, masked_mean, select_target
from lightning_hmd.structures import NUM_BETAS, NUM_SMPL_JOINTS


def kp2d_loss(pred_xy: Tensor, gt_kp: Tensor) -> Tensor:
    """L1 keypoint loss weighted by visibility: ``sum(v |dx| + v |dy|) / (2 #visible)``.

    ``#visible`` counts keypoints with non-zero visibility; the loss is 0 when none is visible.

    Args:
        pred_xy: (..., K, 2) predicted keypoints.
        gt_kp: (..., K, 3) GT ``[x, y, visibility]`` in the same coordinates.

    Returns:
        () scalar.
    """
    check_trailing(pred_xy, "pred_xy", (None, 2))
    check_trailing(gt_kp, "gt_kp", (pred_xy.shape[-2], 3))
    weights = gt_kp[..., 2:].expand(gt_kp.shape[:-1] + (2,))  # (..., K, 2)
    target = select_target(pred_xy, gt_kp[..., :2], weights)
    return masked_mean((pred_xy - target).abs(), weights)


def _masked_mse(pred: Tensor, gt: Tensor, mask: Tensor | None, mask_name: str) -> Tensor:
    """0.5 * mean squared error over the elements of samples whose mask is non-zero."""
    weights = None if mask is None else expand_mask(mask, pred, mask_name)
    if weights is not None:
        gt = select_target(pred, gt, weights)
    return 0.5 * masked_mean((pred - gt) ** 2, weights)


def joints3d_loss(pred: Tensor, gt: Tensor, has_3d: Tensor | None = None) -> Tensor:
    """0.5 * MSE of pelvis-aligned 3D joints on the 14 LSP joints.

    Both sets are cut to their first 14 joints and aligned by their own pelvis.

    Args:
        pred: (..., J, 3) predicted joints, J >= 14 (e.g. the 25 HMMR keypoints), metres.
        gt: (..., J', 3) GT joints, J' >= 14; same leading dims as ``pred``.
        has_3d: None (all labelled) or a mask over a prefix of the leading dims, e.g. (B,) or
            (B, T) for (B, T, J, 3); it is right-padded and broadcast (see ``reductions``).

    Returns:
        () scalar; 0 when no sample is labelled.
    """
    check_trailing(pred, "pred", (None, 3))
    check_trailing(gt, "gt", (None, 3))
    check_min_size(pred, "pred", -2, NUM_LSP_JOINTS)
    check_min_size(gt, "gt", -2, NUM_LSP_JOINTS)
    if pred.shape[:-2] != gt.shape[:-2]:
        raise ValueError(
            f"pred and gt must share leading dims, got {tuple(pred.shape)} and {tuple(gt.shape)}"
        )
    pred14 = align_by_pelvis(pred[..., :NUM_LSP_JOINTS, :])
    gt14 = align_by_pelvis(gt[..., :NUM_LSP_JOINTS, :])
    return _masked_mse(pred14, gt14, has_3d, "has_3d")


def smpl_loss(
    pred_rotmat: Tensor,
    gt_rotmat: Tensor,
    pred_betas: Tensor,
    gt_betas: Tensor,
    has_smpl: Tensor | None = None,
) -> Tensor:
    """SMPL parameter loss: ``0.5 MSE(rotmats, 216 per sample) + 0.5 MSE(betas)``, one scalar.

    The global rotation (joint 0) is included. Each MSE averages over the elements of the
    samples whose ``has_smpl`` is non-zero and is 0 when none is.

    Args:
        pred_rotmat: (..., 24, 3, 3) predicted rotation matrices.
        gt_rotmat: (..., 24, 3, 3) GT rotation matrices.
        pred_betas: (..., 10) predicted shape.
        gt_betas: GT shape broadcastable to ``pred_betas`` by the usual rules, e.g. (..., 10) or
            (B, 1, 10) for a per-clip shape against (B, T, 10).
        has_smpl: None or a mask over a prefix of the leading dims (e.g. (B,) or (B, T)).

    Returns:
        () scalar, the sum of the pose and shape terms.
    """
    check_trailing(pred_rotmat, "pred_rotmat", (NUM_SMPL_JOINTS, 3, 3))
    check_trailing(gt_rotmat, "gt_rotmat", tuple(pred_rotmat.shape))
    check_trailing(pred_betas, "pred_betas", (NUM_BETAS,))
    check_trailing(gt_betas, "gt_betas", (NUM_BETAS,))
    try:
        gt_betas = gt_betas.expand(pred_betas.shape)
    except RuntimeError:
        raise ValueError(
            f"gt_betas must broadcast to pred_betas {tuple(pred_betas.shape)}, "
            f"got {tuple(gt_betas.shape)}"
        ) from None
    pose = _masked_mse(pred_rotmat, gt_rotmat, has_smpl, "has_smpl")
    shape = _masked_mse(pred_betas, gt_betas, has_smpl, "has_smpl")
    return pose + shape
