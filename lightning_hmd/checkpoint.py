"""Reading checkpoints: always ``weights_only=True``, and one clear error naming the file.

``torch.load`` unpickles; with ``weights_only=True`` it resolves only tensors and plain
containers, so a checkpoint carrying a pickle payload is refused instead of run. The flag is
passed explicitly everywhere, because ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns the default
off. Every command that takes a checkpoint turns a missing, truncated, empty or hostile file
into a :class:`CheckpointError` (one of the project's errors, which the command line prints as
one line).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lightning_hmd.errors import CheckpointError


def load_checkpoint(path: str | Path, *, what: str = "checkpoint", mmap: bool = False) -> dict:
    """The checkpoint at ``path`` as a dict, loaded on the CPU with ``weights_only=True``
    (``mmap``: tensors mapped from the file instead of read, for a cheap check).

    Raises:
        CheckpointError: naming the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # truncated, empty, foreign or hostile: the same one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable {what} ({reason[:300]})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: not a {what} (holds a {type(blob).__name__})")
    return blob


def checkpoint_config(path: str | Path) -> dict:
    """The config stored in a lightning_hmd checkpoint (``hyper_parameters.config``).

    Raises:
        CheckpointError: the file is unreadable or holds no config.
    """
    blob = load_checkpoint(path)
    config = blob.get("hyper_parameters", {}).get("config")
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{path}: not a lightning_hmd checkpoint (no hyper_parameters.config)"
        )
    return config
