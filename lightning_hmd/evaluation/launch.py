"""``lightning-hmd evaluate`` on several processes: the process group its launcher implies.

Started by ``srun`` with several tasks (``srun -N 2 --ntasks-per-node 1 lightning-hmd
evaluate ...``) or by ``torchrun``, every process joins one gloo group, scores its share of
the tracks and the scores are gathered (:func:`lightning_hmd.evaluation.run.gather_scores`),
so the numbers equal one process's; rank 0 writes them. The rendezvous follows Lightning's
SLURM rules, as training does: the first host of the step's node list, port 15000 plus the
last four digits of the job id (``MASTER_ADDR``/``MASTER_PORT`` when set). Training does not
come through here: Lightning's strategy makes its process group.

Lightning's environments are not used for detection, because ``SLURMEnvironment.detect()``
holds in any process inside an allocation (the batch script's own shell included) where a
group would wait for tasks that were never started: a group is made only for a job step of
several tasks (``SLURM_STEP_NUM_TASKS``, set by ``srun``) or a ``torchrun`` world.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch.distributed as dist
from lightning.fabric.plugins.environments import SLURMEnvironment


@dataclass(frozen=True)
class Ranks:
    """This process's place in a launched world and where the world meets."""

    rank: int
    world_size: int
    address: str
    port: int


def slurm_port(job_id: str) -> int:
    """Lightning's ``SLURMEnvironment.main_port`` rule: 15000 + the job id's last 4 digits."""
    return 15000 + int(job_id[-4:])


def launcher_ranks(env: Mapping[str, str]) -> Ranks | None:
    """The world ``env`` describes (torchrun's variables, else an srun step of several tasks),
    or None for a single process."""
    if "WORLD_SIZE" in env and "RANK" in env and "MASTER_ADDR" in env:  # torchrun
        world = int(env["WORLD_SIZE"])
        port = int(env.get("MASTER_PORT", "29500"))
        return Ranks(int(env["RANK"]), world, env["MASTER_ADDR"], port) if world > 1 else None
    tasks = int(env.get("SLURM_STEP_NUM_TASKS", "1"))
    if tasks <= 1 or "SLURM_PROCID" not in env:
        return None
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_NODELIST", "127.0.0.1")
    address = env.get("MASTER_ADDR") or SLURMEnvironment.resolve_root_node_address(nodes)
    port = int(env["MASTER_PORT"]) if "MASTER_PORT" in env else slurm_port(env["SLURM_JOB_ID"])
    return Ranks(int(env["SLURM_PROCID"]), tasks, address, port)


@contextmanager
def launcher_process_group(env: Mapping[str, str], timeout_s: int) -> Iterator[Ranks | None]:
    """A gloo process group for the world of :func:`launcher_ranks` (none for a single
    process, or when a group exists already), destroyed on exit; yields the ranks."""
    ranks = launcher_ranks(env)
    if ranks is None or dist.is_initialized():
        yield ranks
        return
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{ranks.address}:{ranks.port}",
        rank=ranks.rank,
        world_size=ranks.world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    try:
        yield ranks
    finally:
        dist.destroy_process_group()
