"""Sweep agents without a W&B server: two agents in parallel on one PostgreSQL study cover a
grid once; a Bayesian sweep on the default SQLite study prunes a trial by Hyperband."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import require
from fixtures.postgres import postgres_problem, postgres_server
from optuna.trial import TrialState

from lightning_hmd.experiments.compare import compare
from lightning_hmd.experiments.sweep_study import default_storage, grid_points
from lightning_hmd.experiments.sweeps import load_sweep
from lightning_hmd.experiments.wandb_offline import offline_runs
from lightning_hmd.train.run_dir import read_summary

GRID = """\
name: agents_grid
method: grid
metric: {name: val/pa_mpjpe, goal: minimize}
parameters:
  model.temporal.num_blocks: {values: [0, 1]}
  model.delta_t: {values: [[], [-1, 1]]}
command: ["${env}", "lightning-hmd", "train", "--preset", "tiny", "${args_no_hyphens}"]
"""
TPE = """\
name: agents_tpe
method: bayes
metric: {name: val/pa_mpjpe, goal: minimize}
run_cap: 4
parameters:
  model.ief_iters: {distribution: int_uniform, min: 1, max: 4}
  optim.gen_lr: {distribution: log_uniform_values, min: 0.00001, max: 0.001}
command: ["${env}", "lightning-hmd", "train", "--preset", "tiny", "${args_no_hyphens}"]
"""
BAYES = """\
name: agents_bayes
method: bayes
metric: {name: val/pa_mpjpe, goal: minimize}
run_cap: 4
early_terminate: {type: hyperband, min_iter: 1, eta: 2, max_iter: 1}
parameters:
  model.ief_iters: {distribution: int_uniform, min: 1, max: 4}
  model.temporal.num_blocks: {values: [0, 1, 2]}
command: ["${env}", "lightning-hmd", "train", "--preset", "tiny", "${args_no_hyphens}"]
"""


def overrides(synth_dir: Path, root: Path, **extra: object) -> list[str]:
    values = {
        "body.model_dir": synth_dir / "body_model",
        "data.train_sets": f"[{synth_dir / 'train'}]",
        "data.val_sets": f"[{synth_dir / 'val'}]",
        "data.mocap_sets": f"[{synth_dir / 'mocap'}]",
        "data.num_workers": 0,
        "run.root": root,
        "trainer.max_batches": 2,
        "trainer.val_every_batches": 2,
        "trainer.ckpt_every_batches": 2,
        "trainer.image_every_batches": 0,
        "trainer.progress_bar": "false",
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]


def agent(sweep: Path, storage: str | None, over: list[str], seed: int | None = None):
    cmd = [sys.executable, "-m", "lightning_hmd", "sweep", "agent", str(sweep),
           *(["--storage", storage] if storage else []),
           *(["--seed", str(seed)] if seed is not None else []), *over]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip


def trials_said(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^trial (\d+): \S+=", text, flags=re.M)]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_agents_share_a_postgresql_study_and_run_the_grid_once(synth_dir, tmp_path):
    problem = postgres_problem()
    require(problem is None, f"no PostgreSQL server: {problem}; see Makefile")
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    sweep = load_sweep(path)
    with postgres_server() as url:
        over = overrides(synth_dir, tmp_path / "runs")
        agents = [agent(path, url, over) for _ in range(2)]
        said = [a.communicate(timeout=800)[0] for a in agents]
        assert [a.returncode for a in agents] == [0, 0], said[0][-3000:] + said[1][-3000:]
        study = optuna.load_study(study_name=sweep.name, storage=url)
        trials = study.get_trials()
        # compare reads the study, and the runs of its trials, from the database URL alone
        result = compare([url], tmp_path / "cmp")
        table = (tmp_path / "cmp" / "compare.md").read_text()
        # a Bayesian sweep on the same server: the two agents' trials are distinct
        tpe = tmp_path / "tpe.yaml"
        tpe.write_text(TPE)
        agents = [agent(tpe, url, over) for _ in range(2)]
        tpe_said = [a.communicate(timeout=800)[0] for a in agents]
        assert [a.returncode for a in agents] == [0, 0], tpe_said[0][-3000:] + tpe_said[1][-3000:]
        tpe_trials = optuna.load_study(study_name="agents_tpe", storage=url).get_trials()
    tpe_mine = [trials_said(s) for s in tpe_said]
    print(f"TPE: agent 1 ran trials {tpe_mine[0]}, agent 2 ran trials {tpe_mine[1]}")
    complete = [t for t in tpe_trials if t.state == TrialState.COMPLETE]
    assert sorted(tpe_mine[0] + tpe_mine[1]) == sorted(t.number for t in complete)
    assert len(complete) == 4 and not set(tpe_mine[0]) & set(tpe_mine[1])
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 4  # distinct points
    # a trial asked beyond run_cap by the agent that lost the race is failed, never trained
    assert all(t.user_attrs.get("lightning_hmd.over_run_cap") for t in tpe_trials
               if t.state != TrialState.COMPLETE)  # fmt: skip
    assert result["runs"] == 4 and result["configurations"] == 4
    best = min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    (summary,) = result["studies"]
    assert summary["name"] == "agents_grid" and summary["states"]["complete"] == 4
    assert summary["best"] == best.number
    assert "## Study agents_grid" in table and f"best: trial {best.number}, value" in table
    mine = [trials_said(s) for s in said]
    print(f"agent 1 ran trials {mine[0]}, agent 2 ran trials {mine[1]}")
    assert not set(mine[0]) & set(mine[1]) and all(mine)  # both worked, no trial twice
    late = [t for t in trials if t.state != TrialState.COMPLETE]  # asked after the last point
    assert all(t.user_attrs.get("lightning_hmd.grid_exhausted") for t in late)
    trials = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(mine[0] + mine[1]) == [t.number for t in trials] and len(trials) == 4
    done = sorted(str(sorted(t.params.items())) for t in trials)
    grid = sorted(str(sorted({k: str(v) if isinstance(v, list) else v for k, v in p.items()}
                             .items())) for p in grid_points(sweep))  # fmt: skip
    assert done == grid  # every combination once
    for t in trials:
        out = Path(t.user_attrs["lightning_hmd.run_dir"])
        assert out.name == f"agents_grid-t{t.number:03d}"
        summary = read_summary(out)
        assert summary["finished"] and summary["metrics"]["val/pa_mpjpe"] == t.value
        record = json.loads((out / "sweep.json").read_text())
        assert record["trial"] == t.number and record["sweep"] == "agents_grid"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_bayesian_sweep_prunes_by_hyperband_on_the_default_study(synth_dir, tmp_path):
    path = tmp_path / "bayes.yaml"
    path.write_text(BAYES)
    sweep = load_sweep(path)
    # the first validation after one batch is each trial's rung: one bracket, eta 2
    over = overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 3,
                     "trainer.val_every_batches": 1, "logger.kind": "wandb"})  # fmt: skip
    proc = agent(path, None, over, seed=1269)  # reproducible draws: trial 2 is pruned
    text = proc.communicate(timeout=800)[0]
    assert proc.returncode == 0, text[-4000:]
    storage = default_storage(tmp_path / "runs", sweep)
    assert Path(storage.removeprefix("sqlite:///")).is_file()
    trials = optuna.load_study(study_name=sweep.name, storage=storage).get_trials()
    states = [t.state for t in trials]
    print("trials:", [(t.number, t.params, t.state.name, t.value) for t in trials])
    assert len(trials) == 4 and TrialState.PRUNED in states and states[0] == TrialState.COMPLETE
    for t in trials:
        out = Path(t.user_attrs["lightning_hmd.run_dir"])
        summary = read_summary(out)
        wandb_summary = offline_runs(out / "wandb")[out.name].summary
        if t.state == TrialState.PRUNED:
            assert summary["pruned"] and not summary["finished"] and summary["batches"] == 1
            assert wandb_summary.get("pruned") is True
            assert f"trial {t.number}: pruned after 1 validations" in text
        else:
            assert summary["finished"] and "pruned" not in summary
            assert summary["metrics"]["val/pa_mpjpe"] == t.value
    # compare on the sweep's folder finds the study beside the runs: states and the best trial
    result = compare([tmp_path / "runs"], tmp_path / "cmp")
    pruned = sum(s == TrialState.PRUNED for s in states)
    (study,) = result["studies"]
    assert study["states"] == {"complete": 4 - pruned, "pruned": pruned}
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert table.count(" | pruned | ") == pruned and result["runs"] == 4


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    from fixtures.slurm import cluster_problem, local_cluster

    problem = cluster_problem()
    require(problem is None, f"no local SLURM cluster: {problem}; see Makefile")
    with local_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield {**env, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def submit_agents(env: dict, path: Path, agents: int, over: list[str]) -> str:
    cmd = [sys.executable, "-m", "lightning_hmd", "sweep", "run", "--slurm", "--agents",
           str(agents), "--gpus-per-node", "0", "--cpus-per-task", "1", "--time", "30",
           str(path), *over]  # fmt: skip
    sub = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert sub.returncode == 0, sub.stderr
    return re.search(r"array job (\d+)", sub.stdout).group(1)


def wait_until(what: str, ready, timeout: float) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def queued(job: str, env: dict) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], env=env,
                         capture_output=True, text=True).stdout  # fmt: skip
    return bool(out.strip())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_slurm_array_of_agents_shares_the_study(slurm_cluster, synth_dir, tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.replace("agents_grid", "array_grid"))
    sweep = load_sweep(path)
    job = submit_agents(slurm_cluster, path, 2, overrides(synth_dir, tmp_path / "runs"))
    wait_until("the agents to finish", lambda: not queued(job, slurm_cluster), 700)
    logs = tmp_path / "runs" / "array_grid.agents"
    texts = [(logs / f"slurm-{job}_{task}.out").read_text() for task in (0, 1)]
    mine = [trials_said(t) for t in texts]
    print(f"array job {job}: task 0 ran trials {mine[0]}, task 1 ran trials {mine[1]}")
    assert not set(mine[0]) & set(mine[1]) and sorted(mine[0] + mine[1]) == [0, 1, 2, 3]
    trials = optuna.load_study(
        study_name=sweep.name, storage=default_storage(tmp_path / "runs", sweep)
    ).get_trials()
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    assert complete == [0, 1, 2, 3]  # any other trial was asked after the last grid point
    assert all(t.user_attrs.get("lightning_hmd.grid_exhausted") for t in trials[4:])
    assert not list(logs.glob("*.json"))  # no agent holds a trial any more


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_requeued_agent_resumes_its_own_trial(slurm_cluster, synth_dir, tmp_path):
    env = slurm_cluster
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.replace("agents_grid", "requeue_grid").replace(", [-1, 1]]", "]"))
    sweep = load_sweep(path)  # 2 trials: num_blocks 0 and 1
    over = overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 12,
                     "trainer.val_every_batches": 6, "trainer.log_every_batches": 1})  # fmt: skip
    job = submit_agents(env, path, 1, over)
    task = f"{job}_0"
    first = tmp_path / "runs" / "requeue_grid-t000"
    wait_until("trial 0's first checkpoint", (first / "checkpoints" / "batch00000002.ckpt").exists,
               400)  # fmt: skip
    subprocess.run(["scancel", "--signal=USR1", task], env=env, check=True)
    state = lambda: subprocess.run(["squeue", "-h", "-j", task, "-o", "%T"], env=env,  # noqa: E731
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
    wait_until("the requeue", lambda: state() == "PENDING", 180)
    claim = tmp_path / "runs" / "requeue_grid.agents" / f"{task}.json"
    assert json.loads(claim.read_text()) == {"trial": 0}  # held across the requeue
    subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now+3"], env=env, check=True)
    wait_until("the agent to finish", lambda: not queued(job, env), 600)
    text = (tmp_path / "runs" / "requeue_grid.agents" / f"slurm-{task}.out").read_text()
    print(
        f"--- agent {task} ---\n"
        + "\n".join(
            ln for ln in text.splitlines() if ln.startswith(("trial ", "stopped", "run directory"))
        )
    )
    assert trials_said(text) == [0, 0, 1]  # trial 0 started, resumed after the requeue; then 1
    assert f"resuming from {first / 'checkpoints' / 'last.ckpt'}" in text
    assert "stopped after batch" in text and f"requeued job {task}" in text
    trials = optuna.load_study(
        study_name=sweep.name, storage=default_storage(tmp_path / "runs", sweep)
    ).get_trials()
    assert [(t.number, t.state) for t in trials[:2]] == [(0, TrialState.COMPLETE),
                                                         (1, TrialState.COMPLETE)]  # fmt: skip
    assert len(trials) == 2  # one agent: nothing asked after the last grid point
    assert read_summary(first)["batches"] == 12 and not claim.exists()
