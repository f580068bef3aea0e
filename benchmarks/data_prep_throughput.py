"""Frames per second of data preparation: ``data synth`` (rendered) and a converter.

Usage::

    .venv/bin/python benchmarks/data_prep_throughput.py [--clips 16] [--frames 40]

``data synth``: rendered frames (pyrender over OSMesa, 128 px images, 64 px crops) with
labels, shards and manifests, start-up included. ``penn-action``: a Penn Action copy in the
published layout (640 x 480 JPEG frames, written by the test fixtures) converted to 300 / 224
px crops: JPEG decode, crop, JPEG encode and shard writing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from figures import figure  # noqa: E402  (benchmarks/figures.py)
from fixtures.datasets import write_penn_action  # noqa: E402

from data_prep import penn_action  # noqa: E402
from lightning_hmd.data.synth.make import make_synthetic_dataset  # noqa: E402
from lightning_hmd.data.synth.spec import SynthSpec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16, help="synthetic training clips")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--videos", type=int, default=4, help="Penn Action videos")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = SynthSpec(clips=args.clips, val_clips=2, test_clips=2, frames=args.frames,
                         mocap=200)  # fmt: skip
        start = time.perf_counter()
        manifests = make_synthetic_dataset(Path(tmp) / "synth", spec, progress=False)
        elapsed = time.perf_counter() - start
        frames = sum(m.total_frames for n, m in manifests.items() if n != "mocap")
        rows.append(("data synth (rendered, 128 px)", frames, elapsed))

        src = Path(tmp) / "penn"
        n = 60
        write_penn_action(src, {f"{i:04d}": (n, 1) for i in range(args.videos)}, size=(640, 480))
        start = time.perf_counter()
        manifests = penn_action.convert(src, Path(tmp) / "penn_out", progress=False)
        elapsed = time.perf_counter() - start
        frames = sum(m.total_frames for m in manifests.values())
        rows.append(("convert penn-action (640x480 -> 300 px)", frames, elapsed))
    print("| job | frames | seconds | frames/s | frames/min |")
    print("|---|---|---|---|---|")
    for name, frames, secs in rows:
        rate = frames / secs
        print(f"| {name} | {frames} | {secs:.1f} | {rate:,.0f} | {60 * rate:,.0f} |")
    for name, frames, secs in rows:
        figure(f"{name.split(' (')[0]} frames/s", f"{frames / secs:,.0f}")


if __name__ == "__main__":
    main()
