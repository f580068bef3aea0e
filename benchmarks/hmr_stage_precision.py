"""The quickstart HMR stage's image encoder step in float32 against bf16-mixed on the CPU.

Usage::

    .venv/bin/python benchmarks/hmr_stage_precision.py [--rounds 5] [--steps 10] [--threads 2]

One step is what the HMR stage does with its encoder each batch: ``small_cnn`` forward on 64
crops of 64 px, backward and a fused Adam update, under ``torch.autocast("cpu",
torch.bfloat16)`` or not. The two precisions alternate round by round in one process; the
figure is the median over rounds of each round's float32 / bf16 time ratio, with its range.
``lightning_hmd.experiments.quickstart.cpu_precision`` picks bf16-mixed where the CPU has
native bfloat16 (AVX-512 BF16 or AMX), which this script reports too.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from figures import figure  # benchmarks/figures.py

from lightning_hmd.experiments.quickstart import cpu_precision
from lightning_hmd.models.encoders import SmallCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per precision and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = SmallCNN(256)
    opt = torch.optim.Adam(net.parameters(), 1e-3, fused=True)
    images = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1

    def steps(bf16: bool, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                phi = net(images)
            loss = phi.float().square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - start) / n

    steps(False, 3)
    steps(True, 3)  # warm-up: oneDNN picks its kernels on first use
    ratios, fp32, bf16 = [], [], []
    for _ in range(args.rounds):
        a, b = steps(False, args.steps), steps(True, args.steps)
        fp32.append(a)
        bf16.append(b)
        ratios.append(a / b)
    print(
        f"torch {torch.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}, quickstart picks {cpu_precision()}; "
        f"small_cnn step on {args.batch} x {args.size} px: float32 "
        f"{statistics.median(fp32) * 1e3:.1f} ms, bf16-mixed {statistics.median(bf16) * 1e3:.1f} ms"
    )
    ratio = statistics.median(ratios)
    figure(
        "HMR-stage encoder step float32 / bf16-mixed time (cpu)",
        f"{ratio:.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}, {args.rounds} rounds)",
    )


if __name__ == "__main__":
    main()
