"""Throughput of ``predict`` (``inference.predict.predict_crops``: each frame encoded once,
all tracks' windows batched) against HMMR's tester (``predict_track_per_window``: every
window's frames encoded again, one window at a time); with ``--ckpt``, also the 3D error of
the predictions against the rendered people's known joints.

Usage::

    .venv/bin/python benchmarks/predict_throughput.py [--frames 8] [--seconds 40]
        [--preset paper] [--quick] [--ckpt CKPT [--encoder HMR_INIT] [key=value ...]]

Without ``--ckpt`` the model is the preset's, randomly initialised, on images (the paper
preset: ResNet-50 v2 at 224 px, 3 temporal blocks, T = 20), which times the same work as a
trained one. The video is the test suite's two-person synthetic video
(``tests/fixtures/video.py``), rendered to a temporary folder and decoded and cropped once;
both ways then run on the same crops. After an untimed warm-up the two are timed in
interleaved rounds (A B, then B A, ...) until ``--seconds`` have passed (at least
``--rounds``), each call's wall time and this process's CPU time measured. The ratio is of
CPU times, one torch thread by default: on a machine whose cores other jobs share, the wall
time of a call depends on the share it was given, its CPU time (one thread: no spinning at
a barrier while a peer thread waits for a core) on the work alone, and each round's ratio
compares two calls made one after the other. Prints the median ratio over the rounds with
its range, each way's median frames/s (per CPU second and wall), the wall-clock ratio, and
the largest difference between their outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import figure
from fixtures.video import FOCAL, make_video, write_alphapose

from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.inference.frames import open_frames
from lightning_hmd.inference.predict import (
    Predictor,
    TrackCrops,
    channels_last,
    cut_crops,
    load_predictor,
    plan_crops,
    predict_crops,
    predict_track_per_window,
)
from lightning_hmd.inference.tracks import read_tracks
from lightning_hmd.metrics import mpjpe, pa_mpjpe

GOAL = 2.3  # predict's frames/s over HMMR's tester's


def random_predictor(preset: str, body_dir: Path) -> Predictor:
    from lightning_hmd.config import load_config, to_container
    from lightning_hmd.train.module import HMMRModule

    cfg = load_config(preset, overrides=["model.init_checkpoint=none", "data.inputs=images",
                                         f"body.model_dir={body_dir}"])  # fmt: skip
    torch.manual_seed(cfg.seed)
    module = HMMRModule(to_container(cfg))
    return channels_last(Predictor(module.generator.eval(), module.body.eval(),
                                   cfg.data.seq_len, cfg.data.img_size))  # fmt: skip


def head(plan: TrackCrops, frames: int) -> TrackCrops:
    """The first ``frames`` frames of a track's crops (for the warm-up)."""
    k = min(frames, len(plan.crops))
    return dataclasses.replace(plan, stop=plan.start + k, boxes=plan.boxes[:k],
                               box_scale=plan.box_scale[:k], crops=plan.crops[:k])  # fmt: skip


def timed(fn) -> tuple[float, float, list]:
    """(wall seconds, this process's CPU seconds, fn's result)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def rounds(fast, tester, min_rounds: int, seconds: float) -> tuple[dict, dict, list]:
    """Interleaved timings: round r runs (fast, tester), the next (tester, fast), until
    ``seconds`` have passed and at least ``min_rounds`` rounds ran. Returns, per way, its
    wall and CPU seconds per round (``{"wall": (R,), "cpu": (R,)}``), and the last round's
    outputs of both."""
    times = {fn: {"wall": [], "cpu": []} for fn in (fast, tester)}
    outs = {}
    start = time.perf_counter()
    while len(times[fast]["cpu"]) < min_rounds or time.perf_counter() - start < seconds:
        order = (fast, tester) if len(times[fast]["cpu"]) % 2 == 0 else (tester, fast)
        for fn in order:
            wall, cpu, outs[fn] = timed(fn)
            times[fn]["wall"].append(wall)
            times[fn]["cpu"].append(cpu)
        a, b = times[fast], times[tester]
        print(f"round {len(a['cpu'])}: predict {a['cpu'][-1]:.2f} s CPU ({a['wall'][-1]:.2f} s "
              f"wall), HMMR's tester {b['cpu'][-1]:.2f} s CPU ({b['wall'][-1]:.2f} s wall), "
              f"ratio {b['cpu'][-1] / a['cpu'][-1]:.2f}x", flush=True)  # fmt: skip
    arrays = {fn: {k: np.array(v) for k, v in t.items()} for fn, t in times.items()}
    return arrays[fast], arrays[tester], [outs[fast], outs[tester]]


def max_difference(a: list, b: list) -> float:
    keys = ("cam", "joints3d", "keypoints2d", "translation")
    return max(float(np.abs(getattr(x, k) - getattr(y, k)).max())
               for x, y in zip(a, b, strict=True) for k in keys)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8, help="video length (both people)")
    ap.add_argument("--seconds", type=float, default=40.0, help="time for the timed rounds")
    ap.add_argument("--rounds", type=int, default=3, help="at least this many rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--quick", action="store_true", help="the tiny preset, two short rounds")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--encoder", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.preset, args.frames, args.seconds, args.rounds = "tiny", 12, 0.0, 2
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

    def fast(ps=plans):
        return predict_crops(predictor, ps, FOCAL, principal)

    def tester(ps=plans):
        return [predict_track_per_window(predictor, p, FOCAL, principal) for p in ps]

    if not args.quick:  # warm-up: a few frames of each track, one window of the tester's
        fast([head(p, 4) for p in plans])
        tester([head(plans[0], 4)])
    t_fast, t_tester, (preds, ref) = rounds(fast, tester, args.rounds, args.seconds)
    n = sum(len(p.crops) for p in plans)
    ratio = t_tester["cpu"] / t_fast["cpu"]
    med = float(np.median(ratio))
    wall = t_tester["wall"] / t_fast["wall"]
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")  # fmt: skip
    print(f"model: {args.ckpt or args.preset + ' (random weights)'}, img_size "
          f"{predictor.img_size}, seq_len {predictor.seq_len}")  # fmt: skip
    print(f"{len(plans)} tracks x {args.frames} frames = {n} person-frames; decode + crops "
          f"{crop_s:.2f} s (once, not in the ratio); {len(ratio)} rounds")  # fmt: skip
    print(f"largest output difference (cam, joints3d, keypoints2d, translation): "
          f"{max_difference(preds, ref):.2e}")  # fmt: skip
    figure("predict throughput", f"{med:.2f}x HMMR's tester (range {ratio.min():.2f}-"
           f"{ratio.max():.2f})", f">= {GOAL}x", med >= GOAL)  # fmt: skip
    print(f"wall-clock ratio (the other jobs' share of the cores included): median "
          f"{np.median(wall):.2f}x, range {wall.min():.2f}-{wall.max():.2f}")  # fmt: skip
    for name, t in (("predict", t_fast), ("HMMR's tester", t_tester)):
        cpu, w = n / t["cpu"], n / t["wall"]
        figure(f"{name} frames/s, {args.threads} thread(s)", f"{np.median(cpu):.2f} per CPU "
               f"second (range {cpu.min():.2f}-{cpu.max():.2f}), {np.median(w):.2f} wall "
               f"(range {w.min():.2f}-{w.max():.2f})")  # fmt: skip
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
