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
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from lightning_hmd.body.model_files import load_mean_params
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.assign import read_shards
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
from lightning_hmd.evaluation.scorer import summarise
from lightning_hmd.evaluation.windows import make_plan
from lightning_hmd.experiments.compare import read_curves
from lightning_hmd.experiments.quickstart_report import Scored, Setting, pictures, write_report
from lightning_hmd.geometry.rotations import axis_angle_to_matrix
from lightning_hmd.models.hmr_init import save_hmr_init
from lightning_hmd.structures import SMPLParams
from lightning_hmd.train.fit import train
from lightning_hmd.train.module import HMMRModule, load_weights

PRESET = "quickstart"
FRAMES = 40  # frames of each validation and test clip
CURVES = ("train/loss/total", "val/pa_mpjpe")
# HMMR's temporal encoder (3 blocks, receptive field 13 frames) on HMMR's window length (the
# ``num_conv_layers`` and ``T`` flags of ``src/config.py``), and the single-frame ablation on
# the same windows.
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
# The quickstart's HMR stage learns at a higher rate than the preset's for its short budget:
# test PA-MPJPE after 2,000 batches 119.9 / 117.6 / 116.2 mm at 1e-3 / 2e-3 / 3e-3 (cosine
# schedule, 384 clips of 40 frames; benchmarks/results/quickstart_speed.md).
HMR_LR = 3e-3


@dataclass(frozen=True)
class Plan:
    """The quickstart's sizes: synthetic training clips and their frames, test clips, the HMR
    stage's budget and batch (single frames), augmented feature copies per clip, and the
    budget and batch (sequences) of each temporal / single-frame run.

    Training clips are shorter than the test clips (``train_frames``; test and validation
    clips have :data:`FRAMES`): the HMR stage learns from many people, motions and
    backgrounds rather than many frames of few, for the same rendering time
    (``benchmarks/results/quickstart_hmr_data.md``). They are a little longer than a training
    window: HMMR's preprocessing drops the frames of a track whose keypoints are too few,
    and a clip left shorter than a window is skipped by the temporal runs."""

    clips: int = 768
    train_frames: int = 22
    test_clips: int = 32
    hmr_budget: int = 2500
    hmr_batch_size: int = 64
    copies: int = 4
    budget: int = 750
    batch_size: int = 8


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


def cpu_precision() -> str:
    """``bf16-mixed`` where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX tiles),
    else ``32-true`` (bfloat16 would be emulated). On 2 cores with AVX-512 BF16 the HMR
    stage's encoder step runs 1.4-1.7x faster in bf16-mixed, at the same accuracy
    (``benchmarks/hmr_stage_precision.py``, ``benchmarks/results/quickstart_speed.md``)."""
    try:  # private helpers of torch.cpu (torch >= 2.1); absent: assume no native bf16
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except AttributeError:
        native = False
    return "bf16-mixed" if native else "32-true"


def _hmr_stage(data: Path, out: Path, plan: Plan, overrides: Sequence[str]) -> Path:
    """Train the HMR stage on single frames; returns the HMR init file it writes."""
    over = [
        *_common(data, out, plan.hmr_budget, plan.hmr_batch_size),
        *_sets(data),
        *HMR_STAGE,
        f"optim.gen_lr={HMR_LR}",
        f"trainer.precision={cpu_precision()}",
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
        done = {n: Path(job.get()) for n, job in jobs.items()}
        # let the workers exit on their own before the pool's exit terminates them: a killed
        # worker leaves its queues' semaphores for the resource tracker to warn about
        pool.close()
        pool.join()
        return done


def _score(
    preds: list[ClipPrediction],
    items: list[TrackItem],
    body: BodyModel,
    protocol: Protocol,
    img_size: int,
) -> Scored:
    """The protocol's scorer over the test tracks, and the first track's joints."""
    scores = [
        score_prediction(p, it, body, protocol, img_size)
        for p, it in zip(preds, items, strict=True)
    ]
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
        params = SMPLParams(
            torch.tensor([[1.0, 0.0, 0.0]]).expand(n, 3),
            aa,
            axis_angle_to_matrix(aa),
            torch.as_tensor(shape, dtype=torch.float32).expand(n, 10),
        )
        out.append(ClipPrediction(params, {}, frames))
    return out


def _data(out: Path, plan: Plan, progress: bool) -> tuple[Path, SynthSpec]:
    """The synthetic body model and the rendered dataset under ``out/data``."""
    spec = SynthSpec(
        clips=plan.clips,
        val_clips=8,
        test_clips=plan.test_clips,
        frames=FRAMES,
        train_frames=plan.train_frames,
    )
    workers = max(1, min(8, os.cpu_count() or 1))  # render tracks on every core
    make_synthetic_dataset(out / "data", spec, progress=progress, workers=workers)
    return out / "data", spec


def _features(
    data: Path, features: Path, cfg: DictConfig, hmr_init: Path, copies: int, progress: bool
) -> None:
    """phi of the HMR stage's frozen encoder for every frame (training clips as copies)."""
    encoder, encoder_id = build_feature_encoder(
        cfg.model.encoder, cfg.model.feat_dim, hmr_init, seed=cfg.seed
    )
    extract_features(
        data,
        features,
        encoder,
        encoder_id,
        img_size=cfg.data.img_size,
        augment=cfg.data.augment,
        copies=copies,
        seed=cfg.seed,
        overwrite=True,
        progress=progress,
    )


def _test_items(cfg: DictConfig, test_set: Path) -> list[TrackItem]:
    loader = build_track_loader(
        [test_set],
        rank=0,
        world_size=1,
        num_workers=0,
        inputs=cfg.data.inputs,
        img_size=cfg.data.img_size,
    )
    return list(loader)


def _score_runs(
    run_dirs: dict[str, Path],
    run_overrides: dict[str, list[str]],
    items: list[TrackItem],
    protocol: Protocol,
    body_dir: Path,
) -> tuple[dict[str, Scored], int]:
    """Each run's last checkpoint and the mean-pose baseline (first) scored on the test
    tracks; and the runs' window length."""
    scored = {}
    for name, run_dir in run_dirs.items():
        preds, body, cfg = _model_predictions(
            run_dir / "checkpoints" / "last.ckpt", run_overrides[name], items, protocol
        )
        scored[name] = _score(preds, items, body, protocol, cfg.data.img_size)
    means = _mean_pose_predictions(body_dir, items, protocol, cfg.data.seq_len)
    baseline = _score(means, items, body, protocol, cfg.data.img_size)
    return {"mean pose": baseline, **scored}, cfg.data.seq_len


def _temporal_overrides(
    data: Path, out: Path, plan: Plan, hmr_init: Path, overrides: Sequence[str]
) -> list[str]:
    """The overrides the temporal and single-frame runs share: the plan's budget, the
    feature sets, the HMR stage's weights as the starting point, then the user's."""
    return [
        *_common(data, out, plan.budget, plan.batch_size),
        *_sets(out / "features"),
        f"model.init_checkpoint={hmr_init}",
        "model.init_parts=[mean,f3d]",
        # f3D starts from the HMR stage: at the preset's 1e-3 it drifts from it on the noisy
        # training features (test PA-MPJPE of the temporal model 119.8 mm against 113.3 for
        # the HMR init; 117.3 at 3e-4, 119.1 at 1e-4; 750 batches)
        "optim.gen_lr=3e-4",
        *overrides,
    ]


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
    clock = _Clock()
    plan, out = plan or Plan(), Path(out)
    data, spec = _data(out, plan, progress)
    clock.stage("data")
    hmr_init = _hmr_stage(data, out, plan, hmr_overrides)
    clock.stage("hmr_stage")
    features = out / "features"
    base = _temporal_overrides(data, out, plan, hmr_init, overrides)
    cfg = load_config(PRESET, overrides=base)
    _features(data, features, cfg, hmr_init, plan.copies, progress)
    clock.stage("features")
    run_overrides = {name: [*base, f"run.name={name}", *extra] for name, extra in RUNS.items()}
    run_dirs = _train_side_by_side(run_overrides)
    clock.stage("temporal_runs")

    protocol = get_protocol(cfg.eval.protocol)
    items = _test_items(cfg, features / "test")
    scored, seq_len = _score_runs(run_dirs, run_overrides, items, protocol, data / "body_model")
    runs = {n: s.summary.metrics for n, s in scored.items() if n != "mean pose"}
    metrics = {
        "protocol": protocol.describe(),
        "baseline_mean_pose": scored["mean pose"].summary.metrics,
        "runs": runs,
    }
    curves = {"hmr stage": read_curves(out / "runs" / "hmr", CURVES)}
    curves |= {name: read_curves(d, CURVES) for name, d in run_dirs.items()}
    # the features' test set has no frames: the pictures take them from the rendered set
    names = pictures(out, scored, curves, _first_clip(data / "test"))
    metrics["wall_time_s"] = round(clock.elapsed(), 1)
    metrics["stage_time_s"] = {k: round(v, 1) for k, v in clock.stages.items()}
    metrics["plan"] = asdict(plan)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    setting = Setting(
        plan, spec.frames, spec.image_size, spec.img_size, seq_len, clock.elapsed(), clock.stages
    )
    write_report(out, metrics, protocol, setting, names)
    return metrics


def _first_clip(set_dir: Path) -> ClipSample:
    """The first track of a set, with its JPEG frames."""
    shards = read_shards([set_dir], "clip")
    return next(read_tracks(shards, 0, sum(s.samples for s in shards), SkipCounter())).sample


class _Clock:
    """Wall time since the start and per stage."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def stage(self, name: str) -> None:
        self.stages[name] = self.elapsed() - sum(self.stages.values())
