"""HMR init files: mean and f_3D copied exactly, everything else left alone, clear errors."""

from __future__ import annotations

import pytest
import torch

from lightning_hmd.config import load_config
from lightning_hmd.models.build import build_generator
from lightning_hmd.models.hmr_init import HMRInitError, load_hmr_init, save_hmr_init


def _generator(seed: int, *overrides: str):
    torch.manual_seed(seed)
    cfg = load_config("tiny", overrides=list(overrides))
    return build_generator(cfg.model, 0.1 * torch.randn(24, 3), torch.randn(10))


def test_mean_and_f3d_are_copied_and_nothing_else(tmp_path):
    source, target = _generator(0), _generator(1)
    with torch.no_grad():
        source.smpl_head.theta_mean.add_(0.5)  # a "trained" mean
    path = save_hmr_init(source, tmp_path / "hmr.pt", source="test")
    assert not (tmp_path / "hmr.pt.partial").exists()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    keys = load_hmr_init(target, path, ["mean", "f3d"])
    assert "smpl_head.theta_mean" in keys and "smpl_head.ief.fc3.weight" in keys
    assert not any(k.startswith(("temporal.", "delta_heads.", "image_encoder.")) for k in keys)
    src, tgt = source.state_dict(), target.state_dict()
    for k in tgt:
        if k in keys:
            torch.testing.assert_close(tgt[k], src[k], rtol=0, atol=0)
        else:
            torch.testing.assert_close(tgt[k], before[k], rtol=0, atol=0)
    key = "temporal.blocks.0.conv1.weight"
    assert not torch.equal(tgt[key], src[key])
    # the whole f_3D now gives the source's prediction on the same features
    source.eval()
    target.eval()
    feats = torch.randn(2, 3, source.smpl_head.ief.fc1.in_features - 85)
    torch.testing.assert_close(target.smpl_head(feats).pose_aa, source.smpl_head(feats).pose_aa)


def test_encoder_part(tmp_path):
    source, target = _generator(0), _generator(1)
    path = save_hmr_init(source, tmp_path / "hmr.pt", source="test")
    keys = load_hmr_init(target, path, ["encoder"])
    assert keys and all(k.startswith("image_encoder.") for k in keys)


def test_errors_name_the_problem(tmp_path):
    gen = _generator(0)
    with pytest.raises(HMRInitError, match="does not exist"):
        load_hmr_init(gen, tmp_path / "none.pt", ["mean"])
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(HMRInitError, match="format 'other'"):
        load_hmr_init(gen, tmp_path / "other.pt", ["mean"])
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(HMRInitError, match="not a readable HMR init file"):
        load_hmr_init(gen, tmp_path / "junk.pt", ["mean"])
    only_mean = save_hmr_init(gen, tmp_path / "mean.pt", "test", parts=["mean"])
    with pytest.raises(HMRInitError, match="part 'f3d' lacks"):
        load_hmr_init(gen, only_mean, ["f3d"])
    with pytest.raises(HMRInitError, match="unknown part"):
        load_hmr_init(gen, only_mean, ["resnet"])
    wide = save_hmr_init(_generator(0, "model.regressor_hidden=48"), tmp_path / "w.pt", "t")
    with pytest.raises(HMRInitError, match=r"smpl_head.ief.fc1.weight has shape \(48, "):
        load_hmr_init(gen, wide, ["f3d"])


def test_a_lightning_checkpoint_serves_as_init_file(tmp_path):
    """``import-tf --hmr`` writes a lightning_hmd checkpoint of HMR's weights: its
    ``generator.*`` tensors initialise f_3D and the mean as an HMR init file does."""
    source, target = _generator(0), _generator(1)
    state = {f"generator.{k}": v for k, v in source.state_dict().items()}
    state["discriminator.fc.weight"] = torch.zeros(2, 2)
    torch.save({"state_dict": state, "hyper_parameters": {"config": {}}}, tmp_path / "hmr.ckpt")
    keys = load_hmr_init(target, tmp_path / "hmr.ckpt", ["mean", "f3d"])
    assert "smpl_head.theta_mean" in keys
    for k in keys:
        torch.testing.assert_close(target.state_dict()[k], source.state_dict()[k], rtol=0, atol=0)
    torch.save({"state_dict": {"discriminator.fc.weight": torch.zeros(2)}}, tmp_path / "d.ckpt")
    with pytest.raises(HMRInitError, match="expected 'lightning_hmd/hmr-init/1' or a lightning"):
        load_hmr_init(target, tmp_path / "d.ckpt", ["mean"])
