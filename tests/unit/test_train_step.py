"""The training step's two updates: the generator's backward pass reaches the generator
only (the discriminator's parameters get no gradient from it), the discriminator's reaches
the discriminator only, and both networks move."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.synth.batches import synthetic_clip_batch
from lightning_hmd.data.train_stream import num_fake_poses
from lightning_hmd.train.module import HMMRModule


def test_the_generator_step_computes_no_discriminator_gradient(synthetic_body_dir):
    overrides = [f"body.model_dir={synthetic_body_dir}", "data.inputs=features",
                 "trainer.max_batches=1"]  # fmt: skip
    cfg = load_config("tiny", overrides=overrides)
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    d, m = cfg.data, cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)
    batch = synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses,
                                 torch.Generator().manual_seed(0))  # fmt: skip
    seen = []
    backward = module.manual_backward

    def recording_backward(loss, *args, **kwargs):
        backward(loss, *args, **kwargs)
        seen.append({
            "disc": [p.grad is not None for p in module.discriminator.parameters()],
            "gen": [p.grad is not None for p in module.generator.parameters() if p.requires_grad],
            "disc_trainable": all(p.requires_grad for p in module.discriminator.parameters()),
        })  # fmt: skip

    module.manual_backward = recording_backward
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)  # fmt: skip
    trainer.fit(module, DataLoader([batch], batch_size=None, collate_fn=lambda b: b))
    generator_step, discriminator_step = seen
    assert not any(generator_step["disc"]) and all(generator_step["gen"])
    assert all(discriminator_step["disc"])
    # the generator's step froze the discriminator only while it ran
    assert not generator_step["disc_trainable"] and discriminator_step["disc_trainable"]
    assert all(p.requires_grad for p in module.discriminator.parameters())
    after = module.state_dict()
    for prefix in ("generator.smpl_head.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix))
