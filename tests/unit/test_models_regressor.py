"""IEF regressor, f_3D head with its learnable mean, and the f_Δt heads."""

import math

import pytest
import roma
import torch
from torch import nn

from lightning_hmd.models.regressor import DeltaHead, IEFRegressor, SMPLHead
from lightning_hmd.structures import SMPLParams

B, T, D = 2, 3, 16


@pytest.fixture
def mean_pose() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return 0.2 * torch.randn(24, 3), torch.randn(10)


def _head(mean_pose) -> SMPLHead:
    return SMPLHead(D, *mean_pose, hidden=32, dropout=0.5, num_iters=3)


def _assert_params(params: SMPLParams, lead: tuple[int, ...]) -> None:
    assert params.cam.shape == (*lead, 3)
    assert params.pose_aa.shape == (*lead, 24, 3)
    assert params.pose_rotmat.shape == (*lead, 24, 3, 3)
    assert params.betas.shape == (*lead, 10)
    assert torch.allclose(params.pose_rotmat, roma.rotvec_to_rotmat(params.pose_aa), atol=1e-5)


def test_ief_shapes_with_shared_or_batched_init():
    ief = IEFRegressor(D, 7, hidden=32, num_iters=2)
    feat = torch.randn(5, D)
    assert ief(feat, torch.zeros(7)).shape == (5, 7)
    assert ief(feat, torch.zeros(5, 7)).shape == (5, 7)


def test_ief_zero_last_layer_returns_init():
    ief = IEFRegressor(D, 7, hidden=32)
    nn.init.zeros_(ief.fc3.weight)
    init = torch.randn(5, 7)
    assert torch.equal(ief(torch.randn(5, D), init), init)


def test_ief_init_matches_tf():
    ief = IEFRegressor(2048, 85, hidden=1024)
    small = math.sqrt(3 * 0.01 / ((1024 + 85) / 2))
    xavier = math.sqrt(6 / (2048 + 85 + 1024))
    assert ief.fc3.weight.abs().max() <= small
    assert xavier * 0.9 < ief.fc1.weight.abs().max() <= xavier
    assert all(torch.all(fc.bias == 0) for fc in (ief.fc1, ief.fc2, ief.fc3))
    with pytest.raises(ValueError, match="num_iters"):
        IEFRegressor(D, 7, num_iters=0)


def test_dropout_only_in_train_mode():
    torch.manual_seed(1)
    ief = IEFRegressor(D, 7, hidden=64, dropout=0.5)
    feat, init = torch.randn(4, D), torch.zeros(7)
    ief.eval()
    assert torch.equal(ief(feat, init), ief(feat, init))
    ief.train()
    assert not torch.equal(ief(feat, init), ief(feat, init))


def test_mean_init_values(mean_pose):
    pose, betas = mean_pose
    head = _head(mean_pose)
    assert isinstance(head.theta_mean, nn.Parameter) and head.theta_mean.requires_grad
    mean = head.mean_params()
    assert torch.equal(mean.cam, torch.tensor([0.9, 0.0, 0.0]))
    assert torch.allclose(mean.pose_aa[0], torch.tensor([math.pi, 0.0, 0.0]))
    assert torch.equal(mean.pose_aa[1:], pose[1:])
    assert torch.equal(mean.betas, betas)


def test_smpl_head_shapes_and_start_from_mean(mean_pose):
    head = _head(mean_pose).eval()
    feats = torch.randn(B, T, D)
    params = head(feats)
    _assert_params(params, (B, T))
    nn.init.zeros_(head.ief.fc3.weight)
    params = head(feats)
    mean = head.mean_params()
    assert torch.equal(params.cam, mean.cam.expand(B, T, 3))
    assert torch.equal(params.pose_aa, mean.pose_aa.expand(B, T, 24, 3))
    assert torch.equal(params.betas, mean.betas.expand(B, T, 10))


def test_delta_head_starts_from_current_pose_and_copies_shape(mean_pose):
    current = _head(mean_pose).eval()(torch.randn(B, T, D))
    delta = DeltaHead(D, hidden=32).eval()
    feats = torch.randn(B, T, D)
    moved = delta(feats, current)
    _assert_params(moved, (B, T))
    assert moved.betas is current.betas and moved.cam is current.cam
    assert not torch.equal(moved.pose_aa, current.pose_aa)
    nn.init.zeros_(delta.ief.fc3.weight)
    assert torch.equal(delta(feats, current).pose_aa, current.pose_aa)


def test_delta_head_backpropagates_into_its_start():
    start = (0.1 * torch.randn(B, T, 24, 3)).requires_grad_()
    current = SMPLParams(
        cam=torch.zeros(B, T, 3),
        pose_aa=start,
        pose_rotmat=roma.rotvec_to_rotmat(start),
        betas=torch.zeros(B, T, 10),
    )
    DeltaHead(D, hidden=32)(torch.randn(B, T, D), current).pose_aa.sum().backward()
    assert start.grad is not None and start.grad.abs().sum() > 0


def test_rot6d_heads_start_from_the_same_mean_and_give_rotations(mean_pose):
    """6D poses: theta is 3 + 144 + 10, the mean is the axis-angle mean, and any output of
    the heads is a proper rotation whose axis-angle agrees with the matrix."""
    aa_head = _head(mean_pose).eval()
    head = SMPLHead(D, *mean_pose, hidden=32, dropout=0.5, num_iters=3, pose_repr="rot6d").eval()
    assert head.theta_mean.shape == (157,)
    mean, aa_mean = head.mean_params(), aa_head.mean_params()
    torch.testing.assert_close(mean.pose_rotmat, aa_mean.pose_rotmat, atol=1e-5, rtol=0)
    torch.testing.assert_close(mean.betas, aa_mean.betas)
    params = head(torch.randn(B, T, D))
    _assert_params(params, (B, T))
    eye = torch.eye(3).expand(B, T, 24, 3, 3)
    R = params.pose_rotmat
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    moved = DeltaHead(D, hidden=32, pose_repr="rot6d").eval()(torch.randn(B, T, D), params)
    _assert_params(moved, (B, T))
    with pytest.raises(ValueError, match="model.pose_repr"):
        SMPLHead(D, *mean_pose, pose_repr="quaternion")
