"""Time BodyModel's full forward (smplx LBS over all vertices) against its joints-only path.

Usage::

    .venv/bin/python benchmarks/body_joints_only.py [--frames 160] [--repeats 20] [--model-dir DIR]
        [--regressors cocoplus h36m]

Without ``--model-dir`` the synthetic model is written to a temporary directory. Prints the
median time of each path (forward only, and forward + backward) and the speed ratio.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from figures import figure  # benchmarks/figures.py
from smplx.lbs import batch_rodrigues

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.body.synth import write_synthetic_model


def median_ms(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=160, help="N = B*T (paper config: 8*20)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--regressors", nargs="*", default=None, choices=("cocoplus", "h36m"),
        help="extra regressors to load (default: all present)",
    )  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or write_synthetic_model(Path(tmp) / "body")
        body = BodyModel.from_dir(model_dir, extra_regressors=args.regressors)
    gen = torch.Generator().manual_seed(args.seed)
    N = args.frames
    pose = batch_rodrigues(0.3 * torch.randn(N * 24, 3, generator=gen)).view(N, 24, 3, 3)
    betas = torch.randn(N, 10, generator=gen)

    def forward(joints_only: bool) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return body(pose, betas, joints_only=joints_only).joints

        return run

    def forward_backward(joints_only: bool) -> Callable[[], object]:
        def run() -> object:
            p, b = pose.clone().requires_grad_(), betas.clone().requires_grad_()
            body(p, b, joints_only=joints_only).joints.square().sum().backward()
            return p.grad

        return run

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, N={N} frames, "
        f"V={body.num_vertices}, regressor vertices U={body.subset.numel()}"
    )
    for label, make in (("forward", forward), ("forward+backward", forward_backward)):
        full = median_ms(make(False), args.warmup, args.repeats)
        fast = median_ms(make(True), args.warmup, args.repeats)
        print(
            f"{label:>17}: full {full:8.2f} ms | joints-only {fast:7.2f} ms | "
            f"ratio {full / fast:5.1f}x"
        )
        figure(f"body joints-only / full mesh speed, {label}, N = {N}", f"{full / fast:.1f}x")


if __name__ == "__main__":
    main()
