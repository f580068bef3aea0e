"""W&B sweep files as Optuna studies: distributions, the grid handed out once, run_cap,
Hyperband pruning through the agent's reporter, on real SQLite storage."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from lightning_hmd.experiments.sweep_agent import TrialReporter, _claim_path, _claimed, _next_trial
from lightning_hmd.experiments.sweep_study import (
    distribution,
    grid_points,
    open_study,
    study_done,
    trial_values,
)
from lightning_hmd.experiments.sweeps import Parameter, SweepError, load_sweep

SWEEP = """\
name: {name}
method: {method}
metric: {{name: val/pa_mpjpe, goal: minimize}}
{extra}
parameters:
{parameters}
command: ["${{env}}", "lightning-hmd", "train", "--preset", "tiny", "${{args_no_hyphens}}"]
"""


def sweep_file(tmp_path: Path, method: str, parameters: str, extra: str = "", name: str = "s"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name, method=method, parameters=parameters, extra=extra))
    return load_sweep(path)


def test_wandb_distributions_map_to_optunas():
    assert distribution(Parameter("a", values=(1, 2))) == CategoricalDistribution([1, 2])
    lists = distribution(Parameter("d", values=((), (-5, 5))))
    assert lists == CategoricalDistribution(["()", "(-5, 5)"])  # as W&B passes them: str
    u = distribution(Parameter("u", distribution="uniform", bounds=(0.0, 2.0)))
    assert u == FloatDistribution(0.0, 2.0)
    i = distribution(Parameter("i", distribution="int_uniform", bounds=(1, 5)))
    assert i == IntDistribution(1, 5)
    lv = distribution(Parameter("l", distribution="log_uniform_values", bounds=(1e-4, 1e-2)))
    assert lv == FloatDistribution(1e-4, 1e-2, log=True)
    le = distribution(Parameter("e", distribution="log_uniform", bounds=(0.0, 1.0)))
    assert le.low == 1.0 and math.isclose(le.high, math.e) and le.log
    q = distribution(Parameter("q", distribution="q_uniform", bounds=(0.0, 1.0), q=0.25))
    assert q == FloatDistribution(0.0, 1.0, step=0.25)
    with pytest.raises(SweepError, match="normal"):
        distribution(Parameter("n", distribution="normal", bounds=(0.0, 1.0)))


def test_the_grid_is_handed_out_once_to_agents_sharing_a_study(tmp_path):
    sweep = sweep_file(tmp_path, "grid", "  model.delta_t: {values: [[], [-5, 5]]}\n"
                       "  model.temporal.num_blocks: {values: [0, 1, 3]}")  # fmt: skip
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first, second = open_study(sweep, storage), open_study(sweep, storage)  # two agents
    handed = []
    for study in [first, second, second, first, second, first]:
        trial = _next_trial(study, sweep)
        handed.append(trial_values(sweep, trial))
        study.tell(trial, 1.0)
    assert _next_trial(first, sweep) is None and _next_trial(second, sweep) is None
    assert study_done(first, sweep)
    assert sorted(map(str, handed)) == sorted(map(str, grid_points(sweep)))  # each once
    assert handed[1] == {"model.delta_t": [], "model.temporal.num_blocks": 1}  # real values


def test_a_random_sweep_stops_at_run_cap_and_rounds_q_log_values(tmp_path):
    sweep = sweep_file(tmp_path, "random", "  optim.gen_lr: {distribution: q_log_uniform_values,"
                       " min: 0.001, max: 1.0, q: 0.001}", extra="run_cap: 3")  # fmt: skip
    study = open_study(sweep, f"sqlite:///{tmp_path / 'study.db'}")
    values = []
    while (trial := _next_trial(study, sweep)) is not None:
        values.append(trial_values(sweep, trial)["optim.gen_lr"])
        study.tell(trial, 0.5)
    assert len(values) == 3 and len(set(values)) == 3
    assert all(abs(v / 0.001 - round(v / 0.001)) < 1e-9 and 0.001 <= v <= 1.0 for v in values)


def _trainer(metric: float) -> SimpleNamespace:
    return SimpleNamespace(callback_metrics={"val/pa_mpjpe": torch.tensor(metric)},
                           sanity_checking=False, should_stop=False, logger=None)  # fmt: skip


def test_hyperband_prunes_a_trial_worse_than_its_bracket_through_the_reporter(tmp_path):
    # one bracket (min_iter = max_iter = 1, eta 2: a rung after 1 validation): of two trials
    # that reach a rung, the worse is stopped there
    sweep = sweep_file(
        tmp_path,
        "bayes",
        "  optim.gen_lr: {distribution: log_uniform_values," " min: 0.0001, max: 0.01}",
        extra="early_terminate: {type: hyperband, min_iter: 1, eta: 2, max_iter: 1}",
    )
    study = open_study(sweep, f"sqlite:///{tmp_path / 'study.db'}")
    assert isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    outcomes = []
    for curve in ([10.0, 9.0], [50.0, 40.0]):
        trial = _next_trial(study, sweep)
        trial_values(sweep, trial)
        reporter = TrialReporter(trial, "val/pa_mpjpe")
        for value in curve:
            trainer = _trainer(value)
            reporter.on_validation_end(trainer, None)
            if trainer.should_stop:
                break
        state = TrialState.PRUNED if reporter.pruned else TrialState.COMPLETE
        study.tell(trial, None if reporter.pruned else curve[-1], state=state)
        outcomes.append((reporter.pruned, reporter.reports))
    assert outcomes == [(False, 2), (True, 1)]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]


def test_a_requeued_agent_takes_back_the_trial_it_held(tmp_path):
    sweep = sweep_file(tmp_path, "grid", "  model.temporal.num_blocks: {values: [0, 1]}")
    study = open_study(sweep, f"sqlite:///{tmp_path / 'study.db'}")
    env = {"SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "1", "SLURM_JOB_ID": "43"}
    claim = _claim_path(tmp_path, sweep, env)
    assert claim == tmp_path / "s.agents" / "41_1.json"
    assert _claim_path(tmp_path, sweep, {}) is None  # outside SLURM nothing is noted
    held = _next_trial(study, sweep)
    values = trial_values(sweep, held)
    claim.parent.mkdir()
    claim.write_text(json.dumps({"trial": held.number}))
    # the job comes back: the same trial, with its values, not the next grid point
    again = _claimed(open_study(sweep, f"sqlite:///{tmp_path / 'study.db'}"), claim)
    assert again.number == held.number and trial_values(sweep, again) == values
    study.tell(held, 1.0)
    assert _claimed(study, claim) is None  # a finished trial is not taken back


def test_a_runs_hparams_row_holds_its_swept_values_seed_and_protocol():
    from lightning_hmd.train.hparams_record import hparams_of

    record = {
        "params": {"model.delta_t": [-5, 5], "model.hallucinator": True, "optim.gen_lr": 1e-4}
    }
    assert hparams_of(record, 3, "vibe") == {
        "model.delta_t": "[-5, 5]",  # lists as W&B passes them
        "model.hallucinator": True,
        "optim.gen_lr": 1e-4,
        "seed": 3,
        "protocol": "vibe",
    }
    assert hparams_of({}, 1, "hmmr") == {"seed": 1, "protocol": "hmmr"}  # not in a sweep
