"""One-GPU suite: the paper-config training step per input mode, precision and compilation,
its GPU busy fraction, and the loader's frames/s against what the step consumes.

For the paper recipe (B = 8, T = 20), in images mode (ResNet-50 v2 learnt, 224 px crops,
channels-last) and phi mode (2048-D precomputed features), each row runs the module's own
``training_step`` (generator step, discriminator step, fused Adam updates: ``optim.fused``)
under Lightning's ``Trainer.fit`` on in-memory synthetic batches cycled through a DataLoader,
and reports:

- batches/s and frames/s (B·T per batch) over ``--steps`` batches after ``--warmup``;
- GPU busy: the union of the device's kernel and copy intervals in ``torch.profiler`` over
  the wall time of ``--profiled`` more batches;
- peak GPU memory (``torch.cuda.max_memory_allocated``) and the first batch's generator loss.

Rows: float32 with TF32 matrix products and convolutions, bf16-mixed, and bf16-mixed with
``torch.compile`` of the generator (a failure is a row, not a crash). Then the training
reader (``build_train_loader``, random windows, augmentation on, mocap stream on) reads
shards written to a temporary directory with ``--loader-workers`` workers, and its frames/s
is set against the best row's of the same mode::

    python benchmarks/gpu_suite.py                 # one CUDA GPU, under 8 minutes
    python benchmarks/gpu_suite.py --cpu-check     # the same code on CPU, tiny size, seconds

``--cpu-check`` runs the tiny preset at B = 2, T = 4 for a few steps, without compilation;
its goals print as not applicable (the goals are for one H200). ``benchmarks/gpu.sh`` runs
the suite time-boxed and writes its output to ``$OUT/gpu.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import harness  # benchmarks/harness.py
import lightning.pytorch as pl
import numpy as np
import torch
from figures import figure  # benchmarks/figures.py
from torch.utils.data import DataLoader

from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.config import load_config, to_container
from lightning_hmd.config_tree import AugmentConfig
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.schema import ClipSample, MocapSample, make_key, make_mocap_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.synth.batches import synthetic_clip_batch
from lightning_hmd.data.train_stream import num_fake_poses
from lightning_hmd.train.module import HMMRModule

GOAL_BF16 = 1.5  # bf16-mixed frames/s over float32's
GOAL_IMAGES_FPS = 2000.0
GOAL_BUSY = 0.90
GOAL_LOADER = 2.0  # loader frames/s over the step's


@dataclass(frozen=True)
class Size:
    """What a run measures: preset, batch, window, and step counts."""

    preset: str
    batch_size: int
    seq_len: int
    warmup: int
    steps: int
    profiled: int
    compile: bool
    cuda: bool  # on the CUDA GPU; False: on CPU


PAPER = Size("paper", 8, 20, warmup=8, steps=30, profiled=5, compile=True, cuda=True)
CPU_CHECK = Size("tiny", 2, 4, warmup=1, steps=2, profiled=1, compile=False, cuda=False)


@dataclass
class Row:
    mode: str  # images | phi
    precision: str  # 32-true | bf16-mixed
    compiled: bool
    batches_per_s: float = math.nan
    frames_per_s: float = math.nan
    busy: float = math.nan  # fraction of the profiled wall time the GPU was busy
    peak_gib: float = math.nan
    first_loss: float = math.nan
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.mode}, {self.precision}{', compiled' if self.compiled else ''}"


def enable_tf32() -> None:
    """float32 matrix products and cuDNN convolutions on TF32 tensor cores."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True


def build_module(size: Size, body_dir: Path, mode: str, precision: str, accelerator: str):
    """The preset's module in ``mode`` at ``size``, random weights, seeded."""
    overrides = [
        "model.init_checkpoint=none",
        f"body.model_dir={body_dir}",
        f"data.inputs={'images' if mode == 'images' else 'features'}",
        f"data.batch_size={size.batch_size}",
        f"data.seq_len={size.seq_len}",
        f"trainer.accelerator={accelerator}",
        f"trainer.precision={precision}",
    ]
    if mode == "images":
        overrides.append("model.freeze_encoder=false")  # the ResNet is learnt
    cfg = load_config(size.preset, overrides=overrides)
    torch.manual_seed(cfg.seed)
    module = HMMRModule(to_container(cfg))
    if mode == "images":
        # NHWC weights: cuDNN's tensor-core convolutions run without layout transposes
        module.generator.image_encoder.to(memory_format=torch.channels_last)
    return module


def synthetic_batches(module: HMMRModule, mode: str, count: int) -> list:
    """``count`` distinct training batches; images mode: uint8 crops (B, T, 3, S, S) in place
    of phi, as the reader delivers them."""
    d, m = module.cfg.data, module.cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        b = synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses, gen)
        if mode == "images":
            shape = (d.batch_size, d.seq_len, 3, d.img_size, d.img_size)
            images = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
            b = dataclasses.replace(b, clips=dataclasses.replace(b.clips, phi=None, images=images))
        batches.append(b)
    return batches


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def busy_seconds(prof: torch.profiler.profile) -> float:
    """Seconds the device was busy: the union of its kernel and copy intervals."""
    spans = sorted(
        (e.time_range.start, e.time_range.end)
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA
    )
    total, end = 0.0, -math.inf
    for s, e in spans:
        if s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total / 1e6  # profiler times are in microseconds


class StepClock(pl.Callback):
    """Wall time of batches ``warmup`` .. ``warmup + steps - 1``; then ``profiled`` batches
    under torch.profiler; the first batch's generator loss."""

    def __init__(self, size: Size):
        self.size = size
        self.first_loss = math.nan
        self.seconds = math.nan
        self.busy = math.nan
        self._t0 = 0.0
        self._prof: torch.profiler.profile | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.first_loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
        w, n, p = self.size.warmup, self.size.steps, self.size.profiled
        if batch_idx in (w - 1, w + n - 1, w + n + p - 1):
            _sync(self.size.cuda)
            now = time.perf_counter()
            if batch_idx == w + n - 1:
                self.seconds = now - self._t0
            if batch_idx == w + n + p - 1 and self._prof is not None:
                self._prof.__exit__(None, None, None)
                wall = now - self._t0
                self.busy = busy_seconds(self._prof) / wall
            if batch_idx == w + n - 1 and p:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if self.size.cuda:
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self._prof = torch.profiler.profile(activities=activities)
                self._prof.__enter__()
            self._t0 = time.perf_counter()


def run_row(row: Row, size: Size, body_dir: Path) -> Row:
    """Fills ``row`` in; an exception (a failed compilation) becomes ``row.error``."""
    accelerator = "gpu" if size.cuda else "cpu"
    try:
        module = build_module(size, body_dir, row.mode, row.precision, accelerator)
        if row.compiled:
            module.generator = torch.compile(module.generator)
        count = size.warmup + size.steps + size.profiled
        distinct = synthetic_batches(module, row.mode, min(count, 4))
        batches = [distinct[i % len(distinct)] for i in range(count)]
        clock = StepClock(size)
        trainer = harness.bare_trainer(
            count, [clock], accelerator=accelerator, devices=1, precision=row.precision
        )
        gc.collect()  # the previous row's module and trainer, off the GPU before its peak
        if size.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        loader = DataLoader(batches, batch_size=None, collate_fn=lambda b: b)
        trainer.fit(module, loader)
        d = module.cfg.data
        row.batches_per_s = size.steps / clock.seconds
        row.frames_per_s = row.batches_per_s * d.batch_size * d.seq_len
        row.busy, row.first_loss = clock.busy, clock.first_loss
        if size.cuda:
            row.peak_gib = torch.cuda.max_memory_allocated() / 2**30
    except Exception as exc:  # a failed row (a compilation) is reported; the suite goes on
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    return row


def _jpeg(size: int, seed: int) -> bytes:
    """A smooth noisy crop, JPEG quality 90 (photo-like size)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, 1 - x * y], -1) * rng.uniform(80, 200, 3)
    image = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def write_shards(out: Path, mode: str, clips: int, feat_dim: int, crop: int) -> None:
    """``clips`` 150-frame clips, one per shard (every loader worker gets shards), in
    ``out/train``, and 2,000 mocap poses in ``out/mocap``."""
    frames, rng = 150, np.random.default_rng(0)
    jpegs = [_jpeg(crop, i) for i in range(16)] if mode == "images" else []
    with ShardSetWriter(out / "train", "train", 1, "benchmark") as writer:
        for i in range(clips):
            kp = rng.uniform(-0.8, 0.8, (frames, 25, 3)).astype(np.float32)
            kp[..., 2] = 1.0
            sample = ClipSample(
                dataset="bench",
                split="train",
                sequence=f"s{i:05d}",
                track_id=0,
                fps=30.0,
                kp2d=kp,
                crop_box=np.tile(np.float32([0, 0, crop, crop]), (frames, 1)),
                crop_scale=np.ones(frames, np.float32),
                frame_index=np.arange(frames, dtype=np.int32),
                chunk=0,
                phi=None if jpegs else rng.normal(0, 1, (frames, feat_dim)).astype(np.float16),
                encoder_id=None if jpegs else "bench",
                jpeg=[jpegs[(i + t) % 16] for t in range(frames)] if jpegs else None,
                joints3d=rng.normal(0, 0.3, (frames, 14, 3)).astype(np.float32),
            )
            writer.write(sample, make_key("bench", sample.sequence, 0, 0))
    with ShardSetWriter(out / "mocap", "train", 1000, "benchmark") as writer:
        for i in range(2000):
            pose = rng.normal(0, 0.2, 72).astype(np.float32)
            writer.write(MocapSample(pose, np.zeros(10, np.float32)), make_mocap_key("mocap", i))


def loader_frames_per_s(root: Path, mode: str, size: Size, workers: int, batches: int) -> float:
    """Frames/s of the training reader over shards of ``mode`` (first batch not timed)."""
    cfg = load_config(size.preset)
    img_size, m = cfg.data.img_size, cfg.model
    write_shards(root, mode, clips=max(2 * workers, 4), feat_dim=m.feat_dim,
                 crop=int(img_size * 300 / 224))  # fmt: skip  # 300 px pre-crops for 224
    loader = build_train_loader(
        [root / "train"], [1.0], [root / "mocap"],
        batch_size=size.batch_size, seq_len=size.seq_len, num_workers=workers,
        rank=0, world_size=1, seed=0, inputs="images" if mode == "images" else "features",
        img_size=img_size, augment=AugmentConfig(),
        num_fake_poses=num_fake_poses(size.batch_size, size.seq_len, len(m.delta_t),
                                      m.hallucinator),
        batches_per_epoch=batches + 1,
    )  # fmt: skip
    it = iter(loader)
    next(it)  # worker start-up
    done, start = 0, time.perf_counter()
    for batch in it:
        done += batch.clips.kp2d.shape[0] * batch.clips.kp2d.shape[1]
    return done / (time.perf_counter() - start)


def device_name(cuda: bool) -> str:
    if cuda:
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()})"


def report(name: str, value: str, goal: str, reached: bool | None, cuda: bool) -> None:
    """A FIGURE line; its goal (for one H200) is judged only on the GPU."""
    if cuda:
        figure(name, value, f"{goal} on one H200", bool(reached))
    else:
        figure(f"{name} [not on GPU; goal on one H200: {goal}]", value)


def print_figures(rows: list[Row], loaders: dict[str, float], size: Size) -> None:
    dev, cuda = device_name(size.cuda), size.cuda
    shape = f"B={size.batch_size}, T={size.seq_len}"
    ok = [r for r in rows if not r.error and not math.isnan(r.frames_per_s)]
    for mode in ("images", "phi"):
        mine = [r for r in ok if r.mode == mode]
        f32 = next((r for r in mine if r.precision == "32-true" and not r.compiled), None)
        b16 = next((r for r in mine if r.precision == "bf16-mixed" and not r.compiled), None)
        ratio = b16.frames_per_s / f32.frames_per_s if f32 and b16 else math.nan
        report(f"bf16-mixed / float32 frames/s (TF32 on GPU), {mode}, {shape}, {dev}",
               f"{ratio:.2f}x", f">= {GOAL_BF16}x", ratio >= GOAL_BF16, cuda)  # fmt: skip
        best = max(mine, key=lambda r: r.frames_per_s, default=None)
        fps = best.frames_per_s if best else math.nan
        what = best.label if best else mode
        if mode == "images":
            report(f"training frames/s, best of images ({what}), {shape}, {dev}",
                   f"{fps:,.0f}", f">= {GOAL_IMAGES_FPS:,.0f}", fps >= GOAL_IMAGES_FPS,
                   cuda)  # fmt: skip
        busy = best.busy if best else math.nan
        report(f"GPU busy, {what}, {shape}, {dev}", f"{busy:.0%}" if cuda else "n/a",
               f">= {GOAL_BUSY:.0%}", busy >= GOAL_BUSY, cuda)  # fmt: skip
        loader = loaders.get(mode, math.nan)
        over = loader / fps if fps else math.nan
        report(f"loader / step frames/s, {mode}, {shape}, {dev}",
               f"{over:.2f}x (loader {loader:,.0f}, step {fps:,.0f} frames/s)",
               f">= {GOAL_LOADER:.0f}x", over >= GOAL_LOADER, cuda)  # fmt: skip


def print_compiled(row: Row, eager: list[Row], size: Size) -> None:
    """The compiled row's frames/s over the eager row's of the same mode and precision."""
    base = next(
        r for r in eager if (r.mode, r.precision, r.compiled) == (row.mode, row.precision, False)
    )
    name = (f"torch.compile speed-up, {row.mode}, {row.precision}, "
            f"B={size.batch_size}, T={size.seq_len}, {device_name(size.cuda)}")  # fmt: skip
    if row.error:
        figure(name, f"failed ({row.error})")
    else:
        figure(
            name, f"{row.frames_per_s / base.frames_per_s:.2f}x ({row.frames_per_s:,.0f} frames/s)"
        )


def print_table(rows: list[Row], cuda: bool) -> None:
    print("| mode, precision | batches/s | frames/s | GPU busy | peak GPU memory | first loss |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r.error:
            print(f"| {r.label} | failed: {r.error} | | | | |")
            continue
        busy = "n/a" if math.isnan(r.busy) or not cuda else f"{r.busy:.0%}"
        mem = "n/a" if math.isnan(r.peak_gib) else f"{r.peak_gib:.1f} GiB"
        print(
            f"| {r.label} | {r.batches_per_s:.2f} | {r.frames_per_s:,.0f} | {busy} | {mem} | "
            f"{r.first_loss:.4f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-check", action="store_true", help="tiny size on CPU, no compile")
    p.add_argument(
        "--budget-s",
        type=float,
        default=330.0,
        help="rows not started by then are skipped (gpu.sh stops the run at 480 s)",
    )
    p.add_argument("--loader-workers", type=int, default=None)
    p.add_argument("--loader-batches", type=int, default=60)
    ns = p.parse_args()
    on_gpu = torch.cuda.is_available() and not ns.cpu_check
    if not on_gpu and not ns.cpu_check:
        sys.exit("no CUDA GPU: run with --cpu-check for the CPU check of this script")
    size = PAPER if on_gpu else CPU_CHECK
    workers = ns.loader_workers or (min(12, (os.cpu_count() or 2) - 2) if on_gpu else 2)
    if on_gpu:
        enable_tf32()
    start = time.perf_counter()
    print(
        f"device: {device_name(size.cuda)}; torch {torch.__version__}; {os.cpu_count()} CPUs; "
        f"preset {size.preset}, B={size.batch_size}, T={size.seq_len}; TF32 {on_gpu}; "
        f"{size.warmup} warm-up, {size.steps} timed, {size.profiled} profiled batches",
        flush=True,
    )
    plan = [
        Row("images", "32-true", False),
        Row("images", "bf16-mixed", False),
        Row("phi", "32-true", False),
        Row("phi", "bf16-mixed", False),
    ]
    compiled = [Row("images", "bf16-mixed", True), Row("phi", "bf16-mixed", True)]
    rows: list[Row] = []
    loaders: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        body_dir = write_synthetic_model(Path(tmp) / "body")
        for row in plan:
            rows.append(_timed(row, size, body_dir, start, ns.budget_s))
        for mode in ("images", "phi"):
            if time.perf_counter() - start < ns.budget_s:
                loaders[mode] = loader_frames_per_s(
                    Path(tmp) / mode, mode, size, workers, ns.loader_batches
                )
                print(f"loader {mode}: {loaders[mode]:,.0f} frames/s, {workers} workers",
                      flush=True)  # fmt: skip
        # the goals' figures before the compiled rows, which may run into the time limit
        print_table(rows, size.cuda)
        print_figures(rows, loaders, size)
        for row in compiled if size.compile else []:
            _timed(row, size, body_dir, start, ns.budget_s)
            print_compiled(row, rows, size)
            rows.append(row)
    if size.compile:
        print_table(rows, size.cuda)
    print(f"total {time.perf_counter() - start:.0f} s")


def _timed(row: Row, size: Size, body_dir: Path, start: float, budget_s: float) -> Row:
    if time.perf_counter() - start > budget_s:
        row.error = f"skipped: past the {budget_s:.0f} s budget"
    else:
        run_row(row, size, body_dir)
    print(f"row {row.label}: {row.error or f'{row.frames_per_s:,.0f} frames/s'}", flush=True)
    return row


if __name__ == "__main__":
    main()
