"""A real SLURM job (controller and node on localhost): ``lightning-hmd slurm submit`` of a
2-task CPU DDP training, SIGUSR1 mid-run, the job requeues itself, resumes from its
checkpoint and finishes, with every batch logged once under one W&B run id."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import require, tiny_sweep
from fixtures.slurm import cluster_problem, job_fields, local_cluster, wait_for_job

from lightning_hmd.commands import main
from lightning_hmd.experiments.wandb_offline import offline_runs

MAX_BATCHES = 120


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    problem = cluster_problem()
    require(problem is None, f"no local SLURM cluster: {problem}; see Makefile")
    with local_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_signal_requeue_resume_finish(cluster, synth_dir, tmp_path):
    env = {**cluster, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    overrides = [
        f"body.model_dir={synth_dir / 'body_model'}",
        f"data.train_sets=[{synth_dir / 'train'}]",
        f"data.mocap_sets=[{synth_dir / 'mocap'}]",
        "data.val_sets=[]",
        "data.num_workers=0",
        f"run.root={tmp_path / 'runs'}",
        f"trainer.max_batches={MAX_BATCHES}",
        "trainer.ckpt_every_batches=10",
        "trainer.log_every_batches=1",
        "trainer.image_every_batches=0",
        "trainer.progress_bar=false",
        "logger.kind=wandb",
    ]
    cmd = [sys.executable, "-m", "lightning_hmd", "slurm", "submit", "--preset", "tiny",
           "--nodes", "1", "--gpus-per-node", "0", "--tasks-per-node", "2",
           "--cpus-per-task", "1", "--time", "30", *overrides]  # fmt: skip
    sub = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert sub.returncode == 0, sub.stderr
    job, script = re.search(r"submitted job (\d+): (\S+);", sub.stdout).groups()
    out = Path(script).parent
    log = out / f"slurm-{job}.out"
    ckpts = out / "checkpoints"

    # signal the running tasks once training is under way
    wait_for_job("the first checkpoint", (ckpts / "batch00000010.ckpt").exists, 300, log)
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    requeued = lambda: job_fields(job, env)["JobState"] == "PENDING"  # noqa: E731
    wait_for_job("the requeue", requeued, 120, log)
    assert job_fields(job, env)["Restarts"] == "1"
    stopped = torch.load(ckpts / "last.ckpt", weights_only=True)["state_dict"]["batches_done"]
    stopped_at = int(stopped)
    assert 10 <= stopped_at < MAX_BATCHES
    # SLURM holds a requeued job for two minutes (its begin time); start it in 3 s instead: not
    # at once, since the node revokes the cancelled run's credential to the second, and a
    # launch within that second is refused ("Job credential revoked") and fails the job
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+3"], env=env, check=True)
    ended = lambda: job_fields(job, env)["JobState"] in ("COMPLETED", "FAILED")  # noqa: E731
    wait_for_job("the job to finish", ended, 400, log)
    state = job_fields(job, env)
    text = log.read_text()
    assert state["JobState"] == "COMPLETED", text[-3000:]
    print(f"--- job {job} log (run directory {out.name}) ---\n{text}")

    # the first run stopped on the signal and requeued; the second resumed from that checkpoint
    assert f"stopped after batch {stopped_at} on SLURM's signal; requeued job {job}" in text
    assert text.count(f"run directory: {out}") == 2
    assert f"resuming from {ckpts / 'last.ckpt'}" in text
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert int(last["state_dict"]["batches_done"]) == MAX_BATCHES
    assert last["global_step"] == 2 * MAX_BATCHES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["batches"] == MAX_BATCHES
    assert not list(out.glob("hpc_ckpt_*"))  # Lightning's own requeue handler stayed off

    # one W&B run over both jobs: every batch logged exactly once, counters continuous
    runs = offline_runs(out / "wandb")
    assert list(runs) == [out.name]
    run = runs[out.name]
    assert len(run.paths) == 2 and run.corrupt == 0
    batches = [int(h["train/batches"]) for h in run.history if "train/batches" in h]
    assert batches == list(range(1, MAX_BATCHES + 1))
    segments = []  # the batches each of the two jobs' processes logged
    for path in run.paths:
        part = offline_runs(path)[out.name]
        logged = [int(h["train/batches"]) for h in part.history if "train/batches" in h]
        segments.append((logged[0], logged[-1]))
        print(f"{path.name}: batches {logged[0]}..{logged[-1]} ({len(logged)} logged)")
    assert segments == [(1, stopped_at), (stopped_at + 1, MAX_BATCHES)]
    assert run.summary["finished"] is True and run.summary["batches"] == MAX_BATCHES
    assert run.config["trainer.devices"] == 2 and run.config["run.name"] == out.name


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sweep_trials_as_slurm_jobs(cluster, synth_dir, tmp_path):
    """``sweep run --slurm``: one job per trial, not resubmitted while queued or running,
    skipped once finished; the runs carry the sweep in their W&B config; compare reads them."""
    env = {**cluster, "WANDB_MODE": "offline"}
    (tmp_path / "sweep.yaml").write_text(tiny_sweep("slurm_depth"))
    cmd = [sys.executable, "-m", "lightning_hmd", "sweep", "run", "--slurm",
           "--gpus-per-node", "0", "--tasks-per-node", "1", "--cpus-per-task", "1",
           str(tmp_path / "sweep.yaml"),
           f"body.model_dir={synth_dir / 'body_model'}", f"data.train_sets=[{synth_dir / 'train'}]",
           f"data.val_sets=[{synth_dir / 'val'}]", f"data.mocap_sets=[{synth_dir / 'mocap'}]",
           "data.num_workers=0", f"run.root={tmp_path / 'runs'}", "trainer.max_batches=4",
           "trainer.val_every_batches=4", "trainer.progress_bar=false",
           "logger.kind=wandb"]  # fmt: skip
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    jobs = re.findall(r": job (\d+), log ", first.stdout)
    assert len(jobs) == 2 and "2 submitted" in first.stdout
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    finished_meanwhile = again.stdout.count("finished before, skipped")
    assert again.stdout.count("has not ended, skipped") + finished_meanwhile == 2, again.stdout
    runs = tmp_path / "runs"
    for job in jobs:
        ended = lambda j=job: job_fields(j, env)["JobState"] in ("COMPLETED", "FAILED")  # noqa: E731
        wait_for_job(f"job {job}", ended, 300, next(runs.glob(f"*/slurm-{job}.out"), Path("-")))
        assert job_fields(job, env)["JobState"] == "COMPLETED"
    third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert third.stdout.count("finished before, skipped") == 2, third.stdout
    for blocks in (0, 1):
        out = runs / f"slurm_depth-{blocks:03d}-seed1"
        config = offline_runs(out / "wandb")[out.name].config
        assert config["sweep.name"] == "slurm_depth" and config["sweep.trial"] == blocks
        assert config["model.temporal.num_blocks"] == blocks
        assert config["sweep.parameters"] == ["model.temporal.num_blocks"]
    assert main(["compare", str(runs), "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| model.temporal.num_blocks=0 | hmmr | 1 |" in table
    assert "| model.temporal.num_blocks=1 | hmmr | 1 |" in table
