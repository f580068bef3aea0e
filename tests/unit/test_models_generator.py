"""HMMRGenerator built from the tiny preset: outputs, options, gradient flow."""

import pytest
import torch

from lightning_hmd.config import load_config
from lightning_hmd.models import build_generator, delta_key, delta_offset
from lightning_hmd.structures import Predictions, SMPLParams

B, T = 2, 8


def _generator(*overrides: str, with_image_encoder: bool = False):
    torch.manual_seed(0)
    cfg = load_config("tiny", overrides=list(overrides)).model
    gen = build_generator(
        cfg, 0.1 * torch.randn(24, 3), torch.randn(10), with_image_encoder=with_image_encoder
    )
    return gen, cfg.feat_dim


def _assert_params(params: SMPLParams) -> None:
    assert params.cam.shape == (B, T, 3)
    assert params.pose_aa.shape == (B, T, 24, 3)
    assert params.pose_rotmat.shape == (B, T, 24, 3, 3)
    assert params.betas.shape == (B, T, 10)


def _assert_predictions(pred: Predictions, offsets: set[int]) -> None:
    _assert_params(pred.current)
    assert set(pred.deltas) == offsets
    for params in pred.deltas.values():
        _assert_params(params)
        assert params.betas is pred.current.betas


def test_delta_key_round_trip():
    assert [delta_key(o) for o in (-5, 5)] == ["-5", "+5"]
    assert all(delta_offset(delta_key(o)) == o for o in (-3, 1, 12))
    with pytest.raises(ValueError):
        delta_key(0)


def test_phi_input_with_hallucinator():
    gen, D = _generator()
    out = gen.eval()(phi=torch.randn(B, T, D))
    assert out.phi.shape == out.movie_strip.shape == out.hallucinated_strip.shape == (B, T, D)
    _assert_predictions(out.pred, {-2, 2})
    _assert_predictions(out.hallucinated, {-2, 2})
    assert gen.delta_offsets == [-2, 2]
    # the hallucinated strip goes through the same heads
    again = gen.smpl_head(out.hallucinated_strip)
    assert torch.equal(again.pose_aa, out.hallucinated.current.pose_aa)


def test_without_hallucinator_and_without_deltas():
    gen, D = _generator("model.hallucinator=false", "model.delta_t=[]")
    out = gen(phi=torch.randn(B, T, D))
    _assert_predictions(out.pred, set())
    assert out.hallucinated is None and out.hallucinated_strip is None
    assert gen.hallucinator is None and len(gen.delta_heads) == 0


def test_image_input():
    gen, D = _generator(with_image_encoder=True)
    out = gen.eval()(images=torch.rand(B, T, 3, 64, 64) * 2 - 1)
    assert out.phi.shape == (B, T, D)
    _assert_predictions(out.pred, {-2, 2})


def test_input_validation():
    gen, D = _generator()
    with pytest.raises(ValueError, match="exactly one"):
        gen()
    with pytest.raises(ValueError, match="exactly one"):
        gen(images=torch.rand(B, T, 3, 64, 64), phi=torch.randn(B, T, D))
    with pytest.raises(ValueError, match="no image encoder"):
        gen(images=torch.rand(B, T, 3, 64, 64))


def test_eval_is_deterministic():
    gen, D = _generator()
    phi = torch.randn(B, T, D)
    gen.eval()
    a, b = gen(phi=phi), gen(phi=phi)
    assert torch.equal(a.pred.deltas[2].pose_aa, b.pred.deltas[2].pose_aa)


def _all_tensors(out) -> list[torch.Tensor]:
    tensors = [out.movie_strip, out.hallucinated_strip]
    for pred in (out.pred, out.hallucinated):
        for params in [pred.current, *pred.deltas.values()]:
            tensors += [params.cam, params.pose_aa, params.pose_rotmat, params.betas]
    return tensors


def test_gradients_reach_every_parameter():
    gen, _ = _generator("model.freeze_encoder=false", with_image_encoder=True)
    out = gen.train()(images=torch.rand(B, T, 3, 64, 64) * 2 - 1)
    sum(t.square().mean() for t in _all_tensors(out)).backward()
    missing = [name for name, p in gen.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in gen.parameters())
    for component in (gen.image_encoder, gen.temporal, gen.smpl_head, gen.hallucinator):
        assert any(p.grad.abs().sum() > 0 for p in component.parameters())
    for head in gen.delta_heads.values():
        assert all(p.grad.abs().sum() > 0 for p in head.parameters())


def test_frozen_encoder_gets_no_gradient_and_stays_in_eval():
    gen, _ = _generator("model.freeze_encoder=true", with_image_encoder=True)
    gen.train()
    assert not gen.image_encoder.backbone.training  # batch-norm statistics stay fixed
    out = gen(images=torch.rand(B, T, 3, 64, 64) * 2 - 1)
    sum(t.square().mean() for t in _all_tensors(out)).backward()
    assert all(p.grad is None for p in gen.image_encoder.parameters())
    assert all(p.grad is not None for p in gen.temporal.parameters())
