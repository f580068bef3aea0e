"""Paper-size networks on CPU: one forward each (several seconds)."""

import pytest
import torch

from lightning_hmd.config import load_config
from lightning_hmd.models import build_discriminator, build_generator
from lightning_hmd.models.resnet_v2 import ResNetV2

pytestmark = pytest.mark.slow


@torch.no_grad()
def test_paper_generator_forward_from_phi():
    torch.manual_seed(0)
    cfg = load_config("paper", overrides=["model.init_checkpoint=none"]).model
    gen = build_generator(cfg, 0.1 * torch.randn(24, 3), torch.zeros(10), with_image_encoder=False)
    phi = torch.randn(1, 20, 2048).relu()
    out = gen.eval()(phi=phi)
    assert out.movie_strip.shape == out.hallucinated_strip.shape == (1, 20, 2048)
    # near identity at init: GroupNorm fixes the branch scale (~0.04 rms here for 3 blocks)
    assert (out.movie_strip - phi).norm() / phi.norm() < 0.1
    assert set(out.pred.deltas) == set(out.hallucinated.deltas) == {-5, 5}
    assert out.pred.current.pose_rotmat.shape == (1, 20, 24, 3, 3)
    logits = build_discriminator(cfg)(out.pred.current.pose_rotmat.flatten(0, 1))
    assert logits.shape == (20, 24)


@torch.no_grad()
def test_full_resnet50_v2_forward_224():
    net = ResNetV2().eval()
    maps = net.forward_maps(torch.rand(1, 3, 224, 224) * 2 - 1)
    assert [m.shape[-1] for m in maps.values()] == [112, 56, 28, 14, 7, 7, 7]
    assert net(torch.rand(2, 3, 224, 224)).shape == (2, 2048)
