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
    # (98,036,026 + 1,807,448) float32 parameters through DDP + the discriminator's 1,807,448
    assert figures[0].startswith("FIGURE: gradient MB all-reduced per batch (phi, fp32) = 406.6")
    assert "1 MB" in figures[1] and "100 MB" in figures[1] and "25 MB bf16" in figures[1]
    assert figures[2].endswith(("met)", "not met)"))


@pytest.mark.slow
def test_lightning_ddp_reduces_the_discriminator_step_alone() -> None:
    """Through Trainer.fit with DDPStrategy(find_unused_parameters=True): the generator step's
    backward all-reduces every DDP bucket (both networks) and the discriminator step only the
    discriminator's gradients, by hand (train/grad_sync.py), nothing through DDP."""
    record = bench.lightning_reduced_bytes("tiny", ["data.inputs=features"], batches=2)
    assert record["hook_bytes_per_batch"] == record["counted_per_backward"]
    assert record["by_hand_bytes_per_batch"] == record["counted_discriminator"] > 0
    assert record["counted_per_batch"] == (
        record["counted_per_backward"] + record["counted_discriminator"]
    )
    assert sum(record["hook_bytes"]) == 2 * record["counted_per_backward"]
