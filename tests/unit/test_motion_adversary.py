"""VIBE's motion discriminator as the adversarial prior (``model.discriminator=motion``):
windows of one prediction source, LSGAN terms on hand-built scores, the form of the mocap
checked, and training that lowers the loss and resumes."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.synth.batches import synthetic_clip_batch, synthetic_mocap_batch
from lightning_hmd.data.train_stream import mocap_draws
from lightning_hmd.errors import ConfigError
from lightning_hmd.models.build import build_discriminator, build_generator
from lightning_hmd.models.motion_discriminator import MotionDiscriminator
from lightning_hmd.objective import (
    all_params,
    collect_fakes,
    discriminator_terms,
    generator_terms,
    judge_fakes,
)
from lightning_hmd.structures import MocapWindows
from lightning_hmd.train.module import HMMRModule


def _constant(score: float) -> MotionDiscriminator:
    """A motion discriminator whose every window scores ``score``."""
    d = MotionDiscriminator(hidden=8, num_layers=1, attention_layers=2)
    with torch.no_grad():
        d.fc.weight.zero_()
        d.fc.bias.fill_(score)
    return d


def _tiny(overrides=()):
    return load_config("tiny", overrides=["model.discriminator=motion", *overrides])


def _generator_output(cfg, batch_size=3):
    torch.manual_seed(0)
    gen = build_generator(cfg.model, torch.zeros(24, 3), torch.zeros(10), False)
    return gen(phi=torch.randn(batch_size, cfg.data.seq_len, cfg.model.feat_dim))


def test_each_window_is_one_sequence_of_one_prediction_source():
    cfg = _tiny()
    out = _generator_output(cfg)
    fakes = collect_fakes(out)
    windows = fakes.windows()
    params = all_params(out)  # movie strip current, its Δt heads, then hallucinated ones
    assert len(params) == 6 and windows.shape == (6 * 3, cfg.data.seq_len, 24, 3, 3)
    for i, p in enumerate(params):
        for b in range(3):
            torch.testing.assert_close(windows[3 * i + b], p.pose_rotmat[b], rtol=0, atol=0)
    count, window = mocap_draws(3, cfg.data.seq_len, 2, True, "motion")
    assert (count, window) == (windows.shape[0], cfg.data.seq_len)


def test_lsgan_terms_of_hand_built_scores(synthetic_body_dir):
    """Windows scored 0.25 by fakes and reals: generator (0.25 - 1)^2 = 0.5625; the
    discriminator's real term the same, its fake term 0.25^2 = 0.0625."""
    cfg = _tiny([f"body.model_dir={synthetic_body_dir}", "data.inputs=features"])
    module = HMMRModule(to_container(cfg))
    out = _generator_output(cfg)
    d = _constant(0.25)
    count, window = mocap_draws(3, cfg.data.seq_len, 2, True, "motion")
    batch = synthetic_clip_batch(module.body, 3, cfg.data.seq_len, cfg.model.feat_dim, count,
                                 torch.Generator().manual_seed(0), mocap_window=window)  # fmt: skip
    terms, fakes = generator_terms(out, batch.clips, module.body, d)
    assert judge_fakes(d, fakes).shape == (count, 1)
    assert terms["adv"].item() == pytest.approx(0.5625, abs=1e-7)
    dterms = discriminator_terms(d, fakes, batch.mocap)
    assert dterms["disc/real"].item() == pytest.approx(0.5625, abs=1e-7)
    assert dterms["disc/fake"].item() == pytest.approx(0.0625, abs=1e-7)


def test_real_windows_and_fakes_scored_apart():
    """A discriminator scoring 1 has no real term, one scoring 0 no fake term."""
    fakes = collect_fakes(_generator_output(_tiny()))
    real = MocapWindows(torch.zeros(4, fakes.seq_len, 24, 3), torch.zeros(4, fakes.seq_len, 10))
    assert discriminator_terms(_constant(1.0), fakes, real)["disc/real"].item() == 0.0
    assert discriminator_terms(_constant(0.0), fakes, real)["disc/fake"].item() == 0.0


def test_mocap_of_the_wrong_form_is_named():
    fakes = collect_fakes(_generator_output(_tiny()))
    with pytest.raises(ConfigError, match="judges windows of consecutive poses.*MocapBatch"):
        discriminator_terms(_constant(0.0), fakes, synthetic_mocap_batch(5, torch.Generator()))
    pose = build_discriminator(load_config("tiny").model)
    windows = MocapWindows(torch.zeros(2, 8, 24, 3), torch.zeros(2, 8, 10))
    with pytest.raises(ConfigError, match="judges single poses.*MocapWindows"):
        discriminator_terms(pose, fakes, windows)


def test_the_config_builds_it_at_its_sizes():
    d = build_discriminator(_tiny(["model.motion_disc.hidden=12"]).model)
    assert isinstance(d, MotionDiscriminator) and d.gru.hidden_size == 12 and d.gru.num_layers == 2


def _train(cfg, batch, steps, ckpt=None, callbacks=()):
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    trainer = pl.Trainer(accelerator="cpu", max_steps=2 * steps, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0,
                         callbacks=list(callbacks))  # fmt: skip
    loader = DataLoader([batch] * steps, batch_size=None, collate_fn=lambda b: b)
    trainer.fit(module, loader, ckpt_path=ckpt)
    return module, trainer


def test_training_with_it_lowers_the_loss_and_moves_it(synthetic_body_dir):
    steps = 8
    cfg = _tiny([f"body.model_dir={synthetic_body_dir}", "data.inputs=features",
                 f"trainer.max_batches={steps}", "model.regressor_dropout=0.0",
                 "model.motion_disc.attention_dropout=0.0", "optim.warmup_batches=0",
                 "optim.gen_lr=1e-3"])  # fmt: skip
    d, m = cfg.data, cfg.model
    count, window = mocap_draws(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator, "motion")
    batch = synthetic_clip_batch(HMMRModule(to_container(cfg)).body, d.batch_size, d.seq_len,
                                 m.feat_dim, count, torch.Generator().manual_seed(0),
                                 mocap_window=window)  # fmt: skip
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            losses.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    torch.manual_seed(0)
    start = {k: v.clone() for k, v in build_discriminator(m).state_dict().items()}
    module, _ = _train(cfg, batch, steps, callbacks=[Record()])
    assert len(losses) == steps
    assert losses[-1]["train/loss/total"] < 0.9 * losses[0]["train/loss/total"]
    assert all("train/disc/real" in x and "train/loss/adv" in x for x in losses), losses[0].keys()
    moved = [not torch.equal(start[k], v) for k, v in module.discriminator.state_dict().items()]
    assert all(moved)  # every discriminator tensor was trained
