"""``predict``'s batched path (each frame encoded once, all tracks' windows in one batch)
gives HMMR's per-window tester's outputs, frame for frame, on tracks of several lengths."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.config import load_config, to_container
from lightning_hmd.inference.frames import open_frames
from lightning_hmd.inference.predict import (
    Predictor,
    channels_last,
    cut_crops,
    encode_crops,
    plan_crops,
    predict_crops,
    predict_track_per_window,
    predict_tracks,
    window_index,
)
from lightning_hmd.inference.tracks import PersonTrack
from lightning_hmd.train.module import HMMRModule

FRAMES, WIDTH, HEIGHT = 20, 64, 48
# (first, last + 1) frame of each track: the whole video (its first and last frames), three
# frames (shorter than one window of T = 8), one ending on the last frame, a single frame
SPANS = [(0, FRAMES), (3, 6), (9, FRAMES), (12, 13)]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    body = write_synthetic_model(tmp_path_factory.mktemp("body"))
    cfg = load_config("tiny", overrides=[f"body.model_dir={body}", "model.encoder=small_cnn"])
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    return channels_last(Predictor(module.generator.eval(), module.body.eval(),
                                   cfg.data.seq_len, cfg.data.img_size))  # fmt: skip


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for f in range(FRAMES):
        cv2.imwrite(str(folder / f"{f:06d}.png"), rng.integers(0, 256, (HEIGHT, WIDTH, 3),
                                                               dtype=np.uint8))  # fmt: skip
    tracks = []
    for k, (a, b) in enumerate(SPANS):
        frames = np.arange(a, b)
        x = 20.0 + frames[:, None] + k * 5.0  # moving boxes of different sizes per track
        boxes = np.concatenate([x, x * 0 + 8.0, x + 20.0 + k * 3, x * 0 + 40.0], axis=1)
        tracks.append(PersonTrack(str(k), frames, boxes=boxes))
    return open_frames(folder), tracks


def test_window_index_lays_every_tracks_centre_windows_end_to_end():
    # T = 8, margin 2: each window keeps its 4 centre outputs; a 3-frame track (rows 0..2)
    # has one window, a 10-frame track (rows 3..12) three, padded with its edge frames
    inputs, keep = window_index([3, 10], seq_len=8, margin=2)
    np.testing.assert_array_equal(inputs, [[0, 0, 0, 1, 2, 2, 2, 2],
                                           [3, 3, 3, 4, 5, 6, 7, 8],
                                           [5, 6, 7, 8, 9, 10, 11, 12],
                                           [9, 10, 11, 12, 12, 12, 12, 12]])  # fmt: skip
    np.testing.assert_array_equal(keep, [2, 3, 4, 10, 11, 12, 13, 18, 19, 20, 21, 26, 27])


def test_encoding_in_chunks_across_tracks_equals_one_batch(predictor, video):
    source, tracks = video
    plans = [plan_crops(t, source.count, predictor.img_size) for t in tracks]
    cut_crops(source, plans, progress=False)
    with torch.inference_mode():
        whole = encode_crops(predictor.generator, plans, chunk=64)
        chunked = encode_crops(predictor.generator, plans, chunk=7)  # chunks straddle tracks
    assert whole.shape == (sum(b - a for a, b in SPANS), 64)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["temporal", "hallucinator", "constant"])
def test_batched_predict_equals_hmmr_per_window_tester(predictor, video, mode):
    source, tracks = video
    got = predict_tracks(predictor, source, tracks, focal=100.0, mode=mode, vertices=True,
                         progress=False, echo=lambda _: None)  # fmt: skip
    plans = [plan_crops(t, source.count, predictor.img_size) for t in tracks]
    cut_crops(source, plans, progress=False)
    principal = ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
    tol = {"rtol": 1e-5, "atol": 1e-5}
    assert len(got) == len(SPANS)
    for pred, plan, (a, b) in zip(got, plans, SPANS, strict=True):
        ref = predict_track_per_window(predictor, plan, 100.0, principal, mode, vertices=True)
        np.testing.assert_array_equal(pred.frames, np.arange(a, b))
        np.testing.assert_array_equal(ref.frames, pred.frames)
        for key in ("cam", "joints3d", "vertices", "keypoints2d", "kps_crop", "translation"):
            assert getattr(pred, key).shape[0] == b - a
            np.testing.assert_allclose(getattr(pred, key), getattr(ref, key), **tol, err_msg=key)
        assert set(pred.deltas) == set(ref.deltas) == {-2, 2}
        pairs = [
            (pred.current, ref.current),
            *((pred.deltas[t], ref.deltas[t]) for t in ref.deltas),
        ]
        for params, want in pairs:
            for field in ("cam", "pose_aa", "pose_rotmat", "betas"):
                torch.testing.assert_close(getattr(params, field), getattr(want, field), **tol)
    if mode == "constant":  # the current pose also stands for every offset
        torch.testing.assert_close(got[0].deltas[2].pose_aa, got[0].current.pose_aa)
    else:
        assert not torch.allclose(got[0].deltas[2].pose_aa, got[0].current.pose_aa)


def test_windows_in_several_batches_give_the_same_outputs(predictor, video):
    source, tracks = video
    plans = [plan_crops(t, source.count, predictor.img_size) for t in tracks]
    cut_crops(source, plans, progress=False)
    one = predict_crops(predictor, plans, 100.0, (0.0, 0.0), max_windows=128)
    split = predict_crops(predictor, plans, 100.0, (0.0, 0.0), max_windows=2)  # 10 windows
    for a, b in zip(one, split, strict=True):
        np.testing.assert_allclose(b.joints3d, a.joints3d, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b.cam, a.cam, rtol=1e-5, atol=1e-5)
