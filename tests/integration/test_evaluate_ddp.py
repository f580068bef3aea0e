"""Distributed evaluation (2 gloo processes) writes the numbers of a single process."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fixtures.clips import write_clip_set

from lightning_hmd.commands import main
from lightning_hmd.config import load_config, to_container
from lightning_hmd.evaluation.run import evaluate
from lightning_hmd.train.module import HMMRModule


def _config(body_dir):
    return load_config("tiny", overrides=[
        f"body.model_dir={body_dir}", "data.inputs=features", "model.feat_dim=8",
        "model.temporal.num_groups=8", "data.seq_len=8",
    ])  # fmt: skip


def _rank(rank, world, port, body_dir, ckpt, sets, out, protocol):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        evaluate(_config(body_dir), ckpt, sets, out, "temporal", protocol)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("protocol", "port"), [("hmmr", 29517), ("vibe", 29518)])
def test_two_processes_score_like_one(tmp_path, synthetic_body_dir, protocol, port):
    write_clip_set(tmp_path / "val", [3, 2, 4], [6, 13, 20, 9])
    cfg = _config(synthetic_body_dir)
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(),
                "hyper_parameters": {"config": to_container(cfg)}}, ckpt)  # fmt: skip
    single = evaluate(cfg, ckpt, [tmp_path / "val"], tmp_path / "one", "temporal", protocol)
    assert single["num_tracks"] == single["num_videos"] == 9
    assert single["num_frames"] == 6 + 13 + 20 + 9 + 6 + 13 + 20 + 9 + 6
    sets = [tmp_path / "val"]
    mp.spawn(_rank, args=(2, port, synthetic_body_dir, ckpt, sets, tmp_path / "two", protocol),
             nprocs=2, join=True)  # fmt: skip
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["metrics"] == single["metrics"] and two["protocol"]["name"] == protocol
    assert (tmp_path / "two" / "per_sequence.csv").read_text() == (
        tmp_path / "one" / "per_sequence.csv"
    ).read_text()
    assert set(single["metrics"]) >= {"mpjpe", "pa_mpjpe", "accel", "accel_error", "jitter"}

    # the command line on the same checkpoint gives the same numbers
    args = ["evaluate", "--ckpt", str(ckpt), "--set", str(tmp_path / "val"), "--out",
            str(tmp_path / "cli"), "--protocol", protocol,
            f"body.model_dir={synthetic_body_dir}"]  # fmt: skip
    assert main(args) == 0
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert cli["metrics"] == single["metrics"]


def test_a_checkpoint_of_another_model_is_named(tmp_path, synthetic_body_dir):
    cfg = _config(synthetic_body_dir)
    other = load_config("tiny", overrides=[f"body.model_dir={synthetic_body_dir}",
                                           "model.temporal.num_blocks=2"])  # fmt: skip
    ckpt = tmp_path / "other.ckpt"
    torch.save({"state_dict": HMMRModule(to_container(other)).state_dict()}, ckpt)
    write_clip_set(tmp_path / "val", [1], [8])
    with pytest.raises(ValueError, match="does not match the configured model"):
        evaluate(cfg, ckpt, [tmp_path / "val"], tmp_path / "o", "temporal")
