"""Step efficiency: the paper-config training step's achieved FLOP/s over a dense GEMM's.

The paper recipe in phi mode (B = 8, T = 20, 2048-D precomputed features, 3 temporal blocks,
Δt heads at -5/+5, the hallucinator, the pose discriminator) runs the module's own
``training_step`` (generator step, then discriminator step, both Adam updates) under
Lightning's ``Trainer.fit`` on in-memory synthetic batches. One step is counted with torch's
``FlopCounterMode`` (matrix products and convolutions, forward and backward); the steps are
timed in between repeats of a float32 GEMM the size of one temporal-encoder convolution
(B·T × 3·2048 by 3·2048 × 2048), so that the ratio of the step's FLOP/s over the GEMM's is
measured in one run on the same, possibly busy, cores::

    .venv/bin/python benchmarks/step_efficiency.py [--batches 6] [--profile] [key=value ...]

``--profile`` prints ``torch.profiler``'s top operators by self time over two steps.
The run's FIGURE lines end with the goal (>= 0.60 of GEMM speed on CPU).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/harness.py
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.data.synth.batches import synthetic_clip_batch
from lightning_hmd.data.train_stream import num_fake_poses
from lightning_hmd.train.module import HMMRModule

GOAL = 0.60


def gemm_seconds(a: torch.Tensor, b: torch.Tensor, repeats: int = 3) -> float:
    """Median seconds of the product ``a @ b`` (after one warm-up)."""
    device = a.device
    times = []
    for i in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class StepMeter(pl.Callback):
    """Times each batch's training step; counts one step's FLOPs; times a GEMM after each step.

    Batch ``flop_batch`` runs under ``FlopCounterMode`` (its time is not used); batches
    ``warmup`` to ``stop - 1`` are timed, each followed by the GEMM repeats on float32 operands
    of shapes ``gemm`` = (m, k, n).
    """

    def __init__(self, warmup: int, stop: int, flop_batch: int, gemm: tuple, device):
        self.warmup, self.stop, self.flop_batch, self.device = warmup, stop, flop_batch, device
        m, k, n = gemm
        self.a, self.b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        self.step_s: list[float] = []
        self.gemm_s: list[float] = []
        self.flops = 0
        self.losses: list[float] = []
        self._counter: FlopCounterMode | None = None
        self._start = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.flop_batch:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        _sync(self.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        _sync(self.device)
        seconds = time.perf_counter() - self._start
        self.losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops = self._counter.get_total_flops()
            self._counter = None
        elif self.warmup <= batch_idx < self.stop:
            self.step_s.append(seconds)
            self.gemm_s.append(gemm_seconds(self.a, self.b))


def paper_module(body_dir: Path, overrides: list[str], accelerator: str) -> HMMRModule:
    """The paper preset in phi mode on ``accelerator`` (:func:`harness.paper_module`)."""
    return harness.paper_module(
        body_dir, ["data.inputs=features", f"trainer.accelerator={accelerator}", *overrides]
    )


def synthetic_batches(module: HMMRModule, count: int) -> list:
    """``count`` different synthetic training batches of the module's configured size."""
    d, m = module.cfg.data, module.cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)
    gen = torch.Generator().manual_seed(0)
    return [
        synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses, gen)
        for _ in range(count)
    ]


def fit(module: HMMRModule, batches: list, callbacks: list, accelerator: str) -> None:
    trainer = harness.bare_trainer(
        len(batches),
        callbacks,
        accelerator=accelerator,
        devices=1,
        precision=module.cfg.trainer.precision,
    )
    trainer.fit(module, DataLoader(batches, batch_size=None, collate_fn=lambda b: b))


class Profile(pl.Callback):
    """torch.profiler over the batches from ``first`` on; prints the top operators."""

    def __init__(self, first: int):
        self.first = first
        self.prof = torch.profiler.profile(record_shapes=False)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.first:
            self.prof.__enter__()

    def on_train_end(self, trainer, module) -> None:
        self.prof.__exit__(None, None, None)
        print(self.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def measure(ns: argparse.Namespace, body_dir: Path) -> None:
    accelerator = "gpu" if ns.device == "cuda" else "cpu"
    device = torch.device(ns.device)
    module = paper_module(body_dir, ns.overrides, accelerator)
    d, m = module.cfg.data, module.cfg.model
    k = m.temporal.kernel_size
    gemm = (d.batch_size * d.seq_len, k * m.feat_dim, m.feat_dim)
    warmup = 2
    stop = warmup + ns.batches
    meter = StepMeter(warmup=warmup, stop=stop, flop_batch=1, gemm=gemm, device=device)
    callbacks: list = [meter]
    if ns.profile:  # two more batches, profiled
        callbacks.append(Profile(first=stop))
    fit(module, synthetic_batches(module, stop + 2 * ns.profile), callbacks, accelerator)
    step_s = statistics.median(meter.step_s)
    gemm_flops = 2 * gemm[0] * gemm[1] * gemm[2]
    gemm_rate = gemm_flops / statistics.median(meter.gemm_s)
    step_rate = meter.flops / step_s
    pairs = zip(meter.step_s, meter.gemm_s, strict=True)
    ratios = [meter.flops / s / (gemm_flops / g) for s, g in pairs]
    ratio = step_rate / gemm_rate
    print("generator losses " + " ".join(f"{v:.6f}" for v in meter.losses))
    print(f"FIGURE: paper step FLOP (phi, B=8, T=20) = {meter.flops / 1e9:.1f} GFLOP (no goal)")
    print(
        f"FIGURE: paper step time ({ns.device}) = {step_s:.3f} s "
        f"(range {min(meter.step_s):.3f}-{max(meter.step_s):.3f}) (no goal)"
    )
    print(
        f"FIGURE: achieved / GEMM FLOP/s ({ns.device}) = {ratio:.2f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}; step {step_rate / 1e9:.1f} GFLOP/s, "
        f"GEMM {gemm_rate / 1e9:.1f} GFLOP/s) "
        f"(goal: >= {GOAL:.2f}, {'met' if ratio >= GOAL else 'not met'})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=6, help="timed batches after 2 warm-up")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--profile", action="store_true", help="print the profiler's top operators")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    ns = p.parse_args()
    name = torch.cuda.get_device_name() if ns.device == "cuda" else platform.processor() or "CPU"
    print(
        f"device: {name}; {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
        f"python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        measure(ns, write_synthetic_model(Path(tmp) / "body"))


if __name__ == "__main__":
    main()
