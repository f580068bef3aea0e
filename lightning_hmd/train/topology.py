"""Where each rank of a run is: one line per process at the start of training.

``rank 1/4 on node-b (node 1, local rank 0, 10.0.0.12): rendezvous node-a:15012
(10.0.0.11), gloo``: the global rank and world size, the host the process runs on with its
address, and the rendezvous every rank joined (``MASTER_ADDR``/``MASTER_PORT`` as Lightning's
cluster environment set them: under SLURM the first host of ``SLURM_NODELIST`` and 15000 plus
the last four digits of the job id). On a multi-node job these lines, in the job's log, show
which ranks ran where and over which addresses they met.
"""

from __future__ import annotations

import os
import socket

import lightning.pytorch as pl
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback


def resolve(host: str) -> str:
    """``host``'s IPv4 address, or ``?`` when it does not resolve."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "?"


def topology_line(
    global_rank: int,
    world_size: int,
    node_rank: int,
    local_rank: int,
    env: dict[str, str] | os._Environ,
) -> str:
    """The line of one rank (see the module docstring); pure but for name resolution."""
    host = socket.gethostname()
    where = f"rank {global_rank}/{world_size} on {host} (node {node_rank}, local rank {local_rank}"
    where += f", {resolve(host)})"
    if world_size == 1:
        return where
    addr, port = env.get("MASTER_ADDR", "?"), env.get("MASTER_PORT", "?")
    backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else "?"
    return f"{where}: rendezvous {addr}:{port} ({resolve(addr)}), {backend}"


class TopologyReport(Callback):
    """Prints :func:`topology_line` on every rank once the process group is up."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        line = topology_line(
            trainer.global_rank,
            trainer.world_size,
            trainer.node_rank,
            trainer.local_rank,
            os.environ,
        )
        print(line, flush=True)
