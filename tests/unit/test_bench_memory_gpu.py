"""benchmarks/memory_rss.py and benchmarks/gpu_suite.py: the slope and busy-time arithmetic
on hand-made numbers, and both scripts end to end on CPU (slow)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_suite  # noqa: E402
import memory_rss  # noqa: E402

FIGURE = re.compile(r"^FIGURE: .+ = .+ \((goal: .+, (met|not met)|no goal)\)$")


def test_slope_per_100_batches_of_hand_made_series():
    # +1 MB per batch is +100 MB per 100 batches
    assert memory_rss.slope_per_100([0, 1, 2, 3, 4], [100, 101, 102, 103, 104]) == 100.0
    # sampled every 5 batches, +1 MB per sample: +20 MB per 100 batches
    assert memory_rss.slope_per_100([5, 10, 15, 20], [7, 8, 9, 10]) == pytest.approx(20.0)
    assert memory_rss.slope_per_100([10, 20, 30], [50, 50, 50]) == 0.0
    # a sawtooth: mean x 1.5, Sxy = 1.5 - 0.5 - 0.5 + 1.5 = 2, Sxx = 5: 0.4 per batch
    assert memory_rss.slope_per_100([0, 1, 2, 3], [0, 2, 0, 2]) == pytest.approx(40.0)
    assert memory_rss.slope_per_100([0, 100, 200], [300, 299, 298]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="two samples"):
        memory_rss.slope_per_100([1], [1])


def test_warm_up_is_a_tenth_of_the_run():
    assert memory_rss.warmup_batches(1000) == 100
    assert memory_rss.warmup_batches(40) == 4
    assert memory_rss.warmup_batches(5) == 1


def test_summary_of_samples_after_warm_up():
    S = memory_rss.Sample
    samples = [S(b, b, mb, rss, 2) for b, mb, rss in [
        (10, 900.0, 500.0), (20, 1000.0, 600.0), (30, 1004.0, 600.0), (40, 1001.0, 601.0),
        (50, 1002.0, 602.0)]]  # fmt: skip
    s = memory_rss.summarise(samples, warmup=20)
    assert (s.warm_mb, s.peak_mb, s.after) == (1000.0, 1004.0, 3)
    # after warm-up: x 30, 40, 50 and y 1004, 1001, 1002: Sxy = -20, Sxx = 200: -0.1 per batch
    assert s.slope_mb_per_100 == pytest.approx(-10.0)
    # the trainer's RSS 600, 601, 602: +0.1 per batch, growth the goal refuses; the fall is not
    assert s.trainer_slope_mb_per_100 == pytest.approx(10.0)
    assert memory_rss.grows(s.trainer_slope_mb_per_100)
    assert not memory_rss.grows(s.slope_mb_per_100) and not memory_rss.grows(0.99)


def test_log_lines_read_back(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text(
        "noise\nbatch 5 at 42 s: 2850.7 MB PSS, 2445.5 MB trainer RSS, 2 workers\n"
        "batch 10 at 80 s: 2851.0 MB PSS, 2446.0 MB trainer RSS, 2 workers\n"
    )
    samples = memory_rss.read_log(log)
    assert samples == [
        memory_rss.Sample(5, 42.0, 2850.7, 2445.5, 2),
        memory_rss.Sample(10, 80.0, 2851.0, 2446.0, 2),
    ]


def test_memory_of_a_process_tree_counts_a_child():
    me = memory_rss.psutil.Process()
    alone, rss, _ = memory_rss.process_tree_memory(me)
    child = subprocess.Popen(
        [sys.executable, "-c", "b = bytearray(200_000_000); import time; time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        for _ in range(100):  # until the child holds its 200 MB
            if memory_rss.psutil.Process(child.pid).memory_info().rss > 200e6:
                break
            memory_rss.time.sleep(0.1)
        pss, _, children = memory_rss.process_tree_memory(me)
    finally:
        child.kill()
        child.wait()
    assert rss > 0 and children >= 1
    assert pss - alone > 190  # MB: the child's 200 MB buffer is its own


def test_busy_time_is_the_union_of_device_intervals():
    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU

    def event(device, start, end):
        return SimpleNamespace(device_type=device, time_range=SimpleNamespace(start=start, end=end))

    prof = SimpleNamespace(
        events=lambda: [
            event(cuda, 20, 30),
            event(cuda, 0, 10),
            event(cuda, 5, 15),  # overlaps (0, 10): counted once
            event(cuda, 22, 28),  # inside (20, 30)
            event(cpu, 0, 1000),  # host time is not device time
        ]
    )
    assert gpu_suite.busy_seconds(prof) == pytest.approx(25e-6)  # 15 + 10 us


def test_goals_are_judged_only_on_the_gpu(capsys):
    gpu_suite.report("x", "1.6x", ">= 1.5x", True, cuda=True)
    gpu_suite.report("x", "1.2x", ">= 1.5x", False, cuda=True)
    gpu_suite.report("x", "1.6x", ">= 1.5x", True, cuda=False)
    assert capsys.readouterr().out.splitlines() == [
        "FIGURE: x = 1.6x (goal: >= 1.5x on one H200, met)",
        "FIGURE: x = 1.2x (goal: >= 1.5x on one H200, not met)",
        "FIGURE: x [not on GPU; goal on one H200: >= 1.5x] = 1.6x (no goal)",
    ]


def test_a_failed_compiled_row_is_a_figure(capsys):
    size = gpu_suite.CPU_CHECK
    eager = [gpu_suite.Row("phi", "bf16-mixed", False, frames_per_s=400.0)]
    good = gpu_suite.Row("phi", "bf16-mixed", True, frames_per_s=600.0)
    bad = gpu_suite.Row("phi", "bf16-mixed", True, error="BackendCompilerFailed: no compiler")
    gpu_suite.print_compiled(good, eager, size)
    gpu_suite.print_compiled(bad, eager, size)
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("= 1.50x (600 frames/s) (no goal)")
    assert out[1].endswith("= failed (BackendCompilerFailed: no compiler) (no goal)")


def _run(args: list[str], timeout: int) -> str:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env,
        cwd=BENCHMARKS.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _figures(out: str) -> list[str]:
    lines = [line for line in out.splitlines() if line.startswith("FIGURE:")]
    assert all(FIGURE.match(line) for line in lines), lines
    return lines


@pytest.mark.slow
def test_memory_quick_run_prints_its_figures_and_curve(tmp_path):
    out = _run([str(BENCHMARKS / "memory_rss.py"), "--quick", "--out", str(tmp_path / "m.png")],
               timeout=600)  # fmt: skip
    lines = _figures(out)
    assert [line.split(" (")[0] for line in lines] == [
        "FIGURE: memory at warm-up end",
        "FIGURE: peak memory over 8 batches",
        "FIGURE: memory slope after warm-up",
        "FIGURE: memory slope after warm-up",
    ]
    assert "PSS of trainer + workers) = " in lines[2] and "trainer's RSS alone) = " in lines[3]
    assert all("goal: slope < +1 MB per 100 batches: no growth" in line for line in lines[2:])
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert rows[0] == "batch,seconds,pss_mb,trainer_rss_mb,workers"
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 9))  # every batch
    assert all(float(r.split(",")[2]) > 100 for r in rows[1:])  # MB: a trainer holds more
    assert all(int(r.split(",")[4]) >= 2 for r in rows[1:])  # the two loader workers


@pytest.mark.slow
def test_gpu_suite_cpu_check_runs_every_row_and_prints_its_figures():
    out = _run([str(BENCHMARKS / "gpu_suite.py"), "--cpu-check"], timeout=900)
    assert "failed" not in out, out
    for label in ("images, 32-true", "images, bf16-mixed", "phi, 32-true", "phi, bf16-mixed"):
        assert f"| {label} |" in out
    lines = _figures(out)
    assert len(lines) == 7  # per mode: bf16 / float32, busy, loader; images: frames/s
    assert all(line.endswith("(no goal)") and "not on GPU" in line for line in lines)
    assert "loader / step frames/s, images" in out and "loader / step frames/s, phi" in out


def test_a_log_summary_needs_two_samples_after_warm_up(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.txt"
    lines = [f"batch {b} at {b} s: {1000 + b}.0 MB PSS, 900.0 MB trainer RSS, 2 workers"
             for b in (5, 10, 15, 20)]  # fmt: skip
    log.write_text("\n".join(lines) + "\n")
    args = ["memory_rss.py", "--summarise", str(log), "--out", str(tmp_path / "m.png")]
    monkeypatch.setattr(sys, "argv", [*args, "--batches", "1000"])  # warm-up: 100 batches
    with pytest.raises(SystemExit, match="fewer than 2 samples after warm-up"):
        memory_rss.main()
    monkeypatch.setattr(sys, "argv", [*args, "--batches", "100"])  # warm-up: 10 batches
    memory_rss.main()
    slope, trainer = capsys.readouterr().out.splitlines()[-2:]
    # +1 MB per batch after batch 10: +100 MB per 100 batches, growth; the trainer's RSS flat
    assert "batches 11-20, 2 samples" in slope and "= +100.00 MB per 100 batches" in slope
    assert slope.endswith("no growth after warm-up, not met)")
    assert "trainer's RSS alone) = +0.00 MB per 100 batches" in trainer
    assert trainer.endswith("no growth after warm-up, met)")
    assert (tmp_path / "m.csv").read_text().count("\n") == 5
