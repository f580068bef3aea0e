"""Metrics: hand-computed values, invariances, acceleration protocols, sequence averaging."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.metrics import (
    AccelProtocol,
    acceleration,
    acceleration_error,
    kp_error_px,
    mpjpe,
    pa_mpjpe,
    pck_2d,
    pve,
)


def test_mpjpe_hand_example_in_mm():
    gt = torch.zeros(1, 14, 3)
    pred = torch.zeros(1, 25, 3)
    pred[0, 0] = torch.tensor([0.003, 0.004, 0.0])  # 5 mm on one non-hip joint
    pred[0, 14:] = 1.0  # not among the 14 LSP joints
    # mean over 14 joints: 5 / 14 mm; a global offset is removed by pelvis alignment
    assert mpjpe(pred, gt).item() == pytest.approx(5 / 14, rel=1e-5)
    assert mpjpe(pred + 0.2, gt).item() == pytest.approx(5 / 14, rel=1e-4)
    assert mpjpe(pred, gt).shape == (1,)


def test_pa_mpjpe_invariant_to_similarity_of_prediction():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(4, 25, 3, generator=g, dtype=torch.float64)
    gt = torch.randn(4, 14, 3, generator=g, dtype=torch.float64)
    R = axis_angle_to_matrix(torch.randn(4, 3, generator=g, dtype=torch.float64))
    moved = 2.5 * pred @ R.transpose(-1, -2) + torch.randn(
        4, 1, 3, generator=g, dtype=torch.float64
    )
    base = pa_mpjpe(pred, gt)
    assert base.shape == (4,)
    torch.testing.assert_close(pa_mpjpe(moved, gt), base)
    assert (base < mpjpe(pred, gt)).all()
    exact = 0.7 * gt @ R.transpose(-1, -2) + 3.0
    torch.testing.assert_close(
        pa_mpjpe(exact, gt), torch.zeros(4, dtype=gt.dtype), atol=1e-9, rtol=0
    )


def test_pve_hand_example():
    gt = torch.zeros(2, 4, 3)
    pred = gt.clone()
    pred[0, 1, 2] = 0.01  # 10 mm on one of 4 vertices
    torch.testing.assert_close(pve(pred, gt), torch.tensor([2.5, 0.0]))


def _kp_example() -> tuple[torch.Tensor, torch.Tensor]:
    """8 visible keypoints (+1 invisible); GT moves two of them 20 px perpendicular to the x axis.

    Centred predicted points: (+-a, 0), (0, +-a), (+-a/2, +-a/2). The GT offsets (0, e), (0, -e)
    at (a, 0), (-a, 0) only change the off-diagonal of X^T Y (X^T X is diagonal), so the fit
    is the identity: after it, 2 keypoints are off by 20 px, 6 are exact.
    """
    a, e = 0.5, 20.0 / 112.0  # 224 px crop: 1 normalised unit = 112 px
    xy = [[a, 0], [-a, 0], [0, a], [0, -a], [a / 2, a / 2], [a / 2, -a / 2], [-a / 2, a / 2]]
    xy += [[-a / 2, -a / 2], [0.9, 0.9]]
    pred = torch.tensor(xy, dtype=torch.float64)
    gt = torch.cat([pred, torch.ones(9, 1, dtype=torch.float64)], dim=-1)
    gt[0, 1] += e
    gt[1, 1] -= e
    gt[8] = torch.tensor([-0.7, 0.3, 0.0])  # invisible
    return pred, gt


def test_pck_and_kp_error_hand_example():
    pred, gt = _kp_example()
    assert pck_2d(pred, gt).item() == pytest.approx(6 / 8)  # 20 px > 11.2 px for 2 of 8
    assert kp_error_px(pred, gt, aligned=True).item() == pytest.approx(40 / 8, abs=1e-6)
    assert kp_error_px(pred, gt).item() == pytest.approx(40 / 8)
    assert pck_2d(pred, gt, threshold=0.1).item() == pytest.approx(1.0)  # 22.4 px radius


def test_kp_alignment_removes_scale_and_shift_and_few_visible_is_nan():
    pred, gt = _kp_example()
    gt[:, :2] = pred
    scaled = 0.5 * pred + 0.2
    assert kp_error_px(scaled, gt).item() > 10
    assert kp_error_px(scaled, gt, aligned=True).item() == pytest.approx(0, abs=1e-4)
    gt[3:, 2] = 0.0  # 3 visible < 6
    assert math.isnan(pck_2d(pred, gt).item())


def test_acceleration_of_quadratic_trajectory():
    t = torch.arange(5.0)
    c = torch.tensor([0.001, 0.002, 0.002])  # X_t = c t^2 -> second difference 2c, |2c| = 6 mm
    joints = (t[:, None, None] ** 2) * c + torch.randn(1, 25, 3)
    torch.testing.assert_close(acceleration(joints), torch.full((3,), 6.0), atol=1e-3, rtol=0)


def test_acceleration_error_zero_for_constant_velocity():
    f64 = torch.float64
    t = torch.arange(6.0, dtype=f64)[:, None, None]
    pred = torch.randn(1, 14, 3, dtype=f64) + t * torch.randn(14, 3, dtype=f64)
    gt = torch.randn(1, 14, 3, dtype=f64) - t * 0.03
    for protocol in ("hmmr", "vibe"):
        err = acceleration_error(pred, gt, protocol)
        assert err.shape == (4,)
        torch.testing.assert_close(err, torch.zeros(4, dtype=f64), atol=1e-9, rtol=0)


def test_acceleration_error_protocols_differ_on_root_motion():
    t = torch.arange(5.0, dtype=torch.float64)[:, None, None]
    body = torch.randn(1, 14, 3, dtype=torch.float64)
    gt = body + (t**2) * torch.tensor([0.0, 0.0, 0.001], dtype=torch.float64)  # accelerating root
    pred = body.expand(5, 14, 3)  # no translation, as HMMR predictions
    torch.testing.assert_close(
        acceleration_error(pred, gt, "hmmr"), torch.full((3,), 2.0, dtype=gt.dtype)
    )
    vibe = acceleration_error(pred, gt, AccelProtocol.VIBE)
    torch.testing.assert_close(vibe, torch.zeros(3, dtype=gt.dtype))


def test_acceleration_error_drops_windows_with_invalid_frames():
    pred, gt = torch.randn(6, 14, 3), torch.randn(6, 14, 3)
    valid = torch.tensor([True, True, False, True, True, True])
    err = acceleration_error(pred, gt, "hmmr", valid)
    # windows (centre 1..4): {0,1,2}, {1,2,3}, {2,3,4} contain frame 2; {3,4,5} is kept
    assert torch.isnan(err[:3]).all()
    torch.testing.assert_close(err[3], acceleration_error(pred, gt, "hmmr")[3])
    with pytest.raises(ValueError, match="valid must have shape"):
        acceleration_error(pred, gt, "hmmr", valid[:5])


def test_velocity_error_and_jitter_by_hand():
    from lightning_hmd.metrics import jitter, velocity_error

    t = torch.arange(6, dtype=torch.float64)
    gt = torch.zeros(6, 14, 3, dtype=torch.float64)
    pred = gt.clone()
    pred[:, 3, 2] = 0.002 * t**3  # one joint of 14 moves along z
    # velocity error: |0.002 ((t+1)^3 - t^3)| / 14 joints, in mm
    want_vel = 0.002 * ((t[1:]) ** 3 - t[:-1] ** 3) / 14 * 1000
    torch.testing.assert_close(velocity_error(pred, gt), want_vel)
    # jerk of 0.002 t^3 is 0.012 at every window of 4 frames
    torch.testing.assert_close(
        jitter(pred), torch.full((3,), 0.012 / 14 * 1000, dtype=torch.float64)
    )
    assert jitter(gt).abs().max() == 0
