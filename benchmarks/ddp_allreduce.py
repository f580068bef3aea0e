"""DDP gradient all-reduce of the paper-config training step: bytes, measured time, projection.

What is reduced. Under ``trainer.devices * trainer.num_nodes > 1`` the run trains with
Lightning's ``DDPStrategy(find_unused_parameters=True)`` (``train/fit.py``). DDP's reducer
holds every parameter of the LightningModule that requires a gradient when it is wrapped (the
body model has none and is listed in ``_ddp_params_and_buffers_to_ignore``; a frozen image
encoder has none): the generator's trainable parameters and the discriminator's. Each batch
runs two backward passes (``train/module.py``): the generator step (discriminator frozen) and
the discriminator step (fakes detached). With ``find_unused_parameters=True`` DDP marks the
parameters a backward does not reach as ready with zero gradients and still all-reduces every
bucket, so a backward through DDP all-reduces all of the generator's and the discriminator's
parameters, not only the network it reaches. The generator step does (G + D, the
discriminator's share of zeros is 2 %); the discriminator step runs under ``no_sync`` and
all-reduces the discriminator's gradients alone, in one flat tensor (``train/grad_sync.py``),
so a batch moves (G + D) + D gradients, where two DDP backwards would move 2 x (G + D).
``lightning_reduced_bytes`` counts the bytes through Lightning's own ``DDPStrategy``: DDP's
with a comm hook, the discriminator's by the same count the step reduces
(tests/integration/test_ddp_allreduce_bench.py).

Measured: 2 gloo processes on this machine (loopback) run that batch through
``torch.nn.parallel.DistributedDataParallel`` over a module holding parameters of the paper
config's real shapes, in its registration order (so its buckets are the real model's), whose
losses reach the generator's parameters in the first backward (through DDP) and the
discriminator's in the second (under ``no_sync``, then its flat all-reduce, as the training
step); for bucket_cap_mb 1, 25 (DDP's default), 100, and DDP's ``bf16_compress_hook`` at
25 MB (the discriminator's flat all-reduce stays float32). The all-reduce time of a batch is
its DDP time less the median time of the same batch under the bare module (gradients only);
the configurations are interleaved in rotated order.

Projected: the ring all-reduce time ``2(n-1)/n * S/B + 2(n-1) * alpha`` per bucket, inside a
node over NVLink and across nodes over InfiniBand (hierarchical: intra-node reduce-scatter +
all-gather, plus the inter-node ring over the node's links), against the measured H200 step
and the 80 ms goal step::

    .venv/bin/python benchmarks/ddp_allreduce.py [--repeats 3] [--batches 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import harness  # benchmarks/harness.py
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from harness import paper_module
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import bf16_compress_hook
from torch.nn.parallel import DistributedDataParallel

from lightning_hmd.train.grad_sync import average_gradients

# -- projection assumptions (one H100/H200 node of 8 GPUs; InfiniBand NDR between nodes) --------
# NVLink 4 gives 450 GB/s per direction per GPU; NCCL's all-reduce reaches a bus bandwidth of
# about 360 GB/s on 8 such GPUs (nccl-tests, large messages).
NVLINK_BUS_BYTES_PER_S = 360e9
# One NDR 400 Gb/s port per node: 50 GB/s per direction, taken as the inter-node ring's bus
# bandwidth (the conservative case: the node's 8 GPUs share one port).
IB_NODE_BYTES_PER_S = 50e9
# A DGX H100/H200 has 8 NDR ports for the compute fabric, one per GPU: 8 x 50 GB/s per node.
IB_NODE_BYTES_PER_S_8_PORTS = 400e9
# Per-step latency alpha of a ring all-reduce (one send/receive of a chunk): NVLink, InfiniBand.
NVLINK_STEP_LATENCY_S = 5e-6
IB_STEP_LATENCY_S = 10e-6
GPUS_PER_NODE = 8
NODE_COUNTS = (1, 2, 4, 8, 16)
# The measured step: H200, float32, images mode with the ResNet-50 learnt, 3.90 batches/s
# (benchmarks/results/train_step_throughput.md); the goal step: 12.5 batches/s.
H200_STEP_S = 1 / 3.90
GOAL_STEP_S = 0.080
GOAL_FRACTION = 0.5  # the projected all-reduce should take less than half the goal step

DEFAULT_BUCKET_MB = 25  # DDP's bucket_cap_mb default (MiB)
MB = 1e6


# -- what DDP reduces ------------------------------------------------------------------------


def ddp_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The parameters DDP's reducer holds when ``module`` is wrapped: those that require a
    gradient, less the names in ``module._ddp_params_and_buffers_to_ignore``."""
    ignored = set(getattr(module, "_ddp_params_and_buffers_to_ignore", ()))
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad and n not in ignored]


@dataclass(frozen=True)
class GradientBytes:
    """Gradient numel of the two networks and the bytes a training batch all-reduces.

    ``per_backward``: every DDP bucket (both networks) at ``element_size`` bytes an element,
    the generator step's backward; ``discriminator``: the discriminator step's own flat
    all-reduce (float32 whatever DDP's compression); ``per_batch``: the two together;
    ``two_ddp_backwards``: what a batch moved when both backwards went through DDP."""

    generator_numel: int
    discriminator_numel: int
    element_size: int = 4

    @property
    def per_backward(self) -> int:
        return (self.generator_numel + self.discriminator_numel) * self.element_size

    @property
    def discriminator(self) -> int:
        return self.discriminator_numel * 4

    @property
    def per_batch(self) -> int:
        return self.per_backward + self.discriminator

    @property
    def two_ddp_backwards(self) -> int:
        return 2 * self.per_backward


def gradient_bytes(module: nn.Module, element_size: int = 4) -> GradientBytes:
    """:class:`GradientBytes` of a module with ``generator`` and ``discriminator`` children
    (the LightningModule), counted over :func:`ddp_parameters`."""
    numel = {"generator": 0, "discriminator": 0}
    for name, p in ddp_parameters(module):
        head = name.split(".", 1)[0]
        if head not in numel:
            raise ValueError(f"DDP parameter {name} is in neither network")
        numel[head] += p.numel()
    return GradientBytes(numel["generator"], numel["discriminator"], element_size)


def buffer_bytes(module: nn.Module) -> int:
    """Bytes of the buffers DDP broadcasts from rank 0 at each forward (one per batch under
    Lightning: ``training_step`` is DDP's forward)."""
    ignored = set(getattr(module, "_ddp_params_and_buffers_to_ignore", ()))
    return sum(b.numel() * b.element_size() for n, b in module.named_buffers() if n not in ignored)


# -- projection --------------------------------------------------------------------------------


def ring_allreduce_s(
    size_bytes: float, ranks: int, bus_bytes_per_s: float, alpha_s: float
) -> float:
    """Ring all-reduce of ``size_bytes`` over ``ranks``: ``2(n-1)/n * S/B + 2(n-1) * alpha``
    (reduce-scatter then all-gather, n-1 steps each); 0 for one rank."""
    if ranks <= 1:
        return 0.0
    steps = 2 * (ranks - 1)
    return steps / ranks * size_bytes / bus_bytes_per_s + steps * alpha_s


def hierarchical_allreduce_s(
    size_bytes: float,
    gpus_per_node: int,
    nodes: int,
    nvlink_bytes_per_s: float,
    ib_node_bytes_per_s: float,
    nvlink_alpha_s: float,
    ib_alpha_s: float,
) -> float:
    """Intra-node ring over NVLink (reduce-scatter + all-gather) plus the inter-node ring of
    the whole ``size_bytes`` over the node's InfiniBand bandwidth (the bottleneck)."""
    intra = ring_allreduce_s(size_bytes, gpus_per_node, nvlink_bytes_per_s, nvlink_alpha_s)
    return intra + ring_allreduce_s(size_bytes, nodes, ib_node_bytes_per_s, ib_alpha_s)


def batch_allreduce_s(
    backward_bytes: float,
    nodes: int,
    ib_node_bytes_per_s: float = IB_NODE_BYTES_PER_S,
    bucket_bytes: float = DEFAULT_BUCKET_MB * 2**20,
    extra_bytes: float = 0.0,
    gpus_per_node: int = GPUS_PER_NODE,
) -> float:
    """One batch's all-reduce: ceil(S / bucket) bucket all-reduces of S / buckets bytes each
    (DDP's backward; the latency term is paid per bucket), plus one all-reduce of
    ``extra_bytes`` (the discriminator's own) when there is one."""

    def one(size: float) -> float:
        return hierarchical_allreduce_s(
            size,
            gpus_per_node,
            nodes,
            NVLINK_BUS_BYTES_PER_S,
            ib_node_bytes_per_s,
            NVLINK_STEP_LATENCY_S,
            IB_STEP_LATENCY_S,
        )

    buckets = max(1, math.ceil(backward_bytes / bucket_bytes))
    return buckets * one(backward_bytes / buckets) + (one(extra_bytes) if extra_bytes else 0.0)


@dataclass(frozen=True)
class ProjectionRow:
    nodes: int
    mode: str
    dtype: str
    ms: float  # one NDR port per node
    ms_8_ports: float  # eight NDR ports per node

    @property
    def fraction_h200(self) -> float:
        return self.ms / 1e3 / H200_STEP_S

    @property
    def fraction_goal(self) -> float:
        return self.ms / 1e3 / GOAL_STEP_S

    @property
    def fraction_goal_8_ports(self) -> float:
        return self.ms_8_ports / 1e3 / GOAL_STEP_S


def projection(sizes: dict[str, GradientBytes]) -> list[ProjectionRow]:
    """Projected rows for each mode's gradient bytes, float32 and bf16-compressed."""
    rows = []
    for nodes in NODE_COUNTS:
        for mode, g in sizes.items():
            for dtype, scale in (("fp32", 1.0), ("bf16", 0.5)):
                s, d = g.per_backward * scale, g.discriminator
                rows.append(
                    ProjectionRow(
                        nodes,
                        mode,
                        dtype,
                        1e3 * batch_allreduce_s(s, nodes, extra_bytes=d),
                        1e3
                        * batch_allreduce_s(s, nodes, IB_NODE_BYTES_PER_S_8_PORTS, extra_bytes=d),
                    )
                )
    return rows


def projection_table(rows: Sequence[ProjectionRow]) -> str:
    """Markdown table of :func:`projection`'s rows."""
    lines = [
        "| GPUs (nodes x 8) | mode | grads | all-reduce ms / batch (1 NDR port / node) "
        "| of H200 step 256 ms | of goal step 80 ms | with 8 NDR ports / node: ms, of 80 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.nodes * GPUS_PER_NODE} ({r.nodes}) | {r.mode} | {r.dtype} | {r.ms:.1f} "
            f"| {r.fraction_h200:.2f} | {r.fraction_goal:.2f} "
            f"| {r.ms_8_ports:.1f}, {r.fraction_goal_8_ports:.2f} |"
        )
    return "\n".join(lines)


# -- the paper module's shapes -------------------------------------------------------------------


MODES = {
    "phi": ["data.inputs=features"],  # the paper recipe: precomputed ResNet-50 features
    "images, ResNet-50 frozen": ["data.inputs=images"],  # the preset's freeze_encoder=true
    "images, ResNet-50 learnt": ["data.inputs=images", "model.freeze_encoder=false"],
}


def shapes_of(module: nn.Module) -> dict[str, list[tuple[int, ...]]]:
    """DDP parameter shapes per network, in registration order."""
    out: dict[str, list[tuple[int, ...]]] = {"generator": [], "discriminator": []}
    for name, p in ddp_parameters(module):
        out[name.split(".", 1)[0]].append(tuple(p.shape))
    return out


# -- measured: 2 gloo processes ------------------------------------------------------------------


class ShapeStandIn(nn.Module):
    """Zero parameters of the given shapes, ``generator`` then ``discriminator`` as in the
    LightningModule; ``forward(net)`` returns a scalar whose gradient (ones) reaches that
    network's parameters only."""

    def __init__(self, shapes: dict[str, list[tuple[int, ...]]]):
        super().__init__()
        self.generator = nn.ParameterList(
            [nn.Parameter(torch.zeros(s)) for s in shapes["generator"]]
        )
        self.discriminator = nn.ParameterList(
            [nn.Parameter(torch.zeros(s)) for s in shapes["discriminator"]]
        )

    def forward(self, net: str) -> torch.Tensor:
        return torch.stack([p.sum() for p in getattr(self, net)]).sum()


class CountingHook:
    """Comm hook state: wraps ``hook`` and records the bytes each bucket puts on the wire
    (``wire_element_size`` bytes an element: 4 for float32, 2 for a bf16-compressed bucket)."""

    def __init__(self, hook: Callable, wire_element_size: int):
        self.hook, self.wire_element_size = hook, wire_element_size
        self.wire_bytes: list[int] = []


def counting_hook(state, bucket):  # unannotated: DDP rejects string annotations
    """DDP comm hook: record the bucket's wire bytes in ``state`` (a :class:`CountingHook`),
    then run its hook on the default process group; returns that hook's future."""
    state.wire_bytes.append(bucket.buffer().numel() * state.wire_element_size)
    return state.hook(None, bucket)


CONFIGS = {  # name: (bucket_cap_mb, bf16 compression)
    "25 MB": (25, False),
    "1 MB": (1, False),
    "100 MB": (100, False),
    "25 MB bf16": (25, True),
}


def _batch(model: nn.Module) -> None:
    """One batch's two backwards as the training step runs them: the generator's gradients
    cleared and its loss through DDP, then the discriminator's gradients cleared and its loss
    under ``no_sync`` with its own flat all-reduce (``train/grad_sync.py``). The
    discriminator's gradients stay set between batches, as the optimisers leave them (DDP
    reduces them with the generator's buckets: it counts a parameter used under ``no_sync``
    as used at the next synchronised backward, which needs its gradient defined)."""
    net = model.module if isinstance(model, DistributedDataParallel) else model
    for p in net.generator.parameters():
        p.grad = None
    model("generator").backward()
    for p in net.discriminator.parameters():
        p.grad = None
    if isinstance(model, DistributedDataParallel):
        with model.no_sync():
            model("discriminator").backward()
        average_gradients(net.discriminator.parameters(), dist.get_world_size())
    else:
        model("discriminator").backward()


def _timed(fn: Callable[[], None]) -> float:
    """Seconds of ``fn()`` between barriers of both ranks."""
    dist.barrier()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    dist.barrier()
    return seconds


def _wrap(module: nn.Module, name: str) -> tuple[DistributedDataParallel, CountingHook | None]:
    """DDP over ``module`` for configuration ``name``, with its comm hook, after one untimed
    batch (gradient and bucket memory allocated)."""
    cap, bf16 = CONFIGS[name]
    ddp = DistributedDataParallel(module, bucket_cap_mb=cap, find_unused_parameters=True)
    counter = None
    if bf16:
        counter = CountingHook(bf16_compress_hook, wire_element_size=2)
        ddp.register_comm_hook(counter, counting_hook)
    _batch(ddp)
    if counter is not None:
        counter.wire_bytes.clear()
    return ddp, counter


def _worker(rank: int, port: int, shapes: dict, repeats: int, batches: int, out: str) -> None:
    """Rank ``rank`` of the measurement: one module and DDP per configuration (a DDP cannot
    share its parameters with another: about 1.2 GB each for the phi shapes), then
    ``repeats`` rounds of ``batches`` timed batches per configuration in rotated order, each
    configuration's batches followed by one on a bare module (no reduction)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    wrapped = {name: _wrap(ShapeStandIn(shapes), name) for name in CONFIGS}
    # The baseline is a module of its own: a batch on a wrapped module outside DDP's forward
    # still marks its parameters used in the reducer, which then expects their gradients.
    bare = ShapeStandIn(shapes)
    _batch(bare)
    names = list(CONFIGS)
    trials: list[dict] = []
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            ddp, counter = wrapped[name]
            synced = [_timed(lambda ddp=ddp: _batch(ddp)) for _ in range(batches)]
            buckets = str(ddp._get_ddp_logging_data().get("bucket_sizes", ""))
            trials.append(
                {
                    "repeat": rep,
                    "config": name,
                    "batch_s": statistics.median(synced),
                    "local_s": _timed(lambda: _batch(bare)),
                    "buckets": [int(b) for b in buckets.split(",") if b.strip()],
                    "wire_bytes_per_batch": (
                        sum(counter.wire_bytes) / len(synced) if counter else None
                    ),
                }
            )
            if counter is not None:
                counter.wire_bytes.clear()
    if rank == 0:
        Path(out).write_text(json.dumps(trials))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(shapes: dict, repeats: int, batches: int) -> list[dict]:
    """Run the interleaved trials on 2 gloo processes; rank 0's records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "trials.json")
        mp.spawn(_worker, args=(free_port(), shapes, repeats, batches, out), nprocs=2)
        return json.loads(Path(out).read_text())


# -- through Lightning (counted, for the tests) --------------------------------------------------


def lightning_reduced_bytes(preset: str, overrides: Sequence[str], batches: int = 2) -> dict:
    """Bytes all-reduced per batch by Lightning's ``DDPStrategy(find_unused_parameters=True)``
    on 2 gloo CPU processes training ``preset`` through ``Trainer.fit``, counted by a comm
    hook (Lightning registers comm hooks on CUDA only, so a callback registers it on the
    wrapped model before the first batch), and :func:`gradient_bytes` of the same module."""
    from lightning_hmd.body.synth import write_synthetic_model

    with tempfile.TemporaryDirectory() as tmp:
        body = write_synthetic_model(Path(tmp) / "body")
        out = str(Path(tmp) / "bytes.json")
        args = (free_port(), preset, list(overrides), str(body), batches, out)
        mp.spawn(_lightning_worker, args=args, nprocs=2)
        return json.loads(Path(out).read_text())


def _lightning_worker(
    rank: int, port: int, preset: str, overrides: list, body: str, batches: int, out: str
) -> None:
    import lightning.pytorch as pl
    from lightning.pytorch.strategies import DDPStrategy
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.utils.data import DataLoader

    from lightning_hmd.config import load_config, to_container
    from lightning_hmd.data.synth.batches import synthetic_clip_batch
    from lightning_hmd.data.train_stream import num_fake_poses
    from lightning_hmd.train.module import HMMRModule

    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": "0"}
    os.environ.update(env, LOCAL_RANK=str(rank), WORLD_SIZE="2", RANK=str(rank))
    torch.set_num_threads(1)
    cfg = load_config(
        preset, overrides=["model.init_checkpoint=none", f"body.model_dir={body}", *overrides]
    )
    torch.manual_seed(cfg.seed)
    module = HMMRModule(to_container(cfg))
    counted = gradient_bytes(module)
    counter = CountingHook(allreduce_hook, wire_element_size=4)
    by_hand: list[int] = []  # elements of the discriminator step's own all-reduces
    import lightning_hmd.train.grad_sync as grad_sync

    average = grad_sync.average_gradients

    def counting_average(params, world_size: int) -> int:
        by_hand.append(average(params, world_size))
        return by_hand[-1]

    grad_sync.average_gradients = counting_average

    class RegisterHook(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            trainer.strategy.model.register_comm_hook(counter, counting_hook)

    d, m = module.cfg.data, module.cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)
    gen = torch.Generator().manual_seed(rank)
    data = [
        synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses, gen)
        for _ in range(batches)
    ]
    trainer = harness.bare_trainer(
        batches,
        [RegisterHook()],
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(find_unused_parameters=True, process_group_backend="gloo"),
    )
    trainer.fit(module, DataLoader(data, batch_size=None, collate_fn=lambda b: b))
    if rank == 0:
        record = {
            "hook_bytes": counter.wire_bytes,
            "hook_bytes_per_batch": sum(counter.wire_bytes) / batches,
            "by_hand_bytes_per_batch": 4 * sum(by_hand) / batches,
            "counted_discriminator": counted.discriminator,
            "counted_per_backward": counted.per_backward,
            "counted_per_batch": counted.per_batch,
        }
        Path(out).write_text(json.dumps(record))


# -- report ----------------------------------------------------------------------------------------


def _range(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} (range {fmt.format(min(values))}-" + (
        f"{fmt.format(max(values))})"
    )


def report(sizes: dict[str, GradientBytes], buffers: dict[str, int], trials: list[dict]) -> None:
    for mode, g in sizes.items():
        print(
            f"{mode}: DDP gradients G {g.generator_numel:,} + D {g.discriminator_numel:,} "
            f"params; per backward {g.per_backward / MB:.1f} MB fp32 "
            f"({g.per_backward / 2 / MB:.1f} MB bf16) + the discriminator's own "
            f"{g.discriminator / MB:.1f} MB = per batch {g.per_batch / MB:.1f} MB fp32 (two "
            f"backwards through DDP: {g.two_ddp_backwards / MB:.1f} MB); buffers broadcast per "
            f"batch {buffers[mode] / 1e3:.1f} kB"
        )
    phi = sizes["phi"]
    by = {name: [t for t in trials if t["config"] == name] for name in CONFIGS}
    # the bare module's batch is the same work under every configuration: one baseline for all
    local_s = statistics.median(t["local_s"] for t in trials)
    default = {t["repeat"]: t["batch_s"] - local_s for t in by["25 MB"]}
    print(
        "measured, 2 gloo processes (loopback), phi-mode shapes, one batch = the generator's "
        "DDP backward + the discriminator's own all-reduce:"
    )
    ratios: dict[str, list[float]] = {}
    for name, ts in by.items():
        reduce_s = [t["batch_s"] - local_s for t in ts]
        ratios[name] = [(t["batch_s"] - local_s) / default[t["repeat"]] for t in ts]
        buckets = ts[0]["buckets"]
        wire = ts[0]["wire_bytes_per_batch"]
        extra = f"; wire bytes per batch {wire / MB:.1f} MB (comm hook)" if wire else ""
        print(
            f"  {name:>11}: all-reduce {_range([1e3 * s for s in reduce_s], '{:.0f}')} ms per "
            f"batch (DDP batch {statistics.median(t['batch_s'] for t in ts) * 1e3:.0f} ms "
            f"less bare module {local_s * 1e3:.0f} ms); "
            f"{len(buckets)} buckets, {sum(buckets) / MB:.1f} MB per DDP backward{extra}; "
            f"/ 25 MB fp32 = {_range(ratios[name])}"
        )
    bandwidth = [phi.per_batch / s / 1e9 for s in default.values()]
    print(
        "  gloo loopback bandwidth (fp32 bytes per batch / all-reduce time): "
        f"{_range(bandwidth)} GB/s"
    )

    rows = projection(sizes)
    print(
        f"projection: {GPUS_PER_NODE} GPUs per node, NVLink bus "
        f"{NVLINK_BUS_BYTES_PER_S / 1e9:.0f} GB/s, alpha {NVLINK_STEP_LATENCY_S * 1e6:.0f} us; "
        f"InfiniBand {IB_NODE_BYTES_PER_S / 1e9:.0f} GB/s per node (one NDR port) or "
        f"{IB_NODE_BYTES_PER_S_8_PORTS / 1e9:.0f} GB/s (8 ports), "
        f"alpha {IB_STEP_LATENCY_S * 1e6:.0f} us; {DEFAULT_BUCKET_MB} MiB buckets; per batch "
        "one DDP backward reducing G + D and one all-reduce of D"
    )
    print(projection_table(rows))
    print(
        "overlap: the generator backward's buckets can overlap with its backward compute; the "
        "discriminator's all-reduce (2 % of the bytes) follows its short backward"
    )

    print(
        f"FIGURE: gradient MB all-reduced per batch (phi, fp32) = {phi.per_batch / MB:.1f} MB "
        f"({phi.per_backward / MB:.1f} MB DDP + {phi.discriminator / MB:.1f} MB D; two DDP "
        f"backwards: {phi.two_ddp_backwards / MB:.1f} MB; images with "
        f"ResNet-50 learnt {sizes['images, ResNet-50 learnt'].per_batch / MB:.1f} MB; bf16 half) "
        "(no goal)"
    )
    parts = ", ".join(f"{n} {_range(ratios[n])}" for n in CONFIGS if n != "25 MB")
    print(f"FIGURE: all-reduce time / 25 MB fp32 (2 gloo processes) = {parts} (no goal)")
    at16 = [r for r in rows if r.nodes == NODE_COUNTS[-1] and r.dtype == "fp32"]
    worst = max(at16, key=lambda r: r.fraction_goal)
    met = "met" if worst.fraction_goal < GOAL_FRACTION else "not met"
    print(
        f"FIGURE: projected all-reduce / 80 ms step, {NODE_COUNTS[-1]} nodes x {GPUS_PER_NODE} "
        f"GPUs, worst mode = {worst.fraction_goal:.2f} ({worst.mode}, fp32, {worst.ms:.1f} ms, "
        f"one NDR port per node; {worst.fraction_goal_8_ports:.2f} with 8 ports) "
        f"(goal: < {GOAL_FRACTION}, {met})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per configuration")
    p.add_argument("--batches", type=int, default=1, help="timed batches per trial")
    p.add_argument("--quick", action="store_true", help="1 repeat of 1 batch (for the tests)")
    ns = p.parse_args()
    repeats, batches = (1, 1) if ns.quick else (ns.repeats, ns.batches)
    print(f"torch {torch.__version__}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    from lightning_hmd.body.synth import write_synthetic_model

    sizes, buffers = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        body = write_synthetic_model(Path(tmp) / "body")
        for mode, overrides in MODES.items():
            module = paper_module(body, overrides)
            sizes[mode], buffers[mode] = gradient_bytes(module), buffer_bytes(module)
            if mode == "phi":
                shapes = shapes_of(module)
            del module
    start = time.perf_counter()
    trials = measure(shapes, repeats, batches)
    print(f"measured {len(trials)} trials in {time.perf_counter() - start:.0f} s")
    report(sizes, buffers, trials)


if __name__ == "__main__":
    main()
