"""Loss reductions against hand-computed values, masks, gradients, delta overlap, weighting."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from omegaconf import OmegaConf

from lightning_hmd.config_tree import LossWeights
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.losses import (
    BASE_NAMES,
    HAL,
    delta_kp2d_loss,
    dt_qualifier,
    gt_overlap,
    hallucination_loss,
    joints3d_loss,
    kp2d_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    overlap,
    pred_overlap,
    shape_constancy_loss,
    shape_prior_loss,
    smpl_loss,
    term_name,
    weighted_sum,
)

# ---------------------------------------------------------------- 2D keypoints


def test_kp2d_hand_example_ignores_invisible():
    pred = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])
    gt = torch.tensor([[[0.5, 0.0, 1.0], [1.0, 3.0, 1.0], [9.0, 9.0, 0.0]]])
    # visible: |0-0.5| + |0-0| + |1-1| + |1-3| = 2.5 over 2 * 2 visible = 0.625
    assert kp2d_loss(pred, gt).item() == pytest.approx(0.625)
    gt[0, 2, :2] = torch.tensor([math.nan, -1e6])  # invisible data does not matter
    assert kp2d_loss(pred, gt).item() == pytest.approx(0.625)


def test_kp2d_zero_at_ground_truth_and_when_nothing_visible():
    gt = torch.cat([torch.randn(2, 5, 25, 2), torch.ones(2, 5, 25, 1)], dim=-1)
    assert kp2d_loss(gt[..., :2], gt).item() == 0.0
    pred = torch.randn(2, 5, 25, 2, requires_grad=True)
    loss = kp2d_loss(pred, torch.zeros(2, 5, 25, 3))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all()


# ---------------------------------------------------------------- 3D joints


def test_joints3d_hand_example_with_clip_mask():
    gt = torch.zeros(2, 14, 3)
    pred = torch.zeros(2, 25, 3)
    pred[0, 0, 0] = 2.0  # joint 0 is not a hip: pelvis unchanged
    pred[0, 14:] = 7.0  # beyond the 14 LSP joints: ignored
    pred[1] = torch.randn(25, 3)  # clip 1 unlabelled
    # sample 0: squared error 4 over 14 * 3 = 42 elements; 0.5 * 4 / 42
    loss = joints3d_loss(pred, gt, has_3d=torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(0.5 * 4 / 42)
    gt[1] = math.nan  # masked-out labels may hold anything
    pred.requires_grad_()
    loss = joints3d_loss(pred, gt, torch.tensor([True, False]))
    assert loss.item() == pytest.approx(2 / 42)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[1].abs().sum() == 0


def test_joints3d_is_pelvis_aligned_and_zero_at_ground_truth():
    gt = torch.randn(2, 3, 14, 3)
    assert joints3d_loss(gt + torch.tensor([1.0, -2.0, 0.5]), gt).item() == pytest.approx(
        0, abs=1e-6
    )


def test_joints3d_per_frame_mask_and_gradients():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 3, 25, 3, generator=g, requires_grad=True)
    gt = torch.randn(2, 3, 14, 3, generator=g)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    mask[1, 2] = True
    loss = joints3d_loss(pred, gt, mask)
    expected = joints3d_loss(pred[1:, 2:], gt[1:, 2:])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert pred.grad[0].abs().sum() == 0 and pred.grad[1, 2].abs().sum() > 0
    none = joints3d_loss(pred, gt, torch.zeros(2))
    assert none.item() == 0.0


def test_joints3d_rejects_bad_mask_and_shapes():
    with pytest.raises(ValueError, match=r"has_3d must have shape .*got \(3,\)"):
        joints3d_loss(torch.zeros(2, 25, 3), torch.zeros(2, 14, 3), torch.ones(3))
    with pytest.raises(ValueError, match=r"gt must have at least 14"):
        joints3d_loss(torch.zeros(2, 25, 3), torch.zeros(2, 13, 3))


# ---------------------------------------------------------------- SMPL


def test_smpl_hand_example():
    pred_R = torch.eye(3).repeat(1, 24, 1, 1)
    gt_R = pred_R.clone()
    gt_R[0, 5, 0, 1] = 1.0
    pred_b, gt_b = torch.zeros(1, 10), torch.zeros(1, 10)
    gt_b[0, 0] = 2.0
    # pose: 0.5 * 1 / 216; betas: 0.5 * 4 / 10 = 0.2
    expected = 0.5 / 216 + 0.2
    assert smpl_loss(pred_R, gt_R, pred_b, gt_b).item() == pytest.approx(expected)
    pred_R2 = torch.cat([pred_R, torch.randn(1, 24, 3, 3)])  # second sample unlabelled
    pred_b2 = torch.cat([pred_b, torch.randn(1, 10)])
    loss = smpl_loss(
        pred_R2, torch.cat([gt_R, gt_R]), pred_b2, torch.cat([gt_b, gt_b]), torch.tensor([1, 0])
    )
    assert loss.item() == pytest.approx(expected)


def test_smpl_gradient_finite_at_zero_rotation():
    pose = torch.zeros(2, 24, 3, requires_grad=True)
    gt_R = axis_angle_to_matrix(torch.full((2, 24, 3), 0.3))
    loss = smpl_loss(axis_angle_to_matrix(pose), gt_R, torch.zeros(2, 10), torch.zeros(2, 10))
    loss.backward()
    assert loss.item() > 0
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0


def test_smpl_per_clip_betas_broadcast_over_time():
    pred_R = torch.eye(3).repeat(2, 4, 24, 1, 1)
    gt_b = torch.randn(2, 1, 10)
    assert smpl_loss(pred_R, pred_R, gt_b.expand(2, 4, 10), gt_b, torch.ones(2)).item() == 0.0
    pred_b = gt_b.expand(2, 4, 10).clone()
    pred_b[1, 3, 0] += 2.0  # one frame of clip 1: 0.5 * 4 / (2 * 4 * 10)
    assert smpl_loss(pred_R, pred_R, pred_b, gt_b).item() == pytest.approx(0.5 * 4 / 80)
    with pytest.raises(ValueError, match=r"gt_betas must broadcast"):
        smpl_loss(pred_R, pred_R, torch.zeros(2, 4, 10), torch.zeros(3, 10))


# ---------------------------------------------------------------- regularisers and GAN


def test_shape_constancy_hand_example():
    betas = torch.zeros(1, 3, 10)
    betas[0, 1:, 0] = 1.0
    # differences: frame 1 - 0 has one element 1, frame 2 - 1 is 0: 0.5 * 1 / 20
    assert shape_constancy_loss(betas).item() == pytest.approx(0.025)
    assert shape_constancy_loss(torch.randn(2, 1, 10)).item() == 0.0


def test_shape_prior_hand_example():
    betas = torch.zeros(1, 10)
    betas[0, :2] = torch.tensor([1.0, 2.0])
    assert shape_prior_loss(betas).item() == pytest.approx(0.5)  # (1 + 4) / 10


def test_lsgan_hand_examples():
    fake = torch.tensor([[1.0, 1.0, 1.0], [0.0, 2.0, 1.0]])
    # per sample sum (D-1)^2: 0 and 1 + 1 + 0 = 2; mean 1
    assert lsgan_generator_loss(fake).item() == pytest.approx(1.0)
    real = torch.tensor([[1.0, 0.0], [2.0, 1.0]])  # sums of (D-1)^2: 1, 1 -> 1
    d = lsgan_discriminator_loss(real, torch.tensor([[1.0, 2.0]]))  # sum D^2 = 5
    assert d.real.item() == pytest.approx(1.0)
    assert d.fake.item() == pytest.approx(5.0)


def test_hallucination_hand_example():
    a = torch.zeros(1, 2, 2, requires_grad=True)
    b = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]], requires_grad=True)
    loss = hallucination_loss(a, b)
    assert loss.item() == pytest.approx(3.5)  # (1 + 4 + 9 + 0) / 4
    loss.backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0  # both sides get gradient


# ---------------------------------------------------------------- delta (past / future)


def test_overlap_index_arithmetic_on_five_frames():
    pred = torch.arange(5).reshape(1, 5)
    gt = pred + 10
    p, g = overlap(pred, gt, 2)  # future: pred[:, :-2] vs gt[:, 2:]
    assert p.tolist() == [[0, 1, 2]] and g.tolist() == [[12, 13, 14]]
    p, g = overlap(pred, gt, -2)  # past: pred[:, 2:] vs gt[:, :-2]
    assert p.tolist() == [[2, 3, 4]] and g.tolist() == [[10, 11, 12]]
    assert overlap(pred, gt, 0)[1].tolist() == gt.tolist()
    per_clip = torch.tensor([1.0, 0.0])
    assert gt_overlap(per_clip, 2) is per_clip and pred_overlap(per_clip, -2) is per_clip
    with pytest.raises(ValueError, match=r"\|dt\| must be < T=5"):
        overlap(pred, gt, 5)


def test_delta_kp2d_uses_shifted_gt_and_optimal_camera():
    g = torch.Generator().manual_seed(0)
    joints = torch.randn(2, 5, 25, 3, generator=g)
    # GT at frame t + 2 is a scaled, shifted projection of the joints predicted at frame t.
    gt = torch.zeros(2, 5, 25, 3)
    gt[:, 2:, :, :2] = 1.3 * (joints[:, :-2, :, :2] + 0.1)
    gt[:, :, :, 2] = 1.0
    assert delta_kp2d_loss(joints, gt, 2).item() == pytest.approx(0.0, abs=1e-5)
    assert delta_kp2d_loss(joints, gt, -2).item() > 0.1
    pred = joints.clone().requires_grad_()
    delta_kp2d_loss(pred, gt, -2).backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[:, :2].abs().sum() == 0  # frames 0, 1 have no GT at t - 2


# ---------------------------------------------------------------- weighting


def test_base_names_match_loss_weight_fields():
    assert set(BASE_NAMES) == {f.name for f in dataclasses.fields(LossWeights)}


def test_weighted_sum_with_dataclass_omegaconf_and_dict():
    terms = {
        "kp2d": torch.tensor(1.0),
        term_name("kp2d", dt_qualifier(5)): torch.tensor(2.0),
        term_name("kp2d", HAL, dt_qualifier(-5)): torch.tensor(0.5),
        "disc/real": torch.tensor(3.0),
        "shape_const": torch.tensor(4.0),
    }
    # 60 * (1 + 2 + 0.5) + 1 * 3 + 1 * 4 = 217
    assert weighted_sum(terms, LossWeights()).item() == pytest.approx(217.0)
    node = OmegaConf.structured(LossWeights(kp2d=2.0))
    assert weighted_sum(terms, node).item() == pytest.approx(2 * 3.5 + 7)
    weights = {"kp2d": 0.0, "disc": 10.0, "shape_const": 1.0}
    assert weighted_sum(terms, weights).item() == pytest.approx(34.0)


def test_term_names_and_unknown_base():
    assert term_name("kp2d", HAL, dt_qualifier(-5)) == "kp2d/hal/dt-5"
    assert dt_qualifier(5) == "dt+5"
    with pytest.raises(ValueError, match="'foo/dt\\+5'"):
        weighted_sum({"foo/dt+5": torch.tensor(1.0)}, LossWeights())
    with pytest.raises(ValueError, match="no weight 'smpl'"):
        weighted_sum({"smpl": torch.tensor(1.0)}, {"kp2d": 1.0})
