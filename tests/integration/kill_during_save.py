"""``lightning-hmd`` with Lightning's checkpoint writer patched to write half of its
``KILL_AT_SAVE``-th checkpoint file and then SIGKILL its own process: a kill in the middle
of a checkpoint write, at a point a test chooses (``tests/integration/test_kill_resume.py``)."""

from __future__ import annotations

import io
import os
import signal
import sys

import torch
from lightning.fabric.plugins.io import torch_io


def main() -> int:
    at = int(os.environ["KILL_AT_SAVE"])
    calls = 0
    original = torch_io._atomic_save

    def save(checkpoint: dict, path: str) -> None:
        nonlocal calls
        calls += 1
        if calls == at:
            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            data = buf.getvalue()
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        original(checkpoint, path)

    torch_io._atomic_save = save
    from lightning_hmd.commands import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
