"""Pelvis alignment and similarity (scale + rotation + translation) Procrustes alignment."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_hmd.body.joints import L_HIP, R_HIP
from lightning_hmd.geometry._checks import check_trailing

# Lower bound on the predicted points' variance: a degenerate prediction (all points equal)
# gets scale 0 instead of a division by zero.
_MIN_VARIANCE = 1e-12


def pelvis(joints: Tensor) -> Tensor:
    """Midpoint of the right and left hips (``R_HIP``, ``L_HIP`` of the HMMR / LSP order).

    Args:
        joints: (..., J, 3) joints in the HMMR keypoint order (J >= 4, e.g. 14 or 25).

    Returns:
        (..., 3) pelvis position.
    """
    check_trailing(joints, "joints", (None, 3))
    if joints.shape[-2] <= max(R_HIP, L_HIP):
        raise ValueError(
            f"joints must have shape (..., J>{max(R_HIP, L_HIP)}, 3), got {tuple(joints.shape)}"
        )
    return 0.5 * (joints[..., R_HIP, :] + joints[..., L_HIP, :])


def align_by_pelvis(joints: Tensor) -> Tensor:
    """Translate joints so that the pelvis is at the origin.

    Args:
        joints: (..., J, 3) joints in the HMMR keypoint order.

    Returns:
        (..., J, 3) ``joints - pelvis(joints)``.
    """
    return joints - pelvis(joints)[..., None, :]


@dataclass
class SimilarityTransform:
    """``x -> scale * x @ rotation^T + translation`` for points x of shape (..., J, 3).

    Attributes:
        scale: (...) isotropic scale.
        rotation: (..., 3, 3) proper rotation (det +1).
        translation: (..., 3).
    """

    scale: Tensor
    rotation: Tensor
    translation: Tensor

    def apply(self, points: Tensor) -> Tensor:
        """(..., J, 3) -> (..., J, 3)."""
        rotated = points @ self.rotation.transpose(-1, -2)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]


def similarity_transform(pred: Tensor, gt: Tensor) -> SimilarityTransform:
    """Least-squares similarity transform taking ``pred`` onto ``gt`` (Umeyama / HMMR).

    With X1, X2 the centred point sets and ``U S V^T = svd(X1^T X2)``, the rotation is
    ``R = V Z U^T`` with ``Z = diag(1, 1, sign(det(V U^T)))`` (no reflections), the scale is
    ``trace(R X1^T X2) / ||X1||^2`` and the translation ``mu_gt - s R mu_pred``; this is HMMR's
    ``compute_similarity_transform`` (``src/evaluation/eval_util.py``), batched. Computed in
    float64, returned in ``pred``'s dtype.
    The derivation is in ``docs/derivations.md`` (similarity Procrustes alignment).

    Args:
        pred: (..., J, 3) points to align.
        gt: (..., J, 3) target points.

    Returns:
        The transform; ``transform.apply(pred)`` is the aligned prediction.
    """
    check_trailing(pred, "pred", (None, 3))
    check_trailing(gt, "gt", (pred.shape[-2], 3))
    p, g = pred.double(), gt.double()
    mu_p = p.mean(dim=-2, keepdim=True)  # (..., 1, 3)
    mu_g = g.mean(dim=-2, keepdim=True)
    X1, X2 = p - mu_p, g - mu_g
    cov = X1.transpose(-1, -2) @ X2  # (..., 3, 3)
    U, _, Vh = torch.linalg.svd(cov)
    V = Vh.transpose(-1, -2)
    det = torch.linalg.det(V @ U.transpose(-1, -2))
    z = torch.ones_like(cov[..., 0])  # (..., 3)
    z[..., 2] = torch.where(det < 0, -1.0, 1.0)
    R = V @ (z[..., :, None] * U.transpose(-1, -2))  # V diag(z) U^T
    var = (X1**2).sum(dim=(-1, -2)).clamp_min(_MIN_VARIANCE)  # (...)
    scale = (R * cov.transpose(-1, -2)).sum(dim=(-1, -2)) / var  # trace(R @ cov) / var
    trans = (mu_g - scale[..., None, None] * (mu_p @ R.transpose(-1, -2)))[..., 0, :]  # (..., 3)
    dtype = pred.dtype
    return SimilarityTransform(scale.to(dtype), R.to(dtype), trans.to(dtype))


def similarity_procrustes(pred: Tensor, gt: Tensor) -> Tensor:
    """``pred`` aligned to ``gt`` by the optimal similarity transform (``similarity_transform``).

    Args:
        pred: (..., J, 3) points to align.
        gt: (..., J, 3) target points.

    Returns:
        (..., J, 3) aligned ``pred``.
    """
    return similarity_transform(pred, gt).apply(pred)
