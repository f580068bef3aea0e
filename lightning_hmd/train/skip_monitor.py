"""Damaged samples during training: counted over every rank, shown, logged, and the run
stopped when too many of them were found.

The readers skip damaged samples and report them on their loader's skip channel
(``data/skips.py``); each rank's :class:`~lightning_hmd.data.epochs.EpochLoader` keeps the
distinct ones. Every ``every`` batches (the logging cadence: the same batch on every rank)
:class:`SkipMonitor` sums over the ranks, in one all-reduce of one vector, the counts by
reason and the damaged samples of each kind (clips, mocap poses), so every rank takes part
in the same collectives and reaches the same decision. It shows the total on the progress
bar as ``skipped``, logs ``train/skipped/<reason>`` and ``train/skipped/total``, and raises
:class:`~lightning_hmd.data.skips.TooManySkippedError` naming the worst shards once the
damaged samples of a kind exceed ``data.max_skip_fraction`` of the samples of that kind the
training sets list (clips and mocap poses apart: 200 000 intact poses must not hide a clip
set that is all damage). Validation's readers are counted after each validation
(``val/skipped/<reason>``). The last counts go into ``summary.json``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

from lightning_hmd.data.epochs import EpochLoader
from lightning_hmd.data.skips import REASONS, SkipLog, check_fraction, too_many

KIND_NAMES = {"clip": "clip samples", "mocap": "mocap samples"}


def _sum_over_ranks(trainer: pl.Trainer, values: list[int]) -> list[int]:
    vector = torch.tensor(values, dtype=torch.float64)
    if trainer.world_size > 1:
        vector = trainer.strategy.reduce(vector.to(trainer.strategy.root_device), reduce_op="sum")
    return [int(round(float(v))) for v in vector.cpu()]


def _worst_over_ranks(trainer: pl.Trainer, worst: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The worst shards over every rank (each rank reads its own shards)."""
    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        every: list = [None] * trainer.world_size
        dist.all_gather_object(every, worst)
        worst = [w for rank in every for w in rank]
    return sorted(worst, key=lambda w: (-w[1], w[0]))[:3]


def reduced_counts(trainer: pl.Trainer, skips: SkipLog) -> dict[str, int]:
    """Skipped samples by reason, summed over the ranks (reasons with none left out)."""
    counts = skips.counts()
    summed = _sum_over_ranks(trainer, [counts.get(r, 0) for r in REASONS])
    return {r: n for r, n in zip(REASONS, summed, strict=True) if n}


class SkipMonitor(Callback):
    """See the module docstring. ``max_fraction``: ``data.max_skip_fraction``; ``every``: the
    cadence in batches; ``max_batches``: the budget (the last batch is always checked)."""

    def __init__(self, max_fraction: float, every: int, max_batches: int) -> None:
        self.max_fraction = max_fraction
        self.every = max(1, int(every))
        self.max_batches = max_batches
        self.train_counts: dict[str, int] = {}
        self.val_counts: dict[str, int] = {}

    @staticmethod
    def _train_loader(trainer: pl.Trainer) -> EpochLoader | None:
        loader = getattr(trainer.datamodule, "train_loader", None)
        return loader if isinstance(loader, EpochLoader) else None

    def update(self, trainer: pl.Trainer, *, check: bool) -> None:
        """Collect the training skips of every rank; with ``check``, stop the run when a kind
        is too damaged. Every rank must call it at the same point."""
        loader = self._train_loader(trainer)
        if loader is None:
            return
        skips = loader.collect()
        kinds = sorted(loader.listed)
        counts = skips.counts()
        summed = _sum_over_ranks(
            trainer,
            [counts.get(r, 0) for r in REASONS]
            + [skips.damaged(loader.listed[k].keys()) for k in kinds],
        )
        self.train_counts = {
            r: n for r, n in zip(REASONS, summed[: len(REASONS)], strict=True) if n
        }
        if not check:
            return
        for kind, damaged in zip(kinds, summed[len(REASONS) :], strict=True):
            total = sum(loader.listed[kind].values())
            if too_many(damaged, total, self.max_fraction):  # the same answer on every rank
                worst = _worst_over_ranks(trainer, skips.worst_shards(3, loader.listed[kind]))
                check_fraction(damaged, total, self.max_fraction, worst, KIND_NAMES[kind])

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        n = int(module.batches_done)
        if n % self.every and n < self.max_batches:
            return
        self.update(trainer, check=True)
        values = {f"train/skipped/{r}": float(c) for r, c in self.train_counts.items()}
        values["train/skipped/total"] = float(sum(self.train_counts.values()))
        module.log_dict(values, batch_size=1)
        module.log(
            "skipped", values["train/skipped/total"], prog_bar=True, logger=False, batch_size=1
        )

    def on_validation_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
        loaders = trainer.val_dataloaders
        loaders = loaders if isinstance(loaders, list) else [loaders]
        log = SkipLog()
        for loader in loaders:
            if isinstance(loader, EpochLoader):
                log.add(list(loader.collect().events.values()))
        self.val_counts = reduced_counts(trainer, log)
        if self.val_counts:
            module.log_dict(
                {f"val/skipped/{r}": float(c) for r, c in self.val_counts.items()}, batch_size=1
            )

    def on_train_end(self, trainer, module) -> None:  # noqa: ANN001
        self.update(trainer, check=False)  # the last counts, for summary.json

    def summary(self) -> dict:
        """The counts ``summary.json`` records: by reason, for training and validation."""
        return {
            "train": dict(sorted(self.train_counts.items())),
            "val": dict(sorted(self.val_counts.items())),
        }
