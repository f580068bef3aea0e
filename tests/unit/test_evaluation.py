"""Windowed prediction and per-clip scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.evaluation.predict import ClipPrediction, predict_clip
from lightning_hmd.evaluation.run import score_clip
from lightning_hmd.evaluation.windows import centre_windows
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.models.build import build_generator
from lightning_hmd.structures import SMPLParams


@pytest.fixture(scope="module")
def generator():
    cfg = load_config("tiny", overrides=["model.temporal.num_blocks=2", "model.feat_dim=16"])
    torch.manual_seed(0)
    g = build_generator(cfg.model, torch.zeros(24, 3), torch.zeros(10), with_image_encoder=False)
    return g.eval()


def _assert_from_centre_windows(generator, phi, pred, T, margin):
    """Each frame's prediction (current pose, a Δt head's betas) is its centre window's."""
    for w in centre_windows(len(phi), T, margin=margin):
        with torch.no_grad():
            direct = generator.predict(generator.temporal(phi[w.start : w.start + T][None]))
        keep = slice(w.keep_start - w.start, w.keep_stop - w.start)
        torch.testing.assert_close(pred.current.pose_aa[w.keep_start : w.keep_stop],
                                   direct.current.pose_aa[0, keep])  # fmt: skip
        torch.testing.assert_close(pred.deltas[2].betas[w.keep_start : w.keep_stop],
                                   direct.deltas[2].betas[0, keep])  # fmt: skip


def test_each_frame_comes_from_its_centre_window(generator):
    T, n = 12, 31
    phi = torch.randn(n, 16, generator=torch.Generator().manual_seed(1))
    pred = predict_clip(generator, phi, T, max_windows=2)  # several chunks of windows
    assert pred.current.cam.shape == (n, 3) and set(pred.deltas) == {-2, 2}
    _assert_from_centre_windows(generator, phi, pred, T, margin=4)
    # the window matters (GroupNorm statistics span it): one pass over the clip differs
    with torch.no_grad():
        whole = generator.predict(generator.temporal(phi[None])).current.pose_aa[0]
    assert (whole - pred.current.pose_aa).abs().max() > 1e-4


def test_a_receptive_field_longer_than_the_window_keeps_the_central_frames(generator):
    """2 blocks see 9 frames; at T = 8 each window keeps its 2 central frames (margin 3)."""
    T, n = 8, 13
    phi = torch.randn(n, 16, generator=torch.Generator().manual_seed(3))
    pred = predict_clip(generator, phi, T)
    assert pred.current.pose_aa.shape == (n, 24, 3)
    _assert_from_centre_windows(generator, phi, pred, T, margin=3)


def test_short_clips_are_padded_and_constant_mode_repeats_the_current_pose(generator):
    phi = torch.randn(5, 16)
    pred = predict_clip(generator, phi, 12, mode="constant")
    assert pred.current.pose_aa.shape == (5, 24, 3)
    for dt in (-2, 2):
        assert pred.deltas[dt] is pred.current
    hal = predict_clip(generator, phi, 12, mode="hallucinator")
    assert (hal.current.pose_aa - pred.current.pose_aa).abs().max() > 1e-5
    with pytest.raises(ValueError, match="mode must be one of"):
        predict_clip(generator, phi, 12, mode="oracle")


def _params(pose: torch.Tensor, betas: torch.Tensor) -> SMPLParams:
    n = pose.shape[0]
    return SMPLParams(torch.tensor([[1.0, 0, 0]]).repeat(n, 1), pose,
                      axis_angle_to_matrix(pose), betas.expand(n, 10))  # fmt: skip


def test_scores_are_zero_for_the_truth_and_match_a_hand_computation(synthetic_body_dir):
    body = BodyModel.from_dir(synthetic_body_dir)
    g = torch.Generator().manual_seed(2)
    n = 6
    pose = 0.3 * torch.randn(n, 24, 3, generator=g)
    betas = torch.randn(10, generator=g)
    with torch.no_grad():
        joints = body(axis_angle_to_matrix(pose), betas).joints
    kp = torch.cat([joints[..., :2], torch.ones(n, 25, 1)], -1)  # projection with cam [1, 0, 0]
    sample = ClipSample(
        dataset="synthetic", split="test", sequence="s", track_id=0, fps=30.0,
        kp2d=kp.numpy(), crop_box=np.tile(np.float32([0, 0, 1, 1]), (n, 1)),
        crop_scale=np.ones(n, np.float32), frame_index=np.arange(n, dtype=np.int32),
        joints3d=joints[:, :14].numpy(), pose=pose.reshape(n, 72).numpy(), betas=betas.numpy(),
    )  # fmt: skip
    truth = _params(pose, betas)
    scores = score_clip(ClipPrediction(truth, {1: truth}), sample, body, img_size=224)
    for key in ("mpjpe", "pa_mpjpe", "pve", "accel_error"):
        assert scores[key] == pytest.approx(0.0, abs=1e-2), key
    assert scores["pck"] == 1.0
    # a prediction lagging one frame: the Δt=+1 head that predicts t+1 with the pose at t
    # scores the frame difference; hand-computed from the joints
    lag = {1: _params(pose, betas)}
    s = score_clip(ClipPrediction(truth, lag), sample, body, 224)
    p = joints[:-1, :14] - joints[:-1, [2, 3]].mean(1, keepdim=True)
    q = joints[1:, :14] - joints[1:, [2, 3]].mean(1, keepdim=True)
    expected = (p - q).norm(dim=-1).mean() * 1000
    assert s["mpjpe_dt+1"] == pytest.approx(float(expected), rel=1e-4)
    assert s["mpjpe_dt+1"] > 1.0
