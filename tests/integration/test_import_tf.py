"""``import-tf`` on small HMR/HMMR checkpoints with the original names and layouts, written
by TensorFlow (``tests/fixtures/hmmr_tf.py``, in its own process): our forward pass of the
imported model against TensorFlow's of the original one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require

from lightning_hmd.commands import main
from lightning_hmd.config import config_from_container, to_container
from lightning_hmd.train.module import HMMRModule, load_weights

FIXTURE = Path(__file__).parents[1] / "fixtures" / "hmmr_tf.py"
ATOL = 5e-5  # float32 through ResNet-50's depth and 2 x 3 IEF steps


@pytest.fixture(scope="module")
def tf_checkpoints(tmp_path_factory):
    require(importlib.util.find_spec("tensorflow") is not None,
            "tensorflow not installed (pip install '.[tf]')")  # fmt: skip
    out = tmp_path_factory.mktemp("tf")
    done = subprocess.run([sys.executable, str(FIXTURE), str(out)], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out, dict(np.load(out / "reference.npz"))


def _load(path: Path, body_dir: Path) -> HMMRModule:
    blob = torch.load(path, weights_only=True)
    cfg = config_from_container(blob["hyper_parameters"]["config"], [f"body.model_dir={body_dir}"])
    module = HMMRModule(to_container(cfg))
    load_weights(module, path)
    return module.eval()


def _theta(params) -> np.ndarray:
    return torch.cat([params.cam, params.pose_aa.flatten(-2), params.betas], -1).numpy()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_imported_model_matches_the_original(tf_checkpoints, synthetic_body_dir, tmp_path, capsys):
    out, ref = tf_checkpoints
    args = ["import-tf", "--hmr", str(out / "hmr" / "model.ckpt"), "--hmmr",
            str(out / "hmmr" / "model.ckpt"), "--out", str(tmp_path / "hmmr.ckpt")]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "model.temporal.num_blocks=2" in said and "model.delta_t=[-3,3]" in said
    assert "kept at their initial values: batches_done, nonfinite_total" in said
    m = _load(tmp_path / "hmmr.ckpt", synthetic_body_dir)
    g = m.generator
    with torch.no_grad():
        phi = g.image_encoder(torch.from_numpy(ref["images"]).permute(0, 3, 1, 2))
        strip = g.temporal(phi[None])
        cur = g.smpl_head(strip)
        future, past = g.delta_heads["+3"](strip, cur), g.delta_heads["-3"](strip, cur)
        hal = g.hallucinator(phi)
        hal_cur = g.smpl_head(hal[None])
        hal_future = g.delta_heads["+3"](hal[None], hal_cur)
        logits = m.discriminator.pose(torch.from_numpy(ref["rotmats"]).view(5, 23, 3, 3))
    got = {"phi": phi, "strip": strip, "theta": _theta(cur)[0],
           "future": future.pose_aa.flatten(-2)[0], "past": past.pose_aa.flatten(-2)[0],
           "hal": hal, "hal_theta": _theta(hal_cur)[0],
           "hal_future": hal_future.pose_aa.flatten(-2)[0], "d_logits": logits}  # fmt: skip
    for key, value in got.items():
        value = np.asarray(value)
        assert value.shape == ref[key].shape, key
        scale = max(1.0, float(np.abs(ref[key]).max()))
        np.testing.assert_allclose(value, ref[key], atol=ATOL * scale, rtol=0, err_msg=key)
    # the temporal encoder, heads and hallucinator all matter in this model
    assert np.abs(ref["strip"][0] - ref["phi"]).max() > 0.1
    assert np.abs(ref["hal"] - ref["phi"]).max() > 0.1


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_hmr_alone_gives_the_single_frame_model(tf_checkpoints, synthetic_body_dir, tmp_path):
    out, ref = tf_checkpoints
    args = ["import-tf", "--hmr", str(out / "hmr" / "model.ckpt"), "--out",
            str(tmp_path / "hmr.ckpt")]  # fmt: skip
    assert main(args) == 0
    m = _load(tmp_path / "hmr.ckpt", synthetic_body_dir)
    g = m.generator
    assert len(g.temporal.blocks) == 0 and not g.delta_heads and g.hallucinator is None
    with torch.no_grad():
        phi = g.image_encoder(torch.from_numpy(ref["images"]).permute(0, 3, 1, 2))
        theta = _theta(g.smpl_head(g.temporal(phi[None])))[0]
    np.testing.assert_allclose(theta, ref["hmr_theta"], atol=ATOL * 10, rtol=0)


@pytest.mark.slow
def test_bad_checkpoints_are_named(tf_checkpoints, tmp_path, capsys):
    out, _ = tf_checkpoints
    assert main(["import-tf", "--hmr", str(tmp_path / "nope.ckpt"), "--out", "x.ckpt"]) == 2
    assert "nope.ckpt: no TensorFlow checkpoint (" in capsys.readouterr().err
    args = ["import-tf", "--hmmr", str(out / "hmmr" / "model.ckpt"), "--hmr",
            str(out / "hmr" / "model.ckpt"), "--out", str(tmp_path / "x.ckpt"),
            "model.regressor_hidden=16"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "generator.smpl_head.ief.fc1.weight: TF gives shape (32, 149)" in err
    assert not (tmp_path / "x.ckpt").exists()
