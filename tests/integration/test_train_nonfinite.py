"""Non-finite losses: skipped and counted; too many in a row stop with a checkpoint."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from ddp_train_script import Data, global_batches

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config, to_container
from lightning_hmd.train.fit import make_trainer
from lightning_hmd.train.module import HMMRModule, NonFiniteLossError


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_nan_batches_are_skipped_then_training_stops_with_a_checkpoint(
    tmp_path, synthetic_body_dir
):
    cfg = load_config("tiny", overrides=[
        f"body.model_dir={synthetic_body_dir}", "data.inputs=features", "data.batch_size=4",
        "trainer.max_batches=3", "trainer.max_nonfinite=2", "trainer.val_every_batches=0",
        "trainer.ckpt_every_batches=0", "logger.kind=csv",
    ])  # fmt: skip
    pl.seed_everything(0, verbose=False)
    module = HMMRModule(to_container(cfg))
    body = BodyModel.from_dir(synthetic_body_dir)
    batches = global_batches(body, cfg.model.feat_dim, 8 * 3 * 2)
    batches[1].clips.phi[0, 0, 0] = float("nan")  # one bad batch: skipped, training goes on
    trainer = make_trainer(cfg, tmp_path / "ok", "ok", {})
    trainer.fit(module, datamodule=Data(batches))
    # the budget counts good batches: the bad one (met once per epoch) is skipped each time
    assert int(module.batches_done) == 3 and int(module.nonfinite_total) >= 1

    for b in batches:
        b.clips.phi[0, 0, 0] = float("nan")
    module = HMMRModule(to_container(cfg))
    trainer = make_trainer(cfg, tmp_path / "bad", "bad", {})
    with pytest.raises(NonFiniteLossError, match="2 non-finite generator losses in a row"):
        trainer.fit(module, datamodule=Data(batches))
    last = torch.load(tmp_path / "bad" / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(last["state_dict"]["nonfinite_total"]) == 2
    assert int(last["state_dict"]["batches_done"]) == 0
