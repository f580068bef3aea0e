"""Training on damaged shards, as a user runs it: damaged clips are skipped, named in the log,
counted by reason on the progress bar, in the logged metrics and in ``summary.json``, and
the run finishes; past ``data.max_skip_fraction`` it stops, naming the worst shard."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.faults import FAULTS, MARKER, Fault, Member, inject
from test_train import overrides

from lightning_hmd.commands import main
from lightning_hmd.data.manifest import read_manifest


def _every_frame_corrupt(members: list[Member], key: str) -> list[Member]:
    """Every JPEG frame of the sample keeps its header and loses its body (any window drawn
    from the clip fails to decode)."""
    return [Member(m.name, m.data[:4] + bytes(range(256)) * 8)
            if m.name.startswith(key + ".f") and m.name.endswith(".jpg") else m
            for m in members]  # fmt: skip


CORRUPT_FRAMES = Fault("corrupt_jpeg_bodies", _every_frame_corrupt, "undecodable_frame")
NAN = next(f for f in FAULTS if f.name == "nan_array")


def damaged_train_set(synth_dir: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """The synthetic training set with every frame of clip 1 corrupt, as if the converter
    had written it so (the manifest's digests match the damage), and a NaN in clip 5's
    keypoints (the manifest as written)."""
    first = inject(synth_dir / "train", tmp_path / "once", CORRUPT_FRAMES, "sample_resealed", 1)
    second = inject(first.set_dir, tmp_path / "train", NAN, "as_written", 5)
    return second.set_dir, [first.target, second.target]


def train(synth_dir: Path, tmp_path: Path, train_set: Path, *extra: str):
    args = overrides(synth_dir, tmp_path / "runs", **{
        "data.train_sets": f"[{train_set}]", "trainer.max_batches": 12,
        "trainer.val_every_batches": 6, "trainer.ckpt_every_batches": 6,
        "trainer.log_every_batches": 3, "trainer.image_every_batches": 0,
        "run.name": "damaged"})  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "lightning_hmd", "train", "--preset", "tiny", *args, *extra],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_damaged_clips_are_skipped_counted_and_the_run_finishes(synth_dir, tmp_path):
    train_set, (bad_frames, bad_kp) = damaged_train_set(synth_dir, tmp_path)
    done = train(synth_dir, tmp_path, train_set, "data.max_skip_fraction=0.3")  # 2 of 8
    log = done.stdout + done.stderr
    (tmp_path / "train.log").write_text(log)
    if os.environ.get("LIGHTNING_HMD_DAMAGED_LOG"):  # kept for the record
        Path(os.environ["LIGHTNING_HMD_DAMAGED_LOG"]).write_text(log)
    assert done.returncode == 0, log[-3000:]
    # each damaged clip named once in the log, by shard, key and reason
    assert f"[{bad_frames}]: undecodable_frame: JPEG frame 0 (f000000.jpg) does not decode" in log
    assert f"[{bad_kp}]: non_finite: kp2d.npy" in log

    out = tmp_path / "runs" / "damaged"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["batches"] == 12
    assert summary["skipped"]["train"] == {"non_finite": 1, "undecodable_frame": 1}
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/skipped/total")]
    assert rows, "no train/skipped/* row in metrics.csv"
    last = rows[-1]
    assert float(last["train/skipped/total"]) == 2
    assert float(last["train/skipped/undecodable_frame"]) == 1
    assert float(last["train/skipped/non_finite"]) == 1
    assert not (tmp_path / MARKER).exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_run_stops_past_max_skip_fraction_naming_the_worst_shard(synth_dir, tmp_path):
    train_set, (_, bad_kp) = damaged_train_set(synth_dir, tmp_path)
    clips = read_manifest(train_set).total_samples
    done = train(synth_dir, tmp_path, train_set, f"data.max_skip_fraction={0.5 / clips}")
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("lightning-hmd: error")]
    assert len(error) == 1, done.stderr[-3000:]
    assert f"of {clips} clip samples" in error[0]
    assert f"more than data.max_skip_fraction={0.5 / clips}" in error[0]
    assert "worst shards: " in error[0] and str(train_set / "train-000000.tar") in error[0]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_ranks_sum_their_skips_and_stop_together(synth_dir, tmp_path):
    """DDP over 2 processes: clip 1 is in rank 0's share, clip 5 in rank 1's; summary.json
    holds both. Past the limit both ranks stop at the same batch (no rank left waiting)."""
    train_set, _ = damaged_train_set(synth_dir, tmp_path)
    ddp = ("trainer.devices=2", "trainer.accelerator=cpu")
    done = train(synth_dir, tmp_path, train_set, *ddp, "data.max_skip_fraction=0.3")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    summary = json.loads((tmp_path / "runs" / "damaged" / "summary.json").read_text())
    assert summary["skipped"]["train"] == {"non_finite": 1, "undecodable_frame": 1}

    clips = read_manifest(train_set).total_samples
    (tmp_path / "runs").rename(tmp_path / "finished")
    done = train(synth_dir, tmp_path, train_set, *ddp, f"data.max_skip_fraction={0.5 / clips}")
    assert done.returncode != 0
    assert "more than data.max_skip_fraction" in done.stderr, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_training_finishes_on_each_damaged_set(fault, synth_dir, tmp_path, monkeypatch):
    """Every fault of the suite in the synthetic training set (the shard's checksum
    resealed): the run trains its budget and summary.json counts exactly that damage."""
    monkeypatch.chdir(tmp_path)  # a payload that ran would leave its marker here
    case = inject(synth_dir / "train", tmp_path / "train", fault, "resealed", 5)
    args = overrides(synth_dir, tmp_path / "runs", **{
        "data.train_sets": f"[{case.set_dir}]", "data.val_sets": "[]",
        "trainer.max_batches": 4, "trainer.val_every_batches": 0,
        "trainer.ckpt_every_batches": 0, "trainer.image_every_batches": 0,
        "trainer.progress_bar": False, "data.max_skip_fraction": 0.5, "run.name": "d"})  # fmt: skip
    assert main(["train", "--preset", "tiny", *args]) == 0
    summary = json.loads((tmp_path / "runs" / "d" / "summary.json").read_text())
    assert summary["finished"] and summary["batches"] == 4
    assert summary["skipped"]["train"] == case.counts
    assert not (tmp_path / MARKER).exists()
