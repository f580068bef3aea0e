"""Every run's swept parameters and final metrics in TensorBoard's HParams format.

Whatever the run's main logger (CSV, TensorBoard, W&B), rank 0 writes ``<run dir>/hparams/``
once training ends: the values of the keys its sweep varied (``sweep.json``; none outside a
sweep), its seed, the protocol its numbers were scored under, and its final validation
metrics. So
``tensorboard --logdir RUNS`` (or ``lightning-hmd dashboard RUNS``) shows a sweep as one
table and parallel-coordinates view, offline.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Mapping
from pathlib import Path

HPARAMS_DIR = "hparams"


def tensorboard_without_tf() -> None:
    """Make TensorBoard use its own stub of the TF API, not TensorFlow: its switch for that is
    the presence of a module ``tensorboard.compat.notf`` (``tensorboard/compat/__init__.py``,
    ``tf()``). Writing and serving summaries needs no TensorFlow, and importing TensorFlow into
    a process that already holds torch crashes it (tensorflow-cpu of the ``[tf]`` extra)."""
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def _scalar(value: object) -> bool | int | float | str:
    """A value TensorBoard's HParams accept: numbers, booleans and text (lists as text)."""
    return value if isinstance(value, bool | int | float | str) else str(value)


def hparams_of(sweep_record: Mapping, seed: int, protocol: str) -> dict:
    """The run's row: its swept values, seed and protocol."""
    params = {k: _scalar(v) for k, v in (sweep_record.get("params") or {}).items()}
    return {**params, "seed": seed, "protocol": protocol}


def write_hparams(out: Path, hparams: Mapping, metrics: Mapping[str, float]) -> Path:
    """Write the run's HParams summary below ``out``: its finite validation metrics (the ones
    scored under the protocol), or, in a run without validation, its last training terms;
    returns the folder."""
    tensorboard_without_tf()
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(out) / HPARAMS_DIR
    finite = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
    scored = {k: v for k, v in finite.items() if k.startswith("val/")}
    finite = scored or finite
    with SummaryWriter(log_dir=str(folder)) as writer:
        writer.add_hparams(dict(hparams), finite, run_name=".")
    return folder
