"""SLURM requeue: SIGUSR1 (``--signal=SIGUSR1@90`` or ``scancel --signal=USR1``) makes the
job checkpoint after its current batch, stop, and put itself back in the queue.

Lightning's own handler (``SLURMEnvironment(auto_requeue=True)``) is switched off and this
one used instead, because Lightning's saves the checkpoint inside the signal handler: at
whatever point each rank happens to be, so between the generator and the discriminator
steps of a batch (the checkpoint then holds a generator step that the resumed run repeats),
and under DDP its collective save can pair with another rank's gradient all-reduce. Here the
handler only records the signal; after each batch the ranks agree whether any of them got it
(one boolean all-reduce), all write ``last.ckpt`` together at the same batch boundary and
stop, and rank 0 calls ``scontrol requeue`` once the run is closed (logger flushed, summary
written). The requeue checkpoint is ``last.ckpt`` itself, so nothing accumulates over
requeues and the resumed job continues from it with the same run name and W&B id.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Mapping
from types import FrameType


class RequeueSignal:
    """Records SIGUSR1 while installed (main thread only, as Python's signals require)."""

    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.signum = signum
        self.received = False
        self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True

    def install(self) -> RequeueSignal:
        self._previous = signal.signal(self.signum, self._handle)
        return self

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(self.signum, self._previous)
            self._previous = None


def slurm_job_id(env: Mapping[str, str]) -> str | None:
    """The id ``scontrol requeue`` takes: ``<array job>_<task>`` in an array, else the job's."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def requeue_job(env: Mapping[str, str]) -> str:
    """Put this SLURM job back in the queue; returns what happened, for the log.

    The job's processes are ended by SLURM right after (the batch script must allow it with
    ``--requeue``, which ``lightning-hmd slurm submit`` writes).
    """
    job = slurm_job_id(env)
    if job is None or not re.fullmatch(r"[0-9_]+", job):
        return f"not requeued: no SLURM job id in the environment ({job!r})"
    try:
        proc = subprocess.run(
            ["scontrol", "requeue", job], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return f"not requeued: scontrol not found; resubmit job {job} to resume"
    if proc.returncode != 0:
        return f"requeue of job {job} failed ({proc.stderr.strip()}); resubmit it to resume"
    return f"requeued job {job}"
