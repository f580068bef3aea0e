"""benchmarks/ddp_allreduce.py: gradient bytes DDP reduces, the ring all-reduce projection."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import ddp_allreduce as bench


class TwoNets(nn.Module):
    """generator: Linear(3, 4) learnt (16 numel) + Linear(4, 4) frozen; discriminator:
    Linear(4, 1) (5 numel); ``body``: a parameter listed as ignored by DDP."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4))
        self.generator[1].requires_grad_(False)
        self.discriminator = nn.Linear(4, 1)
        self.body = nn.Linear(2, 2)
        self._ddp_params_and_buffers_to_ignore = ["body.weight", "body.bias"]

    def forward(self, net: str, x: torch.Tensor) -> torch.Tensor:
        """``generator``: the discriminator's score of the generator's output (the caller
        freezes the discriminator); ``discriminator``: its score of the detached output."""
        fakes = self.generator(x)
        return self.discriminator(fakes if net == "generator" else fakes.detach()).sum()


def test_gradient_bytes_hand_count() -> None:
    g = bench.gradient_bytes(TwoNets())
    assert (g.generator_numel, g.discriminator_numel) == (3 * 4 + 4, 4 + 1)
    assert g.per_backward == (16 + 5) * 4  # the generator step's DDP buckets
    assert g.discriminator == 5 * 4  # the discriminator step's own all-reduce
    assert g.per_batch == 84 + 20
    assert g.two_ddp_backwards == 2 * 84
    half = bench.gradient_bytes(TwoNets(), element_size=2)  # bf16 DDP buckets, fp32 D
    assert (half.per_backward, half.per_batch) == (42, 42 + 20)


def test_ddp_reduces_both_networks_in_each_backward() -> None:
    """Real DDP (one gloo rank, find_unused_parameters=True): the generator backward with the
    discriminator frozen and the discriminator backward on a detached input each all-reduce
    every bucket, i.e. G + D = 21 float32 numbers, as gradient_bytes counts."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(bench.free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        module = TwoNets()
        ddp = DistributedDataParallel(module, find_unused_parameters=True)
        counter = bench.CountingHook(allreduce_hook, wire_element_size=4)
        ddp.register_comm_hook(counter, bench.counting_hook)
        x = torch.randn(5, 3)
        module.discriminator.requires_grad_(False)
        ddp("generator", x).backward()  # reaches the generator only
        module.discriminator.requires_grad_(True)
        assert counter.wire_bytes == [84]
        assert module.discriminator.weight.grad is None  # unused: zeros sent, grad untouched
        ddp("discriminator", x).backward()  # reaches the discriminator only
        assert counter.wire_bytes == [84, 84]
        assert sum(counter.wire_bytes) == bench.gradient_bytes(module).two_ddp_backwards
    finally:
        dist.destroy_process_group()


def test_ring_allreduce_hand_values() -> None:
    # n = 2, S = 1 GB, B = 1 GB/s: 2(n-1)/n * S/B = 1 s, plus 2(n-1) = 2 latency steps
    assert bench.ring_allreduce_s(1e9, 2, 1e9, 0.0) == pytest.approx(1.0)
    assert bench.ring_allreduce_s(1e9, 2, 1e9, 1e-3) == pytest.approx(1.002)
    # n = 4: 2 * 3 / 4 = 1.5 s, 6 latency steps
    assert bench.ring_allreduce_s(1e9, 4, 1e9, 1e-3) == pytest.approx(1.506)
    assert bench.ring_allreduce_s(1e9, 1, 1e9, 1e-3) == 0.0


def test_hierarchical_allreduce_hand_values() -> None:
    # 8 GPUs at 8 GB/s: 2 * 7/8 * 8 GB / 8 GB/s = 1.75 s; 2 nodes at 4 GB/s: 2 * 1/2 * 2 s = 2 s
    t = bench.hierarchical_allreduce_s(8e9, 8, 2, 8e9, 4e9, 0.0, 0.0)
    assert t == pytest.approx(3.75)
    with_latency = bench.hierarchical_allreduce_s(8e9, 8, 2, 8e9, 4e9, 1e-3, 1e-2)
    assert with_latency == pytest.approx(3.75 + 14 * 1e-3 + 2 * 1e-2)
    assert bench.hierarchical_allreduce_s(8e9, 8, 1, 8e9, 4e9, 0.0, 1.0) == pytest.approx(1.75)


def test_batch_allreduce_per_bucket() -> None:
    """50 MiB through DDP in 25 MiB buckets: 2 bucket all-reduces of 25 MiB, each
    2 * 7/8 * 25 MiB / B_nvlink + 14 alpha_nvlink inside one node; plus one all-reduce of the
    discriminator's bytes when given."""
    size = 50 * 2**20
    one = 2 * 7 / 8 * (size / 2) / bench.NVLINK_BUS_BYTES_PER_S + 14 * bench.NVLINK_STEP_LATENCY_S
    assert bench.batch_allreduce_s(size, nodes=1) == pytest.approx(2 * one)
    ib = 2 * 15 / 16 * (size / 2) / bench.IB_NODE_BYTES_PER_S + 30 * bench.IB_STEP_LATENCY_S
    assert bench.batch_allreduce_s(size, nodes=16) == pytest.approx(2 * (one + ib))
    assert math.isclose(
        bench.batch_allreduce_s(
            size, nodes=16, ib_node_bytes_per_s=bench.IB_NODE_BYTES_PER_S_8_PORTS
        ),
        2 * (one + ib - 2 * 15 / 16 * (size / 2) * (1 / 50e9 - 1 / 400e9)),
    )
    d = 2**20  # 1 MiB of discriminator gradients: one more all-reduce, not bucketed
    d_one = 2 * 7 / 8 * d / bench.NVLINK_BUS_BYTES_PER_S + 14 * bench.NVLINK_STEP_LATENCY_S
    assert bench.batch_allreduce_s(size, nodes=1, extra_bytes=d) == pytest.approx(2 * one + d_one)


def test_paper_temporal_encoder_hand_count(synthetic_body_dir: Path) -> None:
    """The paper phi module's DDP parameters: the temporal encoder's 3 blocks of two GroupNorm
    (weight, bias: 2 x 2048) and two Conv1d (k = 3, 2048 -> 2048, bias), and no body-model or
    frozen-encoder tensor."""
    module = bench.paper_module(synthetic_body_dir, ["data.inputs=features"])
    params = bench.ddp_parameters(module)
    temporal = sum(p.numel() for n, p in params if n.startswith("generator.temporal."))
    assert temporal == 3 * (2 * (3 * 2048 * 2048 + 2048) + 2 * 2 * 2048)
    assert all(n.split(".")[0] in ("generator", "discriminator") for n, _ in params)
    g = bench.gradient_bytes(module)
    assert (
        g.per_batch == 4 * (g.generator_numel + g.discriminator_numel) + 4 * g.discriminator_numel
    )
