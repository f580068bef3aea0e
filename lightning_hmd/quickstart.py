"""``lightning-hmd quickstart``: the main job on the embedded default.

Writes the synthetic body model and a rendered synthetic dataset, trains the temporal model
(temporal encoder, Δt heads, hallucinator, discriminator) and the single-frame ablation
(``model.temporal.num_blocks=0``) for a fixed budget of batches, evaluates both and a
mean-pose baseline on the held-out test split, and writes ``metrics.json`` and ``report.md``
with pictures to the output folder.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightning_hmd.body.model_files import load_mean_params
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.loader import WindowMaker
from lightning_hmd.data.stream import SkipCounter
from lightning_hmd.data.synth.make import make_synthetic_dataset
from lightning_hmd.data.synth.spec import SynthSpec
from lightning_hmd.evaluation.predict import ClipPrediction, predict_clip
from lightning_hmd.evaluation.run import (
    SequenceRow,
    clip_features,
    read_clips,
    score_clip,
    summarise,
)
from lightning_hmd.geometry.alignment import align_by_pelvis, similarity_procrustes
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.metrics import acceleration
from lightning_hmd.structures import SMPLParams
from lightning_hmd.train.fit import train
from lightning_hmd.train.module import HMMRModule, load_weights

# HMMR's temporal encoder (3 blocks, receptive field 13 frames) on HMMR's window length, and
# the single-frame ablation on the same windows.
RUNS = {
    "temporal": ["model.temporal.num_blocks=3"],
    "single_frame": ["model.temporal.num_blocks=0"],
}
LSP_NAMES = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
             "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")  # fmt: skip
LSP_EDGES = ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11), (2, 3),
             (8, 12), (9, 12), (12, 13), (2, 8), (3, 9))  # fmt: skip


@dataclass
class Scored:
    """One model's test predictions: per-sequence rows, per-joint PA errors, one clip's
    joints for the acceleration plot, and 2D keypoints of that clip."""

    rows: list[SequenceRow]
    per_joint_mm: np.ndarray
    example_joints: np.ndarray
    example_kp2d: np.ndarray


def _overrides(data: Path, out: Path, budget: int, batch_size: int) -> list[str]:
    return [
        "data.seq_len=20",
        f"body.model_dir={data / 'body_model'}",
        f"data.train_sets=[{data / 'train'}]",
        f"data.val_sets=[{data / 'val'}]",
        f"data.test_sets=[{data / 'test'}]",
        f"data.mocap_sets=[{data / 'mocap'}]",
        f"data.batch_size={batch_size}",
        "model.freeze_encoder=false",  # no pretrained encoder here: learn it
        f"trainer.max_batches={budget}",
        f"trainer.val_every_batches={max(budget // 4, 1)}",
        f"trainer.ckpt_every_batches={budget}",
        f"trainer.log_every_batches={max(budget // 50, 1)}",
        "logger.kind=csv",
        f"run.root={out / 'runs'}",
    ]


def _per_joint(joints: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(N, 14) PA-aligned per-joint errors in mm."""
    p, g = align_by_pelvis(joints[:, :14]), align_by_pelvis(gt[:, :14])
    return (similarity_procrustes(p, g) - g).norm(dim=-1) * 1000


def _score(preds: list[ClipPrediction], reads: list, body: BodyModel, img_size: int) -> Scored:
    rows, per_joint = [], []
    example = None
    for pred, read in zip(preds, reads, strict=True):
        s = read.sample
        rows.append(SequenceRow(read.key, s.dataset, s.sequence, s.num_frames,
                                score_clip(pred, s, body, img_size)))  # fmt: skip
        with torch.no_grad():
            joints = body(pred.current.pose_rotmat, pred.current.betas, joints_only=True).joints
        per_joint.append(_per_joint(joints, torch.from_numpy(np.asarray(s.joints3d))).mean(0))
        if example is None:
            xy = project_weak_perspective(joints, pred.current.cam)
            example = (joints.numpy(), xy.numpy())
    return Scored(rows, torch.stack(per_joint).mean(0).numpy(), *example)


def _model_predictions(ckpt: Path, overrides: list[str], reads: list, mode: str) -> tuple:
    cfg = load_config("tiny", overrides=overrides)
    module = HMMRModule(to_container(cfg))
    load_weights(module, ckpt)
    g = module.generator.eval()
    maker = WindowMaker(cfg.data.inputs, cfg.data.img_size, None)
    preds = [
        predict_clip(g, clip_features(g, maker, read), cfg.data.seq_len, mode) for read in reads
    ]
    return preds, module.body, cfg


def _mean_pose_predictions(body_dir: Path, reads: list) -> list[ClipPrediction]:
    pose, shape = load_mean_params(body_dir)
    out = []
    for read in reads:
        n = read.sample.num_frames
        aa = torch.as_tensor(pose, dtype=torch.float32).view(1, 24, 3).expand(n, 24, 3)
        params = SMPLParams(torch.tensor([[1.0, 0.0, 0.0]]).expand(n, 3), aa,
                            axis_angle_to_matrix(aa),
                            torch.as_tensor(shape, dtype=torch.float32).expand(n, 10))  # fmt: skip
        out.append(ClipPrediction(params, {}))
    return out


def _curves(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    curves: dict[str, list] = {"train/loss/total": [], "val/pa_mpjpe": []}
    for r in rows:
        for k in curves:
            if r.get(k) and r.get("step"):
                curves[k].append((float(r["step"]) + 1, float(r[k])))
    return curves


def _pictures(
    out: Path, scored: dict[str, Scored], curves: dict, reads: list, gt: np.ndarray
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for run, c in curves.items():
        if c["train/loss/total"]:
            axes[0].plot(*zip(*c["train/loss/total"], strict=True), label=run)
        if c["val/pa_mpjpe"]:
            axes[1].plot(*zip(*c["val/pa_mpjpe"], strict=True), marker="o", label=run)
    axes[0].set(title="generator loss (train)", xlabel="batch", yscale="log")
    axes[1].set(title="validation PA-MPJPE (mm)", xlabel="batch")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=100)
    names.append("learning_curves.png")

    fig, ax = plt.subplots(figsize=(10, 3.5))
    width = 0.8 / len(scored)
    for i, (name, s) in enumerate(scored.items()):
        ax.bar(np.arange(14) + i * width, s.per_joint_mm, width, label=name)
    ax.set_xticks(np.arange(14) + 0.4 - width / 2, LSP_NAMES, rotation=45)
    ax.set(title="PA-MPJPE per joint on the test split (mm)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "per_joint_error.png", dpi=100)
    names.append("per_joint_error.png")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(acceleration(torch.from_numpy(gt)).numpy(), "k", label="ground truth")
    for name in ("temporal", "single_frame"):
        ax.plot(acceleration(torch.from_numpy(scored[name].example_joints)).numpy(), label=name)
    ax.set(title=f"acceleration over time, {reads[0].sample.sequence} (mm/frame²)", xlabel="frame")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "acceleration.png", dpi=100)
    names.append("acceleration.png")

    from lightning_hmd.data.loader import decode_jpegs

    sample = reads[0].sample
    frames = decode_jpegs(sample.jpeg)
    picks = np.linspace(0, len(frames) - 1, 6).astype(int)
    fig, axes = plt.subplots(1, len(picks), figsize=(2.2 * len(picks), 2.6))
    size = frames.shape[1]
    for ax, t in zip(axes, picks, strict=True):
        ax.imshow(frames[t])
        pred = scored["temporal"].example_kp2d[t, :14]
        for kp, colour in ((sample.kp2d[t, :14, :2], "lime"), (pred, "red")):
            px = (np.asarray(kp) + 1) * size / 2
            for a, b in LSP_EDGES:
                ax.plot(px[[a, b], 0], px[[a, b], 1], color=colour, lw=1.2)
        ax.set_title(f"frame {t}", fontsize=8)
        ax.axis("off")
    axes[0].plot([], [], color="lime", label="ground truth")
    axes[0].plot([], [], color="red", label="temporal")
    axes[0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "skeletons.png", dpi=100)
    names.append("skeletons.png")
    plt.close("all")
    return names


def _fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def run_quickstart(
    out: Path,
    *,
    budget: int = 600,
    clips: int = 64,
    batch_size: int = 4,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> dict:
    """Run the whole job; returns the ``metrics.json`` object. ``overrides`` (``key=value``)
    apply to both trainings."""
    start = time.perf_counter()
    out = Path(out)
    data = out / "data"
    spec = SynthSpec(clips=clips, val_clips=8, test_clips=8, frames=40)
    make_synthetic_dataset(data, spec, progress=progress)
    base = [*_overrides(data, out, budget, batch_size), *overrides]
    reads = list(read_clips([data / "test"], SkipCounter()))
    scored, curves, results = {}, {}, {}
    for name, extra in RUNS.items():
        overrides = [*base, f"run.name={name}", *extra]
        run_dir = train(load_config("tiny", overrides=overrides))
        preds, body, cfg = _model_predictions(
            run_dir / "checkpoints" / "last.ckpt", overrides, reads, "temporal"
        )
        scored[name] = _score(preds, reads, body, cfg.data.img_size)
        results[name] = summarise(scored[name].rows)
        curves[name] = _curves(run_dir)
    baseline = _score(
        _mean_pose_predictions(data / "body_model", reads), reads, body, spec.img_size
    )
    scored = {"mean pose": baseline, **scored}
    metrics = {"baseline_mean_pose": summarise(baseline.rows), "runs": results}
    gt = np.asarray(reads[0].sample.joints3d)
    pictures = _pictures(out, scored, curves, reads, gt)
    elapsed = time.perf_counter() - start
    metrics["wall_time_s"] = round(elapsed, 1)
    metrics["budget_batches"] = budget
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    keys = ("mpjpe", "pa_mpjpe", "pve", "pck", "accel", "accel_error")
    table = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    named = [
        ("mean-pose baseline", metrics["baseline_mean_pose"]),
        ("temporal", results["temporal"]),
        ("single-frame", results["single_frame"]),
    ]
    for name, m in named:
        table.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
    t, b, sf = results["temporal"], metrics["baseline_mean_pose"], results["single_frame"]
    ratio = t["pa_mpjpe"] / b["pa_mpjpe"] if b.get("pa_mpjpe") else math.nan
    accel_ratio = t["accel_error"] / sf["accel_error"] if sf.get("accel_error") else math.nan
    report = [
        "# Quickstart report",
        "",
        f"Synthetic data: {clips} training clips, 8 validation, 8 test, {spec.frames} frames each, "
        f"rendered at {spec.image_size} px, {spec.img_size} px crops. Budget: {budget} batches of "
        f"{batch_size} sequences per model. Wall time: {elapsed / 60:.1f} min.",
        "",
        *table,
        "",
        f"Temporal PA-MPJPE / mean-pose baseline: {ratio:.2f} (target ≤ 0.70). "
        f"Temporal accel_error / single-frame: {accel_ratio:.2f} (target ≤ 0.50).",
        "",
        *(f"![{p}]({p})" for p in pictures),
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
    return metrics
