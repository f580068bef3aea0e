"""One training process per run directory: an exclusive ``flock`` on ``<run dir>/.lock``.

``train`` takes the lock before it writes anything into the run directory and holds it until
it returns, so a second ``lightning-hmd train`` on the same directory (the same command run
twice, two jobs given one ``run.name``) is refused at once, with one line naming the holder,
instead of interleaving checkpoints and metrics with it. The kernel drops a ``flock`` when
its process ends, however it ends, so the lock of a killed process (``kill -9``, a node
failure, a SLURM requeue, whose old processes are gone before the job runs again) is free
and is simply taken over; the file still names that holder, and the new one says so.

The lock file holds its holder's identity as JSON (host, pid, SLURM job, start time); a
clean release empties it. Under DDP every rank runs ``train``, but only global rank 0 takes
the lock: the other ranks of the job are started with it (by ``srun``, ``torchrun`` or
Lightning's own launcher) and write only through rank 0.

On a file system without ``flock`` (some network or parallel file systems) training goes on
after a warning that the directory is not protected.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from lightning_hmd.errors import RunError
from lightning_hmd.train.requeue import slurm_job_id

LOCK_NAME = ".lock"
# errors of flock itself that mean "not supported here" rather than "held by another"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
# variables that name a process's rank: torchrun, srun, Lightning's launcher (node, local)
RANK_VARS = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")


class RunLockedError(RunError):
    """Another live process holds the run directory; the message names it."""


def is_rank_zero(env: Mapping[str, str]) -> bool:
    """True unless the environment names a non-zero rank (``RANK``, ``SLURM_PROCID``,
    ``NODE_RANK``, ``LOCAL_RANK``): known before the Trainer exists, as the lock must be."""
    return all(str(env.get(k, "0")).strip() in ("", "0") for k in RANK_VARS)


def identity(env: Mapping[str, str]) -> dict:
    """Who holds a lock: host, pid, SLURM job id (None outside SLURM), start time (UTC)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job": slurm_job_id(env),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe(holder: dict | None) -> str:
    """``host H, pid P, SLURM job J, since T`` (or that the holder is not known)."""
    if not holder:
        return "a process that has not written its identity yet"
    job = holder.get("slurm_job")
    parts = [
        f"host {holder.get('host', '?')}",
        f"pid {holder.get('pid', '?')}",
        f"SLURM job {job}" if job else "no SLURM job",
    ]
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    return ", ".join(parts)


class RunLock:
    """The exclusive lock of one run directory (``acquire`` / ``release``, or ``with``).

    After ``acquire``: ``previous`` is the identity a holder that did not release left in the
    file (a killed process), else None; ``locked`` is False where the file system has no
    ``flock`` (a warning says so).
    """

    def __init__(self, run_dir: str | Path, env: Mapping[str, str] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.env = os.environ if env is None else env
        self.previous: dict | None = None
        self.locked = False
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming its holder (never waits)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.locked = True
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.run_dir} is in use by another training process ({describe(holder)}; "
                f"lock file {self.path}): let it finish or stop it, or train under another "
                "run.name"
            ) from None
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                os.close(fd)
                raise
            print(
                f"warning: cannot lock {self.path} ({err.strerror}): this file system has "
                "no flock, so nothing stops a second process from training into "
                f"{self.run_dir} at the same time",
                file=sys.stderr,
                flush=True,
            )
        self._fd = fd
        self.previous = _read(fd) or None
        data = (json.dumps(identity(self.env)) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        return self

    def release(self) -> None:
        """Empty the file (a clean end) and drop the lock; a second call does nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock
            self.locked = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict:
    """The identity in an open lock file; {} when it is empty or not JSON."""
    try:
        text = os.pread(fd, 65536, 0).decode(errors="replace").strip()
        value = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@contextmanager
def hold_run(run_dir: str | Path, env: Mapping[str, str]) -> Iterator[RunLock | None]:
    """The run directory's lock for the ``with`` block on global rank 0; None on other ranks.

    Prints a line when it takes over the lock of a holder that ended without releasing it.
    """
    if not is_rank_zero(env):
        yield None
        return
    with RunLock(run_dir, env) as lock:
        if lock.previous and lock.locked:
            print(
                f"took over {lock.path} from {describe(lock.previous)} (no longer running)",
                flush=True,
            )
        yield lock
