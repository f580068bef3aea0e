"""``metrics.csv`` that a resumed run continues instead of starting afresh.

Lightning's CSV writer deletes ``metrics.csv`` when the log directory already holds files
(``lightning/fabric/loggers/csv_logs.py``, ``_ExperimentWriter._check_log_dir_exists``), so a
resumed run (the same directory) would lose every row logged before it stopped. Here a
resumed run keeps the rows of the batches its checkpoint holds, drops the rows logged after
that checkpoint (the resumed run trains and logs those batches again, so they would appear
twice) and appends. Lightning has no option for this, hence the subclass.
"""

from __future__ import annotations

import csv
import os

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _ContinuingWriter(ExperimentWriter):
    """Keeps the rows of ``metrics.csv`` whose ``step`` is below ``resume_step``."""

    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = self.metrics_file_path
        if not os.path.isfile(path):
            return  # nothing to keep or delete (the run directory holds its checkpoints)
        if self.resume_step is None:
            super()._check_log_dir_exists()  # a new run: Lightning's (warns, deletes)
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step") and int(r["step"]) < self.resume_step]
        tmp = path + ".partial"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
        self.metrics_keys = header


class RunCSVLogger(CSVLogger):
    """:class:`CSVLogger` writing ``<save_dir>/metrics.csv``; ``resume_batches``: the batches
    the checkpoint a run resumes from holds (None: a new run). Lightning's logged step of
    batch ``n`` (1-based) is ``n - 1``, so rows from step ``resume_batches`` on are dropped."""

    def __init__(self, save_dir: str | os.PathLike, resume_batches: int | None = None) -> None:
        super().__init__(save_dir, name="", version="")
        self.resume_batches = resume_batches

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir, self.resume_batches)
        return self._experiment
