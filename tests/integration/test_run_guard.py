"""``lightning-hmd train`` guards its run directory: a second process on a running run is
refused naming the first, and a resume with a changed config is refused listing the keys,
unless the change is safe (the budget) or allowed (``--allow-config-change``)."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from test_train import overrides as train_overrides

from lightning_hmd.commands import main
from lightning_hmd.train import fit

# no validation, periodic checkpoints, panels or progress bar unless a test asks for them
QUIET = {
    "trainer.val_every_batches": 0,
    "trainer.ckpt_every_batches": 0,
    "trainer.image_every_batches": 0,
    "trainer.progress_bar": False,
}


def overrides(synth_dir, root, **extra):
    """``test_train``'s overrides (the synthetic data, ``root`` for the runs), quiet."""
    return train_overrides(synth_dir, root, **{**QUIET, **extra})


def _batches(last):
    return int(torch.load(last, weights_only=True)["state_dict"]["batches_done"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_second_train_on_a_running_run_is_refused_naming_the_first(synth_dir, tmp_path):
    args = overrides(synth_dir, tmp_path / "runs", **{"trainer.ckpt_every_batches": 3,
                     "trainer.log_every_batches": 1, "trainer.max_batches": 12})  # fmt: skip
    cmd = [sys.executable, "-m", "lightning_hmd", "train", "--preset", "tiny", *args,
           "run.name=busy"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("SLURM_JOB_ID", None)
    out = tmp_path / "runs" / "busy"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, env={**env, "SLURM_JOB_ID": "31337"}, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 300
        while not (out / "checkpoints" / "batch00000003.ckpt").exists():
            assert first.poll() is None and time.time() < deadline, "the first run ended early"
            time.sleep(0.02)
        # the first is held mid-training (its lock with it) while the second starts
        os.killpg(first.pid, signal.SIGSTOP)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr[-3000:]
    (line,) = [ln for ln in second.stderr.splitlines() if ln.startswith("lightning-hmd: error:")]
    assert f"{out} is in use by another training process (host {socket.gethostname()}, " \
           f"pid {first.pid}, SLURM job 31337, since " in line  # fmt: skip
    assert "run directory:" not in second.stdout  # refused before any work
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert _batches(out / "checkpoints" / "last.ckpt") == 12
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/batches")]
    batches = [int(float(r["train/batches"])) for r in rows]
    assert batches and len(batches) == len(set(batches)), batches  # one writer
    assert max(batches) == 12
    assert (out / ".lock").read_text() == ""  # released when the first finished


def _snapshot(out):
    return {p.relative_to(out): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_changed_config_is_refused_on_resume_unless_safe_or_allowed(
    synth_dir, tmp_path, capsys, monkeypatch
):
    base = [*overrides(synth_dir, tmp_path / "runs"), "run.name=g"]
    last = tmp_path / "runs" / "g" / "checkpoints" / "last.ckpt"

    def train(*extra):
        return main(["train", "--preset", "tiny", *base, *extra])

    assert train("trainer.max_batches=2") == 0
    before = _snapshot(last.parents[1])
    capsys.readouterr()

    def not_built(config):
        raise AssertionError("the model was built before the config was checked")

    with monkeypatch.context() as m:
        m.setattr(fit, "HMMRModule", not_built)
        assert train("trainer.max_batches=3", "optim.gen_lr=0.01") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lightning-hmd: error: refusing to resume: {last} was trained with "
                          "another config (--allow-config-change resumes anyway")  # fmt: skip
    changes = [ln.strip() for ln in err.splitlines()[1:] if ln.strip()]
    assert changes == ["optim.gen_lr: 0.0001 -> 0.01"]  # the budget is not listed
    assert _snapshot(last.parents[1]) == before  # nothing written, not even the lock file

    # a larger budget alone is a safe change: the run resumes
    assert train("trainer.max_batches=3") == 0
    assert f"resuming from {last}" in capsys.readouterr().out
    assert _batches(last) == 3

    # the flag resumes with the change and says what changed
    assert main(["train", "--allow-config-change", "--preset", "tiny", *base,
                 "trainer.max_batches=4", "optim.gen_lr=0.01"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"resuming from {last}" in out
    said = "resuming with a changed config (--allow-config-change): optim.gen_lr: 0.0001 -> 0.01"
    assert said in out
    assert _batches(last) == 4
    config = torch.load(last, weights_only=True)["hyper_parameters"]["config"]
    assert config["optim"]["gen_lr"] == 0.01

    # from then on the checkpoint holds the new rate: it resumes as is, and going back is a change
    assert train("trainer.max_batches=5", "optim.gen_lr=0.01") == 0
    assert _batches(last) == 5
    capsys.readouterr()
    assert train("trainer.max_batches=6") == 2
    assert "optim.gen_lr: 0.01 -> 0.0001" in capsys.readouterr().err
    assert _batches(last) == 5
