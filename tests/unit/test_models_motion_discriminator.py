"""VIBE's motion discriminator: shapes, parameters by hand, attention pooling, what it judges
(the body joints' motion in frame order, not the root), and its LSGAN terms by hand."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.losses.adversarial import lsgan_discriminator_loss, lsgan_generator_loss
from lightning_hmd.models.motion_discriminator import (
    MOTION_INPUT,
    MotionDiscriminator,
    WindowAttention,
)

B, T = 3, 6


def _poses(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(0.4 * torch.randn(B, T, 24, 3, generator=g))


def _disc() -> MotionDiscriminator:
    torch.manual_seed(0)
    return MotionDiscriminator(hidden=16, num_layers=2, attention_layers=3).eval()


def test_one_score_per_window_and_bad_shapes_named():
    assert _disc()(_poses()).shape == (B, 1)
    with pytest.raises(
        ValueError, match=r"pose_rotmat must be \(B, T, 24, 3, 3\), got \(3, 24, 3, 3\)"
    ):
        _disc()(_poses()[:, 0])


def test_parameter_count_by_hand():
    h = 16
    gru = 3 * (h * MOTION_INPUT + h * h + 2 * h) + 3 * (h * h + h * h + 2 * h)
    attention = 2 * (h * h + h) + (h + 1)
    fc = h + 1
    assert sum(p.numel() for p in _disc().parameters()) == gru + attention + fc


def test_attention_weights_a_window_and_pools_identical_frames_to_the_frame():
    torch.manual_seed(0)
    att = WindowAttention(8, layers=2, dropout=0.0).eval()
    x = torch.randn(2, 5, 8)
    pooled, weights = att(x)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    torch.testing.assert_close(pooled, (x * weights[..., None]).sum(dim=1))
    same = x[:, :1].expand(2, 5, 8)
    pooled, weights = att(same)
    torch.testing.assert_close(weights, torch.full((2, 5), 0.2))
    torch.testing.assert_close(pooled, same[:, 0])


def test_it_judges_the_body_motion_in_order_not_the_root():
    disc, poses = _disc(), _poses()
    with torch.no_grad():
        score = disc(poses)
        turned = poses.clone()
        turned[:, :, 0] = axis_angle_to_matrix(torch.randn(B, T, 3))  # another root rotation
        torch.testing.assert_close(disc(turned), score)
        reversed_ = disc(poses.flip(1))  # the same poses backwards: another motion
    assert (reversed_ - score).abs().max() > 1e-4


def test_lsgan_terms_on_hand_built_scores():
    """Per-window scores (M, 1): generator mean (D(fake) - 1)^2, discriminator
    mean (D(real) - 1)^2 and mean D(fake)^2, as VIBE's batch_*_l2_loss."""
    real = torch.tensor([[1.0], [0.0]])
    fake = torch.tensor([[0.5], [2.0]])
    assert float(lsgan_generator_loss(fake)) == pytest.approx((0.25 + 1.0) / 2)
    parts = lsgan_discriminator_loss(real, fake)
    assert float(parts.real) == pytest.approx((0.0 + 1.0) / 2)
    assert float(parts.fake) == pytest.approx((0.25 + 4.0) / 2)
    scores = _disc()(_poses())  # the module's output is what the terms take
    assert lsgan_generator_loss(scores).shape == ()
