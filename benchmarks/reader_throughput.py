"""Frames per second through the clip reader: precomputed features, and JPEG crops with
HMMR's augmentation.

Usage::

    .venv/bin/python benchmarks/reader_throughput.py [--workers 2] [--batches 60] [--clips 64]

Writes two shard sets of 150-frame clips (the converters' chunk length) to a temporary
directory (features: 2048-D float16 phi; images: 300 px JPEG pre-crops, as the converters
write for training) and times ``build_train_loader`` (random windows, dataset mixing off,
mocap stream on) over them, frames = B * T per batch, and ``build_track_loader`` (whole
tracks for evaluation; the feature clips are chunks of tracks of ``--track-chunks`` chunks
each, joined back when read), frames = the frames of each delivered track. The first batch
or track (worker start-up) is not timed.
Goals per loader worker: >= 20,000 frames/s for features, >= 500 frames/s for 224 px crops
with augmentation.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from figures import figure  # benchmarks/figures.py

from lightning_hmd.config_tree import AugmentConfig
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.schema import ClipSample, MocapSample, make_key, make_mocap_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.whole_tracks import build_track_loader

FEAT_DIM = 2048


def _jpeg(size: int, rng: np.random.Generator) -> bytes:
    """A crop with photo-like JPEG size: a smooth gradient, a blob and sensor noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, 1 - x * y], -1) * rng.uniform(80, 200, 3)
    blob = np.exp(-(((x - 0.5) / 0.15) ** 2 + ((y - 0.5) / 0.35) ** 2))[..., None] * 60
    image = np.clip(base + blob + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def write_set(
    out: Path, clips: int, frames: int, *, features: bool, crop: int, track_chunks: int = 1
) -> None:
    """``clips`` clips of ``frames`` frames: chunks of tracks of ``track_chunks`` chunks."""
    rng = np.random.default_rng(0)
    jpegs = [_jpeg(crop, rng) for _ in range(16)]  # reused: decoding cost is what matters
    with ShardSetWriter(out, "train", 32, "benchmark") as writer:
        for i in range(clips):
            kp = rng.uniform(-0.8, 0.8, (frames, 25, 3)).astype(np.float32)
            kp[..., 2] = 1.0
            box = np.tile(np.float32([0, 0, crop, crop]), (frames, 1))
            track, chunk = divmod(i, track_chunks)
            sample = ClipSample(
                dataset="bench",
                split="train",
                sequence=f"s{track:05d}",
                track_id=0,
                fps=30.0,
                kp2d=kp,
                crop_box=box,
                crop_scale=np.ones(frames, np.float32),
                frame_index=np.arange(chunk * frames, (chunk + 1) * frames, dtype=np.int32),
                chunk=chunk,
                phi=rng.normal(0, 1, (frames, FEAT_DIM)).astype(np.float16) if features else None,
                encoder_id="bench" if features else None,
                jpeg=None if features else [jpegs[(i + t) % 16] for t in range(frames)],
                joints3d=rng.normal(0, 0.3, (frames, 14, 3)).astype(np.float32),
            )
            writer.write(sample, make_key("bench", sample.sequence, 0, chunk))
    with ShardSetWriter(out.parent / "mocap", "train", 1000, "benchmark", overwrite=True) as w:
        for i in range(2000):
            w.write(
                MocapSample(rng.normal(0, 0.2, 72).astype(np.float32), np.zeros(10, np.float32)),
                make_mocap_key("mocap", i),
            )


def frames_per_second(loader, batches: int) -> tuple[float, int]:
    it = iter(loader)
    first = next(it)
    per_batch = first.clips.kp2d.shape[0] * first.clips.kp2d.shape[1]
    done, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            break
        done += batch.clips.kp2d.shape[0] * batch.clips.kp2d.shape[1]
    elapsed = time.perf_counter() - start
    del it
    return done / elapsed, per_batch


def track_frames_per_second(loader) -> tuple[float, int, int]:
    """(frames/s over the tracks after the first, frames of the first track, tracks)."""
    it = iter(loader)
    first = next(it)
    done, tracks, start = 0, 1, time.perf_counter()
    for item in it:
        done += item.sample.num_frames
        tracks += 1
    elapsed = time.perf_counter() - start
    return (done / elapsed if done else float("nan")), first.sample.num_frames, tracks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=150, help="frames per clip (converters: 150)")
    parser.add_argument("--clips", type=int, default=64, help="feature clips (images: a quarter)")
    parser.add_argument("--track-chunks", type=int, default=4, help="chunks per evaluation track")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, {args.workers} loader workers, "
        f"B={args.batch_size}, T={args.seq_len}"
    )
    common = dict(batch_size=args.batch_size, seq_len=args.seq_len, num_workers=args.workers,
                  rank=0, world_size=1)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        feats, images = Path(tmp) / "features" / "train", Path(tmp) / "images" / "train"
        write_set(feats, args.clips, args.chunk, features=True, crop=224,
                  track_chunks=args.track_chunks)  # fmt: skip
        write_set(images, max(1, args.clips // 4), args.chunk, features=False, crop=300)
        rows = []
        for name, set_dir, inputs, augment in (
            ("features, train (random windows)", feats, "features", AugmentConfig()),
            ("224 px JPEG, train, augmented", images, "images", AugmentConfig()),
            ("224 px JPEG, train, centre crop", images, "images", AugmentConfig(enabled=False)),
        ):
            loader = build_train_loader(
                [set_dir], [1.0], [set_dir.parent / "mocap"], seed=0, inputs=inputs,
                img_size=224, augment=augment, num_fake_poses=args.batch_size * args.seq_len * 3,
                batches_per_epoch=args.batches + 1, **common,
            )  # fmt: skip
            rows.append((name, *frames_per_second(loader, args.batches)))
        loader = build_track_loader([feats], rank=0, world_size=1, num_workers=args.workers,
                                    inputs="features", img_size=224)  # fmt: skip
        fps, per_track, tracks = track_frames_per_second(loader)
        rows.append((f"features, eval (whole tracks, {tracks} delivered)", fps, per_track))
    print("| reader | frames/s | frames/batch (eval: frames/track) |")
    print("|---|---|---|")
    for name, fps, per_batch in rows:
        print(f"| {name} | {fps:,.0f} | {per_batch} |")
    for name, fps, _ in rows:
        figure(f"reader frames/s, {name.split(' (')[0]}, {args.workers} workers", f"{fps:,.0f}")


if __name__ == "__main__":
    main()
