"""Damaged samples during training: counted over every rank, shown, logged, and the run
stopped when too many of them were found.

The readers skip damaged samples and report them on their loader's skip channel
(``data/skips.py``); each rank's :class:`~lightning_hmd.data.epochs.EpochLoader` keeps the
distinct ones. Every ``every`` batches (the logging cadence, the same batch on every rank)
:class:`SkipMonitor` sums the counts by reason over the ranks (one all-reduce of a vector
with one entry per reason, so every rank takes part in the same collective and reaches the
same decision), shows the total on the progress bar as ``skipped``, logs
``train/skipped/<reason>`` and ``train/skipped/total``, and raises
:class:`~lightning_hmd.data.skips.TooManySkippedError` naming the worst shards once the
damaged samples exceed ``data.max_skip_fraction`` of the samples the training sets list.
Validation's readers are counted the same way after each validation
(``val/skipped/<reason>``). The final counts go into ``summary.json``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from lightning_hmd.data.epochs import EpochLoader
from lightning_hmd.data.skips import NOT_DAMAGE, REASONS, check_fraction


def _reduce_counts(
    trainer: pl.Trainer, counts: dict[str, int], worst: list[tuple[str, int]]
) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Counts by reason summed over the ranks, and the worst shards over all ranks (each
    rank reads its own shards, so the per-shard counts of different ranks never overlap)."""
    vector = torch.tensor([counts.get(r, 0) for r in REASONS], dtype=torch.float64)
    if trainer.world_size > 1:
        vector = trainer.strategy.reduce(vector.to(trainer.strategy.root_device), reduce_op="sum")
        every: list = [None] * trainer.world_size
        torch.distributed.all_gather_object(every, worst)
        worst = sorted((w for rank in every for w in rank), key=lambda w: -w[1])[:3]
    total = {r: int(round(float(v))) for r, v in zip(REASONS, vector.cpu(), strict=True) if v > 0}
    return total, worst


def damaged(counts: dict[str, int]) -> int:
    """Samples lost to damage (reasons outside ``NOT_DAMAGE``)."""
    return sum(n for r, n in counts.items() if r not in NOT_DAMAGE)


class SkipMonitor(Callback):
    """See the module docstring. ``max_fraction``: ``data.max_skip_fraction``; ``every``: the
    check's cadence in batches."""

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

    def _update_train(self, trainer: pl.Trainer, *, check: bool) -> None:
        loader = self._train_loader(trainer)
        if loader is None:
            return
        skips = loader.collect()
        self.train_counts, worst = _reduce_counts(trainer, skips.counts(), skips.worst_shards())
        if check:  # total_samples: every sample the training and mocap sets list
            check_fraction(damaged(self.train_counts), loader.total_samples, self.max_fraction,
                           worst)  # fmt: skip

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        n = int(module.batches_done)
        if n % self.every and n < self.max_batches:
            return
        self._update_train(trainer, check=True)
        values = {f"train/skipped/{r}": float(c) for r, c in self.train_counts.items()}
        values["train/skipped/total"] = float(sum(self.train_counts.values()))
        module.log_dict(values, batch_size=1)
        module.log("skipped", values["train/skipped/total"], prog_bar=True, logger=False,
                   batch_size=1)  # fmt: skip

    def on_validation_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
        loaders = trainer.val_dataloaders
        loaders = loaders if isinstance(loaders, list) else [loaders]
        counts: dict[str, int] = {}
        for loader in loaders:
            if isinstance(loader, EpochLoader):
                for r, c in loader.collect().counts().items():
                    counts[r] = counts.get(r, 0) + c
        self.val_counts, _ = _reduce_counts(trainer, counts, [])
        if self.val_counts:
            module.log_dict({f"val/skipped/{r}": float(c) for r, c in self.val_counts.items()},
                            batch_size=1)  # fmt: skip

    def on_train_end(self, trainer, module) -> None:  # noqa: ANN001
        self._update_train(trainer, check=False)  # the final counts, for summary.json

    def summary(self) -> dict:
        """The counts ``summary.json`` records: by reason, for training and validation."""
        return {"train": dict(sorted(self.train_counts.items())),
                "val": dict(sorted(self.val_counts.items()))}  # fmt: skip
