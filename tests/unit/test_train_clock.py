"""TrainClock: training seconds summed over the jobs that trained a run."""

from __future__ import annotations

import lightning_hmd.train.clock as clock_module
from lightning_hmd.train.clock import TrainClock


def test_the_clock_adds_a_resumed_job_to_the_seconds_in_its_checkpoint(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(clock_module.time, "monotonic", lambda: now[0])
    first = TrainClock()
    first.on_train_start(None, None)
    now[0] = 130.0
    assert first.state_dict() == {"seconds": 30.0}  # a checkpoint mid-run
    now[0] = 145.0
    first.on_train_end(None, None)
    assert first.seconds == 45.0
    now[0] = 900.0  # time between the jobs is not training
    assert first.seconds == 45.0
    resumed = TrainClock()
    resumed.load_state_dict({"seconds": 30.0})  # the job died after the checkpoint at 30 s
    assert resumed.seconds == 30.0
    resumed.on_train_start(None, None)
    now[0] = 912.5
    assert resumed.state_dict() == {"seconds": 42.5}
    resumed.on_train_end(None, None)
    assert resumed.seconds == 42.5
    assert TrainClock().seconds == 0.0
