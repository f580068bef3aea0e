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


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_same_conv1d_equals_torch_conv_with_same_padding(k):
    """The block's convolution as one matrix product: values and gradients of F.conv1d."""
    from lightning_hmd.models.temporal import same_conv1d

    g = torch.Generator().manual_seed(k)
    x = torch.randn(3, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(5, 6, k, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    ours = same_conv1d(x, w, b)
    ref = torch.nn.functional.conv1d(x, w, b, padding="same")
    assert ours.shape == ref.shape == (3, 5, 7)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    up = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    grads = torch.autograd.grad((ours * up).sum(), (x, w, b))
    ref_grads = torch.autograd.grad((ref * up).sum(), (x, w, b))
    for a, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, r, rtol=0, atol=1e-12)


def test_block_equals_the_conv_modules_it_holds():
    """TemporalBlock's forward is GN -> ReLU -> conv1 -> GN -> ReLU -> conv2 -> + x with its
    own nn.Conv1d weights (the modules a weight importer fills)."""
    block = _encoder(1).blocks[0].double()
    with torch.no_grad():  # a non-trivial second conv (its init is near zero)
        block.conv2.weight.normal_()
    x = torch.randn(2, 64, 9, dtype=torch.float64)
    ref = x + block.conv2(block.norm2(block.conv1(block.norm1(x).relu())).relu())
    assert block.conv1.padding == "same" and block.conv2.padding == "same"
    torch.testing.assert_close(block(x), ref, rtol=0, atol=1e-10)
