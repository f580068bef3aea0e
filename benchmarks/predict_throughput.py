"""Throughput of ``predict`` (features once per frame) against HMMR's tester, which encodes
every frame again for each overlapping window it appears in; with ``--ckpt``, also the 3D
error of the predictions against the rendered people's known joints.

Usage::

    .venv/bin/python benchmarks/predict_throughput.py [--frames 120] [--preset paper]
        [--ckpt CKPT [--encoder HMR_INIT] [key=value ...]]

Without ``--ckpt`` the model is the preset's, randomly initialised, on images (the paper
preset: ResNet-50 v2 at 224 px), which times the same work as a trained one. The video is
the test suite's two-person synthetic video (``tests/fixtures/video.py``), rendered to a
temporary folder. Prints frames per second of both ways and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.video import FOCAL, make_video, write_alphapose

from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.evaluation.windows import centre_plan, receptive_margin
from lightning_hmd.inference.frames import open_frames
from lightning_hmd.inference.predict import (
    Predictor,
    cut_crops,
    load_predictor,
    plan_crops,
    predict_track,
)
from lightning_hmd.inference.tracks import read_tracks
from lightning_hmd.metrics import mpjpe, pa_mpjpe


def random_predictor(preset: str, body_dir: Path) -> Predictor:
    from lightning_hmd.config import load_config, to_container
    from lightning_hmd.train.module import HMMRModule

    cfg = load_config(preset, overrides=["model.init_checkpoint=none", "data.inputs=images",
                                         f"body.model_dir={body_dir}"])  # fmt: skip
    module = HMMRModule(to_container(cfg))
    return Predictor(module.generator.eval(), module.body.eval(), cfg.data.seq_len,
                     cfg.data.img_size)  # fmt: skip


@torch.no_grad()
def per_window_encoding(predictor: Predictor, crops: np.ndarray) -> None:
    """HMMR's tester: every window's frames encoded again (then the temporal model)."""
    g = predictor.generator
    margin = receptive_margin(len(g.temporal.blocks), g.temporal.kernel_size)
    images = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    plan = centre_plan(len(crops), predictor.seq_len, margin)
    for frames in plan.inputs:  # padding positions (outside the track) take an edge frame
        window = images[torch.from_numpy(np.clip(frames, 0, len(crops) - 1))][None]
        g.predict(g.temporal(g.encode_images(window)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--encoder", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        body_dir = write_synthetic_model(tmp / "body")
        people = make_video(body_dir, tmp, frames=args.frames)
        source = open_frames(tmp / "video.mp4")
        tracks = read_tracks(write_alphapose(people, tmp / "ap.json"), source.names)
        if args.ckpt:
            over = [f"body.model_dir={body_dir}", *args.overrides]
            predictor = load_predictor(args.ckpt, over, args.encoder)
        else:
            predictor = random_predictor(args.preset, body_dir)
        principal = ((source.width - 1) / 2, (source.height - 1) / 2)
        start = time.perf_counter()
        plans = [plan_crops(t, source.count, predictor.img_size) for t in tracks]
        cut_crops(source, plans, progress=False)
        crop_s = time.perf_counter() - start
        start = time.perf_counter()
        preds = [predict_track(predictor, p, FOCAL, principal) for p in plans]
        once_s = time.perf_counter() - start
        start = time.perf_counter()
        for p in plans:
            per_window_encoding(predictor, p.crops)
        window_s = time.perf_counter() - start
    n = sum(len(p.frames) for p in preds)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")  # fmt: skip
    print(f"model: {args.ckpt or args.preset + ' (random weights)'}, img_size "
          f"{predictor.img_size}, seq_len {predictor.seq_len}")  # fmt: skip
    print(f"{len(preds)} tracks x {args.frames} frames = {n} person-frames; decode + crops "
          f"{crop_s:.2f} s")  # fmt: skip
    print(f"features once per frame: {once_s:.2f} s = {n / once_s:.1f} frames/s")
    print(f"HMMR per-window features: {window_s:.2f} s = {n / window_s:.1f} frames/s")
    print(f"ratio: {window_s / once_s:.2f}x")
    if args.ckpt:
        for k, (pred, person) in enumerate(
            zip(sorted(preds, key=lambda p: p.box_center[0, 0]), people, strict=True)
        ):
            j = torch.from_numpy(pred.joints3d[:, :14]).float()
            gt = torch.from_numpy(person.lsp14).float()
            print(f"person {k}: MPJPE {float(mpjpe(j, gt).mean()):.1f} mm, PA-MPJPE "
                  f"{float(pa_mpjpe(j, gt).mean()):.1f} mm")  # fmt: skip


if __name__ == "__main__":
    main()
