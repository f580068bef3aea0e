"""Evaluation metrics as in HMMR's ``src/evaluation/eval_util.py`` (pure; inputs in metres
or [-1, 1]).

3D joint metrics use the 14 LSP joints (the first 14 of the HMMR keypoint order) and return
millimetres. 2D metrics return pixels of an ``img_size`` crop. Frames that a metric cannot score
are NaN; the scorer (:mod:`lightning_hmd.evaluation.scorer`) averages only finite values. The
finite differences behind the temporal metrics and their units: ``docs/derivations.md``.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Literal

import torch
from torch import Tensor

from lightning_hmd.body.joints import NUM_LSP_JOINTS
from lightning_hmd.geometry._checks import check_min_size, check_trailing
from lightning_hmd.geometry.alignment import align_by_pelvis, similarity_procrustes
from lightning_hmd.geometry.camera import optimal_camera, project_weak_perspective

M_TO_MM = 1000.0
# HMMR's ``min_visible`` of ``compute_error_kp`` (``src/evaluation/eval_util.py``): frames with
# fewer visible keypoints are not scored (NaN)
MIN_VISIBLE_KEYPOINTS = 6


def _lsp14(joints: Tensor, name: str) -> Tensor:
    check_trailing(joints, name, (None, 3))
    check_min_size(joints, name, -2, NUM_LSP_JOINTS)
    return joints[..., :NUM_LSP_JOINTS, :]


def _mean_distance_mm(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).norm(dim=-1).mean(dim=-1) * M_TO_MM


def mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean per-joint position error after pelvis alignment, on the 14 LSP joints.

    Args:
        pred: (..., J, 3) predicted joints, J >= 14 (e.g. 25), metres.
        gt: (..., J', 3) GT joints, J' >= 14, metres.

    Returns:
        (...) error per frame in mm.
    """
    p, g = _lsp14(pred, "pred"), _lsp14(gt, "gt")
    return _mean_distance_mm(align_by_pelvis(p), align_by_pelvis(g))


def pa_joint_errors(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-joint errors after similarity Procrustes alignment (scale, rotation, translation).

    Args:
        pred: (..., J, 3) predicted joints, J >= 14, metres.
        gt: (..., J', 3) GT joints, J' >= 14, metres.

    Returns:
        (..., 14) error per frame and LSP joint in mm.
    """
    p, g = align_by_pelvis(_lsp14(pred, "pred")), align_by_pelvis(_lsp14(gt, "gt"))
    return (similarity_procrustes(p, g) - g).norm(dim=-1) * M_TO_MM


def pa_mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """MPJPE after similarity Procrustes alignment (scale, rotation, translation) to the GT.

    Args:
        pred: (..., J, 3) predicted joints, J >= 14, metres.
        gt: (..., J', 3) GT joints, J' >= 14, metres.

    Returns:
        (...) error per frame in mm.
    """
    return pa_joint_errors(pred, gt).mean(dim=-1)


def pve(pred_verts: Tensor, gt_verts: Tensor) -> Tensor:
    """Per-vertex error with no alignment (HMMR's ``mesh_posed`` / ``mesh_tpose`` of
    ``compute_errors_batched``, ``src/evaluation/eval.py``, via ``compute_error_verts``).

    HMMR compares model-frame meshes without translation, so no alignment is applied; align
    the inputs first for other protocols.

    Args:
        pred_verts: (..., V, 3) predicted vertices, metres.
        gt_verts: (..., V, 3) GT vertices, metres.

    Returns:
        (...) mean vertex distance per frame in mm.
    """
    check_trailing(pred_verts, "pred_verts", (None, 3))
    check_trailing(gt_verts, "gt_verts", (pred_verts.shape[-2], 3))
    return _mean_distance_mm(pred_verts, gt_verts)


def _kp_distances_px(pred_xy: Tensor, gt_kp: Tensor, img_size: float, aligned: bool) -> Tensor:
    """(..., K) pixel distance per keypoint, optionally after the unclamped optimal 2D fit."""
    check_trailing(pred_xy, "pred_xy", (None, 2))
    check_trailing(gt_kp, "gt_kp", (pred_xy.shape[-2], 3))
    pred_px = (pred_xy + 1.0) * (0.5 * img_size)
    gt_px = torch.cat([(gt_kp[..., :2] + 1.0) * (0.5 * img_size), gt_kp[..., 2:]], dim=-1)
    if aligned:
        # HMMR's kp_pa (``compute_error_kp``, ``src/evaluation/eval_util.py``): fit in pixels
        cam = optimal_camera(pred_px, gt_px, clamp=False)
        pred_px = project_weak_perspective(pred_px, cam)
    return (pred_px - gt_px[..., :2]).norm(dim=-1)


def _visible_mean(values: Tensor, visible: Tensor, min_visible: int) -> Tensor:
    count = visible.sum(dim=-1)
    mean = (values * visible).sum(dim=-1) / count.clamp_min(1)
    return torch.where(count < max(min_visible, 1), math.nan, mean)


def kp_error_px(
    pred_xy: Tensor,
    gt_kp: Tensor,
    img_size: float = 224,
    aligned: bool = False,
    min_visible: int = MIN_VISIBLE_KEYPOINTS,
) -> Tensor:
    """Mean pixel distance over visible keypoints (HMMR ``kp``; ``kp_pa`` when ``aligned``;
    both from ``compute_error_kp``, ``src/evaluation/eval_util.py``).

    Both inputs are in normalised crop coordinates and are mapped to pixels by
    ``(x + 1) / 2 * img_size``. ``aligned`` first fits the optimal 2D scale and translation
    (unclamped) in pixel space.

    Args:
        pred_xy: (..., K, 2) predicted keypoints.
        gt_kp: (..., K, 3) GT ``[x, y, visibility]``.
        img_size: crop side in pixels.
        aligned: apply the optimal 2D scale + translation first.
        min_visible: frames with fewer visible keypoints give NaN.

    Returns:
        (...) error per frame in pixels.
    """
    dist = _kp_distances_px(pred_xy, gt_kp, img_size, aligned)
    visible = (gt_kp[..., 2] > 0).to(dist.dtype)
    return _visible_mean(dist, visible, min_visible)


def pck_2d(
    pred_xy: Tensor,
    gt_kp: Tensor,
    img_size: float = 224,
    threshold: float = 0.05,
    min_visible: int = MIN_VISIBLE_KEYPOINTS,
) -> Tensor:
    """Fraction of visible keypoints within ``threshold * img_size`` px after the 2D fit.

    HMMR ``kp_pck`` (``compute_error_kp``, ``src/evaluation/eval_util.py``): distances as in
    ``kp_error_px(..., aligned=True)``; the default radius is 0.05 * 224 = 11.2 px.

    Args:
        pred_xy: (..., K, 2) predicted keypoints, normalised crop coordinates.
        gt_kp: (..., K, 3) GT ``[x, y, visibility]``, normalised crop coordinates.
        img_size: crop side in pixels.
        threshold: radius as a fraction of ``img_size``.
        min_visible: frames with fewer visible keypoints give NaN.

    Returns:
        (...) fraction per frame in [0, 1].
    """
    dist = _kp_distances_px(pred_xy, gt_kp, img_size, aligned=True)
    visible = (gt_kp[..., 2] > 0).to(dist.dtype)
    correct = (dist < threshold * img_size).to(dist.dtype)
    return _visible_mean(correct, visible, min_visible)


class AccelProtocol(str, Enum):
    """How ``acceleration_error`` treats the root trajectory.

    HMMR (``compute_error_accel``, ``src/evaluation/eval_util.py``): raw joints, no
    alignment. HMMR predictions have no global translation while the GT keeps its camera-frame
    trajectory, so GT root motion counts as error.
    VIBE: both sequences pelvis-aligned per frame first (the protocol of later papers).
    Numbers from the two protocols are not comparable. Neither is HMMR's printed ``accel``
    column (``print_summary``, ``src/evaluation/eval.py``), which is the prediction-only
    ``acceleration`` below.
    """

    HMMR = "hmmr"
    VIBE = "vibe"


def _second_difference(joints: Tensor) -> Tensor:
    """(..., T, J, 3) -> (..., T-2, J, 3): ``X_{t-1} - 2 X_t + X_{t+1}``."""
    return joints[..., :-2, :, :] - 2.0 * joints[..., 1:-1, :, :] + joints[..., 2:, :, :]


def acceleration(joints: Tensor) -> Tensor:
    """Mean acceleration magnitude of the 14 LSP joints (HMMR's printed ``accel``, no GT:
    ``compute_accel``, ``src/evaluation/eval_util.py``).

    Args:
        joints: (..., T, J, 3) joints of one sequence per leading index, J >= 14, metres.

    Returns:
        (..., T-2) value per window centre t = 1..T-2, in mm/frame^2.
    """
    accel = _second_difference(_lsp14(joints, "joints"))
    return accel.norm(dim=-1).mean(dim=-1) * M_TO_MM


def acceleration_error(
    pred: Tensor,
    gt: Tensor,
    protocol: AccelProtocol | Literal["hmmr", "vibe"] = AccelProtocol.HMMR,
    valid: Tensor | None = None,
) -> Tensor:
    """Mean over the 14 LSP joints of ``||accel_pred - accel_gt||`` per 3-frame window.

    Args:
        pred: (T, J, 3) predicted joints, J >= 14, metres (leading batch dims allowed).
        gt: (T, J', 3) GT joints, J' >= 14, metres.
        protocol: ``"hmmr"`` (raw joints) or ``"vibe"`` (pelvis-aligned); see ``AccelProtocol``.
        valid: (T,) bool, frames with a usable GT; a window containing an invalid frame is
            dropped, i.e. returned as NaN so the shape stays fixed (averages skip it).

    Returns:
        (T-2,) error per window centre in mm/frame^2.
    """
    protocol = AccelProtocol(protocol)
    p, g = _lsp14(pred, "pred"), _lsp14(gt, "gt")
    if p.shape[:-2] != g.shape[:-2]:
        raise ValueError(f"pred and gt must share (..., T), got {tuple(p.shape)}, {tuple(g.shape)}")
    if protocol is AccelProtocol.VIBE:
        p, g = align_by_pelvis(p), align_by_pelvis(g)
    error = _mean_distance_mm(_second_difference(p), _second_difference(g))  # (..., T-2)
    if valid is None:
        return error
    if valid.shape != p.shape[-3:-2]:
        raise ValueError(f"valid must have shape {tuple(p.shape[-3:-2])}, got {tuple(valid.shape)}")
    window_ok = valid[:-2] & valid[1:-1] & valid[2:]
    return torch.where(window_ok, error, math.nan)


def velocity_error(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean over the 14 LSP joints of ``||velocity_pred - velocity_gt||`` per pair of frames.

    Args:
        pred: (..., T, J, 3) predicted joints, J >= 14, metres.
        gt: (..., T, J', 3) GT joints, J' >= 14, metres.

    Returns:
        (..., T-1) error per frame pair in mm/frame.
    """
    p, g = _lsp14(pred, "pred"), _lsp14(gt, "gt")
    return _mean_distance_mm(
        p[..., 1:, :, :] - p[..., :-1, :, :], g[..., 1:, :, :] - g[..., :-1, :, :]
    )


def jitter(joints: Tensor) -> Tensor:
    """Mean jerk magnitude of the 14 LSP joints, ``||x_{t+2} - 3 x_{t+1} + 3 x_t - x_{t-1}||``
    (prediction only, no GT).

    Args:
        joints: (..., T, J, 3) joints, J >= 14, metres.

    Returns:
        (..., T-3) value per window of 4 frames in mm/frame^3.
    """
    jerk = _second_difference(_lsp14(joints, "joints"))
    jerk = jerk[..., 1:, :, :] - jerk[..., :-1, :, :]
    return jerk.norm(dim=-1).mean(dim=-1) * M_TO_MM
