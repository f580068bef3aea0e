"""Hallucinator: frame-wise residual MLP."""

import torch
from torch import nn

from lightning_hmd.models.hallucinator import Hallucinator


def test_shape_and_near_identity():
    torch.manual_seed(0)
    phi = torch.randn(2, 6, 64)
    hal = Hallucinator(64, hidden=32)
    out = hal(phi)
    assert out.shape == (2, 6, 64)
    assert (out - phi).norm() / phi.norm() < 0.05


def test_zero_output_layer_is_identity_and_frames_are_independent():
    hal = Hallucinator(16, hidden=8)
    phi = torch.randn(1, 4, 16)
    bumped = phi.clone()
    bumped[:, 2] += 1
    diff = (hal(bumped) - hal(phi)).abs().amax(dim=-1)[0]
    assert torch.all(diff[[0, 1, 3]] == 0) and diff[2] > 0
    nn.init.zeros_(hal.fc3.weight)
    assert torch.equal(hal(phi), phi)
