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


def _two_steps(body_dir, fused: bool) -> tuple[dict, dict]:
    overrides = [f"body.model_dir={body_dir}", "data.inputs=features", "trainer.max_batches=2",
                 f"optim.fused={str(fused).lower()}", "model.regressor_dropout=0.0"]  # fmt: skip
    cfg = load_config("tiny", overrides=overrides)
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    d, m = cfg.data, cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)
    batches = [synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses,
                                    torch.Generator().manual_seed(i))
               for i in range(2)]  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", max_steps=4, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)  # fmt: skip
    trainer.fit(module, DataLoader(batches, batch_size=None, collate_fn=lambda b: b))
    assert [bool(o.defaults["fused"]) for o in trainer.optimizers] == [fused, fused]
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics, {k: v.clone() for k, v in module.state_dict().items()}


def test_fused_adam_gives_the_foreach_update(synthetic_body_dir):
    """optim.fused (the default) changes the kernels of Adam's update, not the update: two
    batches of G and D steps give the same losses and weights as torch's foreach Adam."""
    fused_metrics, fused_state = _two_steps(synthetic_body_dir, True)
    plain_metrics, plain_state = _two_steps(synthetic_body_dir, False)
    assert fused_metrics.keys() == plain_metrics.keys() and fused_metrics
    for key, value in plain_metrics.items():
        assert abs(fused_metrics[key] - value) <= 1e-5 * max(abs(value), 1e-8), key
    for key, value in plain_state.items():
        if value.is_floating_point():
            torch.testing.assert_close(fused_state[key], value, rtol=1e-5, atol=1e-7)
    torch.manual_seed(0)  # the weights both runs started from: the steps moved them
    initial = HMMRModule(to_container(load_config("tiny", overrides=[
        f"body.model_dir={synthetic_body_dir}", "data.inputs=features"]))).state_dict()  # fmt: skip
    for prefix in ("generator.smpl_head.", "discriminator."):
        assert any(not torch.equal(initial[k], plain_state[k]) for k in plain_state
                   if k.startswith(prefix))  # fmt: skip


def test_the_terms_are_logged_on_the_batches_the_logger_writes(synthetic_body_dir, tmp_path):
    """With a logger the terms are logged on every ``log_every`` batch, as Lightning writes
    them (the 3rd, 6th, 9th: it writes when the batches stepped + 1 is a multiple); without
    one, on every batch (callbacks read them)."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    overrides = [f"body.model_dir={synthetic_body_dir}", "data.inputs=features",
                 "trainer.max_batches=9"]  # fmt: skip
    cfg = load_config("tiny", overrides=overrides)
    d, m = cfg.data, cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)

    def fit(logger, callbacks=()) -> HMMRModule:
        torch.manual_seed(0)
        module = HMMRModule(to_container(cfg))
        batches = [synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses,
                                        torch.Generator().manual_seed(i))
                   for i in range(9)]  # fmt: skip
        trainer = pl.Trainer(accelerator="cpu", max_steps=18, logger=logger,
                             log_every_n_steps=3, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False,
                             limit_val_batches=0, callbacks=list(callbacks))  # fmt: skip
        trainer.fit(module, DataLoader(batches, batch_size=None, collate_fn=lambda b: b))
        return module

    fit(CSVLogger(tmp_path, name="", version=""))
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["train/batches"]) for r in rows] == [3.0, 6.0, 9.0]
    assert all(float(r["train/loss/total"]) > 0 and r["train/disc/real"] for r in rows)

    seen = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            seen.append(float(trainer.callback_metrics["train/batches"]))

    fit(False, [Record()])
    assert seen == [float(b) for b in range(1, 10)]


def test_without_the_prior_the_discriminator_is_not_run_and_mocap_not_needed(synthetic_body_dir):
    """loss.weights.adv=0 (the quickstart's HMR stage): batches without mocap train; the
    discriminator is never called and keeps its weights; the generator's loss has no
    adversarial term, nothing under train/disc is logged; still two optimiser steps a
    batch (the budget of 3 batches is max_steps 6)."""
    overrides = [f"body.model_dir={synthetic_body_dir}", "data.inputs=features",
                 "trainer.max_batches=3", "loss.weights.adv=0"]  # fmt: skip
    cfg = load_config("tiny", overrides=overrides)
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    d, m = cfg.data, cfg.model
    batches = [synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, 4,
                                    torch.Generator().manual_seed(i))
               for i in range(3)]  # fmt: skip
    for b in batches:
        b.mocap = None
    calls = []
    module.discriminator.register_forward_hook(lambda *args: calls.append(1))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = pl.Trainer(accelerator="cpu", max_steps=6, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)  # fmt: skip
    trainer.fit(module, DataLoader(batches, batch_size=None, collate_fn=lambda b: b))
    assert int(module.batches_done) == 3 and trainer.global_step == 6
    assert calls == []
    after = module.state_dict()
    for k, v in before.items():
        if k.startswith("discriminator."):
            assert torch.equal(after[k], v), k
    assert any(not torch.equal(after[k], before[k]) for k in after
               if k.startswith("generator.smpl_head."))  # fmt: skip
    logged = set(trainer.callback_metrics)
    assert "train/loss/total" in logged and "train/loss/joints3d" in logged
    assert not {k for k in logged if k.startswith("train/disc/") or k == "train/loss/adv"}
