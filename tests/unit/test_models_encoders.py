"""Image encoder factory: shapes, freezing, optional torchvision backbone."""

import importlib.util

import pytest
import torch

from lightning_hmd.models.encoders import build_image_encoder

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def test_resnet50_v2_encoder_shape():
    encoder = build_image_encoder("resnet50_v2", feat_dim=64)
    assert encoder(torch.rand(3, 3, 64, 64) * 2 - 1).shape == (3, 64)
    assert encoder.out_dim == 64


def test_frozen_encoder_has_no_trainable_params_and_stays_in_eval():
    encoder = build_image_encoder("resnet50_v2", feat_dim=64, freeze=True)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert encoder.training
    assert not any(m.training for m in encoder.backbone.modules())
    before = encoder.backbone.postnorm.running_mean.clone()
    encoder(torch.rand(2, 3, 32, 32))
    assert torch.equal(encoder.backbone.postnorm.running_mean, before)


def test_unknown_encoder_and_bad_width():
    with pytest.raises(ValueError, match="unknown image encoder"):
        build_image_encoder("vgg16")
    with pytest.raises(ValueError, match="divisible by 32"):
        build_image_encoder("resnet50_v2", feat_dim=100)


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed")
def test_torchvision_encoder_names_the_extra_when_missing():
    with pytest.raises(ImportError, match="torchvision"):
        build_image_encoder("torchvision_resnet50")


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision not installed")
def test_torchvision_encoder_shape():
    encoder = build_image_encoder("torchvision_resnet50").eval()
    assert encoder(torch.rand(1, 3, 64, 64)).shape == (1, 2048)


def test_small_cnn_keeps_where_things_are():
    """small_cnn: (N, 3, 64, 64) -> (N, D) with layer-normalised features (no dead all-zero
    phi, no dependence on the rest of the batch), and, unlike a global average pool, a blob
    moved across the crop changes phi."""
    torch.manual_seed(0)
    encoder = build_image_encoder("small_cnn", feat_dim=32)
    images = torch.rand(16, 3, 64, 64) * 2 - 1
    phi = encoder(images)
    assert phi.shape == (16, 32)
    torch.testing.assert_close(phi.mean(1), torch.zeros(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(phi.std(1, unbiased=False), torch.ones(16), atol=1e-2, rtol=0)
    torch.testing.assert_close(encoder(images[:1]), phi[:1])  # the same alone as in a batch
    blobs = -torch.ones(2, 3, 64, 64)
    blobs[0, :, 28:36, 4:12] = 1.0  # the same blob on the left and on the right
    blobs[1, :, 28:36, 52:60] = 1.0
    phi = encoder(blobs)
    assert (phi[0] - phi[1]).abs().max() > 0.5
    assert encoder(torch.rand(2, 3, 48, 48)).shape == (2, 32)  # other sizes are pooled to 4x4
