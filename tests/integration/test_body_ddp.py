"""Two gloo processes: DDP broadcasts ordinary buffers but not BodyModel buffers."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lightning_hmd.body.smpl import BodyModel, exclude_from_ddp


class _Parent(nn.Module):
    def __init__(self, body: BodyModel) -> None:
        super().__init__()
        self.head = nn.Linear(3, 1)
        self.body = body
        self.register_buffer("counter", torch.zeros(()))

    def forward(self, pose_rotmat: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        joints = self.body(pose_rotmat, betas, joints_only=True).joints
        return self.head(joints).sum() + self.counter


def _worker(rank: int, world_size: int, port: int, model_dir: str, out_dir: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(rank)
        parent = _Parent(BodyModel.from_dir(model_dir))
        parent.counter.fill_(float(rank + 1))
        with torch.no_grad():
            parent.body.joint_template.add_(float(rank))
            parent.body.smpl.v_template.add_(float(rank))
        exclude_from_ddp(parent)
        model = DistributedDataParallel(parent)
        model(torch.eye(3).expand(2, 24, 3, 3), torch.zeros(2, 10)).backward()
        reference = BodyModel.from_dir(model_dir)
        result = {
            "counter": parent.counter.item(),
            "joint_template_offset": (parent.body.joint_template - reference.joint_template)
            .mean()
            .item(),
            "v_template_offset": (parent.body.smpl.v_template - reference.smpl.v_template)
            .mean()
            .item(),
        }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ddp_does_not_broadcast_body_buffers(synthetic_body_dir, tmp_path):
    mp.spawn(
        _worker,
        args=(2, _free_port(), str(synthetic_body_dir), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["counter"] for r in results] == [1.0, 1.0]  # control: rank 0's buffer won
    assert results[1]["joint_template_offset"] == pytest.approx(1.0)  # rank 1's body kept
    assert results[1]["v_template_offset"] == pytest.approx(1.0)
    assert results[0]["joint_template_offset"] == pytest.approx(0.0)
