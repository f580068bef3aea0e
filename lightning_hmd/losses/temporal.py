"""Past/future ("delta") supervision: overlapping frames and the optimal-camera 2D loss.

A prediction made at frame t for offset dt describes frame t + dt, so it is compared with the GT
of frame t + dt on the frames where both exist (T - |dt| frames):

    dt > 0 (future): pred[:, :-dt] vs gt[:, dt:]
    dt < 0 (past):   pred[:, -dt:] vs gt[:, :dt]     (dt = -5: pred[:, 5:] vs gt[:, :-5])
    dt = 0:          unchanged

Dim 1 is time. Per-frame masks (B, T) are sliced like the tensor they go with (``gt_overlap``
for GT-side labels). Tensors with fewer than two dims, such as a per-clip (B,) label, have no
time axis and are returned unchanged.
"""

from __future__ import annotations

from torch import Tensor

from lightning_hmd.geometry.camera import optimal_camera, project_weak_perspective
from lightning_hmd.losses.supervised import kp2d_loss


def _shift(x: Tensor, dt: int, name: str, keep_start: bool) -> Tensor:
    """Drop |dt| frames at the end (``keep_start``) or at the start of dim 1."""
    if x.dim() < 2:
        return x
    T = x.shape[1]
    if abs(dt) >= T:
        raise ValueError(f"|dt| must be < T={T} for {name} of shape {tuple(x.shape)}, got dt={dt}")
    n = abs(dt)
    return x[:, : T - n] if keep_start else x[:, n:]


def pred_overlap(pred: Tensor, dt: int) -> Tensor:
    """Predictions made at frames t whose target frame t + dt lies inside the clip.

    Args:
        pred: (B, T, ...) predictions for offset ``dt`` (or a per-clip (B,) tensor).
        dt: frame offset.

    Returns:
        (B, T - |dt|, ...): ``pred[:, :-dt]`` for dt > 0, ``pred[:, -dt:]`` for dt < 0.
    """
    return _shift(pred, dt, "pred", keep_start=dt > 0)


def gt_overlap(gt: Tensor, dt: int) -> Tensor:
    """GT frames t + dt matched with ``pred_overlap``'s frames.

    Args:
        gt: (B, T, ...) labels or per-frame masks (or a per-clip (B,) tensor).
        dt: frame offset.

    Returns:
        (B, T - |dt|, ...): ``gt[:, dt:]`` for dt > 0, ``gt[:, :dt]`` for dt < 0.
    """
    return _shift(gt, dt, "gt", keep_start=dt < 0)


def overlap(pred: Tensor, gt: Tensor, dt: int) -> tuple[Tensor, Tensor]:
    """``(pred_overlap(pred, dt), gt_overlap(gt, dt))``: the aligned pair for offset ``dt``.

    Args:
        pred: (B, T, ...) predictions made at frame t for frame t + dt.
        gt: (B, T, ...) labels per frame.
        dt: frame offset; |dt| < T.

    Returns:
        ((B, T - |dt|, ...), (B, T - |dt|, ...)).
    """
    return pred_overlap(pred, dt), gt_overlap(gt, dt)


def delta_kp2d_loss(pred_joints: Tensor, gt_kp: Tensor, dt: int) -> Tensor:
    """2D keypoint loss of an offset prediction with the optimal camera per frame.

    On the overlapping frames the predicted joints are projected with the identity camera, the
    optimal camera (clamped, no gradient; ``optimal_camera``) is fitted to the shifted GT, and
    ``kp2d_loss`` compares the re-projection with that GT.

    Args:
        pred_joints: (B, T, K, 3) joints predicted at frame t for frame t + dt.
        gt_kp: (B, T, K, 3) GT keypoints ``[x, y, visibility]``, normalised crop coordinates.
        dt: frame offset; |dt| < T.

    Returns:
        () scalar.
    """
    for name, x in (("pred_joints", pred_joints), ("gt_kp", gt_kp)):
        if x.dim() != 4 or x.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (B, T, K, 3), got {tuple(x.shape)}")
    joints, target = overlap(pred_joints, gt_kp, dt)  # (B, T-|dt|, K, 3) each
    cam = optimal_camera(joints[..., :2], target)  # (B, T-|dt|, 3)
    return kp2d_loss(project_weak_perspective(joints, cam), target)
