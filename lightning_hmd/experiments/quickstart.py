"""``lightning-hmd quickstart``: the main job on the embedded default.

Writes the synthetic body model and a rendered synthetic dataset, then follows HMMR's recipe
on a CPU scale (preset ``quickstart``):

1. an HMR stage: the image encoder and f_3D trained on single frames of many clips
   (``data.seq_len=1``), saved as an HMR init file;
2. features phi of that frozen encoder for every frame, training clips as augmented copies
   with per-frame jitter (``lightning-hmd data features --copies``);
3. the temporal model (temporal encoder, Δt heads, hallucinator, discriminator) and the
   single-frame ablation (``model.temporal.num_blocks=0``), both started from the HMR init
   file and trained on the features, with per-frame noise added to them
   (``data.augment.feature_noise``, see the preset), for the same budget of batches;

then evaluates both and a mean-pose baseline on the held-out test split under the
configured protocol (``eval.protocol``, HMMR's by default; the scorer of ``lightning-hmd
evaluate``) and writes ``metrics.json`` and ``report.md`` with pictures to the output folder.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lightning_hmd.body.model_files import load_mean_params
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.assign import read_sets
from lightning_hmd.data.features import build_feature_encoder, extract_features
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.skips import SkipCounter
from lightning_hmd.data.synth.make import make_synthetic_dataset
from lightning_hmd.data.synth.spec import SynthSpec
from lightning_hmd.data.whole_tracks import TrackItem, build_track_loader, read_tracks
from lightning_hmd.evaluation.outputs import outputs_from_prediction
from lightning_hmd.evaluation.predict import ClipPrediction
from lightning_hmd.evaluation.protocols import Protocol, get_protocol
from lightning_hmd.evaluation.run import (
    padding_feature,
    predict_item,
    score_prediction,
)
from lightning_hmd.evaluation.scorer import Summary, summarise
from lightning_hmd.evaluation.windows import make_plan
from lightning_hmd.experiments.compare import read_curves
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.metrics import acceleration
from lightning_hmd.models.hmr_init import save_hmr_init
from lightning_hmd.structures import SMPLParams
from lightning_hmd.train.fit import train
from lightning_hmd.train.module import HMMRModule, load_weights

PRESET = "quickstart"
CURVES = ("train/loss/total", "val/pa_mpjpe")
# HMMR's temporal encoder (3 blocks, receptive field 13 frames) on HMMR's window length, and
# the single-frame ablation on the same windows.
RUNS = {
    "temporal": ["model.temporal.num_blocks=3"],
    "single_frame": ["model.temporal.num_blocks=0"],
}
# The HMR stage: single frames from many clips per batch (as HMR's image training), the
# encoder learnt, no temporal parts; it fits the joints alone (the adversarial pose prior
# comes in with the temporal runs).
HMR_STAGE = [
    "loss.weights.adv=0",
    "data.inputs=images",
    "data.seq_len=1",
    "model.freeze_encoder=false",
    "model.temporal.num_blocks=0",
    "model.delta_t=[]",
    "model.hallucinator=false",
]


@dataclass(frozen=True)
class Plan:
    """The quickstart's sizes: synthetic training and test clips, the HMR stage's budget and batch
    (single frames), augmented feature copies per clip, and the budget and batch (sequences)
    of each temporal / single-frame run."""

    clips: int = 384
    test_clips: int = 32
    hmr_budget: int = 4000
    hmr_batch_size: int = 64
    copies: int = 4
    budget: int = 1000
    batch_size: int = 8


LSP_NAMES = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
             "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")  # fmt: skip
LSP_EDGES = ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11), (2, 3),
             (8, 12), (9, 12), (12, 13), (2, 8), (3, 9))  # fmt: skip


@dataclass
class Scored:
    """One model's test results: the protocol's summary, and the first test track's predicted
    joints (for the acceleration plot) and 2D keypoints (for the skeletons)."""

    summary: Summary
    example_joints: np.ndarray
    example_kp2d: np.ndarray


def _common(data: Path, out: Path, budget: int, batch_size: int) -> list[str]:
    """Overrides every training of the quickstart shares: body model, budget, cadence, logs."""
    return [
        f"body.model_dir={data / 'body_model'}",
        f"data.batch_size={batch_size}",
        f"trainer.max_batches={budget}",
        f"trainer.val_every_batches={max(budget // 4, 1)}",
        f"trainer.ckpt_every_batches={budget}",
        f"trainer.log_every_batches={max(budget // 50, 1)}",
        "logger.kind=csv",
        f"run.root={out / 'runs'}",
    ]


def _sets(root: Path) -> list[str]:
    return [
        f"data.train_sets=[{root / 'train'}]",
        f"data.val_sets=[{root / 'val'}]",
        f"data.test_sets=[{root / 'test'}]",
        f"data.mocap_sets=[{root / 'mocap'}]",
    ]


def _hmr_stage(data: Path, out: Path, plan: Plan, overrides: Sequence[str]) -> Path:
    """Train the HMR stage on single frames; returns the HMR init file it writes."""
    over = [
        *_common(data, out, plan.hmr_budget, plan.hmr_batch_size),
        *_sets(data),
        *HMR_STAGE,
        "run.name=hmr",
        *overrides,
    ]
    cfg = load_config(PRESET, overrides=over)
    run_dir = train(cfg)
    module = HMMRModule(to_container(cfg))
    load_weights(module, run_dir / "checkpoints" / "last.ckpt")
    return save_hmr_init(module.generator, out / "hmr_init.pt", source=str(run_dir))


def _train_in_process(overrides: list[str], threads: int) -> str:
    torch.set_num_threads(threads)
    return str(train(load_config(PRESET, overrides=overrides)))


def _train_side_by_side(runs: dict[str, list[str]]) -> dict[str, Path]:
    """Train the runs at the same time, one process each with an equal share of the cores
    (their many small operations use one core each better than two cores one after the
    other); the first shows its progress bar. One core: one after the other, here."""
    cores = os.cpu_count() or 1
    if cores < 2 or len(runs) < 2:
        return {n: train(load_config(PRESET, overrides=over)) for n, over in runs.items()}
    names = list(runs)
    print(f"training {', '.join(names)} side by side (progress: {names[0]})", flush=True)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ctx.Pool(len(runs)) as pool:
        jobs = {
            n: pool.apply_async(
                _train_in_process,
                ([*over, f"trainer.progress_bar={i == 0}"], max(1, cores // len(runs))),
            )
            for i, (n, over) in enumerate(runs.items())
        }
        return {n: Path(job.get()) for n, job in jobs.items()}


def _score(preds: list[ClipPrediction], items: list[TrackItem], body: BodyModel,
           protocol: Protocol, img_size: int) -> Scored:  # fmt: skip
    """The protocol's scorer over the test tracks, and the first track's joints."""
    scores = [score_prediction(p, it, body, protocol, img_size)
              for p, it in zip(preds, items, strict=True)]  # fmt: skip
    first = outputs_from_prediction(preds[0], body, mesh=False)
    return Scored(summarise(scores, protocol), first.joints.numpy(), first.kp2d.numpy())


def _model_predictions(
    ckpt: Path, overrides: list[str], items: list[TrackItem], protocol: Protocol
) -> tuple:
    cfg = load_config(PRESET, overrides=overrides)
    module = HMMRModule(to_container(cfg))
    load_weights(module, ckpt)
    g = module.generator.eval()
    blank = padding_feature(g, protocol, cfg.data.inputs, cfg.data.img_size)
    preds = [predict_item(g, it, protocol, seq_len=cfg.data.seq_len, blank=blank) for it in items]
    return preds, module.body, cfg


def _mean_pose_predictions(
    body_dir: Path, items: list[TrackItem], protocol: Protocol, seq_len: int
) -> list[ClipPrediction]:
    """The mean pose and shape on every frame the protocol's windows predict."""
    pose, shape = load_mean_params(body_dir)
    out = []
    for it in items:
        frames = make_plan(protocol.windowing, it.sample.num_frames, seq_len, 0).predicted
        frames = np.flatnonzero(frames)
        n = len(frames)
        aa = torch.as_tensor(pose, dtype=torch.float32).view(1, 24, 3).expand(n, 24, 3)
        params = SMPLParams(torch.tensor([[1.0, 0.0, 0.0]]).expand(n, 3), aa,
                            axis_angle_to_matrix(aa),
                            torch.as_tensor(shape, dtype=torch.float32).expand(n, 10))  # fmt: skip
        out.append(ClipPrediction(params, {}, frames))
    return out


def _pictures(out: Path, scored: dict[str, Scored], curves: dict, sample: ClipSample) -> list[str]:
    """The report's pictures; ``sample`` is the first test clip, with its frames."""
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
        ax.bar(np.arange(14) + i * width, s.summary.per_joint_pa, width, label=name)
    ax.set_xticks(np.arange(14) + 0.4 - width / 2, LSP_NAMES, rotation=45)
    ax.set(title="PA-MPJPE per joint on the test split (mm)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "per_joint_error.png", dpi=100)
    names.append("per_joint_error.png")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    gt = torch.from_numpy(np.asarray(sample.joints3d))
    ax.plot(acceleration(gt).numpy(), "k", label="ground truth")
    for name in ("temporal", "single_frame"):
        ax.plot(acceleration(torch.from_numpy(scored[name].example_joints)).numpy(), label=name)
    ax.set(title=f"acceleration over time, {sample.sequence} (mm/frame²)", xlabel="frame")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "acceleration.png", dpi=100)
    names.append("acceleration.png")

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


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def run_quickstart(
    out: Path,
    plan: Plan | None = None,
    *,
    overrides: Sequence[str] = (),
    hmr_overrides: Sequence[str] = (),
    progress: bool = True,
) -> dict:
    """Run the whole job; returns the ``metrics.json`` object.

    Args:
        out: output folder (data, features, runs, metrics and report).
        plan: the sizes of data and trainings (default :class:`Plan`).
        overrides: ``key=value`` for the temporal and single-frame runs.
        hmr_overrides: ``key=value`` for the HMR stage.
        progress: progress bars.
    """
    start = time.perf_counter()
    plan = plan or Plan()
    out = Path(out)
    data, features = out / "data", out / "features"
    spec = SynthSpec(clips=plan.clips, val_clips=8, test_clips=plan.test_clips, frames=40)
    workers = max(1, min(8, os.cpu_count() or 1))  # render tracks on every core
    make_synthetic_dataset(data, spec, progress=progress, workers=workers)
    timings = {"data": time.perf_counter() - start}

    hmr_init = _hmr_stage(data, out, plan, hmr_overrides)
    timings["hmr_stage"] = time.perf_counter() - start - sum(timings.values())
    base = [
        *_common(data, out, plan.budget, plan.batch_size),
        *_sets(features),
        f"model.init_checkpoint={hmr_init}",
        "model.init_parts=[mean,f3d]",
        *overrides,
    ]
    cfg = load_config(PRESET, overrides=base)
    encoder, encoder_id = build_feature_encoder(
        cfg.model.encoder, cfg.model.feat_dim, hmr_init, seed=cfg.seed
    )
    extract_features(
        data, features, encoder, encoder_id, img_size=cfg.data.img_size, augment=cfg.data.augment,
        copies=plan.copies, seed=cfg.seed, overwrite=True, progress=progress,
    )  # fmt: skip
    timings["features"] = time.perf_counter() - start - sum(timings.values())

    protocol = get_protocol(cfg.eval.protocol)
    d = cfg.data
    loader = build_track_loader([features / "test"], rank=0, world_size=1, num_workers=0,
                                inputs=d.inputs, img_size=d.img_size)  # fmt: skip
    items = list(loader)
    scored, curves, results = {}, {}, {}
    curves["hmr stage"] = read_curves(out / "runs" / "hmr", CURVES)
    run_overrides = {name: [*base, f"run.name={name}", *extra] for name, extra in RUNS.items()}
    run_dirs = _train_side_by_side(run_overrides)
    timings["temporal_runs"] = time.perf_counter() - start - sum(timings.values())
    for name, run_dir in run_dirs.items():
        preds, body, cfg = _model_predictions(
            run_dir / "checkpoints" / "last.ckpt", run_overrides[name], items, protocol
        )
        scored[name] = _score(preds, items, body, protocol, cfg.data.img_size)
        results[name] = scored[name].summary.metrics
        curves[name] = read_curves(run_dir, CURVES)
    means = _mean_pose_predictions(data / "body_model", items, protocol, cfg.data.seq_len)
    baseline = _score(means, items, body, protocol, spec.img_size)
    scored = {"mean pose": baseline, **scored}
    metrics = {"protocol": protocol.describe(), "baseline_mean_pose": baseline.summary.metrics,
               "runs": results}  # fmt: skip
    # the features' test set has no frames: the pictures take them from the rendered set
    test = read_sets([data / "test"], "clip")[1]
    first = next(read_tracks(test, 0, sum(s.samples for s in test), SkipCounter())).sample
    pictures = _pictures(out, scored, curves, first)
    elapsed = time.perf_counter() - start
    metrics["wall_time_s"] = round(elapsed, 1)
    metrics["stage_time_s"] = {k: round(v, 1) for k, v in timings.items()}
    metrics["plan"] = asdict(plan)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    keys = ("mpjpe", "pa_mpjpe", "pve", "pck", "accel", "accel_error", "vel_error", "jitter")
    table = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    named = [
        ("mean-pose baseline", metrics["baseline_mean_pose"]),
        ("temporal", results["temporal"]),
        ("single-frame", results["single_frame"]),
    ]
    for name, m in named:
        cells = [_fmt(m.get(k), 3 if k == "pck" else 1) for k in keys]  # pck is a fraction
        table.append(f"| {name} | " + " | ".join(cells) + " |")
    t, b, sf = results["temporal"], metrics["baseline_mean_pose"], results["single_frame"]
    ratio = t["pa_mpjpe"] / b["pa_mpjpe"] if b.get("pa_mpjpe") else math.nan
    accel_ratio = t["accel_error"] / sf["accel_error"] if sf.get("accel_error") else math.nan
    report = [
        "# Quickstart report",
        "",
        f"Synthetic data: {plan.clips} training clips, 8 validation, {plan.test_clips} test, "
        f"{spec.frames} frames each, rendered at {spec.image_size} px, {spec.img_size} px "
        f"crops. HMR stage: {plan.hmr_budget} batches of {plan.hmr_batch_size} single frames; "
        f"features with {plan.copies} augmented copies per training clip; temporal and "
        f"single-frame runs: {plan.budget} batches of {plan.batch_size} sequences of "
        f"{cfg.data.seq_len} frames each. Wall time: {elapsed / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}).",
        "",
        *table,
        "",
        f"Scored under the `{protocol.name}` protocol (`eval.protocol`, "
        "`lightning_hmd/evaluation/protocols.py`), as `lightning-hmd evaluate` scores:",
        "",
        *(f"- **{k}**: {v}" for k, v in protocol.card.items()),
        "",
        f"Temporal PA-MPJPE / mean-pose baseline: {ratio:.2f} (target ≤ 0.70). "
        f"Temporal accel_error / single-frame: {accel_ratio:.2f} (target ≤ 0.50).",
        "",
        *(f"![{p}]({p})" for p in pictures),
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
    return metrics
