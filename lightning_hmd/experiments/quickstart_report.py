"""The quickstart's report: ``report.md`` with the results table, the protocol's card and
pictures (learning curves, per-joint error, acceleration over time, predicted skeletons on
test frames)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from lightning_hmd.body.joints import LSP14_LIMBS, LSP14_NAMES
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.evaluation.protocols import Protocol
from lightning_hmd.evaluation.scorer import Summary
from lightning_hmd.metrics import acceleration

if TYPE_CHECKING:
    from lightning_hmd.experiments.quickstart import Plan

# What the quickstart is built to show on its test clips: the temporal model's PA-MPJPE at
# most this fraction of the mean pose's, and its acceleration error at most this fraction of
# the single-frame model's.
PA_TARGET = 0.63
ACCEL_TARGET = 0.45


@dataclass
class Scored:
    """One model's test results: the protocol's summary, and the first test track's predicted
    joints (for the acceleration plot) and 2D keypoints (for the skeletons)."""

    summary: Summary
    example_joints: np.ndarray
    example_kp2d: np.ndarray


def pictures(out: Path, scored: dict[str, Scored], curves: dict, sample: ClipSample) -> list[str]:
    """The report's pictures, written to ``out``; ``sample`` is the first test clip, with its
    frames. Returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [
        ("learning_curves.png", _learning_curves(plt, curves)),
        ("per_joint_error.png", _per_joint_error(plt, scored)),
        ("acceleration.png", _acceleration(plt, scored, sample)),
        ("skeletons.png", _skeletons(plt, scored, sample)),
    ]
    for name, fig in drawn:
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
    plt.close("all")
    return [name for name, _ in drawn]


def _learning_curves(plt, curves: dict):  # noqa: ANN001, ANN202 - matplotlib, imported lazily
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
    return fig


def _per_joint_error(plt, scored: dict[str, Scored]):  # noqa: ANN001, ANN202
    fig, ax = plt.subplots(figsize=(10, 3.5))
    width = 0.8 / len(scored)
    for i, (name, s) in enumerate(scored.items()):
        ax.bar(np.arange(14) + i * width, s.summary.per_joint_pa, width, label=name)
    ax.set_xticks(np.arange(14) + 0.4 - width / 2, LSP14_NAMES, rotation=45)
    ax.set(title="PA-MPJPE per joint on the test split (mm)")
    ax.legend()
    return fig


def _acceleration(plt, scored: dict[str, Scored], sample: ClipSample):  # noqa: ANN001, ANN202
    fig, ax = plt.subplots(figsize=(8, 3.5))
    gt = torch.from_numpy(np.asarray(sample.joints3d))
    ax.plot(acceleration(gt).numpy(), "k", label="ground truth")
    for name in ("temporal", "single_frame"):
        ax.plot(acceleration(torch.from_numpy(scored[name].example_joints)).numpy(), label=name)
    ax.set(title=f"acceleration over time, {sample.sequence} (mm/frame²)", xlabel="frame")
    ax.legend()
    return fig


def _skeletons(plt, scored: dict[str, Scored], sample: ClipSample):  # noqa: ANN001, ANN202
    from lightning_hmd.data.stream import decode_jpegs

    frames = decode_jpegs(sample.jpeg)
    picks = np.linspace(0, len(frames) - 1, 6).astype(int)
    fig, axes = plt.subplots(1, len(picks), figsize=(2.2 * len(picks), 2.6))
    size = frames.shape[1]
    for ax, t in zip(axes, picks, strict=True):
        ax.imshow(frames[t])
        pred = scored["temporal"].example_kp2d[t, :14]
        for kp, colour in ((sample.kp2d[t, :14, :2], "lime"), (pred, "red")):
            px = (np.asarray(kp) + 1) * size / 2
            for a, b in LSP14_LIMBS:
                ax.plot(px[[a, b], 0], px[[a, b], 1], color=colour, lw=1.2)
        ax.set_title(f"frame {t}", fontsize=8)
        ax.axis("off")
    axes[0].plot([], [], color="lime", label="ground truth")
    axes[0].plot([], [], color="red", label="temporal")
    axes[0].legend(fontsize=6, loc="lower left")
    return fig


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def results_table(metrics: dict) -> list[str]:
    """The Markdown table of the baseline's and the two runs' metrics (``metrics.json``)."""
    keys = ("mpjpe", "pa_mpjpe", "pve", "pck", "accel", "accel_error", "vel_error", "jitter")
    table = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    named = [
        ("mean-pose baseline", metrics["baseline_mean_pose"]),
        ("temporal", metrics["runs"]["temporal"]),
        ("single-frame", metrics["runs"]["single_frame"]),
    ]
    for name, m in named:
        cells = [_fmt(m.get(k), 3 if k == "pck" else 1) for k in keys]  # pck is a fraction
        table.append(f"| {name} | " + " | ".join(cells) + " |")
    return table


@dataclass
class Setting:
    """What the report says of the job's sizes: the plan's fields, the synthetic data's
    frames and image sizes, the training window, and the wall time by stage."""

    plan: Plan
    frames: int
    image_size: int
    img_size: int
    seq_len: int
    elapsed: float
    timings: dict[str, float]


def write_report(
    out: Path, metrics: dict, protocol: Protocol, setting: Setting, picture_names: list[str]
) -> None:
    """``report.md``: the sizes, the results table, the protocol's card, the targets, the
    pictures."""
    results = metrics["runs"]
    plan, elapsed, timings = setting.plan, setting.elapsed, setting.timings
    t, b, sf = results["temporal"], metrics["baseline_mean_pose"], results["single_frame"]
    ratio = t["pa_mpjpe"] / b["pa_mpjpe"] if b.get("pa_mpjpe") else math.nan
    accel_ratio = t["accel_error"] / sf["accel_error"] if sf.get("accel_error") else math.nan
    report = [
        "# Quickstart report",
        "",
        f"Synthetic data: {plan.clips} training clips of {plan.train_frames or setting.frames} "
        f"frames, 8 validation and {plan.test_clips} test clips of {setting.frames} frames, "
        f"rendered at {setting.image_size} px, "
        f"{setting.img_size} px crops. HMR stage: {plan.hmr_budget} batches of "
        f"{plan.hmr_batch_size} single frames; "
        f"features with {plan.copies} augmented copies per training clip; temporal and "
        f"single-frame runs: {plan.budget} batches of {plan.batch_size} sequences of "
        f"{setting.seq_len} frames each. Wall time: {elapsed / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}).",
        "",
        *results_table(metrics),
        "",
        f"Scored under the `{protocol.name}` protocol (`eval.protocol`, "
        "`lightning_hmd/evaluation/protocols.py`), as `lightning-hmd evaluate` scores:",
        "",
        *(f"- **{k}**: {v}" for k, v in protocol.card.items()),
        "",
        f"Temporal PA-MPJPE / mean-pose baseline: {ratio:.2f} (target ≤ {PA_TARGET:.2f}). "
        f"Temporal accel_error / single-frame: {accel_ratio:.2f} (target ≤ {ACCEL_TARGET:.2f}).",
        "",
        *(f"![{p}]({p})" for p in picture_names),
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
