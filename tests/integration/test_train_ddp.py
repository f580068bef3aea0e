"""Lightning DDP with 2 CPU processes (gloo): both ranks end with identical parameters, and
they match a single-process run on the same global batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("ddp_train_script.py")


def run(out: Path, body_dir: Path, devices: int) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(SCRIPT.parents[2])}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), str(body_dir), str(devices)],
        env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_ranks_match_each_other_and_one_process(tmp_path, synthetic_body_dir):
    run(tmp_path, synthetic_body_dir, 2)
    run(tmp_path, synthetic_body_dir, 1)
    r0 = torch.load(tmp_path / "devices2_rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "devices2_rank1.pt", weights_only=True)
    single = torch.load(tmp_path / "devices1_rank0.pt", weights_only=True)
    assert int(r0["state"]["batches_done"]) == 3 == int(single["state"]["batches_done"])
    for key, value in r0["state"].items():
        torch.testing.assert_close(r1["state"][key], value, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(single["state"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # each rank's loss is the mean over its half; their average is the single-process loss
    ddp = [(a + b) / 2 for a, b in zip(r0["losses"], r1["losses"], strict=True)]
    torch.testing.assert_close(
        torch.tensor(ddp), torch.tensor(single["losses"]), rtol=1e-4, atol=1e-4
    )
    # and training moved both networks (a run that trained nothing would also "match")
    for prefix in ("generator.temporal.", "generator.smpl_head.", "discriminator."):
        moved = [
            (r0["state"][k] - r0["initial"][k]).abs().max() > 1e-6
            for k in r0["state"] if k.startswith(prefix) and r0["state"][k].is_floating_point()
        ]  # fmt: skip
        assert moved and all(moved), prefix
