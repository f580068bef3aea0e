"""``lightning-hmd slurm submit``: an sbatch script for a training run, written and submitted.

The script follows Lightning's SLURM rules (``SLURMEnvironment``): ``--nodes`` equals the
Trainer's ``num_nodes`` and ``--ntasks-per-node`` its ``devices`` (one task per GPU, both set
from the same numbers on the command line), ``srun`` starts every rank, GPUs are requested
per node (``--gres``; per-task GPU binding breaks Lightning's device selection), and
``--signal=SIGUSR1@90`` without the ``B:`` prefix so the signal reaches the tasks, not only
the batch shell; the job may be requeued. The run name is fixed at submission (the config
hash unless ``run.name`` is given), so every rank and every requeue of the job writes to the
same run directory, where the script and the job's log are kept.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_hmd.config import load_config, to_container
from lightning_hmd.errors import RunError
from lightning_hmd.train.run_dir import config_hash

SCRIPT_NAME = "submit.sbatch"
REQUEUE_SIGNAL = "SIGUSR1@90"  # 90 s before the time limit; no "B:" (see module docstring)


class SlurmError(RunError):
    """sbatch is missing or refused the job (its message is included)."""


@dataclass(frozen=True)
class JobSpec:
    """What the job asks SLURM for."""

    nodes: int = 1
    gpus_per_node: int = 1  # 0: CPU tasks (``--tasks-per-node`` from ``cpu_tasks_per_node``)
    cpu_tasks_per_node: int = 1
    cpus_per_task: int = 8
    time: str = "1-00:00:00"
    partition: str = ""
    account: str = ""
    mem: str = "0"  # all of each node's memory

    @property
    def tasks_per_node(self) -> int:
        return self.gpus_per_node if self.gpus_per_node > 0 else self.cpu_tasks_per_node


def job_overrides(spec: JobSpec, overrides: Sequence[str]) -> list[str]:
    """The Trainer's topology from the same numbers as the job's, after the caller's."""
    accelerator = "gpu" if spec.gpus_per_node > 0 else "cpu"
    return [
        *overrides,
        f"trainer.num_nodes={spec.nodes}",
        f"trainer.devices={spec.tasks_per_node}",
        f"trainer.accelerator={accelerator}",
    ]


def sbatch_script(
    preset: str | None,
    overrides: Sequence[str],
    spec: JobSpec,
    launcher: Sequence[str] = (sys.executable, "-m", "lightning_hmd"),
) -> tuple[str, Path]:
    """The sbatch script of a run and the run directory it trains in.

    ``launcher`` starts the package on the nodes: by default this interpreter by its full
    path (the environment it lives in must be on a shared filesystem, as usual on clusters),
    so the job does not depend on the login shell's ``PATH``.

    Raises:
        ConfigError: an override that the schema rejects (before anything is written).
    """
    over = job_overrides(spec, overrides)
    cfg = load_config(preset, overrides=over)
    config = to_container(cfg)
    name = cfg.run.name or config_hash(config)
    if not cfg.run.name:
        # quoted: a hash such as 5e12345678 or 0012345678 would otherwise be read as a number
        over.append(f"run.name='{name}'")
    out = Path(cfg.run.root) / name
    cmd = [*launcher, "train", *(["--preset", preset] if preset else []), *over]
    lines = [
        "#!/bin/bash -l",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --nodes={spec.nodes}",
        f"#SBATCH --ntasks-per-node={spec.tasks_per_node}",
        f"#SBATCH --cpus-per-task={spec.cpus_per_task}",
    ]
    if spec.gpus_per_node > 0:
        lines.append(f"#SBATCH --gres=gpu:{spec.gpus_per_node}")
    if spec.mem:
        lines.append(f"#SBATCH --mem={spec.mem}")
    lines += [
        f"#SBATCH --time={spec.time}",
        f"#SBATCH --signal={REQUEUE_SIGNAL}",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={out.resolve() / 'slurm-%j.out'}",
    ]
    if spec.partition:
        lines.append(f"#SBATCH --partition={spec.partition}")
    if spec.account:
        lines.append(f"#SBATCH --account={spec.account}")
    lines += [
        "",
        *rendezvous_lines(spec),
        "",
        *SRUN_COMMENT,
        f"srun {SRUN_FLAGS} {shlex.join(cmd)}",
        "",
    ]
    return "\n".join(lines), out


# srun: a task that fails (a killed process, a lost node) ends every other task of the step
# at once, instead of leaving them waiting in a collective until its timeout
SRUN_FLAGS = "--kill-on-bad-exit=1"
SRUN_COMMENT = (
    "# one task per device; srun starts every rank (Lightning's SLURMEnvironment reads them);",
    "# --kill-on-bad-exit: one failed task (a killed process, a lost node) ends them all",
)


def rendezvous_lines(spec: JobSpec) -> list[str]:
    """The script's account of the rendezvous: comments on where it comes from and what a
    GPU cluster may need, and a line that prints the resolved address into the job's log.

    Lightning's ``SLURMEnvironment`` sets ``MASTER_ADDR`` to the first host of
    ``SLURM_NODELIST`` and ``MASTER_PORT`` to 15000 plus the last four digits of the job id,
    unless either is set already (exported before ``sbatch``, which passes the environment on).
    """
    backend = "nccl" if spec.gpus_per_node > 0 else "gloo"
    return [
        "# Rendezvous (Lightning's SLURMEnvironment): MASTER_ADDR = the first host of",
        "# SLURM_NODELIST, MASTER_PORT = 15000 + the last 4 digits of the job id; export either",
        f"# before sbatch to choose another. Backend: {backend}. NCCL and gloo pick a network",
        "# interface themselves; on nodes with several (Ethernet beside InfiniBand) set",
        "# NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME to the one the nodes share (and NCCL_IB_HCA",
        "# for InfiniBand): this script sets none of them. Ranks wait run.collective_timeout_s",
        "# in a collective before the job fails.",
        'rendezvous_host=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        'rendezvous_port=$((15000 + 10#$(printf %s "$SLURM_JOB_ID" | tail -c 4)))',
        'echo "rendezvous: ${MASTER_ADDR:-$rendezvous_host}:${MASTER_PORT:-$rendezvous_port}'
        f' ({backend}; job $SLURM_JOB_ID on $SLURM_JOB_NODELIST)"',
    ]


def submit(script: str, run_dir: Path, dry_run: bool = False) -> str:
    """Write the script into the run directory and submit it with ``sbatch``; returns the job
    id (``dry_run``: the script's path, nothing submitted)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / SCRIPT_NAME
    path.write_text(script)
    if dry_run:
        return str(path)
    try:
        proc = subprocess.run(
            ["sbatch", "--parsable", str(path)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise SlurmError("sbatch not found: submit from a SLURM login node") from None
    if proc.returncode != 0:
        raise SlurmError(f"sbatch refused {path}: {proc.stderr.strip()}")
    return proc.stdout.strip().split(";")[0]


def job_queued(job: str | None, env: Mapping[str, str] | None = None) -> bool:
    """Whether SLURM still has job ``job`` pending or running (False without ``squeue``)."""
    if not job or not job.replace("_", "").isdigit():
        return False
    try:
        proc = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    except FileNotFoundError:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())
