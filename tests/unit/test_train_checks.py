"""What a run can check is checked before its run directory exists: the sets against
``data.inputs``, one encoder's features, readable samples; an empty evaluation set is an
error naming it."""

from __future__ import annotations

import pytest
import torch
from fixtures.clips import clip, write_clip_set, write_mocap_set

from lightning_hmd.config import ConfigError, load_config, to_container
from lightning_hmd.data.loader import ReaderError
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.evaluation.run import evaluate
from lightning_hmd.train.data import MissingPathError
from lightning_hmd.train.fit import train
from lightning_hmd.train.module import HMMRModule


def _cfg(tmp_path, body_dir, inputs, train_set, val_set):
    return load_config("tiny", overrides=[
        f"body.model_dir={body_dir}", f"data.inputs={inputs}", "model.feat_dim=8",
        "model.temporal.num_groups=8", f"data.train_sets=[{train_set}]",
        f"data.val_sets=[{val_set}]", f"data.mocap_sets=[{tmp_path / 'mocap'}]",
        f"run.root={tmp_path / 'runs'}", "trainer.max_batches=1",
    ])  # fmt: skip


def test_sets_that_cannot_feed_the_inputs_fail_before_the_run_directory(
    tmp_path, synthetic_body_dir
):
    write_clip_set(tmp_path / "feat", [2], [10], split="train")  # phi, no JPEG crops
    write_mocap_set(tmp_path / "mocap", 8)
    cfg = _cfg(tmp_path, synthetic_body_dir, "images", tmp_path / "feat", tmp_path / "feat")
    with pytest.raises(ConfigError, match=r"data.inputs=images but data.train_sets .*feat "
                       r"holds no JPEG crops"):  # fmt: skip
        train(cfg, env={})
    assert not (tmp_path / "runs").exists()

    other = tmp_path / "other"
    with ShardSetWriter(other, "val", 4, source="test") as w:
        s = clip("synthetic", "val", 0, 10, with_3d=True)
        s.encoder_id = "another-encoder"
        w.write(s, "synthetic__seq000__t0000_c0000")
    cfg = _cfg(tmp_path, synthetic_body_dir, "features", tmp_path / "feat", other)
    with pytest.raises(ReaderError, match="features of different encoders"):
        train(cfg, env={})
    assert not (tmp_path / "runs").exists()

    empty = tmp_path / "empty"
    with ShardSetWriter(empty, "val", 4, source="test"):
        pass
    cfg = _cfg(tmp_path, synthetic_body_dir, "features", tmp_path / "feat", empty)
    with pytest.raises(MissingPathError, match=r"data.val_sets: .*empty holds no readable"):
        train(cfg, env={})
    assert not (tmp_path / "runs").exists()

    module = HMMRModule(to_container(cfg))
    blob = {"state_dict": module.state_dict(), "hyper_parameters": {"config": to_container(cfg)}}
    torch.save(blob, tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match=r"empty: the evaluation set is empty \(its manifest"):
        evaluate(cfg, tmp_path / "m.ckpt", [empty], tmp_path / "ev", "temporal")
    assert not (tmp_path / "ev" / "metrics.json").exists()
