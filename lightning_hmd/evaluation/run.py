"""``lightning-hmd evaluate``: a checkpoint over evaluation shards -> ``metrics.json`` and a
per-sequence CSV.

Every clip (one sample of a shard set) is a sequence: its frames are encoded once, predicted
through HMMR's centre windows (:mod:`.predict`), and scored per frame; sequence means are
averaged over sequences. Under ``torch.distributed`` each rank scores its share of the clips
(split at sample granularity, as the reader splits them) and rank 0 gathers the rows, so the
numbers equal a single process's.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.assign import read_sets, slot_range, spans
from lightning_hmd.data.loader import WindowMaker
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.stream import Read, SkipCounter, read_span
from lightning_hmd.evaluation.predict import ClipPrediction, encode_frames, predict_clip
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.metrics import acceleration, acceleration_error, mpjpe, pa_mpjpe, pck_2d, pve
from lightning_hmd.models.generator import HMMRGenerator

METRICS = ("mpjpe", "pa_mpjpe", "pve", "pck", "accel", "accel_error")
PROTOCOL = {
    "joints": "14 LSP joints; mpjpe after pelvis alignment, pa_mpjpe after similarity "
    "Procrustes (mm)",
    "pve": "per-vertex error of the posed mesh without alignment, frames with SMPL labels (mm)",
    "pck": "2D keypoints within 0.05 x img_size px after the optimal 2D scale and translation",
    "accel": "predicted joints' acceleration (mm/frame^2); accel_error against the GT, raw "
    "joints (HMMR protocol)",
    "averaging": "per-frame values averaged per sequence (a clip), then over sequences",
}


@dataclass
class SequenceRow:
    """One clip's metrics (NaN where the clip has no label for a metric)."""

    key: str
    dataset: str
    sequence: str
    frames: int
    values: dict[str, float]


def _nanmean(x: torch.Tensor) -> float:
    x = x[torch.isfinite(x)]
    return float(x.mean()) if x.numel() else math.nan


@torch.no_grad()
def score_clip(
    pred: ClipPrediction, sample: ClipSample, body: BodyModel, img_size: int
) -> dict[str, float]:
    """Per-clip means of every metric (and of the Δt errors, ``mpjpe_dt+5``...)."""
    cur = pred.current
    joints = body(cur.pose_rotmat, cur.betas, joints_only=True).joints  # (N, K, 3)
    kp = torch.from_numpy(np.asarray(sample.kp2d, np.float32))
    out = {k: math.nan for k in METRICS}
    out["pck"] = _nanmean(pck_2d(project_weak_perspective(joints, cur.cam), kp, img_size))
    out["accel"] = _nanmean(acceleration(joints)) if len(joints) > 2 else math.nan
    if sample.joints3d is not None:
        gt = torch.from_numpy(np.asarray(sample.joints3d, np.float32))
        out["mpjpe"] = _nanmean(mpjpe(joints, gt))
        out["pa_mpjpe"] = _nanmean(pa_mpjpe(joints, gt))
        if len(joints) > 2:
            out["accel_error"] = _nanmean(acceleration_error(joints, gt))
        for dt, params in pred.deltas.items():
            lo, hi = max(0, -dt), min(len(joints), len(joints) - dt)
            if hi <= lo:
                continue
            pj = body(params.pose_rotmat[lo:hi], params.betas[lo:hi], joints_only=True).joints
            out[f"mpjpe_dt{dt:+d}"] = _nanmean(mpjpe(pj, gt[lo + dt : hi + dt]))
            out[f"pa_mpjpe_dt{dt:+d}"] = _nanmean(pa_mpjpe(pj, gt[lo + dt : hi + dt]))
    if sample.pose is not None:
        gt_rot = axis_angle_to_matrix(
            torch.from_numpy(np.asarray(sample.pose, np.float32)).view(-1, 24, 3)
        )
        gt_verts = body(gt_rot, torch.from_numpy(np.asarray(sample.betas, np.float32))).vertices
        out["pve"] = _nanmean(pve(body(cur.pose_rotmat, cur.betas).vertices, gt_verts))
    return out


def clip_features(generator: HMMRGenerator, maker: WindowMaker, read: Read) -> torch.Tensor:
    """(N, D) features of a whole clip: stored phi, or its centre crops encoded once."""
    sample = read.sample
    if maker.inputs == "features":
        return torch.from_numpy(np.asarray(sample.phi)).float()
    n = sample.num_frames
    ones = np.ones(n, dtype=bool)
    item = maker.make(sample, read.key, 0, ones, ones, None)
    images = torch.from_numpy(np.ascontiguousarray(item.images.transpose(0, 3, 1, 2)))
    return encode_frames(generator, images)


def read_clips(
    set_dirs: Sequence[str | Path], counter: SkipCounter, rank: int = 0, world_size: int = 1
) -> Iterator[Read]:
    """This rank's share of the clips of ``set_dirs`` (sample granularity, the reader's split);
    bad samples are skipped and counted in ``counter``."""
    shards = read_sets(list(set_dirs), "clip")[1]
    total = sum(s.samples for s in shards)
    for span in spans(shards, *slot_range(total, rank, world_size)):
        yield from read_span(span, "clip", counter)


def score_sets(
    generator: HMMRGenerator,
    body: BodyModel,
    set_dirs: Sequence[str | Path],
    *,
    seq_len: int,
    inputs: str,
    img_size: int,
    mode: str,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[list[SequenceRow], dict[str, int]]:
    """Rows of this rank's clips, and the skipped-sample counts."""
    generator.eval()
    counter = SkipCounter()
    maker = WindowMaker(inputs, img_size, None)
    rows = []
    for read in read_clips(set_dirs, counter, rank, world_size):
        maker.check(read)
        pred = predict_clip(generator, clip_features(generator, maker, read), seq_len, mode)
        s = read.sample
        values = score_clip(pred, s, body, img_size)
        rows.append(SequenceRow(read.key, s.dataset, s.sequence, s.num_frames, values))
    return rows, dict(counter.counts)


def summarise(rows: Sequence[SequenceRow]) -> dict[str, float]:
    """Mean over sequences of each metric's per-sequence mean (NaN rows skipped)."""
    keys = sorted({k for r in rows for k in r.values}, key=lambda k: (k not in METRICS, k))
    out = {}
    for k in keys:
        vals = [r.values.get(k, math.nan) for r in rows]
        vals = [v for v in vals if math.isfinite(v)]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def gather_rows(rows: list[SequenceRow], skipped: Mapping[str, int]) -> tuple[list, dict]:
    """All ranks' rows on every rank (sorted by key), and the summed skip counts."""
    if not (dist.is_available() and dist.is_initialized()):
        return sorted(rows, key=lambda r: r.key), dict(skipped)
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (rows, dict(skipped)))
    all_rows = sorted((r for p in parts for r in p[0]), key=lambda r: r.key)
    counts: dict[str, int] = {}
    for _, c in parts:
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
    return all_rows, counts


def write_results(
    out: Path, rows: Sequence[SequenceRow], skipped: Mapping[str, int], meta: Mapping
) -> dict:
    """``metrics.json`` and ``per_sequence.csv`` under ``out``; returns the JSON object."""
    out.mkdir(parents=True, exist_ok=True)
    result = {
        **meta,
        "protocol": PROTOCOL,
        "num_sequences": len(rows),
        "num_frames": int(sum(r.frames for r in rows)),
        "skipped_samples": dict(skipped),
        "metrics": summarise(rows),
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    tmp.replace(out / "metrics.json")
    cols = sorted({k for r in rows for k in r.values}, key=lambda k: (k not in METRICS, k))
    with open(out / "per_sequence.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "dataset", "sequence", "frames", *cols])
        for r in rows:
            w.writerow([r.key, r.dataset, r.sequence, r.frames,
                        *(f"{r.values.get(c, math.nan):.4f}" for c in cols)])  # fmt: skip
    return result


def evaluate(
    cfg: DictConfig, ckpt: str | Path, set_dirs: Sequence[str | Path], out: Path, mode: str
) -> dict:
    """Load ``ckpt`` (the config ``cfg`` comes from it, with overrides), score ``set_dirs``."""
    from lightning_hmd.config import to_container
    from lightning_hmd.train.module import HMMRModule, load_weights

    module = HMMRModule(to_container(cfg))
    load_weights(module, ckpt)
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rows, skipped = score_sets(
        module.generator,
        module.body,
        set_dirs,
        seq_len=cfg.data.seq_len,
        inputs=cfg.data.inputs,
        img_size=cfg.data.img_size,
        mode=mode,
        rank=rank,
        world_size=world,
    )
    rows, skipped = gather_rows(rows, skipped)
    meta = {"checkpoint": str(ckpt), "mode": mode, "sets": [str(s) for s in set_dirs]}
    if rank == 0:
        return write_results(out, rows, skipped, meta)
    return {}
