"""One DDP job over two SLURM nodes with network stacks of their own.

The cluster (``fixtures.slurm.namespace_cluster``): a controller on a bridge and two nodes,
``lhmd-n1`` and ``lhmd-n2``, each a network namespace with its own address, hostname and
``slurmd``. A job's tasks on the two nodes meet over those addresses only, as ranks on two
hosts do. The jobs are what ``lightning-hmd slurm submit`` writes, submitted with ``sbatch``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import require
from fixtures.clips import write_clip_set, write_mocap_set, write_track_set
from fixtures.netns import netns_problem
from fixtures.slurm import cluster_problem, job_fields, namespace_cluster, wait_for_job

from lightning_hmd.commands import main
from lightning_hmd.config import load_config, to_container
from lightning_hmd.experiments.wandb_offline import offline_runs
from lightning_hmd.train.module import HMMRModule

MAX_BATCHES = 24
DATA_SCRIPT = Path(__file__).with_name("two_node_data.py")
HOSTS = {"lhmd-n1": "10.77.0.11", "lhmd-n2": "10.77.0.12"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    problem = cluster_problem() or netns_problem()
    require(problem is None, f"no namespace SLURM cluster: {problem}; see Makefile")
    with namespace_cluster(tmp_path_factory.mktemp("nodes")) as env:
        yield env


def job_state(job: str, env: dict) -> str:
    return job_fields(job, env)["JobState"]


def train_overrides(synth_dir: Path, root: Path, **extra: object) -> list[str]:
    values = {
        "body.model_dir": synth_dir / "body_model",
        "data.train_sets": f"[{synth_dir / 'train'}]",
        "data.mocap_sets": f"[{synth_dir / 'mocap'}]",
        "data.val_sets": "[]",
        "data.num_workers": 0,
        "run.root": root,
        "trainer.max_batches": MAX_BATCHES,
        "trainer.ckpt_every_batches": 4,
        "trainer.log_every_batches": 1,
        "trainer.image_every_batches": 0,
        "trainer.progress_bar": "false",
        "logger.kind": "wandb",
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]


def submit(env: dict, nodes: int, tasks: int, overrides: list[str]) -> tuple[str, Path]:
    """``lightning-hmd slurm submit`` of the tiny preset; returns (job id, run directory)."""
    cmd = [sys.executable, "-m", "lightning_hmd", "slurm", "submit", "--preset", "tiny",
           "--nodes", str(nodes), "--gpus-per-node", "0", "--tasks-per-node", str(tasks),
           "--cpus-per-task", "1", "--time", "30", *overrides]  # fmt: skip
    sub = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert sub.returncode == 0, sub.stderr
    job, script = re.search(r"submitted job (\d+): (\S+);", sub.stdout).groups()
    return job, Path(script).parent


def finish(job: str, env: dict, out: Path, timeout: float = 600) -> str:
    """Wait for the job's end; returns its log."""
    log = out / f"slurm-{job}.out"
    wait_for_job(f"job {job} to end", lambda: job_state(job, env) in ("COMPLETED", "FAILED"),
             timeout, log)  # fmt: skip
    text = log.read_text()
    assert job_state(job, env) == "COMPLETED", text[-4000:]
    return text


def topology(text: str) -> list[tuple[str, ...]]:
    """(rank, world, host, node, own address, rendezvous host, its address) per rank line."""
    pattern = (r"rank (\d+)/(\d+) on (\S+) \(node (\d+), local rank \d+, (\S+)\): "
               r"rendezvous (\S+):\d+ \((\S+)\), gloo")  # fmt: skip
    return re.findall(pattern, text)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if v.is_floating_point()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(largest absolute difference, largest magnitude) over every float tensor."""
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    return diff, max(v.abs().max().item() for v in a.values())


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_two_nodes_requeue_resume_and_equal_one_node(nodes, synth_dir, tmp_path):
    env = {**nodes, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    job, out = submit(env, 2, 1, train_overrides(synth_dir, tmp_path / "runs"))
    log, ckpts = out / f"slurm-{job}.out", out / "checkpoints"

    wait_for_job("the first checkpoint", (ckpts / "batch00000004.ckpt").exists, 400, log)
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    wait_for_job("the requeue", lambda: job_state(job, env) == "PENDING", 120, log)
    assert job_fields(job, env)["Restarts"] == "1"
    stopped = int(torch.load(ckpts / "last.ckpt", weights_only=True)["state_dict"]["batches_done"])
    assert 4 <= stopped < MAX_BATCHES
    # a requeued job waits two minutes (its begin time); a few seconds do here (not at once:
    # the node refuses a launch within the second its old credential was revoked)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+3"], env=env, check=True)
    text = finish(job, env, out)
    print(f"--- two-node job {job} (run directory {out.name}) ---\n{text}")

    # both starts of the job: rank 0 on lhmd-n1, rank 1 on lhmd-n2, meeting at lhmd-n1's address
    ranks = topology(text)
    expected = [
        ("0", "2", "lhmd-n1", "0", HOSTS["lhmd-n1"], "lhmd-n1", HOSTS["lhmd-n1"]),
        ("1", "2", "lhmd-n2", "1", HOSTS["lhmd-n2"], "lhmd-n1", HOSTS["lhmd-n1"]),
    ]
    assert sorted(ranks) == sorted(expected * 2), text[-4000:]
    assert text.count(f"rendezvous: lhmd-n1:{15000 + int(job[-4:])} (gloo; job {job} ") == 2
    # every rank stopped at the same batch, one checkpoint, the requeue resumed it
    assert f"stopped after batch {stopped} on SLURM's signal; requeued job {job}" in text
    assert text.count(f"run directory: {out}") == 2  # rank 0 only, once per start
    assert f"resuming from {ckpts / 'last.ckpt'}" in text
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert int(last["state_dict"]["batches_done"]) == MAX_BATCHES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["batches"] == MAX_BATCHES
    runs = offline_runs(out / "wandb")  # one W&B run over both starts, every batch once
    assert list(runs) == [out.name] and len(runs[out.name].paths) == 2
    batches = [int(h["train/batches"]) for h in runs[out.name].history if "train/batches" in h]
    assert batches == list(range(1, MAX_BATCHES + 1))
    # rank 0 alone writes: the job log, the script, one summary and HParams record, the
    # checkpoints, 2 W&B run files
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["checkpoints", "hparams", f"slurm-{job}.out", "submit.sbatch", "summary.json",
                     "wandb"]  # fmt: skip

    # the same job as 2 processes on one node, never interrupted: the same weights
    one_job, one_out = submit(env, 1, 2, train_overrides(synth_dir, tmp_path / "runs"))
    one_text = finish(one_job, env, one_out)
    one_ranks = {(r[2], r[4]) for r in topology(one_text)}
    assert len(one_ranks) == 1, one_text[-3000:]  # both ranks on one node
    diff, scale = max_difference(weights(out), weights(one_out))
    print(f"two nodes x 1 task (requeued at batch {stopped}) against one node x 2 tasks: "
          f"max |weight difference| {diff:.3g} (largest weight {scale:.3g})")  # fmt: skip
    assert diff <= 1e-5 * max(scale, 1.0)


def job_processes(job: str, command: str) -> dict[int, dict[str, str]]:
    """pid -> environment of this machine's processes of SLURM job ``job`` running
    ``command`` (the nodes share the machine's process table, not its network)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            pairs = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or a kernel thread
            continue
        environ = dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)
        if environ.get("SLURM_JOB_ID") == job and command in cmdline:
            found[int(proc.name)] = environ
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_lost_node_ends_the_job_and_a_resubmission_finishes(nodes, synth_dir, tmp_path):
    env = {**nodes, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    over = train_overrides(synth_dir, tmp_path / "runs", **{"run.collective_timeout_s": 60})
    job, out = submit(env, 2, 1, over)
    log, ckpts = out / f"slurm-{job}.out", out / "checkpoints"
    wait_for_job("the first checkpoint", (ckpts / "batch00000004.ckpt").exists, 400, log)

    # the rank on lhmd-n2 dies as with its node: SIGKILL, no chance to say goodbye
    tasks = job_processes(job, "lightning_hmd train")
    (victim,) = [pid for pid, e in tasks.items() if e.get("SLURMD_NODENAME") == "lhmd-n2"]
    os.kill(victim, signal.SIGKILL)
    killed = time.time()
    ended = lambda: job_state(job, env) in ("FAILED", "COMPLETED", "CANCELLED")  # noqa: E731
    wait_for_job("the job to end", ended, 180, log)
    took = time.time() - killed
    assert job_state(job, env) == "FAILED"
    assert not job_processes(job, "lightning_hmd train")  # no rank left hanging
    saved = int(torch.load(ckpts / "last.ckpt", weights_only=True)["state_dict"]["batches_done"])
    print(f"job {job}: rank 1 on lhmd-n2 killed; the job ended {took:.1f} s later (FAILED), "
          f"last checkpoint at batch {saved}")  # fmt: skip
    assert took < 60  # srun --kill-on-bad-exit, not the collective timeout

    # the same script again: a new job resumes the run from its last complete checkpoint
    sub = subprocess.run(["sbatch", "--parsable", str(out / "submit.sbatch")], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    again = sub.stdout.strip().split(";")[0]
    text = finish(again, env, out)
    assert f"resuming from {ckpts / 'last.ckpt'}" in text
    assert {r[2] for r in topology(text)} == {"lhmd-n1", "lhmd-n2"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["batches"] == MAX_BATCHES
    # one W&B run id over both jobs; the new job logs every batch after the checkpoint once.
    # The killed job's W&B writer (a process of its own) is terminated with the job's tasks, so
    # its file holds only what it had flushed: rows, if any, of batches up to the kill.
    runs = offline_runs(out / "wandb")
    assert list(runs) == [out.name] and len(runs[out.name].paths) == 2
    first, second = (offline_runs(p)[out.name].history for p in runs[out.name].paths)
    resumed = [int(h["train/batches"]) for h in second if "train/batches" in h]
    assert resumed == list(range(saved + 1, MAX_BATCHES + 1))
    before = [int(h["train/batches"]) for h in first if "train/batches" in h]
    assert before == list(range(1, len(before) + 1))
    print(f"job {again} resumed from batch {saved} and finished at {MAX_BATCHES}; the killed "
          f"job's W&B file kept {len(before)} rows")  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_nodes_of_two_tasks_equal_four_tasks_on_one_node(nodes, synth_dir, tmp_path):
    env = {**nodes, "PYTHONUNBUFFERED": "1"}
    over = train_overrides(synth_dir, tmp_path / "runs", **{"trainer.max_batches": 8,
                           "logger.kind": "csv"})  # fmt: skip
    jobs = [submit(env, 2, 2, over), submit(env, 1, 4, over)]
    (two_job, two), (one_job, one) = jobs
    texts = [finish(job, env, out, timeout=800) for job, out in jobs]
    two_ranks = sorted(topology(texts[0]))
    print(f"--- job {two_job}: 2 nodes x 2 tasks ---\n" + "\n".join(map(str, two_ranks)))
    assert [(r[0], r[1], r[2], r[3]) for r in two_ranks] == [
        ("0", "4", "lhmd-n1", "0"),
        ("1", "4", "lhmd-n1", "0"),
        ("2", "4", "lhmd-n2", "1"),
        ("3", "4", "lhmd-n2", "1"),
    ]
    assert {(r[5], r[6]) for r in two_ranks} == {("lhmd-n1", HOSTS["lhmd-n1"])}
    assert len({r[2] for r in topology(texts[1])}) == 1 and len(topology(texts[1])) == 4
    diff, scale = max_difference(weights(two), weights(one))
    print(f"2 nodes x 2 tasks against 1 node x 4 tasks after 8 batches: max |weight difference| "
          f"{diff:.3g} (largest weight {scale:.3g})")  # fmt: skip
    assert diff <= 1e-5 * max(scale, 1.0)
    for out in (two, one):
        assert json.loads((out / "summary.json").read_text())["batches"] == 8


def srun(env: dict, nodes: int, cmd: list[str], timeout: float = 600) -> str:
    """``srun`` of ``cmd`` on ``nodes`` nodes, one task each, from this process; its output."""
    run = subprocess.run(["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--cpus-per-task=1",
                          "--kill-on-bad-exit=1", *cmd], env=env, capture_output=True,
                         text=True, timeout=timeout)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_both_nodes_read_one_shard_set_in_disjoint_shares(nodes, tmp_path):
    # 4 training clips of 12 frames (2 windows of 6 each) in 2 shards; 5 evaluation tracks in
    # 9 chunks over 3 shards, the third track crossing a shard boundary
    write_clip_set(tmp_path / "train", [2, 2], [12], split="train")
    write_mocap_set(tmp_path / "mocap", 9, shard_size=4)
    val = write_track_set(tmp_path / "val", [[6, 13], [4], [20, 9, 7], [6], [13, 4]], [3, 4, 2])
    out = tmp_path / "shares.json"
    srun(nodes, 2, [sys.executable, str(DATA_SCRIPT), str(tmp_path), str(out)])
    ranks = json.loads(out.read_text())
    assert [(r["rank"], r["host"]) for r in ranks] == [(0, "lhmd-n1"), (1, "lhmd-n2")]

    # evaluation: every track once, whole, over the two nodes
    delivered = [key for r in ranks for key, _ in r["tracks"]]
    assert sorted(delivered) == sorted(val) and all(r["tracks"] for r in ranks)
    frames = {key: f for r in ranks for key, f in r["tracks"]}
    whole = {k: [i for c in chunks for i in c.frame_index.tolist()] for k, chunks in val.items()}
    assert frames == whole
    # training: each clip belongs to one rank's share, the shares cover the set, and every
    # rank draws the same number of windows per epoch (the windows of a share pass through
    # a shuffle buffer of clips, as HMMR's queue, so an epoch is one pass in size, not in
    # content: lightning_hmd/data/train_stream.py)
    clips = _clip_keys(tmp_path / "train")
    drawn = [{k for epoch in r["epochs"] for k, _ in epoch} for r in ranks]
    assert not drawn[0] & drawn[1] and drawn[0] | drawn[1] == set(clips)
    for epoch in range(2):
        assert [len(r["epochs"][epoch]) for r in ranks] == [4, 4]  # 2 batches of 2 per rank
        assert all(0 <= start <= 12 - 6 for r in ranks for _, start in r["epochs"][epoch])
    print("tracks per node:", {r["host"]: [k for k, _ in r["tracks"]] for r in ranks})
    print("epoch 0 windows per node:", {r["host"]: r["epochs"][0] for r in ranks})


def _clip_keys(set_dir: Path) -> list[str]:
    from lightning_hmd.data.manifest import read_manifest

    return [e.key for shard in read_manifest(set_dir).shards for e in shard.entries]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_evaluation_over_two_nodes_equals_one_process(nodes, synthetic_body_dir, tmp_path):
    write_clip_set(tmp_path / "val", [3, 2, 4], [6, 13, 20, 9])
    cfg = load_config("tiny", overrides=[
        f"body.model_dir={synthetic_body_dir}", "data.inputs=features", "model.feat_dim=8",
        "model.temporal.num_groups=8", "data.seq_len=8",
    ])  # fmt: skip
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(),
                "hyper_parameters": {"config": to_container(cfg)}}, ckpt)  # fmt: skip
    args = ["evaluate", "--ckpt", str(ckpt), "--set", str(tmp_path / "val"), "--protocol", "hmmr"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    said = srun(nodes, 2, [sys.executable, "-m", "lightning_hmd", *args, "--out",
                           str(tmp_path / "two")])  # fmt: skip
    assert said.count("protocol hmmr:") == 1  # rank 0 reports
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert two["metrics"] == one["metrics"] and one["num_tracks"] == 9
    assert (tmp_path / "two" / "per_sequence.csv").read_text() == (
        tmp_path / "one" / "per_sequence.csv"
    ).read_text()
