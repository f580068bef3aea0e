"""``lightning-hmd dashboard RUNS_OR_STUDY``: TensorBoard on localhost over runs, offline.

Every run writes its swept values and final metrics in TensorBoard's HParams format
(``lightning_hmd/train/hparams_record.py``), so the HParams view shows a sweep as one table and
a parallel-coordinates plot with no W&B server. Given folders, TensorBoard reads every run
below them; given a sweep agents' study (a database URL or a ``*.optuna.db`` file), it reads the
run directories of the study's trials. The server listens on 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning_hmd.errors import MissingPathError
from lightning_hmd.experiments.compare_study import is_study, read_studies, study_urls

HOST = "127.0.0.1"


def logdir_spec(paths: Sequence[str | Path]) -> str:
    """TensorBoard's ``--logdir_spec``: ``name:path`` for every folder and every trial run of
    the studies among ``paths``."""
    named: dict[str, str] = {}
    for p in paths:
        if is_study(p):
            for report in (r for url in study_urls([p]) for r in read_studies(url)):
                for t in report.trials:
                    if t.run_dir and Path(t.run_dir).is_dir():
                        named[Path(t.run_dir).name] = t.run_dir
        elif Path(p).is_dir():
            named[Path(p).resolve().name] = str(Path(p).resolve())
        else:
            raise MissingPathError(f"{p}: no such folder, study file or database URL")
    if not named:
        raise MissingPathError(f"{', '.join(map(str, paths))}: no run to show")
    return ",".join(f"{name}:{path}" for name, path in named.items())


def start(paths: Sequence[str | Path], port: int = 6006) -> str:
    """Start TensorBoard in this process (a background thread) over ``paths``; returns the
    address of its HParams view."""
    from lightning_hmd.train.hparams_record import tensorboard_without_tf

    tensorboard_without_tf()  # this process holds torch: TensorFlow must stay out
    from tensorboard import program

    tb = program.TensorBoard()
    tb.configure(
        argv=[
            None,
            "--logdir_spec",
            logdir_spec(paths),
            "--host",
            HOST,
            "--port",
            str(port),
            "--reload_interval",
            "5",
        ]
    )
    return tb.launch().rstrip("/") + "/#hparams"
