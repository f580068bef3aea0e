"""The loader Lightning iterates: a DataLoader over a reader dataset, cut into epochs of a
fixed number of batches (training), resumable mid-epoch, with the readers' skip reports
collected from their own channel."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lightning_hmd.data.skips import SkipChannel, SkipLog
from lightning_hmd.data.transport import Packed, unpack


def worker_slot() -> tuple[int, int]:
    """(worker id, number of workers) of the calling DataLoader worker; (0, 0) in the main
    process."""
    info = get_worker_info()
    return (0, 0) if info is None else (info.id, info.num_workers)


def make_dataloader(dataset: IterableDataset, num_workers: int) -> DataLoader:
    """Batches are made by the datasets themselves (``batch_size=None``); workers are
    started anew each epoch, so each reseeds from the epoch number."""
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, persistent_workers=False)


class EpochLoader:
    """A DataLoader over a reader dataset, cut at ``batches_per_epoch`` batches (training; None:
    the dataset's end, for evaluation), with the skip reports of its readers in ``skips``.

    ``channel`` is the dataset's :class:`SkipChannel`; ``listed`` the samples its sets list,
    by kind (``clip``, ``mocap``) and shard path: what the share of damaged samples is
    measured against (``train/skip_monitor.py``).
    """

    def __init__(
        self,
        loader: DataLoader,
        batches_per_epoch: int | None,
        channel: SkipChannel,
        listed: Mapping[str, Mapping[str, int]],
    ) -> None:
        self.loader = loader
        self.batches_per_epoch = batches_per_epoch
        self.channel = channel
        self.listed = {kind: dict(shards) for kind, shards in listed.items()}
        self.skips = SkipLog()
        self._finished = 0  # readers of the current iteration that said they finished
        self.epoch = 0
        self.delivered = 0  # batches of the current epoch handed out so far
        self._skip = 0

    @property
    def dataset(self) -> IterableDataset:
        return self.loader.dataset

    @property
    def num_slots(self) -> int:
        return max(self.loader.num_workers, 1)

    def collect(self) -> SkipLog:
        """The skip log with every report that has arrived so far."""
        self._take(self.channel.drain())
        return self.skips

    def _take(self, items: list) -> None:
        self._finished += sum(1 for i in items if isinstance(i, int))
        self.skips.add(items)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the training streams (Lightning does not call this on custom iterables)."""
        if epoch != self.epoch:
            self._skip = 0  # a restored position belongs to the restored epoch only
        self.epoch = epoch

    def state_dict(self) -> dict:
        """Position in the stream and the skips so far, saved in checkpoints (Lightning calls
        this), so that a resumed run neither repeats batches nor counts a skip twice."""
        skipped = self.collect().state_dict()
        if self.batches_per_epoch is not None and self.delivered >= self.batches_per_epoch:
            return {"epoch": self.epoch + 1, "delivered": 0, "skipped": skipped}
        return {"epoch": self.epoch, "delivered": self.delivered, "skipped": skipped}

    def load_state_dict(self, state: dict) -> None:
        """Resume mid-epoch: the next iteration regenerates and drops the batches already
        delivered, so a resumed run sees the same batches as an uninterrupted one."""
        self.epoch, self._skip = int(state["epoch"]), int(state["delivered"])
        self.skips.load_state_dict(state.get("skipped", []))

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("evaluation loaders have no fixed length")
        return self.batches_per_epoch

    def __iter__(self) -> Iterator:
        if hasattr(self.dataset, "epoch"):
            self.dataset.epoch = self.epoch
        self.collect()
        if hasattr(self.dataset, "known_skips"):  # the workers start from what is known
            self.dataset.known_skips = self.skips.marks()
        self._finished = 0
        it = iter(self.loader)
        skip, self._skip, self.delivered = self._skip, 0, 0
        finished = True
        for batch in it:
            if isinstance(batch, Packed):
                batch = unpack(batch)
            self.collect()
            self.delivered += 1
            if self.delivered > skip:
                yield batch
            if self.batches_per_epoch is not None and self.delivered >= self.batches_per_epoch:
                finished = False
                break
        del it  # stops the endless workers
        if finished:  # every reader ran to its end: wait for the last of their reports
            self._take(self.channel.wait(self.num_slots - self._finished))
        self.epoch += 1
        self.delivered = 0
