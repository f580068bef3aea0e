"""What the training-step benchmarks share: the paper preset's module on the synthetic body
model, and a Trainer that runs ``training_step`` and nothing else (no logger, checkpoints,
progress bar, summary or validation), stopping after a number of batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch

from lightning_hmd.config import load_config, to_container
from lightning_hmd.train.fit import OPTIMIZERS_PER_BATCH
from lightning_hmd.train.module import HMMRModule


def paper_module(body_dir: Path, overrides: Sequence[str] = ()) -> HMMRModule:
    """The paper preset's HMMRModule with random weights (no HMR init), seeded by its config."""
    cfg = load_config(
        "paper", overrides=["model.init_checkpoint=none", f"body.model_dir={body_dir}", *overrides]
    )
    torch.manual_seed(cfg.seed)
    return HMMRModule(to_container(cfg))


def bare_trainer(batches: int, callbacks: Sequence[pl.Callback] = (), **kwargs) -> pl.Trainer:
    """A Trainer for ``batches`` training batches (two optimiser steps each) of the module's
    own ``training_step`` only; ``kwargs`` (accelerator, devices, precision, strategy) as
    ``pl.Trainer``'s."""
    return pl.Trainer(
        max_steps=OPTIMIZERS_PER_BATCH * batches,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=list(callbacks),
        **kwargs,
    )
