"""``lightning-hmd sweep run``: a sweep's trials run locally, one after another, or
submitted to SLURM (``--slurm``: one job per trial; ``--slurm --agents K``: a job array of K
``sweep agent`` tasks sharing the sweep's study, :func:`submit_agents`).

For users without a W&B server (or to reproduce a sweep offline): every trial gets the same
``key=value`` arguments ``wandb agent`` would pass, a stable run name
(``<sweep>-<trial>-seed<k>``), the sweep name as its W&B group and a ``sweep.json`` with its
parameters in the run directory. Trials whose run directory holds a finished
``summary.json`` are skipped, so an interrupted sweep re-run continues where it stopped;
an unfinished trial resumes from its ``last.ckpt``. Under ``--slurm`` a trial whose job is
still queued or running (``squeue`` knows its id, kept in ``sweep.json``) is not submitted
again.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_hmd.config import load_config, to_container
from lightning_hmd.experiments.slurm import (
    REQUEUE_SIGNAL,
    SRUN_FLAGS,
    JobSpec,
    job_queued,
    sbatch_script,
    submit,
)
from lightning_hmd.experiments.sweeps import (
    Sweep,
    SweepError,
    Trial,
    check_encoder_keys,
    expand,
    preset_of,
)
from lightning_hmd.train.fit import train
from lightning_hmd.train.run_dir import SWEEP_FILE, read_summary, read_sweep_record, run_dir


@dataclass(frozen=True)
class TrialRun:
    """What happened to one trial: ``trained``, ``submitted`` (a SLURM job), ``skipped``
    (finished before), ``queued`` (its SLURM job has not ended) or ``planned`` (a dry run)."""

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
    slurm: JobSpec | None = None,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    where: dict[str, str] | None = None,
) -> list[TrialRun]:
    """Run (or with ``dry_run`` list) every trial of ``sweep`` in this process, or with
    ``slurm`` submit each unfinished one as its own SLURM job (``lightning-hmd slurm
    submit``'s script, in the trial's run directory; ``dry_run`` writes the scripts only).
    One job per trial, not a job array, because trials may differ in what they train
    (a sweep over ``trainer.devices`` would need different allocations)."""
    env = os.environ if env is None else env
    preset = preset_of(sweep)
    done: list[TrialRun] = []
    trials = expand(sweep, seeds, count, where)
    for n, trial in enumerate(trials, 1):
        over = trial_overrides(sweep, trial, overrides)
        cfg = load_config(preset, overrides=over)
        check_encoder_keys(sweep, str(cfg.model.temporal.kind))
        out = run_dir(to_container(cfg), env)
        command = shlex.join(
            ["lightning-hmd", "train", *(["--preset", preset] if preset else []), *over]
        )
        summary = read_summary(out)
        if summary is not None and summary.get("finished"):
            echo(f"[{n}/{len(trials)}] {trial.name(sweep)}: finished before, skipped ({out})")
            done.append(TrialRun(trial, out, "skipped", command))
            continue
        tag = f"[{n}/{len(trials)}] {trial.name(sweep)}"
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
        if slurm is not None:
            status = submit_trial(preset, over, slurm, out, record, dry_run, env, echo, tag)
            done.append(TrialRun(trial, out, status, command))
            continue
        if dry_run:
            echo(f"[{n}/{len(trials)}] {command}")
            done.append(TrialRun(trial, out, "planned", command))
            continue
        echo(f"{tag}: {' '.join(trial.overrides())}")
        write_record(out, record)
        train(cfg, env)
        done.append(TrialRun(trial, out, "trained", command))
    return done


def write_record(out: Path, record: dict) -> None:
    """The trial's ``sweep.json`` (what ``compare`` and the W&B config read)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / SWEEP_FILE).write_text(json.dumps(record, indent=2) + "\n")


def submit_trial(
    preset: str | None,
    overrides: Sequence[str],
    spec: JobSpec,
    out: Path,
    record: dict,
    dry_run: bool,
    env: Mapping[str, str],
    echo: Callable[[str], None],
    tag: str,
) -> str:
    """Submit one trial as a SLURM job unless its previous job is still queued or running;
    returns the trial's status (``submitted``, ``queued`` or, for a dry run, ``planned``)."""
    if job_queued(read_sweep_record(out).get("slurm_job"), env):
        echo(f"{tag}: its job {read_sweep_record(out)['slurm_job']} has not ended, skipped")
        return "queued"
    script, _ = sbatch_script(preset, overrides, spec)
    if not dry_run:
        write_record(out, record)  # before the job can start and read it
    job = submit(script, out, dry_run=dry_run)
    if dry_run:
        echo(f"{tag}: script {job} (not submitted)")
        return "planned"
    write_record(out, {**record, "slurm_job": job})
    echo(f"{tag}: job {job}, log {out}/slurm-{job}.out")
    return "submitted"


def agents_script(
    sweep: Sweep,
    agents: int,
    spec: JobSpec,
    storage: str,
    overrides: Sequence[str],
    count: int | None = None,
    launcher: Sequence[str] = (sys.executable, "-m", "lightning_hmd"),
) -> tuple[str, Path]:
    """The sbatch script of a job array of ``agents`` sweep agents (one process each, on one
    node, with the job's GPU if it has one) and the folder of their logs."""
    if agents < 1:
        raise SweepError(f"--agents must be >= 1, got {agents}")
    if spec.gpus_per_node > 1 or spec.nodes > 1:
        raise SweepError(
            "an agent trains one trial at a time in one process: one node, at most "
            "one GPU per agent; start more agents instead"
        )
    accelerator = "gpu" if spec.gpus_per_node else "cpu"
    topology = ["trainer.num_nodes=1", "trainer.devices=1", f"trainer.accelerator={accelerator}"]
    over = [*overrides, *topology]
    root = Path(load_config(preset_of(sweep), overrides=over).run.root)
    logs = (root / f"{sweep.name}.agents").resolve()
    cmd = [
        *launcher,
        "sweep",
        "agent",
        str(Path(sweep.path).resolve()),
        "--storage",
        storage,
        *(["--count", str(count)] if count else []),
        *over,
    ]
    lines = [
        "#!/bin/bash -l",
        f"#SBATCH --job-name={sweep.name}-agents",
        f"#SBATCH --array=0-{agents - 1}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --cpus-per-task={spec.cpus_per_task}",
        *([f"#SBATCH --gres=gpu:{spec.gpus_per_node}"] if spec.gpus_per_node else []),
        *([f"#SBATCH --mem={spec.mem}"] if spec.mem else []),
        f"#SBATCH --time={spec.time}",
        f"#SBATCH --signal={REQUEUE_SIGNAL}",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={logs / 'slurm-%A_%a.out'}",
        *([f"#SBATCH --partition={spec.partition}"] if spec.partition else []),
        *([f"#SBATCH --account={spec.account}"] if spec.account else []),
        "",
        "# every array task is one agent on the sweep's shared study: it trains trials until",
        "# none is left; a requeued task resumes the trial it held (under its array job id)",
        f"srun {SRUN_FLAGS} {shlex.join(cmd)}",
        "",
    ]
    return "\n".join(lines), logs


def submit_agents(
    sweep: Sweep,
    agents: int,
    spec: JobSpec,
    *,
    storage: str | None = None,
    overrides: Sequence[str] = (),
    count: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> str:
    """Submit :func:`agents_script`'s array (the study in ``storage``, by default the SQLite
    file beside the sweep's runs, on the shared filesystem); returns the array's job id (a
    dry run: the script's path)."""
    from lightning_hmd.experiments.sweep_study import default_storage

    root = Path(load_config(preset_of(sweep), overrides=overrides).run.root)
    storage = storage or default_storage(root, sweep)
    script, logs = agents_script(sweep, agents, spec, storage, overrides, count)
    job = submit(script, logs, dry_run=dry_run)
    echo(
        f"{agents} agents on {storage}: "
        + (
            f"script {job} (not submitted)"
            if dry_run
            else f"array job {job}, logs {logs}/slurm-{job}_<task>.out"
        )
    )
    return job
