"""Training on synthetic shards in one process: run directory, checkpoints counted in
batches, checkpoints without the body model that load with weights_only=True, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lightning_hmd.commands import main
from lightning_hmd.config import load_config, to_container
from lightning_hmd.experiments.compare import _wandb_cost
from lightning_hmd.models.summary import parameter_counts
from lightning_hmd.train.data import MissingPathError, check_paths
from lightning_hmd.train.run_dir import run_dir


def overrides(synth_dir, root, **extra):
    base = {
        "body.model_dir": synth_dir / "body_model",
        "data.train_sets": f"[{synth_dir / 'train'}]",
        "data.val_sets": f"[{synth_dir / 'val'}]",
        "data.mocap_sets": f"[{synth_dir / 'mocap'}]",
        "run.root": root,
        "trainer.max_batches": 6,
        "trainer.val_every_batches": 3,
        "trainer.ckpt_every_batches": 3,
        "trainer.image_every_batches": 3,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_checkpoints_and_resume(synth_dir, tmp_path, capsys):
    args = overrides(synth_dir, tmp_path / "runs")
    assert main(["train", "--preset", "tiny", *args]) == 0
    out = run_dir(to_container(load_config("tiny", overrides=args)), {})
    assert f"run directory: {out}" in capsys.readouterr().out
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["batch00000003.ckpt", "batch00000006.ckpt", "last.ckpt"]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["batches_done"]) == 6
    assert ckpt["global_step"] == 12  # Lightning counts both optimisers' steps
    assert not [k for k in ckpt["state_dict"] if k.startswith("body.")]
    assert isinstance(ckpt["hyper_parameters"]["config"], dict)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    cols = set(rows[0])
    assert {"train/loss/kp2d", "train/loss/adv", "train/disc/real", "val/mpjpe"} <= cols
    assert any(r["val/pa_mpjpe"] for r in rows)
    panels = sorted(p.name for p in (out / "images").iterdir())
    assert panels == ["keypoints_batch00000003.png", "keypoints_batch00000006.png"]

    # the same run with a larger budget resumes from last.ckpt and continues the counter
    args = overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 9})
    args = [a for a in args if not a.startswith("trainer.max_batches")]
    assert main(["train", "--preset", "tiny", *args, "trainer.max_batches=9",
                 "run.name=" + out.name]) == 0  # fmt: skip
    assert "resuming from" in capsys.readouterr().out
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["batches_done"]) == 9
    assert (out / "checkpoints" / "batch00000009.ckpt").is_file()
    # metrics.csv continues: the first call's rows kept once (training logged every 5
    # batches, validation after batches 3 and 6), the resumed call's appended (validation
    # after batch 9; Lightning's step of batch n is n - 1)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["train/batches"]) for r in rows if r["train/batches"]] == [5.0]
    assert [r["step"] for r in rows if r["val/mpjpe"]] == ["2", "5", "8"]


def test_missing_paths_are_named_before_any_work(tmp_path):
    cfg = load_config("tiny", overrides=[f"data.train_sets=[{tmp_path / 'nope'}]"])
    with pytest.raises(MissingPathError, match="data.train_sets: .*nope is not a shard set"):
        check_paths(cfg)
    cfg = load_config("tiny", overrides=[f"model.init_checkpoint={tmp_path / 'hmr.pt'}"])
    cfg.data.train_sets = cfg.data.val_sets = cfg.data.mocap_sets = []
    cfg.body.model_dir = str(tmp_path)
    with pytest.raises(MissingPathError, match="model.init_checkpoint: .*hmr.pt not found"):
        check_paths(cfg)
    # the mocap sets are read only with the adversarial prior
    cfg = load_config("tiny", overrides=[f"data.mocap_sets=[{tmp_path / 'nomocap'}]"])
    cfg.data.train_sets = cfg.data.val_sets = []
    cfg.body.model_dir = str(tmp_path)
    with pytest.raises(MissingPathError, match="data.mocap_sets: .*nomocap is not a shard set"):
        check_paths(cfg)
    cfg.loss.weights.adv = 0.0
    check_paths(cfg)


def _state(path):
    return torch.load(path, weights_only=True)["state_dict"]


def _summary(run):
    return json.loads((run / "summary.json").read_text())


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(synth_dir, tmp_path):
    """The reader's position, torch's RNG (dropout) and the learning-rate schedulers are
    checkpointed, so stopping after 6 batches and resuming to 16 (across an epoch boundary at
    12 and learning-rate steps at 5, 10 and 15, after a warm-up) equals 16 in one go."""
    schedule = {"optim.schedule": "step", "optim.step_every_batches": 5, "optim.lr_gamma": 0.5,
                "optim.warmup_batches": 3}  # fmt: skip
    base = overrides(synth_dir, tmp_path / "runs", **{"trainer.ckpt_every_batches": 0}, **schedule)
    base = [a for a in base if not a.startswith("trainer.max_batches")]
    assert main(["train", "--preset", "tiny", *base, "run.name=whole",
                 "trainer.max_batches=16"]) == 0  # fmt: skip
    for budget in (6, 16):
        assert main(["train", "--preset", "tiny", *base, "run.name=parts",
                     f"trainer.max_batches={budget}"]) == 0  # fmt: skip
        if budget == 6:  # the training time so far travels in the checkpoint: mark it
            last = tmp_path / "runs" / "parts" / "checkpoints" / "last.ckpt"
            blob = torch.load(last, weights_only=True)
            (key,) = [k for k in blob["callbacks"] if "TrainClock" in k]
            first = blob["callbacks"][key]["seconds"]
            assert 0 < first <= _summary(tmp_path / "runs" / "parts")["train_seconds"]
            blob["callbacks"][key]["seconds"] = first + 1000.0
            torch.save(blob, last)
            started = time.monotonic()
    second = time.monotonic() - started
    # the resumed run's training time is the first job's (marked +1000 s) plus its own
    total = _summary(tmp_path / "runs" / "parts")["train_seconds"]
    assert first + 1000.0 < total < first + 1000.0 + second
    assert 0 < _summary(tmp_path / "runs" / "whole")["train_seconds"] < 1000.0
    assert _summary(tmp_path / "runs" / "whole")["features"] is None  # a run on images
    whole = _state(tmp_path / "runs" / "whole" / "checkpoints" / "last.ckpt")
    parts = _state(tmp_path / "runs" / "parts" / "checkpoints" / "last.ckpt")
    assert int(whole["batches_done"]) == int(parts["batches_done"]) == 16
    for key, value in whole.items():
        torch.testing.assert_close(parts[key], value, rtol=0, atol=1e-6, msg=key)
    with open(tmp_path / "runs" / "parts" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/lr/gen")]
    base_lr = load_config("tiny").optim.gen_lr
    seen = set()
    for r in rows:  # batch b (0-based) ran at base * warm-up * 0.5 ** (b // 5)
        b = int(float(r["train/batches"])) - 1
        factor = min((b + 1) / 3, 1.0) * 0.5 ** (b // 5)
        assert float(r["train/lr/gen"]) == pytest.approx(base_lr * factor), b
        seen.add(b // 5)
    assert seen >= {1, 2}, "the log should show the rate after the resumed steps"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkilled_training_resumes_with_continuous_counters(synth_dir, tmp_path):
    args = overrides(synth_dir, tmp_path / "runs", **{"trainer.ckpt_every_batches": 5})
    args = [a for a in args if not a.startswith("trainer.max_batches")]
    cmd = [sys.executable, "-m", "lightning_hmd", "train", "--preset", "tiny", *args,
           "run.name=killed", "trainer.max_batches=40", "trainer.log_every_batches=1"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    ckpts = tmp_path / "runs" / "killed" / "checkpoints"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while not (ckpts / "batch00000010.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended too early"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = int(_state(ckpts / "last.ckpt")["batches_done"])
    assert killed_at in (5, 10, 15)  # the kill may fall between batch00000010 and last.ckpt
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming from {ckpts / 'last.ckpt'}" in done.stdout
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert int(last["state_dict"]["batches_done"]) == 40
    assert last["global_step"] == 80  # two optimiser steps per batch, before and after the kill
    saved = sorted(int(p.stem[5:]) for p in ckpts.glob("batch*.ckpt"))
    assert saved == list(range(5, 45, 5))
    # every batch's row in metrics.csv at most once, and every one but, possibly, the row of
    # the resumed checkpoint's own batch: Lightning hands a batch's metrics to the logger
    # after the batch-end hooks that write the checkpoint, so a kill between the two loses
    # that row; the rows after the checkpoint are logged again by the resumed run
    with open(ckpts.parent / "metrics.csv") as f:
        logged = [float(r["train/batches"]) for r in csv.DictReader(f) if r["train/batches"]]
    every = [float(b) for b in range(1, 41)]
    assert logged in (every, [b for b in every if b != killed_at]), logged


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wandb_offline_run_holds_the_loss_terms(synth_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 4,
                     "trainer.log_every_batches": 1, "logger.kind": "wandb"})  # fmt: skip
    assert main(["train", "--preset", "tiny", *args, "run.name=wb"]) == 0
    (run,) = (tmp_path / "runs" / "wb" / "wandb").glob("offline-run-*")
    (records,) = run.glob("run-*.wandb")
    keys = (b"train/loss/kp2d", b"train/loss/adv", b"train/disc/real", b"val/mpjpe", b"model",
            b"delta_t", b"train/keypoints")  # fmt: skip
    # wandb's service process writes the transaction log; give it time on a loaded machine
    deadline = time.time() + 120
    while not all(k in records.read_bytes() for k in keys) and time.time() < deadline:
        time.sleep(0.5)
    data = records.read_bytes()
    for key in keys:
        assert key in data, key
    assert run.name.endswith("-wb")  # the run id is the run name: requeues continue it
    # the W&B run summary names the protocol the validation metrics were scored under
    from lightning_hmd.experiments.wandb_offline import offline_runs

    summary = offline_runs(tmp_path / "runs" / "wb" / "wandb")["wb"].summary
    assert summary["protocol"] == "hmmr" and "visibility" in summary["protocol_card"]
    assert "val/accel_error" in summary and "val/jitter" in summary
    # compare reads the run's costs from the W&B summary as from summary.json
    local = _summary(tmp_path / "runs" / "wb")
    assert _wandb_cost(summary) == {
        "parameters": local["model"]["parameters"]["total"],
        "temporal_parameters": local["model"]["parameters"]["temporal_encoder"],
        "gflops_per_batch": local["model"]["flops_per_batch"]["generator"],
        "train_seconds": local["train_seconds"],
    }


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bf16_mixed_precision_trains_and_checkpoints(synth_dir, tmp_path):
    """trainer.precision=bf16-mixed (autocast; bf16 is what GPUs use) runs both optimisers'
    steps and ends with finite float32 weights."""
    args = overrides(synth_dir, tmp_path / "runs", **{
        "trainer.max_batches": 2, "trainer.val_every_batches": 0, "trainer.ckpt_every_batches": 0,
        "trainer.image_every_batches": 0, "trainer.precision": "bf16-mixed"})  # fmt: skip
    assert main(["train", "--preset", "tiny", *args, "run.name=bf16"]) == 0
    state = _state(tmp_path / "runs" / "bf16" / "checkpoints" / "last.ckpt")
    assert int(state["batches_done"]) == 2
    floats = [v for v in state.values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in floats)


class _Payload:
    """Unpickling this runs ``open(path, "w")``: the marker file appears if it ever runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_resume_refuses_a_hostile_or_truncated_last_checkpoint(synth_dir, tmp_path, capsys,
                                                               monkeypatch):  # fmt: skip
    """Resume loads last.ckpt with weights_only=True even when TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    turns the default off: a payload never runs, and a bad file is one line naming it."""
    args = [*overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 2,
            "trainer.val_every_batches": 0}), "run.name=r"]  # fmt: skip
    assert main(["train", "--preset", "tiny", *args]) == 0
    last = tmp_path / "runs" / "r" / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    blob = torch.load(last, weights_only=True)
    blob["extra"] = _Payload(tmp_path / "ran")
    torch.save(blob, last)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    more = [a for a in args if not a.startswith("trainer.max_batches")] + ["trainer.max_batches=4"]
    capsys.readouterr()
    assert main(["train", "--preset", "tiny", *more]) == 2
    err = capsys.readouterr().err
    assert "last.ckpt: not a readable checkpoint to resume from" in err
    assert not (tmp_path / "ran").exists()
    last.write_bytes(good[: len(good) // 2])
    assert main(["train", "--preset", "tiny", *more]) == 2
    assert "last.ckpt: not a readable checkpoint to resume from" in capsys.readouterr().err
    last.write_bytes(good)  # the intact file resumes, under the pinned weights_only=True
    assert main(["train", "--preset", "tiny", *more]) == 0
    assert int(torch.load(last, weights_only=True)["state_dict"]["batches_done"]) == 4
    assert not (tmp_path / "ran").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "kind,disc", [("gru", "pose"), ("tcmr", "pose"), ("transformer", "pose"), ("gru", "motion")]
)
def test_every_temporal_encoder_resumes_to_the_weights_of_an_uninterrupted_run(
    kind, disc, synth_dir, tmp_path
):
    """Stopping after 2 batches and resuming to 5 equals 5 in one go, for the recurrent and
    attention encoders too (their dropout and the reader's position are checkpointed), and
    with VIBE's motion discriminator on windows of the synthetic mocap."""
    base = overrides(synth_dir, tmp_path / "runs", **{"trainer.ckpt_every_batches": 0,
                                                       "model.temporal.kind": kind,
                                                       "model.discriminator": disc})  # fmt: skip
    base = [a for a in base if not a.startswith("trainer.max_batches")]
    assert main(["train", "--preset", "tiny", *base, "run.name=whole",
                 "trainer.max_batches=5"]) == 0  # fmt: skip
    for budget in (2, 5):
        assert main(["train", "--preset", "tiny", *base, "run.name=parts",
                     f"trainer.max_batches={budget}"]) == 0  # fmt: skip
    whole = _state(tmp_path / "runs" / "whole" / "checkpoints" / "last.ckpt")
    parts = _state(tmp_path / "runs" / "parts" / "checkpoints" / "last.ckpt")
    assert int(whole["batches_done"]) == int(parts["batches_done"]) == 5
    assert any(k.startswith("generator.temporal.") for k in whole)
    for key, value in whole.items():
        torch.testing.assert_close(parts[key], value, rtol=0, atol=1e-6, msg=key)
    # the run's summary names the encoder with its parameters and FLOPs per batch
    model = json.loads((tmp_path / "runs" / "whole" / "summary.json").read_text())["model"]
    cfg = load_config("tiny", overrides=[f"model.temporal.kind={kind}",
                                         f"model.discriminator={disc}"])  # fmt: skip
    assert model["temporal_kind"] == kind and model["discriminator"] == disc
    if disc == "motion":
        assert any(k.startswith("discriminator.gru.") for k in whole)
    assert model["parameters"] == parameter_counts(cfg.model)
    temporal = sum(v.numel() for k, v in whole.items() if k.startswith("generator.temporal."))
    assert model["parameters"]["temporal_encoder"] == temporal
    assert 0 < model["flops_per_batch"]["temporal_encoder"] < model["flops_per_batch"]["generator"]
