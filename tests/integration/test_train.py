"""Training on synthetic shards in one process: run directory, checkpoints counted in
batches, checkpoints without the body model that load with weights_only=True, resume."""

from __future__ import annotations

import csv

import pytest
import torch

from lightning_hmd.cli import main
from lightning_hmd.config import load_config, to_container
from lightning_hmd.train.data import MissingPathError, check_paths
from lightning_hmd.train.run_dir import run_dir


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory, offscreen_gl):
    out = tmp_path_factory.mktemp("data") / "synthetic"
    args = ["data", "synth", "--out", str(out), "--clips", "8", "--val-clips", "2",
            "--test-clips", "1", "--frames", "24", "--mocap", "200", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out


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

    # the same run with a larger budget resumes from last.ckpt and continues the counter
    args = overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 9})
    args = [a for a in args if not a.startswith("trainer.max_batches")]
    assert main(["train", "--preset", "tiny", *args, "trainer.max_batches=9",
                 "run.name=" + out.name]) == 0  # fmt: skip
    assert "resuming from" in capsys.readouterr().out
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["batches_done"]) == 9
    assert (out / "checkpoints" / "batch00000009.ckpt").is_file()


def test_missing_paths_are_named_before_any_work(tmp_path):
    cfg = load_config("tiny", overrides=[f"data.train_sets=[{tmp_path / 'nope'}]"])
    with pytest.raises(MissingPathError, match="data.train_sets: .*nope is not a shard set"):
        check_paths(cfg)
