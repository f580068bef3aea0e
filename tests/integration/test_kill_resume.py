"""SIGKILL, then resume: killed between checkpoints, or in the middle of writing one, a run
resumed from its last complete checkpoint ends with the weights of an uninterrupted run, and
a half-written checkpoint never carries a checkpoint's name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train import overrides

from lightning_hmd.commands import main

KILLER = Path(__file__).with_name("kill_during_save.py")
BUDGET = 12


def _args(synth_dir, root, name):
    args = overrides(synth_dir, root, **{"trainer.max_batches": BUDGET,
                     "trainer.ckpt_every_batches": 4, "trainer.val_every_batches": 0,
                     "trainer.image_every_batches": 0, "trainer.progress_bar": False})  # fmt: skip
    return ["train", "--preset", "tiny", *args, f"run.name={name}"]


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def _same_weights(a: dict, b: dict) -> None:
    assert int(a["batches_done"]) == int(b["batches_done"]) == BUDGET
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6, msg=key)


def _env(**extra):
    root = str(Path(__file__).parents[2])
    return {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": root, **extra}


@pytest.fixture(scope="module")
def uninterrupted(synth_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    assert main(_args(synth_dir, root, "whole")) == 0
    return _weights(root / "whole")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_between_checkpoints_resumes_to_the_same_weights(
    synth_dir, tmp_path, uninterrupted
):
    cmd = [sys.executable, "-m", "lightning_hmd", *_args(synth_dir, tmp_path, "killed")]
    ckpts = tmp_path / "killed" / "checkpoints"
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while not (ckpts / "batch00000004.ckpt").exists() or not (ckpts / "last.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended too early"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert int(_weights(tmp_path / "killed")["batches_done"]) < BUDGET
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stdout
    _same_weights(uninterrupted, _weights(tmp_path / "killed"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_during_a_checkpoint_write_resumes_to_the_same_weights(
    synth_dir, tmp_path, uninterrupted
):
    # saves 1 and 2 are batch4 and last at batch 4; save 3 is batch00000008's file
    args = _args(synth_dir, tmp_path, "killed")
    killed = subprocess.run([sys.executable, str(KILLER), *args], env=_env(KILL_AT_SAVE="3"),
                            capture_output=True, text=True, timeout=500)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    ckpts = tmp_path / "killed" / "checkpoints"
    names = sorted(p.name for p in ckpts.iterdir())
    # the half-written file has a temporary name; last.ckpt is still batch 4's, complete
    assert names == [".batch00000008.ckpt.tmp", "batch00000004.ckpt", "last.ckpt"], names
    assert int(_weights(tmp_path / "killed")["batches_done"]) == 4
    done = subprocess.run([sys.executable, "-m", "lightning_hmd", *args], env=_env(),
                          capture_output=True, text=True, timeout=500)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stdout
    _same_weights(uninterrupted, _weights(tmp_path / "killed"))
    assert not list(ckpts.glob(".*.tmp"))  # the next write of that name replaced it
