"""Pose and shape discriminators: logit layout, root invariance, per-joint independence."""

import pytest
import roma
import torch

from lightning_hmd.config import load_config
from lightning_hmd.models import build_discriminator
from lightning_hmd.models.discriminator import (
    Discriminator,
    PoseDiscriminator,
    ShapeDiscriminator,
)

M = 5


def _rotmats(m: int = M, joints: int = 24) -> torch.Tensor:
    return roma.random_rotmat((m, joints))


def test_pose_discriminator_shape_and_validation():
    disc = PoseDiscriminator(channels=8, hidden=16)
    assert disc(_rotmats(joints=23)).shape == (M, 24)
    with pytest.raises(ValueError, match="23, 3, 3"):
        disc(_rotmats(joints=24))


def test_shape_discriminator_layers():
    disc = ShapeDiscriminator()
    assert [fc.out_features for fc in (disc.fc1, disc.fc2, disc.fc_out)] == [10, 5, 1]
    assert disc(torch.randn(M, 10)).shape == (M, 1)


def test_discriminator_logit_counts():
    pose = PoseDiscriminator(channels=8, hidden=16)
    rotmats, betas = _rotmats(), torch.randn(M, 10)
    assert Discriminator(pose)(rotmats).shape == (M, 24)
    with_shape = Discriminator(pose, ShapeDiscriminator())
    assert with_shape(rotmats, betas).shape == (M, 25)
    assert with_shape.num_logits == 25
    with pytest.raises(ValueError, match="betas"):
        with_shape(rotmats)


def test_root_rotation_is_ignored():
    disc = Discriminator(PoseDiscriminator(channels=8, hidden=16), ShapeDiscriminator())
    rotmats, betas = _rotmats(), torch.randn(M, 10)
    other = rotmats.clone()
    other[:, 0] = _rotmats(joints=1)[:, 0]
    assert torch.equal(disc(rotmats, betas), disc(other, betas))


def test_per_joint_logits_see_only_their_joint():
    disc = PoseDiscriminator(channels=8, hidden=16)
    rotmats = _rotmats(joints=23)
    other = rotmats.clone()
    other[:, 4] = _rotmats(joints=1)[:, 0]
    changed = (disc(other) - disc(rotmats)).abs().amax(dim=0)  # (24,)
    assert changed[4] > 0 and changed[-1] > 0
    assert torch.all(changed[:4] == 0) and torch.all(changed[5:23] == 0)


def test_build_discriminator_from_config():
    cfg = load_config("tiny").model
    assert build_discriminator(cfg)(_rotmats()).shape == (M, 24)
    cfg = load_config("tiny", overrides=["model.shape_discriminator=true"]).model
    assert build_discriminator(cfg)(_rotmats(), torch.randn(M, 10)).shape == (M, 25)
