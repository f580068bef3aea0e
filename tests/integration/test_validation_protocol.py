"""The number a sweep optimises is the number ``evaluate`` prints: validation during training
(one process, and 2 DDP ranks) equals ``lightning-hmd evaluate`` on the same checkpoint and
validation split, metric by metric, to 1e-6."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fixtures.clips import write_clip_set, write_mocap_set, write_track_set

from lightning_hmd.commands import main
from lightning_hmd.config import load_config, to_container
from lightning_hmd.train.fit import train
from lightning_hmd.train.run_dir import run_dir

BATCHES = 4


def _data(root):
    write_clip_set(root / "train", [4, 3], [10, 14, 9], split="train")
    # 8 tracks of 4 videos, 3 of them cut into chunks that straddle shard and rank
    # boundaries: the ranks score different numbers of whole tracks
    tracks = [[6], [12, 9], [13], [4, 5], [15, 15], [6], [21], [13]]
    write_track_set(root / "val", tracks, [3, 1, 4, 3])
    write_mocap_set(root / "mocap", 64)


def _overrides(root, body_dir, protocol, **extra):
    base = {
        "body.model_dir": body_dir,
        "data.inputs": "features",
        "model.feat_dim": 8,
        "model.temporal.num_groups": 8,
        "data.seq_len": 8,
        "data.train_sets": f"[{root / 'train'}]",
        "data.val_sets": f"[{root / 'val'}]",
        "data.mocap_sets": f"[{root / 'mocap'}]",
        "trainer.max_batches": BATCHES,
        "trainer.val_every_batches": BATCHES,
        "trainer.ckpt_every_batches": BATCHES,
        "trainer.image_every_batches": 0,
        "trainer.progress_bar": "false",
        "eval.protocol": protocol,
        "run.root": root / "runs",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def _evaluate(run, root, body_dir, out):
    ckpt = run / "checkpoints" / "last.ckpt"
    args = ["evaluate", "--ckpt", str(ckpt), "--set", str(root / "val"), "--out", str(out),
            f"body.model_dir={body_dir}"]  # fmt: skip
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())


def _assert_same(summary, evaluated, protocol):
    val = {k[len("val/") :]: v for k, v in summary["metrics"].items() if k.startswith("val/")}
    expected = {k: v for k, v in evaluated["metrics"].items() if v is not None}
    assert set(val) == set(expected) and {"mpjpe", "pa_mpjpe", "accel_error"} <= set(val)
    for k, v in expected.items():
        assert val[k] == pytest.approx(v, abs=1e-6), k
    assert summary["protocol"] == evaluated["protocol"]
    assert evaluated["protocol"]["name"] == protocol
    assert evaluated["num_tracks"] == 8 and evaluated["num_videos"] == 4
    assert evaluated["num_frames"] == 6 + 21 + 13 + 9 + 30 + 6 + 21 + 13


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("protocol", ["hmmr", "vibe"])
def test_validation_equals_evaluate_in_one_process(tmp_path, synthetic_body_dir, protocol):
    _data(tmp_path)
    over = _overrides(tmp_path, synthetic_body_dir, protocol, **{"logger.kind": "csv"})
    cfg = load_config("tiny", overrides=over)
    run = train(cfg, env={})
    assert run == run_dir(to_container(cfg), {})
    summary = json.loads((run / "summary.json").read_text())
    _assert_same(summary, _evaluate(run, tmp_path, synthetic_body_dir, tmp_path / "ev"), protocol)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_validation_under_ddp_equals_evaluate_in_one_process(tmp_path, synthetic_body_dir):
    _data(tmp_path)
    over = _overrides(tmp_path, synthetic_body_dir, "hmmr", **{
        "logger.kind": "csv", "trainer.devices": 2, "trainer.accelerator": "cpu",
        "run.name": "ddp", "model.regressor_dropout": 0.0,
    })  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_hmd", "train", "--preset", "tiny", *over],
        env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stdout + proc.stderr  # two ranks validated
    run = tmp_path / "runs" / "ddp"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["batches"] == BATCHES
    _assert_same(summary, _evaluate(run, tmp_path, synthetic_body_dir, tmp_path / "ev"), "hmmr")
