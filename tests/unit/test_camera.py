"""Weak-perspective projection, HMMR's optimal camera, perspective translation."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.geometry.camera import (
    optimal_camera,
    project_weak_perspective,
    weak_perspective_to_translation,
)


def _with_vis(xy: torch.Tensor, vis: list[float] | None = None) -> torch.Tensor:
    v = torch.ones(xy.shape[:-1]) if vis is None else torch.tensor(vis)
    return torch.cat([xy, v[..., None]], dim=-1)


def test_projection_hand_example():
    points = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    cam = torch.tensor([2.0, 0.5, -1.0])
    # 2 * (1 + 0.5) = 3, 2 * (2 - 1) = 2; 2 * (0 + 0.5) = 1, 2 * (-1 - 1) = -4
    expected = torch.tensor([[3.0, 2.0], [1.0, -4.0]])
    torch.testing.assert_close(project_weak_perspective(points, cam), expected)


def test_projection_shapes_with_leading_dims():
    out = project_weak_perspective(torch.randn(2, 3, 7, 3), torch.randn(2, 3, 3))
    assert out.shape == (2, 3, 7, 2)
    with pytest.raises(ValueError, match=r"cam must have shape \(\.\.\., 3\), got \(2, 3, 4\)"):
        project_weak_perspective(torch.randn(2, 3, 7, 3), torch.randn(2, 3, 4))


def test_optimal_camera_recovers_exact_scale_and_translation():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(4, 6, 25, 2, generator=g)
    s, t = 1.7, torch.tensor([0.1, -0.2])
    cam = optimal_camera(pred, _with_vis(s * (pred + t)))
    assert cam.shape == (4, 6, 3)
    torch.testing.assert_close(
        cam, torch.tensor([1.7, 0.1, -0.2]).expand(4, 6, 3), atol=1e-5, rtol=0
    )


def test_optimal_camera_is_trace_of_linear_map_not_isotropic_scale():
    # Centred X has X^T X = diag(8, 2); Y doubles the y axis only: X^T Y = diag(8, 4).
    # A = diag(1, 2), trace / 2 = 1.5 (the isotropic <X,Y>/<X,X> would be 12 / 10 = 1.2).
    # t = mu_gt / s - mu_pred = (0.3, 0.6) / 1.5 - 0 = (0.2, 0.4).
    pred = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0], [5.0, 5.0]])
    gt_xy = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0], [-9.0, 7.0]])
    gt = _with_vis(gt_xy + torch.tensor([0.3, 0.6]), [1, 1, 1, 1, 0])  # last point invisible
    cam = optimal_camera(pred, gt)
    torch.testing.assert_close(cam, torch.tensor([1.5, 0.2, 0.4]), atol=1e-5, rtol=0)


def test_scale_clamp_on_mirrored_prediction():
    pred = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    gt = _with_vis(-pred)  # A = -I, scale -1
    assert optimal_camera(pred, gt)[0].item() == pytest.approx(0.7)
    assert optimal_camera(pred, gt, scale_min=0.5)[0].item() == pytest.approx(0.5)
    assert optimal_camera(pred, gt, clamp=False)[0].item() == pytest.approx(-1.0, abs=1e-5)


def test_no_visible_points_gives_finite_default_camera():
    pred = torch.randn(3, 25, 2)
    gt = torch.zeros(3, 25, 3)
    torch.testing.assert_close(optimal_camera(pred, gt), torch.tensor([0.7, 0.0, 0.0]).expand(3, 3))
    torch.testing.assert_close(
        optimal_camera(pred, gt, clamp=False), torch.tensor([1.0, 0.0, 0.0]).expand(3, 3)
    )


def test_optimal_camera_carries_no_gradient():
    pred = torch.randn(2, 25, 2, requires_grad=True)
    cam = optimal_camera(pred, _with_vis(torch.randn(2, 25, 2)))
    assert not cam.requires_grad
    assert cam.dtype == pred.dtype


def test_optimal_camera_rejects_mismatched_keypoints():
    with pytest.raises(
        ValueError, match=r"gt_kp must have shape \(\.\.\., 25, 3\), got \(2, 24, 3\)"
    ):
        optimal_camera(torch.randn(2, 25, 2), torch.randn(2, 24, 3))


def test_weak_perspective_to_translation_hand_example():
    cam = torch.tensor([[0.5, 0.1, -0.2]])
    # z = 2 f / (img_size * s) = 2 * 500 / (224 * 0.5) = 1000 / 112
    expected = torch.tensor([[0.1, -0.2, 1000.0 / 112.0]])
    torch.testing.assert_close(weak_perspective_to_translation(cam, 500.0, 224.0), expected)
