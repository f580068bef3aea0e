"""benchmarks/ddp_allreduce.py on 2 gloo processes: the quick run's figures, and the bytes
Lightning's DDPStrategy all-reduces per batch counted by a comm hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ddp_allreduce as bench  # noqa: E402


@pytest.mark.slow
def test_quick_run_prints_figures() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ddp_allreduce.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = [line for line in run.stdout.splitlines() if line.startswith("FIGURE: ")]
    assert len(figures) == 3
    # 2 backwards x (98,036,026 + 1,807,448) float32 parameters
    assert figures[0].startswith("FIGURE: gradient MB all-reduced per batch (phi, fp32) = 798.7")
    assert "1 MB" in figures[1] and "100 MB" in figures[1] and "25 MB bf16" in figures[1]
    assert figures[2].endswith(("met)", "not met)"))


@pytest.mark.slow
def test_lightning_ddp_reduces_both_networks_each_backward() -> None:
    """Through Trainer.fit with DDPStrategy(find_unused_parameters=True): each of the
    batch's two backwards all-reduces the generator's and the discriminator's parameters."""
    record = bench.lightning_reduced_bytes("tiny", ["data.inputs=features"], batches=2)
    assert record["hook_bytes_per_batch"] == record["counted_per_batch"]
    assert record["counted_per_batch"] == 2 * record["counted_per_backward"]
    assert sum(record["hook_bytes"]) == 2 * record["counted_per_batch"]
