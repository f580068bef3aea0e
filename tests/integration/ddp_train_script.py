"""Run by test_train_ddp.py: train a few batches on fixed synthetic batches, in one process
or under Lightning's DDP with 2 CPU processes, and save each rank's parameters and losses.

Usage: python ddp_train_script.py OUT BODY_DIR DEVICES
With DEVICES=2 each rank trains on its half of every global batch; with 1 on the whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.batch import ClipBatch
from lightning_hmd.data.synth.batches import synthetic_mocap_batch, synthetic_sequence_batch
from lightning_hmd.structures import MocapBatch, SequenceBatch
from lightning_hmd.train.fit import make_trainer
from lightning_hmd.train.module import HMMRModule

GLOBAL_B, T, STEPS = 4, 8, 3


def half(x, rank: int, world: int):
    """Every ``world``-th sample from ``rank``: each rank gets as many 3D-labelled samples as
    the others, as the reader's fixed windows per source give it. (HMMR's 3D losses are means
    over the labelled samples of a batch; per-rank means average to the global mean only when
    every rank holds the same number.)"""
    return x[rank::world]


def global_batches(body: BodyModel, feat_dim: int, fakes_per_sample: int) -> list[ClipBatch]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(STEPS):
        clips = synthetic_sequence_batch(body, GLOBAL_B, T, feat_dim, gen, occlusion=0.0)
        mocap = synthetic_mocap_batch(GLOBAL_B * fakes_per_sample, gen)
        out.append(ClipBatch(clips=clips, info=None, mocap=mocap))
    return out


class Batches:
    """One loader (a plain list would read as a list of loaders)."""

    def __init__(self, batches: list[ClipBatch]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Data(pl.LightningDataModule):
    def __init__(self, batches: list[ClipBatch]) -> None:
        super().__init__()
        self.batches = batches

    def train_dataloader(self) -> Batches:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        return Batches([
            ClipBatch(
                clips=SequenceBatch(**{
                    k: None if v is None else half(v, rank, world)
                    for k, v in vars(b.clips).items()
                }),
                info=None,
                mocap=MocapBatch(half(b.mocap.pose_aa, rank, world),
                                 half(b.mocap.betas, rank, world)),
            )
            for b in self.batches
        ])  # fmt: skip


class Record(pl.Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.losses = out, []

    def on_train_start(self, trainer, module) -> None:
        self.initial = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))

    def on_train_end(self, trainer, module) -> None:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        name = f"devices{trainer.world_size}_rank{trainer.global_rank}.pt"
        torch.save(
            {"state": state, "initial": self.initial, "losses": self.losses}, self.out / name
        )


def main() -> None:
    out, body_dir, devices = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cfg = load_config(
        "tiny",
        overrides=[
            f"body.model_dir={body_dir}",
            "data.inputs=features",
            "model.regressor_dropout=0.0",  # the same forward on every rank and in one process
            f"data.batch_size={GLOBAL_B // devices}",
            f"data.seq_len={T}",
            f"trainer.devices={devices}",
            f"trainer.max_batches={STEPS}",
            "trainer.val_every_batches=0",
            "trainer.ckpt_every_batches=0",
            "logger.kind=csv",
            f"run.root={out}",
            f"run.name=devices{devices}",
        ],
    )
    pl.seed_everything(0, verbose=False)
    module = HMMRModule(to_container(cfg))
    body = BodyModel.from_dir(body_dir)
    per_sample = T * (1 + len(cfg.model.delta_t)) * (2 if cfg.model.hallucinator else 1)
    trainer = make_trainer(cfg, out / f"devices{devices}", f"devices{devices}", {})
    trainer.callbacks.append(Record(out))
    trainer.fit(module, datamodule=Data(global_batches(body, cfg.model.feat_dim, per_sample)))


if __name__ == "__main__":
    main()
