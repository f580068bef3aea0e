"""Pelvis and similarity Procrustes alignment."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.body.joints import L_HIP, R_HIP
from lightning_hmd.geometry.alignment import (
    align_by_pelvis,
    pelvis,
    similarity_procrustes,
    similarity_transform,
)
from lightning_hmd.geometry.rotations import axis_angle_to_matrix


def test_pelvis_is_hip_midpoint():
    joints = torch.zeros(2, 14, 3)
    joints[:, R_HIP] = torch.tensor([1.0, 2.0, 3.0])
    joints[:, L_HIP] = torch.tensor([3.0, 0.0, -1.0])
    torch.testing.assert_close(pelvis(joints), torch.tensor([2.0, 1.0, 1.0]).expand(2, 3))
    aligned = align_by_pelvis(joints)
    assert aligned.shape == (2, 14, 3)
    torch.testing.assert_close(pelvis(aligned), torch.zeros(2, 3))
    torch.testing.assert_close(aligned[:, 0], -torch.tensor([2.0, 1.0, 1.0]).expand(2, 3))


def test_pelvis_rejects_too_few_joints():
    with pytest.raises(ValueError, match=r"joints must have shape .*got \(2, 3, 3\)"):
        pelvis(torch.zeros(2, 3, 3))


def _random_similarity(g: torch.Generator, batch: int):
    R = axis_angle_to_matrix(torch.randn(batch, 3, generator=g, dtype=torch.float64))
    s = 0.5 + torch.rand(batch, generator=g, dtype=torch.float64)
    t = torch.randn(batch, 3, generator=g, dtype=torch.float64)
    return s, R, t


def test_similarity_transform_recovers_known_transform():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 14, 3, generator=g, dtype=torch.float64)
    s, R, t = _random_similarity(g, 3)
    gt = s[:, None, None] * pred @ R.transpose(-1, -2) + t[:, None]
    tf = similarity_transform(pred, gt)
    torch.testing.assert_close(tf.scale, s)
    torch.testing.assert_close(tf.rotation, R)
    torch.testing.assert_close(tf.translation, t)
    torch.testing.assert_close(similarity_procrustes(pred, gt), gt)


def test_reflection_is_not_used():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(14, 3, generator=g, dtype=torch.float64)
    mirrored = pred * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    tf = similarity_transform(pred, mirrored)
    assert torch.linalg.det(tf.rotation).item() == pytest.approx(1.0)
    # A proper rotation cannot reproduce a mirror image of a generic point set.
    assert (similarity_procrustes(pred, mirrored) - mirrored).norm() > 1e-3


def test_alignment_never_increases_error():
    g = torch.Generator().manual_seed(2)
    pred, gt = torch.randn(2, 5, 14, 3, generator=g), torch.randn(2, 5, 14, 3, generator=g)
    aligned = similarity_procrustes(pred, gt)
    assert aligned.shape == (2, 5, 14, 3)
    before = ((align_by_pelvis(pred) - align_by_pelvis(gt)) ** 2).sum(dim=(-1, -2))
    after = ((aligned - gt) ** 2).sum(dim=(-1, -2))
    assert (after <= before + 1e-6).all()
