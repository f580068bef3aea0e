"""``lightning-hmd sweep agent``: ``wandb agent`` without a W&B server, on a shared study.

Each agent asks the sweep's study (:mod:`.sweep_study`) for its next trial, trains it in this
process with exactly the ``key=value`` arguments ``wandb agent`` would pass (run name
``<sweep>-t<trial number>``, the sweep as W&B group, a ``sweep.json`` in the run directory),
reports the sweep metric to the study at every validation (Hyperband may stop the trial
early: it is then marked pruned in the study, in ``summary.json`` and in the W&B summary) and
tells the study the final value; then it asks again, until the study has nothing left or
``--count`` trials ran. Many agents on many machines or SLURM jobs share one study; no trial
runs twice. Under SLURM an agent notes the trial it holds under its job id, so a requeued job
resumes that trial, in its own run directory, instead of asking for a new one.

An agent trains each trial in its own process (``trainer.devices * trainer.num_nodes`` = 1):
start more agents to use more devices.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from optuna.trial import TrialState

from lightning_hmd.config import load_config, to_container
from lightning_hmd.experiments.sweep_run import write_record
from lightning_hmd.experiments.sweep_study import (
    default_storage,
    open_study,
    study_done,
    trial_values,
)
from lightning_hmd.experiments.sweeps import (
    Sweep,
    SweepError,
    check_encoder_keys,
    override,
    preset_of,
)
from lightning_hmd.train.fit import train
from lightning_hmd.train.requeue import slurm_job_id
from lightning_hmd.train.run_dir import SUMMARY, read_summary, run_dir

TRIAL_ATTR = "lightning_hmd.run_dir"  # trial attribute: where the trial trains


class TrialReporter(Callback):
    """Reports ``metric`` to the trial after every validation (step = validations so far) and
    stops training when the study's pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.reports = 0
        self.pruned = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        self.reports += 1
        self.trial.report(float(value), step=self.reports)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True
            if isinstance(trainer.logger, WandbLogger):
                trainer.logger.experiment.summary["pruned"] = True


@dataclass(frozen=True)
class AgentTrial:
    """One trial this agent ran: its number, run directory and final state."""

    number: int
    run_dir: Path
    state: str  # complete | pruned | stopped (the job was requeued mid-trial)
    value: float | None


def _claim_path(storage_root: Path, sweep: Sweep, env: Mapping[str, str]) -> Path | None:
    job = slurm_job_id(env)
    return None if job is None else storage_root / f"{sweep.name}.agents" / f"{job}.json"


def _claimed(study: optuna.Study, claim: Path | None) -> optuna.Trial | None:
    """The running trial a requeued job of this agent held, to resume it."""
    if claim is None or not claim.is_file():
        return None
    number = json.loads(claim.read_text())["trial"]
    frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if frozen is None or frozen.state != TrialState.RUNNING:
        return None
    # the storage's id of the trial: Optuna exposes it on FrozenTrial only as _trial_id
    return optuna.Trial(study, frozen._trial_id)


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _next_trial(study: optuna.Study, sweep: Sweep) -> optuna.Trial | None:
    """The study's next trial for this agent, or None when none is left. Another agent may
    take the last one between the check and the ask: the trial asked for then is closed as
    failed, marked why, and never trained."""
    if study_done(study, sweep):
        return None
    trial = study.ask()
    if sweep.method == "grid" and "fixed_params" not in _frozen(study, trial.number).system_attrs:
        trial.set_user_attr("lightning_hmd.grid_exhausted", True)  # not a grid point
    elif sweep.run_cap is not None and sweep.method != "grid" and trial.number >= sweep.run_cap:
        trial.set_user_attr("lightning_hmd.over_run_cap", True)
    else:
        return trial
    study.tell(trial, state=TrialState.FAIL)
    return None


def run_trial(
    study: optuna.Study,
    sweep: Sweep,
    trial: optuna.Trial,
    overrides: Sequence[str],
    env: Mapping[str, str],
    echo: Callable[[str], None],
) -> AgentTrial:
    """Train one trial and tell the study how it ended."""
    values = trial_values(sweep, trial)
    name = f"{sweep.name}-t{trial.number:03d}"
    args = [override(k, v) for k, v in values.items()]
    over = [*overrides, *args, f"run.name={name}", f"logger.group={sweep.name}"]
    cfg = load_config(preset_of(sweep), overrides=over)
    check_encoder_keys(sweep, str(cfg.model.temporal.kind))
    if cfg.trainer.devices * cfg.trainer.num_nodes != 1:
        raise SweepError("sweep agent trains each trial in one process: start more agents")
    out = run_dir(to_container(cfg), env)
    trial.set_user_attr(TRIAL_ATTR, str(out))
    record = {
        "sweep": sweep.name,
        "sweep_file": str(sweep.path),
        "trial": trial.number,
        "params": values,
        "metric": sweep.metric,
        "goal": sweep.goal,
        "command": " ".join(["lightning-hmd", "train", *over]),
    }
    write_record(out, record)
    echo(f"trial {trial.number}: {' '.join(args)} ({out})")
    reporter = TrialReporter(trial, sweep.metric)
    try:
        train(cfg, env, callbacks=[reporter])
    except Exception:
        study.tell(trial, state=TrialState.FAIL)  # not left running for ever
        raise
    summary = read_summary(out) or {}
    if reporter.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        (out / SUMMARY).write_text(json.dumps({**summary, "pruned": True}, indent=2) + "\n")
        echo(f"trial {trial.number}: pruned after {reporter.reports} validations")
        return AgentTrial(trial.number, out, "pruned", None)
    if not summary.get("finished"):  # stopped for a requeue: the next job resumes it
        return AgentTrial(trial.number, out, "stopped", None)
    value = summary.get("metrics", {}).get(sweep.metric)
    if value is None:
        study.tell(trial, state=TrialState.FAIL)
        raise SweepError(f"{out}: the run finished without {sweep.metric} (no validation?)")
    study.tell(trial, float(value))
    echo(f"trial {trial.number}: {sweep.metric} = {value}")
    return AgentTrial(trial.number, out, "complete", float(value))


def run_agent(
    sweep: Sweep,
    *,
    storage: str | None = None,
    count: int | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    seed: int | None = None,
) -> list[AgentTrial]:
    """Run trials of ``sweep`` from its study until none is left or ``count`` ran; returns
    them (a trial stopped for a SLURM requeue ends the call, to be resumed by the next job).
    ``seed`` makes this agent's draws reproducible (by default each agent draws its own)."""
    env = os.environ if env is None else env
    root = Path(load_config(preset_of(sweep), overrides=overrides).run.root)
    study = open_study(sweep, storage or default_storage(root, sweep), seed=seed)
    claim = _claim_path(root, sweep, env)
    ran: list[AgentTrial] = []
    while count is None or len(ran) < count:
        trial = _claimed(study, claim) or _next_trial(study, sweep)
        if trial is None:
            break
        if claim is not None:
            claim.parent.mkdir(parents=True, exist_ok=True)
            claim.write_text(json.dumps({"trial": trial.number}) + "\n")
        result = run_trial(study, sweep, trial, overrides, env, echo)
        ran.append(result)
        if result.state == "stopped":
            break
        if claim is not None:
            claim.unlink(missing_ok=True)
    return ran
