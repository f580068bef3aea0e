"""The training time of a run, summed over the jobs that trained it.

``TrainClock`` measures wall-clock seconds from the start of ``trainer.fit``'s training loop
to its end (validation and data loading included: the time a user waits for the run) and
keeps the total in every checkpoint, so a run resumed after a requeue or a crash reports the
seconds of all its segments, not only those of the last job. Time between a checkpoint and a
kill is not counted (it is lost with the work it did).
"""

from __future__ import annotations

import time

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class TrainClock(Callback):
    """Seconds of training so far (``seconds``), restored from the checkpoint on resume."""

    def __init__(self) -> None:
        self.before = 0.0  # seconds of earlier segments (from the checkpoint)
        self._started: float | None = None

    @property
    def seconds(self) -> float:
        """Seconds of all segments, this one up to now."""
        now = 0.0 if self._started is None else time.monotonic() - self._started
        return self.before + now

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._started = time.monotonic()

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.before, self._started = self.seconds, None

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before = float(state_dict.get("seconds", 0.0))
