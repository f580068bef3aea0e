"""``lightning-hmd sweep run``: a sweep's trials run locally, one after another.

For users without a W&B server (or to reproduce a sweep offline): every trial gets the same
``key=value`` arguments ``wandb agent`` would pass, a stable run name
(``<sweep>-<trial>-seed<k>``), the sweep name as its W&B group and a ``sweep.json`` with its
parameters in the run directory. Trials whose run directory holds a finished
``summary.json`` are skipped, so an interrupted sweep re-run continues where it stopped;
an unfinished trial resumes from its ``last.ckpt``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_hmd.config import load_config, to_container
from lightning_hmd.sweeps import Sweep, Trial, expand, preset_of
from lightning_hmd.train.fit import train
from lightning_hmd.train.run_dir import SWEEP_FILE, read_summary, run_dir


@dataclass(frozen=True)
class TrialRun:
    """What happened to one trial: ``trained``, ``skipped`` (finished before) or ``planned``
    (a dry run)."""

    trial: Trial
    run_dir: Path
    status: str
    command: str


def trial_overrides(sweep: Sweep, trial: Trial, overrides: Sequence[str]) -> list[str]:
    """The trial's full overrides: the caller's, then the trial's values, name and group."""
    return [
        *overrides,
        *trial.overrides(),
        f"run.name={trial.name(sweep)}",
        f"logger.group={sweep.name}",
    ]


def run_sweep(
    sweep: Sweep,
    *,
    seeds: int = 1,
    count: int | None = None,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
) -> list[TrialRun]:
    """Run (or with ``dry_run`` list) every trial of ``sweep`` in this process."""
    env = os.environ if env is None else env
    preset = preset_of(sweep)
    done: list[TrialRun] = []
    trials = expand(sweep, seeds, count)
    for n, trial in enumerate(trials, 1):
        over = trial_overrides(sweep, trial, overrides)
        cfg = load_config(preset, overrides=over)
        out = run_dir(to_container(cfg), env)
        command = shlex.join(
            ["lightning-hmd", "train", *(["--preset", preset] if preset else []), *over]
        )
        summary = read_summary(out)
        if summary is not None and summary.get("finished"):
            echo(f"[{n}/{len(trials)}] {trial.name(sweep)}: finished before, skipped ({out})")
            done.append(TrialRun(trial, out, "skipped", command))
            continue
        if dry_run:
            echo(f"[{n}/{len(trials)}] {command}")
            done.append(TrialRun(trial, out, "planned", command))
            continue
        echo(f"[{n}/{len(trials)}] {trial.name(sweep)}: {' '.join(trial.overrides())}")
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "sweep": sweep.name,
            "sweep_file": str(sweep.path),
            "trial": trial.index,
            "seed": trial.seed,
            "params": trial.params,
            "metric": sweep.metric,
            "goal": sweep.goal,
            "command": command,
        }
        (out / SWEEP_FILE).write_text(json.dumps(record, indent=2) + "\n")
        train(cfg, env)
        done.append(TrialRun(trial, out, "trained", command))
    return done
