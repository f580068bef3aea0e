"""The one scorer: windowed prediction, HMMR's visibility filter and averaging by hand, and each
protocol against a direct numpy statement of the original evaluation code.

The references below are written from akanazawa/human_dynamics (src/evaluation/eval.py:
compute_errors_batched, eval_util.py: compute_error_3d, compute_error_accel, compute_accel,
compute_error_kp, mean_of_dict_values), mkocabas/VIBE (lib/core/evaluate.py:
Evaluator.evaluate) and hongsukchoi/TCMR_RELEASE (evaluate.py), in numpy, without calling the
code under test.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from lightning_hmd.config import load_config
from lightning_hmd.evaluation.outputs import TrackOutputs, TrackTruth
from lightning_hmd.evaluation.predict import predict_clip
from lightning_hmd.evaluation.protocols import HMMR, PROTOCOLS, TCMR, VIBE, get_protocol
from lightning_hmd.evaluation.scorer import score_track, summarise
from lightning_hmd.evaluation.windows import make_plan, receptive_margin
from lightning_hmd.models.build import build_generator

IMG = 224


# -- windowed prediction --------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator():
    cfg = load_config("tiny", overrides=["model.temporal.num_blocks=2", "model.feat_dim=16"])
    torch.manual_seed(0)
    g = build_generator(cfg.model, torch.zeros(24, 3), torch.zeros(10), with_image_encoder=False)
    return g.eval()


@pytest.mark.parametrize("windowing", ["centre", "chunks", "sliding"])
@pytest.mark.parametrize("n", [5, 12, 31])
def test_each_frame_comes_from_its_window_of_the_plan(generator, windowing, n):
    T = 8
    phi = torch.randn(n, 16, generator=torch.Generator().manual_seed(n))
    blank = torch.randn(16, generator=torch.Generator().manual_seed(99))
    pred = predict_clip(generator, phi, T, windowing=windowing, blank=blank, max_windows=2)
    plan = make_plan(windowing, n, T, receptive_margin(2))
    assert pred.frames.tolist() == np.flatnonzero(plan.predicted).tolist()
    row = {int(f): i for i, f in enumerate(pred.frames)}
    for w in range(len(plan.inputs)):
        idx = plan.inputs[w]
        x = torch.stack([phi[i] if 0 <= i < n else blank for i in idx])[None]
        with torch.no_grad():
            direct = generator.predict(generator.temporal(x))
        for p in np.flatnonzero(plan.outputs[w] >= 0):
            f = row[int(plan.outputs[w, p])]
            torch.testing.assert_close(pred.current.pose_aa[f], direct.current.pose_aa[0, p])
            torch.testing.assert_close(pred.deltas[2].betas[f], direct.deltas[2].betas[0, p])


def test_padding_is_blank_frames_or_repeated_edges(generator):
    phi = torch.randn(10, 16, generator=torch.Generator().manual_seed(3))
    edge = predict_clip(generator, phi, 8)
    same = predict_clip(generator, torch.cat([phi[:1].expand(4, -1), phi]), 8)
    blank = predict_clip(generator, phi, 8, blank=torch.zeros(16))
    # the first window starts 4 frames before the track (margin of 2 blocks): edge padding
    # equals a track that really begins with four copies of its first frame
    torch.testing.assert_close(edge.current.pose_aa[0], same.current.pose_aa[4])
    assert (blank.current.pose_aa[0] - edge.current.pose_aa[0]).abs().max() > 1e-5


def test_hmmr_pads_models_on_images_with_a_blank_crop():
    from lightning_hmd.evaluation.run import padding_feature

    cfg = load_config("tiny", overrides=["model.encoder=small_cnn"])
    torch.manual_seed(0)
    g = build_generator(cfg.model, torch.zeros(24, 3), torch.zeros(10), with_image_encoder=True)
    g = g.eval()
    blank = padding_feature(g, HMMR, "images", 64)
    with torch.no_grad():
        want = g.encode_images(torch.zeros(1, 1, 3, 64, 64))[0, 0]
    torch.testing.assert_close(blank, want)
    assert blank.abs().sum() > 0  # a real encoding, not zeros
    assert padding_feature(g, HMMR, "features", 64) is None  # features: edge frames
    assert padding_feature(g, VIBE, "images", 64) is None  # VIBE's windows never pad


def test_modes(generator):
    phi = torch.randn(5, 16)
    pred = predict_clip(generator, phi, 12, mode="constant")
    assert pred.current.pose_aa.shape == (5, 24, 3)
    for dt in (-2, 2):
        assert pred.deltas[dt] is pred.current
    hal = predict_clip(generator, phi, 12, mode="hallucinator")
    assert (hal.current.pose_aa - pred.current.pose_aa).abs().max() > 1e-5
    with pytest.raises(ValueError, match="mode must be one of"):
        predict_clip(generator, phi, 12, mode="oracle")
    assert predict_clip(generator, phi, 12, windowing="chunks").num_predicted == 0


# -- HMMR's visibility filter and averaging, by hand ----------------------------------------


def _track(key, seq, gt, pred, vis_count, *, dataset="3dpw", verts=None):
    """A track whose frames have ``vis_count[t]`` visible LSP keypoints (all 11 others
    visible), GT joints ``gt`` and predicted joints ``pred`` (N, 14, 3)."""
    n = len(gt)
    kp = np.zeros((n, 25, 3), np.float32)
    for t, c in enumerate(vis_count):
        kp[t, :c, 2] = 1.0
        kp[t, 14:, 2] = 1.0
    truth = TrackTruth(key, dataset, seq, 0, torch.from_numpy(kp), torch.from_numpy(gt))
    out = TrackOutputs(np.arange(n), torch.from_numpy(pred))
    if verts is not None:
        truth.verts, out.verts = (torch.from_numpy(v) for v in verts)
    return truth, out


def _body(n, seed):
    """(N, 14, 3) joints moving smoothly, in metres."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.3, (14, 3))
    t = np.arange(n)[:, None, None]
    return (base + 0.01 * t * rng.normal(size=(1, 14, 3))).astype(np.float32)


def test_hmmr_visibility_filter_and_per_video_averaging_by_hand():
    """Joint 0 (right ankle, not a hip) of the prediction is off by d_t metres along x, so the
    pelvis-aligned error of a frame is d_t / 14 m and its acceleration error
    |d_{t-1} - 2 d_t + d_{t+1}| / 14 m: every expected number is computed by hand here."""
    n = 8
    d_a = np.array([0.14, 0.28, 0.14, 0.7, 0.14, 0.14, 0.28, 0.14])
    d_b = np.array([0.28] * 6)
    d_c = np.array([1.4, 0.0, 0.0, 1.4])
    vis_a = [14, 14, 14, 3, 14, 7, 6, 14]  # frames 3 and 6 fail (sum must be > 6)
    tracks = []
    for key, seq, d, vis in (("v1_t0", "v1", d_a, vis_a), ("v1_t1", "v1", d_b, [14] * 6),
                             ("v2_t0", "v2", d_c, [14] * 4)):  # fmt: skip
        gt = _body(len(d), len(key) + len(d))
        pred = gt.copy()
        pred[:, 0, 0] += d
        tracks.append(_track(key, seq, gt, pred, vis))
    scores = [score_track(out, truth, HMMR, IMG) for truth, out in tracks]
    s = summarise(scores, HMMR)

    # MPJPE: video v1 pools the 6 visible frames of track 0 and the 6 frames of track 1
    a = [0.14, 0.28, 0.14, 0.14, 0.14, 0.14]  # frames 0, 1, 2, 4, 5, 7 of track 0
    v1 = (sum(a) + 6 * 0.28) / 12 / 14 * 1000
    v2 = np.mean(d_c) / 14 * 1000
    assert s.metrics["mpjpe"] == pytest.approx((v1 + v2) / 2, rel=1e-6)
    assert s.by_dataset["3dpw"]["mpjpe"] == pytest.approx((v1 + v2) / 2, rel=1e-6)
    rows = {r.sequence: r for r in s.videos}
    assert rows["v1"].values["mpjpe"] == pytest.approx(v1, rel=1e-6)
    assert (rows["v1"].tracks, rows["v1"].frames) == (2, 14)
    # a frame-weighted mean (VIBE's averaging) of the same frames differs
    pooled = (sum(a) + 6 * 0.28 + d_c.sum()) / 16 / 14 * 1000
    assert abs(pooled - s.metrics["mpjpe"]) > 1.0
    # without the filter (every frame counts) the number differs too
    assert abs(np.mean(d_a) / 14 * 1000 - scores[0].mean("mpjpe")) > 1.0
    assert scores[0].counts["mpjpe"] == 6

    # accel_error: windows (0,1,2) (4,5,6)... of track 0 touching frame 3 or 6 are dropped
    acc = np.abs(d_a[:-2] - 2 * d_a[1:-1] + d_a[2:]) / 14 * 1000
    keep = [0]  # centres 1..6: windows 1-3 touch frame 3, 4-6 touch frame 6
    assert scores[0].counts["accel_error"] == len(keep)
    acc_b = np.abs(d_b[:-2] - 2 * d_b[1:-1] + d_b[2:]) / 14 * 1000
    acc_c = np.abs(d_c[:-2] - 2 * d_c[1:-1] + d_c[2:]) / 14 * 1000
    v1_acc = (acc[keep].sum() + acc_b.sum()) / (len(keep) + len(acc_b))
    assert s.metrics["accel_error"] == pytest.approx((v1_acc + acc_c.mean()) / 2, rel=1e-5)
    # vel_error drops the pairs touching frames 3 and 6 of track 0
    vel = np.abs(np.diff(d_a)) / 14 * 1000
    assert scores[0].mean("vel_error") == pytest.approx(vel[[0, 1, 4]].mean(), rel=1e-5)
    # accel (prediction only) counts every window, visible or not
    assert scores[0].counts["accel"] == n - 2


# -- each protocol against a direct numpy statement of its original code ---------------------


def similarity_transform(S1, S2):
    """eval_util.compute_similarity_transform (HMMR; VIBE's and TCMR's copies are the same)."""
    S1, S2 = S1.T, S2.T
    mu1, mu2 = S1.mean(axis=1, keepdims=True), S2.mean(axis=1, keepdims=True)
    X1, X2 = S1 - mu1, S2 - mu2
    var1 = np.sum(X1**2)
    K = X1.dot(X2.T)
    U, _, Vh = np.linalg.svd(K)
    V = Vh.T
    Z = np.eye(U.shape[0])
    Z[-1, -1] *= np.sign(np.linalg.det(U.dot(V.T)))
    R = V.dot(Z.dot(U.T))
    scale = np.trace(R.dot(K)) / var1
    t = mu2 - scale * (R.dot(mu1))
    return (scale * R.dot(S1) + t).T


def align(j):
    return j - (j[:, [2]] + j[:, [3]]) / 2.0


def accel_of(j):
    return np.linalg.norm(j[2:] - 2 * j[1:-1] + j[:-2], axis=2).mean(axis=1)


def error_accel(gt, pred, vis=None):
    normed = np.linalg.norm((pred[:-2] - 2 * pred[1:-1] + pred[2:])
                            - (gt[:-2] - 2 * gt[1:-1] + gt[2:]), axis=2)  # fmt: skip
    if vis is None:
        return normed.mean(axis=1)
    invis = ~vis
    bad = (invis | np.roll(invis, -1) | np.roll(invis, -2))[:-2]
    return normed[~bad].mean(axis=1)


def kp_errors(kps_gt_px, kps_pred_px, alpha, min_visible=6):
    """eval_util.compute_error_kp."""
    kp, kp_pa, pck = [], [], []
    for g, p in zip(kps_gt_px, kps_pred_px, strict=True):
        vis = g[:, 2].astype(bool)
        g = g[:, :2]
        if np.sum(vis) < min_visible:
            kp.append(np.nan), kp_pa.append(np.nan), pck.append(np.nan)
            continue
        mu1, mu2 = p[vis].sum(0) / vis.sum(), g[vis].sum(0) / vis.sum()
        x, y = (p - mu1) * vis[:, None], (g - mu2) * vis[:, None]
        scale = np.trace(np.linalg.inv(x.T @ x + 1e-6 * np.eye(2)) @ (x.T @ y)) / 2.0
        p_pa = scale * (p + mu2 / scale - mu1)
        d, d_pa = (np.linalg.norm(g[vis] - q[vis], axis=1) for q in (p, p_pa))
        kp.append(d.mean()), kp_pa.append(d_pa.mean()), pck.append((d_pa < alpha).mean())
    return kp, kp_pa, pck


def hmmr_reference(videos):
    """eval.py main loop for one dataset: per person compute_errors_batched, extended per
    video, mean_of_dict_values (nanmean per video, then over videos); metres -> mm."""
    per_video = {}
    for tracks in videos:
        res = {}
        for t in tracks:
            vis = t["kp"][:, :14, 2].sum(axis=1) > 6
            px = t["kp"].copy()
            px[..., :2] = (px[..., :2] + 1) * 0.5 * IMG
            kp, kp_pa, pck = kp_errors(px, (t["kp_pred"] + 1) * 0.5 * IMG, 0.05 * IMG)
            mp, pa = [], []
            for i in np.flatnonzero(vis):
                g, p = align(t["gt"][i : i + 1])[0], align(t["pred"][i : i + 1])[0]
                mp.append(np.linalg.norm(g - p, axis=1).mean())
                pa.append(np.linalg.norm(g - similarity_transform(p, g), axis=1).mean())
            errs = {
                "accel": accel_of(t["pred"]),
                "kp": kp, "kp_pa": kp_pa, "pck": pck,
                "accel_error": error_accel(t["gt"], t["pred"], vis),
                "mpjpe": mp, "pa_mpjpe": pa,
                "pve": np.linalg.norm(t["verts_gt"][vis] - t["verts"][vis], axis=2).mean(1),
            }  # fmt: skip
            for k, v in errs.items():
                res.setdefault(k, []).extend(list(v))
        for k, v in res.items():
            per_video.setdefault(k, []).append(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {k: np.nanmean([np.nanmean(v) for v in vs]) for k, vs in per_video.items()}


def vibe_reference(tracks, T):
    """Evaluator.evaluate on VIBE's test windows (non-overlapping T, tails dropped), every
    window's predictions concatenated in order."""
    pick = [(t, (len(t["gt"]) // T) * T) for t in tracks if len(t["gt"]) >= T]
    pred = np.concatenate([t["pred"][:m] for t, m in pick])
    gt = np.concatenate([t["gt"][:m] for t, m in pick])
    verts = np.concatenate([t["verts"][:m] for t, m in pick])
    verts_gt = np.concatenate([t["verts_gt"][:m] for t, m in pick])
    pred, gt = align(pred), align(gt)
    pa = [similarity_transform(p, g) for p, g in zip(pred, gt, strict=True)]
    return {
        "mpjpe": np.linalg.norm(pred - gt, axis=2).mean(),
        "pa_mpjpe": np.linalg.norm(np.stack(pa) - gt, axis=2).mean(),
        "pve": np.linalg.norm(verts_gt - verts, axis=2).mean(),
        "accel": accel_of(pred).mean(),
        "accel_error": error_accel(gt, pred).mean(),
    }


def tcmr_reference(tracks, T):
    """evaluate.py's loop: per sequence (N >= T), pelvis-aligned per-frame errors; accel_err
    without the first and last frame; all frames concatenated, then the mean."""
    full = {}
    for t in tracks:
        if len(t["gt"]) < T:
            continue
        pred, gt = align(t["pred"]), align(t["gt"])
        pa = np.stack([similarity_transform(p, g) for p, g in zip(pred, gt, strict=True)])
        acc = np.zeros(len(pred))
        acc[1:-1] = error_accel(gt, pred)
        vals = {
            "mpjpe": np.linalg.norm(pred - gt, axis=2).mean(1),
            "pa_mpjpe": np.linalg.norm(pa - gt, axis=2).mean(1),
            "accel_error": acc[1:-1],
            "pve": np.linalg.norm(t["verts_gt"] - t["verts"], axis=2).mean(1),
        }
        for k, v in vals.items():
            full.setdefault(k, []).append(v)
    return {k: np.concatenate(v).mean() for k, v in full.items()}


def fixture_tracks():
    """Videos of 1-3 tracks of 5-40 frames: noisy predictions, poor visibility in places."""
    rng = np.random.default_rng(7)
    videos = []
    for v, lengths in enumerate([[40, 17], [23], [5, 33, 16]]):
        tracks = []
        for i, n in enumerate(lengths):
            gt = _body(n, 10 * v + i) + np.linspace(0, 0.5, n)[:, None, None]  # a trajectory
            pred = gt + rng.normal(0, 0.04, gt.shape).astype(np.float32)
            kp = rng.uniform(-0.9, 0.9, (n, 25, 3)).astype(np.float32)
            kp[..., 2] = rng.uniform(size=(n, 25)) < 0.6
            kp_pred = kp[..., :2] + rng.normal(0, 0.03, (n, 25, 2)).astype(np.float32)
            verts_gt = rng.normal(size=(n, 30, 3)).astype(np.float32)
            verts = verts_gt + rng.normal(0, 0.05, verts_gt.shape).astype(np.float32)
            tracks.append(dict(key=f"3dpw__s{v}__t{i:04d}_c0000", seq=f"s{v}", gt=gt,
                               pred=pred, kp=kp, kp_pred=kp_pred, verts=verts,
                               verts_gt=verts_gt))  # fmt: skip
        videos.append(tracks)
    return videos


def _scores(videos, protocol, T):
    out = []
    for tracks in videos:
        for t in tracks:
            n = len(t["gt"])
            f = np.flatnonzero(make_plan(protocol.windowing, n, T, 6).predicted)
            truth = TrackTruth(t["key"], "3dpw", t["seq"], 0, torch.from_numpy(t["kp"]),
                               torch.from_numpy(t["gt"]),
                               torch.from_numpy(t["verts_gt"]))  # fmt: skip
            pred = TrackOutputs(f, torch.from_numpy(t["pred"][f]),
                                torch.from_numpy(t["kp_pred"][f]),
                                torch.from_numpy(t["verts"][f]))  # fmt: skip
            out.append(score_track(pred, truth, protocol, IMG))
    return summarise(out, protocol)


def test_hmmr_protocol_is_hmmrs_evaluation():
    videos = fixture_tracks()
    ref = hmmr_reference(videos)
    got = _scores(videos, HMMR, 20).metrics
    for k in ("mpjpe", "pa_mpjpe", "pve", "accel", "accel_error"):
        assert got[k] == pytest.approx(ref[k] * 1000, rel=1e-5), k
    for k in ("kp", "kp_pa", "pck"):
        assert got[k] == pytest.approx(ref[k], rel=1e-5), k


@pytest.mark.parametrize("T", [16, 8])
def test_vibe_protocol_is_vibes_evaluator(T):
    videos = fixture_tracks()
    tracks = sorted((t for ts in videos for t in ts), key=lambda t: t["key"])
    ref = vibe_reference(tracks, T)
    got = _scores(videos, VIBE, T).metrics
    for k, v in ref.items():
        assert got[k] == pytest.approx(v * 1000, rel=1e-5), k


def test_tcmr_protocol_is_tcmrs_evaluation():
    videos = fixture_tracks()
    ref = tcmr_reference([t for ts in videos for t in ts], 16)
    got = _scores(videos, TCMR, 16).metrics
    for k, v in ref.items():
        assert got[k] == pytest.approx(v * 1000, rel=1e-5), k


def test_protocols_disagree_on_the_same_predictions():
    videos = fixture_tracks()
    pa = {name: _scores(videos, p, 16).metrics["accel_error"] for name, p in PROTOCOLS.items()}
    assert len({round(v, 3) for v in pa.values()}) == 3  # raw vs aligned, filter, stream


def test_temporal_quality_by_hand():
    """vel_error and jitter of a prediction lagging the GT, computed by hand."""
    n = 12
    gt = np.zeros((n, 14, 3), np.float32)
    gt[:, :, 0] = (0.01 * np.arange(n) ** 2)[:, None]  # accelerating along x
    pred = gt.copy()
    pred[:, 5, 1] += 0.001 * np.arange(n) ** 3  # joint 5 drifts cubically along y
    truth, out = _track("k", "s", gt, pred, [14] * n)
    s = score_track(out, truth, HMMR, IMG)
    vel = np.abs(np.diff(0.001 * np.arange(n) ** 3)) / 14 * 1000
    assert s.mean("vel_error") == pytest.approx(vel.mean(), rel=1e-5)
    jerk_joint5 = np.full(n - 3, 0.006)  # third difference of 0.001 t^3
    jerk = np.hypot(jerk_joint5, 0.0) / 14 * 1000  # x: 0.01 t^2 has no jerk
    assert s.mean("jitter") == pytest.approx(jerk.mean(), rel=1e-4)


def test_unknown_protocol_is_named():
    assert get_protocol("vibe") is VIBE
    with pytest.raises(ValueError, match="unknown evaluation protocol 'spin'; available: hmmr"):
        get_protocol("spin")
    assert all(p.card and math.isfinite(len(p.metrics)) for p in PROTOCOLS.values())
