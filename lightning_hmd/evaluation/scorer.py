"""The one scorer: a track's predictions and ground truth -> per-metric sums under a protocol,
and those sums -> the numbers a protocol reports.

Every reported metric (validation, ``evaluate``, ``evaluate --predictions``, the quickstart)
goes through :func:`score_track` and :func:`summarise`. A :class:`TrackScore` holds per metric
the sum and count of its per-frame (or per-window) values, so scores from different ranks
combine exactly, and the edge frames VIBE's concatenated-stream acceleration needs.

Frames are the M predicted frames of the track (all of them under HMMR's windows,
``Tester.predict_all_images`` in ``src/evaluation/tester.py``); the visibility rule, the
temporal windows and the averaging follow the protocol (:mod:`.protocols`). Metrics are in
millimetres (:mod:`lightning_hmd.metrics`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lightning_hmd.body.joints import NUM_LSP_JOINTS
from lightning_hmd.evaluation.outputs import TrackOutputs, TrackTruth
from lightning_hmd.evaluation.protocols import Averaging, Frame, Protocol
from lightning_hmd.geometry.alignment import align_by_pelvis
from lightning_hmd.metrics import (
    M_TO_MM,
    acceleration,
    acceleration_error,
    jitter,
    kp_error_px,
    mpjpe,
    pa_joint_errors,
    pa_mpjpe,
    pck_2d,
    pve,
    velocity_error,
)

EDGE = 2  # frames kept at each end of a track for the concatenated stream's windows


@dataclass
class TrackScore:
    """Sums and counts of every metric over one track's scored values.

    Attributes:
        key, dataset, sequence, track_id: the track (a video is (dataset, sequence)).
        frames: N, the track's frames; ``predicted``: M, those predicted (scored).
        sums, counts: metric -> sum of its values (float) and their number.
        head, tail: for a concatenated stream, the first / last ``EDGE`` predicted frames'
            temporal-frame joints, ``{"pred": (E, 14, 3), "gt": (E, 14, 3) or None}``.
        joint_sums: (14,) sums of the per-joint PA errors over the frames ``pa_mpjpe``
            counts (a report's picture), or None without 3D labels.
    """

    key: str
    dataset: str
    sequence: str
    track_id: int
    frames: int
    predicted: int
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    head: dict | None = None
    tail: dict | None = None
    joint_sums: np.ndarray | None = None

    def add(self, name: str, values: Tensor) -> None:
        """Add the finite entries of ``values`` to metric ``name`` (the key exists from then
        on, so a metric with nothing to count reads as missing, not as zero)."""
        v = values.detach().double().flatten()
        v = v[torch.isfinite(v)]
        self.sums[name] = self.sums.get(name, 0.0) + float(v.sum())
        self.counts[name] = self.counts.get(name, 0) + int(v.numel())

    def mean(self, name: str) -> float:
        count = self.counts.get(name, 0)
        return self.sums[name] / count if count else math.nan


def _lsp(joints: Tensor) -> Tensor:
    return joints[..., :NUM_LSP_JOINTS, :]


def _temporal(joints: Tensor, frame: Frame) -> Tensor:
    """The LSP joints temporal metrics use: raw, or pelvis-aligned per frame."""
    j = _lsp(joints).double()
    return align_by_pelvis(j) if frame is Frame.PELVIS else j


def _windows_ok(frames: np.ndarray, ok: np.ndarray, order: int) -> Tensor:
    """(M - order,) bool: windows of ``order + 1`` consecutive predicted entries that are
    consecutive frames and all ``ok``."""
    m = len(frames)
    if m <= order:
        return torch.zeros(0, dtype=torch.bool)
    good = np.ones(m - order, dtype=bool)
    for k in range(1, order + 1):
        good &= frames[k : m - order + k] - frames[: m - order] == k
    for k in range(order + 1):
        good &= ok[k : m - order + k]
    return torch.from_numpy(good)


def visible_3d(truth: TrackTruth, protocol: Protocol) -> np.ndarray:
    """(N,) bool: frames 3D metrics count. HMMR's rule (``compute_errors_batched``,
    ``src/evaluation/eval.py``): the visibilities of the 14 LSP keypoints sum to more than
    ``min_visible_3d``."""
    n = truth.num_frames
    if protocol.min_visible_3d is None:
        return np.ones(n, dtype=bool)
    vis = truth.kp2d[:, :NUM_LSP_JOINTS, 2].double().sum(dim=-1)
    return (vis > protocol.min_visible_3d).numpy()


@dataclass(frozen=True)
class _Scored:
    """A track's predictions and ground truth, at the M predicted frames.

    Attributes:
        out, truth: the predictions (M frames) and the track's ground truth (N frames).
        frames: (M,) the predicted frame numbers, increasing within [0, N).
        visible_all: (N,) bool, the frames 3D metrics count (:func:`visible_3d`).
        visible: (M,) bool, the same at the predicted frames.
        gt: (M, J, 3) the ground-truth 3D joints at the predicted frames, or None.
        pred_t, gt_t: (M, 14, 3) float64, the predicted / ground-truth LSP joints in the
            protocol's temporal frame (``gt_t`` None without 3D labels).
    """

    out: TrackOutputs
    truth: TrackTruth
    frames: np.ndarray
    visible_all: np.ndarray
    visible: np.ndarray
    gt: Tensor | None
    pred_t: Tensor
    gt_t: Tensor | None


def _predicted_frames(out: TrackOutputs, truth: TrackTruth) -> np.ndarray:
    """(M,) int64: ``out.frames``, checked to increase within the track's N frames."""
    f = np.asarray(out.frames, dtype=np.int64)
    n = truth.num_frames
    if len(f) and (f.min() < 0 or f.max() >= n or np.any(np.diff(f) <= 0)):
        raise ValueError(f"{truth.key}: predicted frames must increase within [0, {n})")
    return f


def _scored(out: TrackOutputs, truth: TrackTruth, protocol: Protocol, f: np.ndarray) -> _Scored:
    """The ground truth at the predicted frames ``f`` (M >= 1) and both sides' temporal joints."""
    visible_all = visible_3d(truth, protocol)
    gt = truth.joints3d[torch.from_numpy(f)] if truth.joints3d is not None else None
    pred_t = _temporal(out.joints, protocol.temporal_frame)
    gt_t = _temporal(gt, protocol.temporal_frame) if gt is not None else None
    return _Scored(out, truth, f, visible_all, visible_all[f], gt, pred_t, gt_t)


def _add_accuracy(score: TrackScore, sc: _Scored, protocol: Protocol, img_size: int) -> None:
    """Per-frame accuracy: 3D joint and vertex errors over the visible frames, 2D keypoint
    errors (their own visibility rule)."""
    out, truth, wanted = sc.out, sc.truth, set(protocol.metrics)
    fi, vmask = torch.from_numpy(sc.frames), torch.from_numpy(sc.visible)
    if sc.gt is not None:
        score.add("mpjpe", mpjpe(out.joints, sc.gt)[vmask])
        per_joint = pa_joint_errors(out.joints, sc.gt)[vmask].double()
        score.add("pa_mpjpe", per_joint.mean(dim=-1))
        score.joint_sums = per_joint.sum(dim=0).numpy()
    if truth.verts is not None and out.verts is not None and "pve" in wanted:
        score.add("pve", pve(out.verts, truth.verts[fi])[vmask])
    if truth.verts_tpose is not None and out.verts_tpose is not None and "pve_tpose" in wanted:
        score.add("pve_tpose", pve(out.verts_tpose, truth.verts_tpose[fi])[vmask])
    if out.kp2d is not None and wanted & {"kp", "kp_pa", "pck"}:
        kp = truth.kp2d[fi]
        m2 = protocol.min_visible_2d
        score.add("kp", kp_error_px(out.kp2d, kp, img_size, aligned=False, min_visible=m2))
        score.add("kp_pa", kp_error_px(out.kp2d, kp, img_size, aligned=True, min_visible=m2))
        score.add("pck", pck_2d(out.kp2d, kp, img_size, min_visible=m2))


def _add_temporal(score: TrackScore, sc: _Scored) -> None:
    """Temporal quality within the track, over windows of consecutive predicted frames (all
    of them for the prediction's own smoothness, visible ones against the ground truth). The
    joints are already in the protocol's frame: the metrics take them as they are."""
    f = sc.frames
    every = np.ones(len(f), dtype=bool)
    ok_acc = _windows_ok(f, every, 2)
    if len(ok_acc):
        score.add("accel", acceleration(sc.pred_t)[ok_acc])
    ok_jerk = _windows_ok(f, every, 3)
    if len(ok_jerk):
        score.add("jitter", jitter(sc.pred_t)[ok_jerk])
    if sc.gt_t is not None:
        ok_vel, ok_acc_gt = _windows_ok(f, sc.visible, 1), _windows_ok(f, sc.visible, 2)
        if len(ok_vel):
            score.add("vel_error", velocity_error(sc.pred_t, sc.gt_t)[ok_vel])
        if len(ok_acc_gt):
            score.add("accel_error", acceleration_error(sc.pred_t, sc.gt_t, "hmmr")[ok_acc_gt])


def _delta_pairs(frames: np.ndarray, dt: int, visible_all: np.ndarray) -> tuple[Tensor, Tensor]:
    """For offset ``dt``: the positions ``src`` (in ``frames``) whose frame + dt is also
    predicted and visible, and ``tgt``, the position of that frame; both (K,) int64."""
    n = len(visible_all)
    slot = np.full(n, -1, dtype=np.int64)
    slot[frames] = np.arange(len(frames))
    target = frames + dt
    inside = (target >= 0) & (target < n)
    src = np.flatnonzero(inside)
    tgt = slot[target[inside]]
    keep = (tgt >= 0) & visible_all[target[inside]]
    return torch.from_numpy(src[keep]), torch.from_numpy(tgt[keep])


def _add_delta_errors(score: TrackScore, sc: _Scored) -> None:
    """Δt heads: the pose predicted at t for t + Δt against the ground truth at t + Δt."""
    for dt, joints in sorted(sc.out.deltas.items()):
        src, tgt = _delta_pairs(sc.frames, dt, sc.visible_all)
        score.add(f"mpjpe_dt{dt:+d}", mpjpe(joints[src], sc.gt[tgt]))
        score.add(f"pa_mpjpe_dt{dt:+d}", pa_mpjpe(joints[src], sc.gt[tgt]))


def score_track(
    out: TrackOutputs, truth: TrackTruth, protocol: Protocol, img_size: int
) -> TrackScore:
    """Every metric of ``protocol`` over one track.

    Args:
        out: the predictions of M frames of the track (``out.frames``).
        truth: the track's ground truth (N frames).
        protocol: the rules.
        img_size: crop side in pixels (2D metrics).
    """
    f, n = _predicted_frames(out, truth), truth.num_frames
    score = TrackScore(truth.key, truth.dataset, truth.sequence, truth.track_id, n, len(f))
    if len(f) == 0:  # not predicted under this protocol (e.g. shorter than its windows)
        return score
    sc = _scored(out, truth, protocol, f)
    _add_accuracy(score, sc, protocol, img_size)
    _add_temporal(score, sc)
    if sc.gt is not None:
        _add_delta_errors(score, sc)
    if protocol.concatenated_accel:
        gt_t = sc.gt_t
        score.head = _edge(sc.pred_t[:EDGE], gt_t[:EDGE] if gt_t is not None else None)
        score.tail = _edge(sc.pred_t[-EDGE:], gt_t[-EDGE:] if gt_t is not None else None)
    return score


def _edge(pred: Tensor, gt: Tensor | None) -> dict:
    return {"pred": pred.numpy(), "gt": None if gt is None else gt.numpy()}


def _stream_boundaries(scores: Sequence[TrackScore]) -> tuple[list[float], list[float]]:
    """The ``accel`` and ``accel_error`` values of the windows that straddle consecutive
    tracks when the tracks are concatenated in this order (VIBE's evaluator)."""
    accel, accel_err = [], []
    tail_p: np.ndarray | None = None  # the stream's last EDGE frames so far
    tail_g: np.ndarray | None = None
    for s in scores:
        if s.head is None:
            continue
        hp, hg = s.head["pred"], s.head["gt"]
        if tail_p is not None:
            p = np.concatenate([tail_p, hp])
            g = None if tail_g is None or hg is None else np.concatenate([tail_g, hg])
            k = len(tail_p)
            for i in range(max(0, k - 2), min(k, len(p) - 2)):  # windows on both sides
                a = p[i] - 2 * p[i + 1] + p[i + 2]
                accel.append(float(np.linalg.norm(a, axis=-1).mean() * M_TO_MM))
                if g is not None:
                    e = a - (g[i] - 2 * g[i + 1] + g[i + 2])
                    accel_err.append(float(np.linalg.norm(e, axis=-1).mean() * M_TO_MM))
        if s.predicted >= EDGE or tail_p is None:
            tail_p, tail_g = s.tail["pred"], s.tail["gt"]
        else:  # a track shorter than EDGE extends the previous tail
            tail_g = None if tail_g is None or hg is None else np.concatenate([tail_g, hg])[-EDGE:]
            tail_p = np.concatenate([tail_p, hp])[-EDGE:]
    return accel, accel_err


def metric_names(scores: Sequence[TrackScore], protocol: Protocol) -> list[str]:
    """The protocol's metrics, then the Δt errors that occur, in a fixed order."""
    extra = sorted(
        {k for s in scores for k in s.sums if k not in protocol.metrics and "_dt" in k},
        key=lambda k: (not k.startswith("mpjpe"), int(k.rsplit("dt", 1)[1])),
    )
    return [*protocol.metrics, *extra]


@dataclass(frozen=True)
class VideoRow:
    """One video's means (the averaging unit of HMMR's protocol: ``main`` of
    ``src/evaluation/eval.py``)."""

    dataset: str
    sequence: str
    tracks: int
    frames: int
    predicted: int
    values: dict[str, float]


def video_rows(scores: Sequence[TrackScore], names: Sequence[str]) -> list[VideoRow]:
    """Per video (dataset, sequence): all its tracks' values pooled, NaN where none."""
    groups: dict[tuple[str, str], list[TrackScore]] = defaultdict(list)
    for s in scores:
        groups[(s.dataset, s.sequence)].append(s)
    rows = []
    for (ds, seq), ss in sorted(groups.items()):
        values = {}
        for m in names:
            count = sum(s.counts.get(m, 0) for s in ss)
            values[m] = sum(s.sums.get(m, 0.0) for s in ss) / count if count else math.nan
        frames, predicted = sum(s.frames for s in ss), sum(s.predicted for s in ss)
        rows.append(VideoRow(ds, seq, len(ss), frames, predicted, values))
    return rows


def _pooled(scores: Sequence[TrackScore], names: Sequence[str], protocol: Protocol) -> dict:
    sums = {m: sum(s.sums.get(m, 0.0) for s in scores) for m in names}
    counts = {m: sum(s.counts.get(m, 0) for s in scores) for m in names}
    if protocol.concatenated_accel:
        for ds in sorted({s.dataset for s in scores}):
            accel, err = _stream_boundaries([s for s in scores if s.dataset == ds])
            for m, vals in (("accel", accel), ("accel_error", err)):
                if m in sums:
                    sums[m] += float(np.sum(vals))
                    counts[m] += len(vals)
    return {m: sums[m] / counts[m] if counts[m] else None for m in names}


def _video_mean(rows: Sequence[VideoRow], names: Sequence[str]) -> dict:
    out = {}
    for m in names:
        vals = [r.values[m] for r in rows if math.isfinite(r.values[m])]
        out[m] = float(np.mean(vals)) if vals else None
    return out


@dataclass(frozen=True)
class Summary:
    """A protocol's numbers over a set of tracks.

    Attributes:
        metrics: the headline numbers (None where nothing was scored).
        by_dataset: the same per dataset.
        videos: per-video means.
        tracks, frames, predicted: counts of tracks, their frames and the frames scored.
        per_joint_pa: (14,) PA error per LSP joint, frames pooled (for pictures), or None.
    """

    metrics: dict[str, float | None]
    by_dataset: dict[str, dict[str, float | None]]
    videos: list[VideoRow]
    tracks: int
    frames: int
    predicted: int
    per_joint_pa: np.ndarray | None = None


def summarise(scores: Sequence[TrackScore], protocol: Protocol) -> Summary:
    """The protocol's averaging over tracks (in key order; each dataset's tracks form the
    concatenated stream where the protocol has one)."""
    scores = sorted(scores, key=lambda s: s.key)
    names = metric_names(scores, protocol)
    rows = video_rows(scores, names)

    def headline(part: Sequence[TrackScore], part_rows: Sequence[VideoRow]) -> dict:
        if protocol.averaging is Averaging.VIDEO:
            return _video_mean(part_rows, names)
        return _pooled(part, names, protocol)

    by_dataset = {
        ds: headline([s for s in scores if s.dataset == ds], [r for r in rows if r.dataset == ds])
        for ds in sorted({s.dataset for s in scores})
    }
    return Summary(
        metrics=headline(scores, rows),
        by_dataset=by_dataset,
        videos=rows,
        tracks=len(scores),
        frames=sum(s.frames for s in scores),
        predicted=sum(s.predicted for s in scores),
        per_joint_pa=_per_joint(scores),
    )


def _per_joint(scores: Sequence[TrackScore]) -> np.ndarray | None:
    """(14,) per-joint PA error over every frame ``pa_mpjpe`` counts (frames pooled)."""
    parts = [
        (s.joint_sums, s.counts.get("pa_mpjpe", 0)) for s in scores if s.joint_sums is not None
    ]
    count = sum(c for _, c in parts)
    return sum(j for j, _ in parts) / count if count else None
