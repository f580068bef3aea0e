"""Weak-perspective camera ``[s, tx, ty]``: projection, optimal fit, perspective translation.

Projected points are in normalised crop coordinates ([-1, 1] across the crop); pixel
coordinates of a crop of side ``img_size`` are ``(x + 1) / 2 * img_size``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_hmd.geometry._checks import check_trailing

# Ridge added to X^T X before inverting it, as in HMMR's ``procrustes2d_vis``
# (``src/tf_smpl/projection.py``).
_RIDGE = 1e-6


def project_weak_perspective(points: Tensor, cam: Tensor) -> Tensor:
    """Orthographic projection with scale and 2D translation: ``s * (X_xy + [tx, ty])``.

    Args:
        points: (..., J, 3) points in the body model frame (or (..., J, C) with C >= 2).
        cam: (..., 3) camera ``[s, tx, ty]``; its leading dims broadcast with those of ``points``.

    Returns:
        (..., J, 2) points in normalised crop coordinates.
    """
    check_trailing(points, "points", (None, None))
    check_trailing(cam, "cam", (3,))
    if points.shape[-1] < 2:
        raise ValueError(f"points must have shape (..., J, C>=2), got {tuple(points.shape)}")
    scale = cam[..., None, :1]  # (..., 1, 1)
    trans = cam[..., None, 1:]  # (..., 1, 2)
    return scale * (points[..., :2] + trans)


def optimal_camera(
    pred_xy: Tensor,
    gt_kp: Tensor,
    scale_min: float = 0.7,
    scale_max: float = 10.0,
    clamp: bool = True,
) -> Tensor:
    """Closed-form camera ``[s, tx, ty]`` fitting ``s * (pred_xy + t)`` to the visible GT points.

    Reproduces HMMR's ``procrustes2d_vis`` (``src/tf_smpl/projection.py``; training,
    ``clamp=True``) and the evaluation's ``compute_opt_cam_with_vis``
    (``src/evaluation/eval_util.py``; ``clamp=False``). A keypoint is visible when
    ``gt_kp[..., 2] > 0``. With X, Y the visible predicted / GT points centred on their visible
    means (K x 2, invisible rows zeroed):

        A = (X^T X + 1e-6 I)^-1 X^T Y     (the least-squares 2x2 linear map X -> Y)
        s = trace(A) / 2                  (mean of its diagonal; equals s when Y = s X)
        t = mu_gt / s - mu_pred

    (Not the isotropic least-squares scale <X, Y> / <X, X>.) ``clamp`` bounds s to
    [scale_min, scale_max], so a mirrored prediction cannot collapse the scale to 0.

    No gradient (HMMR's ``stop_gradient``, ``batch_orth_proj_optcam``); float64 inside.
    The derivation is in ``docs/derivations.md`` (the 2D camera fit).
    With no visible keypoint the camera is ``[scale_min if clamp else 1, 0, 0]``; a zero scale
    (e.g. all visible predicted points coincide, ``clamp=False``) gives ``t = 0``.

    Args:
        pred_xy: (..., K, 2) predicted points (extra channels beyond 2 are ignored).
        gt_kp: (..., K, 3) GT keypoints ``[x, y, visibility]`` in the same coordinates.
        scale_min, scale_max: clamp bounds for s.
        clamp: apply the clamp (training) or not (evaluation).

    Returns:
        (..., 3) camera ``[s, tx, ty]`` in ``pred_xy``'s dtype, detached.
    """
    check_trailing(pred_xy, "pred_xy", (None, None))
    check_trailing(gt_kp, "gt_kp", (pred_xy.shape[-2], 3))
    with torch.no_grad():
        x = pred_xy[..., :2].detach().double()  # (..., K, 2)
        y = gt_kp[..., :2].detach().double()
        vis = (gt_kp[..., 2:] > 0).double()  # (..., K, 1)
        num_vis = vis.sum(dim=-2, keepdim=True)  # (..., 1, 1)
        denom = num_vis.clamp_min(1.0)
        mu_x = (vis * x).sum(dim=-2, keepdim=True) / denom  # (..., 1, 2)
        mu_y = (vis * y).sum(dim=-2, keepdim=True) / denom
        X = vis * (x - mu_x)
        Y = vis * (y - mu_y)
        XtX = X.transpose(-1, -2) @ X + _RIDGE * torch.eye(2, dtype=x.dtype, device=x.device)
        A = torch.linalg.solve(XtX, X.transpose(-1, -2) @ Y)  # (..., 2, 2)
        scale = A.diagonal(dim1=-2, dim2=-1).sum(-1) / 2.0  # (...)
        if clamp:
            scale = scale.clamp(scale_min, scale_max)
        none_visible = num_vis[..., 0, 0] == 0
        scale = torch.where(none_visible, scale_min if clamp else 1.0, scale)
        safe_scale = torch.where(scale == 0, 1.0, scale)
        trans = mu_y[..., 0, :] / safe_scale[..., None] - mu_x[..., 0, :]  # (..., 2)
        trans = torch.where((none_visible | (scale == 0))[..., None], 0.0, trans)
        cam = torch.cat([scale[..., None], trans], dim=-1)
    return cam.to(pred_xy.dtype)


def weak_perspective_to_translation(cam: Tensor, focal_length: float, img_size: float) -> Tensor:
    """Camera-frame translation ``[tx, ty, 2 f / (img_size * s)]`` equivalent to ``cam``.

    Placing the model-frame body at this translation and projecting with a pinhole camera of
    focal length ``focal_length`` pixels onto an ``img_size`` crop approximates the
    weak-perspective projection. ``s`` must be positive (``s = 0`` gives an infinite depth).

    Args:
        cam: (..., 3) camera ``[s, tx, ty]``.
        focal_length: focal length in pixels.
        img_size: crop side in pixels.

    Returns:
        (..., 3) translation.
    """
    check_trailing(cam, "cam", (3,))
    depth = 2.0 * focal_length / (img_size * cam[..., :1])  # (..., 1)
    return torch.cat([cam[..., 1:], depth], dim=-1)
