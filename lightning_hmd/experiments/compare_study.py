"""What ``lightning-hmd compare`` reads from a sweep agents' study: every trial's state
(complete, pruned, running, failed), value and parameters, and the best configuration.

A study is given as its database URL (``sqlite:///...``, ``postgresql://...``), as a
``*.optuna.db`` file, or found as the ``<sweep>.optuna.db`` files directly inside a folder
given to ``compare`` (the default place of ``sweep agent``'s study, beside the runs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from lightning_hmd.experiments.sweep_agent import TRIAL_ATTR

STUDY_SUFFIX = ".optuna.db"


@dataclass(frozen=True)
class StudyTrial:
    """One trial: its number, state, final value (None unless complete), swept values."""

    number: int
    state: str
    value: float | None
    params: dict
    run_dir: str | None


@dataclass(frozen=True)
class StudyReport:
    """One study: the sweep's name, where it is stored, its trials and the best one."""

    name: str
    storage: str
    direction: str
    trials: list[StudyTrial] = field(default_factory=list)

    @property
    def states(self) -> dict[str, int]:
        return dict(Counter(t.state for t in self.trials))

    @property
    def best(self) -> StudyTrial | None:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.value)


def is_study(path: str | Path) -> bool:
    """Whether a ``compare`` argument names a study rather than runs."""
    text = str(path)
    return "://" in text or text.endswith(STUDY_SUFFIX)


def study_urls(paths: Iterable[str | Path]) -> list[str]:
    """The database URLs named by ``paths``: URLs, ``*.optuna.db`` files, and the study files
    directly inside folders."""
    urls = []
    for p in paths:
        text = str(p)
        if "://" in text:
            urls.append(text)
        elif text.endswith(STUDY_SUFFIX):
            urls.append(f"sqlite:///{Path(text).resolve()}")
        elif Path(text).is_dir():
            urls += [
                f"sqlite:///{f.resolve()}" for f in sorted(Path(text).glob(f"*{STUDY_SUFFIX}"))
            ]
    return urls


def read_studies(url: str) -> list[StudyReport]:
    """Every study stored at ``url``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reports = []
    for name in optuna.study.get_all_study_names(storage=url):
        study = optuna.load_study(study_name=name, storage=url)
        trials = [
            StudyTrial(
                t.number,
                t.state.name.lower(),
                t.value,
                dict(t.params),
                t.user_attrs.get(TRIAL_ATTR),
            )
            for t in study.get_trials(deepcopy=False)
        ]
        reports.append(StudyReport(name, url, study.direction.name.lower(), trials))
    return reports


def study_markdown(reports: Iterable[StudyReport]) -> str:
    """A section per study: the trials by state, the best configuration, a row per trial."""
    parts = []
    for r in reports:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(r.states.items()))
        lines = [f"## Study {r.name}", "", f"{r.storage} ({r.direction}): {counts}", ""]
        if r.best is not None:
            lines += [
                f"best: trial {r.best.number}, value {r.best.value:.4g}, " f"{r.best.params}",
                "",
            ]
        lines += ["| trial | state | value | parameters |", "|---|---|---|---|"]
        for t in r.trials:
            value = "—" if t.value is None else f"{t.value:.4g}"
            lines.append(f"| {t.number} | {t.state} | {value} | {t.params} |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
