"""A self-contained end-to-end check of the model stack on synthetic data.

Builds the training module from the config (the configured body model, generator and
discriminator), makes one batch of synthetic clips with features, and runs the module's own
training step on it for a few batches under a Lightning ``Trainer`` (HMMR's update order,
``HMRSequenceTrainer.train`` in ``src/trainer_sequence_fc.py``, with the run's optimisers,
weight decay, clipping, schedule and non-finite check). The numbers it returns show every loss
term and that the weighted objective goes down when over-fitting one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from lightning_hmd.config import to_container
from lightning_hmd.data.batch import ClipBatch
from lightning_hmd.data.synth.batches import synthetic_clip_batch
from lightning_hmd.data.train_stream import mocap_draws
from lightning_hmd.train.module import HMMRModule

LOSS, DISC = "train/loss/", "train/disc/"


@dataclass
class SmokeResult:
    """Per-term values at the first and the last step, and the weighted totals per step."""

    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    gen_total: list[float] = field(default_factory=list)
    disc_total: list[float] = field(default_factory=list)


class _Record(Callback):
    """The loss terms the training step logged, batch by batch, by their term names."""

    def __init__(self) -> None:
        self.result = SmokeResult()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
        terms = {k[len(LOSS) :]: v for k, v in logged.items() if k.startswith(LOSS)}
        terms |= {"disc/" + k[len(DISC) :]: v for k, v in logged.items() if k.startswith(DISC)}
        self.result.gen_total.append(terms.pop("total"))
        self.result.disc_total.append(terms.pop("disc/total"))
        if not self.result.first:
            self.result.first = terms
        self.result.last = terms


def _as_is(batch: ClipBatch) -> ClipBatch:
    return batch


def run_smoke(cfg: DictConfig, steps: int = 20) -> SmokeResult:
    """Over-fit one synthetic batch for ``steps`` batches of the training step."""
    cfg = OmegaConf.merge(cfg, {"data": {"inputs": "features"}, "trainer": {"max_batches": steps}})
    torch.manual_seed(cfg.seed)
    module = HMMRModule(to_container(cfg))
    d, m = cfg.data, cfg.model
    gen = torch.Generator().manual_seed(cfg.seed)
    poses, window = mocap_draws(
        d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator, m.discriminator
    )
    batch = synthetic_clip_batch(
        module.body, d.batch_size, d.seq_len, m.feat_dim, poses, gen, mocap_window=window
    )
    record = _Record()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=2 * steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        log_every_n_steps=1,
        callbacks=[record],
    )
    loader = DataLoader([batch] * steps, batch_size=None, collate_fn=_as_is)
    trainer.fit(module, train_dataloaders=loader)
    return record.result


def format_smoke(result: SmokeResult) -> str:
    """A table of every term at the first and last step, then the weighted totals."""
    lines = [f"{'term':<22}{'first':>12}{'last':>12}"]
    lines += [f"{k:<22}{result.first[k]:>12.5f}{result.last[k]:>12.5f}" for k in result.first]
    lines.append(
        f"{'generator total':<22}{result.gen_total[0]:>12.4f}{result.gen_total[-1]:>12.4f}"
    )
    lines.append(
        f"{'discriminator total':<22}{result.disc_total[0]:>12.4f}{result.disc_total[-1]:>12.4f}"
    )
    return "\n".join(lines)
