"""Temporal encoder: shapes, near-identity init, receptive field, identity with no blocks."""

import math

import pytest
import torch
from torch import nn

from lightning_hmd.models.temporal import TemporalEncoder


def _encoder(num_blocks: int = 2, kernel_size: int = 3) -> TemporalEncoder:
    torch.manual_seed(0)
    return TemporalEncoder(64, num_blocks, kernel_size=kernel_size, num_groups=8)


def test_shape():
    phi = torch.randn(2, 8, 64)
    assert _encoder()(phi).shape == (2, 8, 64)


@pytest.mark.parametrize(
    ("blocks", "kernel", "field"), [(0, 3, 1), (1, 3, 5), (3, 3, 13), (2, 5, 17)]
)
def test_receptive_field_property(blocks, kernel, field):
    assert _encoder(blocks, kernel).receptive_field == field


def test_near_identity_at_init():
    phi = torch.randn(2, 12, 64)
    Phi = _encoder(3)(phi)
    assert (Phi - phi).norm() / phi.norm() < 0.05


def test_init_matches_tf():
    block = _encoder(1).blocks[0]
    channels, k = 64, 3
    xavier = math.sqrt(6.0 / (k * channels + k * channels))
    small = math.sqrt(3.0 * 0.001 / ((k * channels + k * channels) / 2))
    assert block.conv1.weight.abs().max() <= xavier
    assert block.conv1.weight.abs().max() > 0.5 * xavier
    assert block.conv2.weight.abs().max() <= small
    assert torch.all(block.conv1.bias == 0) and torch.all(block.conv2.bias == 0)


@pytest.mark.parametrize("num_blocks", [1, 2])
def test_conv_receptive_field_is_exact(num_blocks):
    """Perturbing frame t moves outputs within t ± 2N only.

    GroupNorm statistics span the whole clip (as in HMMR), so the norms are replaced by identities
    to isolate the convolution stack.
    """
    encoder = _encoder(num_blocks).eval()
    for block in encoder.blocks:
        block.norm1, block.norm2 = nn.Identity(), nn.Identity()
        nn.init.normal_(block.conv2.weight)  # make the residual branch visible
    T, t, reach = 16, 7, 2 * num_blocks
    phi = torch.randn(1, T, 64)
    bumped = phi.clone()
    bumped[:, t] += 1.0
    with torch.no_grad():
        changed = (encoder(bumped) - encoder(phi)).abs().amax(dim=-1)[0]  # (T,)
    inside = torch.zeros(T, dtype=torch.bool)
    inside[t - reach : t + reach + 1] = True
    assert torch.all(changed[~inside] == 0)
    assert torch.all(changed[inside] > 0)


def test_zero_blocks_is_identity():
    phi = torch.randn(2, 5, 64)
    encoder = TemporalEncoder(64, 0)
    assert torch.equal(encoder(phi), phi)
    assert len(list(encoder.parameters())) == 0
