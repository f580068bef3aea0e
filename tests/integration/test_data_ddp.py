"""The reader under DDP: 2 ranks (gloo processes) x 2 loader workers, uneven shards.

Evaluation must deliver every window exactly once over all ranks and workers; training must
give every rank the same number of full batches (each batch is followed by an all-reduce, as
a DDP step would be, so unequal counts would hang and hit the timeout).
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fixtures.clips import write_clip_set, write_mocap_set

from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import build_eval_loader, build_train_loader
from lightning_hmd.data.windows import strided_windows

T = 6
B = 3


def _worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        result = {}
        for name in ("val", "one"):
            loader = build_eval_loader(
                [Path(root) / name],
                batch_size=B,
                seq_len=T,
                num_workers=2,
                rank=rank,
                world_size=world,
                inputs="features",
                img_size=16,
            )
            mine = [
                (k, int(s), b.slot)
                for b in loader
                for k, s in zip(b.info.key, b.info.start, strict=False)
            ]
            gathered = [None] * world
            dist.all_gather_object(gathered, mine)
            result[f"eval_{name}"] = [w for part in gathered for w in part]
        for name in ("train", "train_one"):
            loader = build_train_loader(
                [Path(root) / name],
                [1.0],
                [Path(root) / "mocap"],
                batch_size=B,
                seq_len=T,
                num_workers=2,
                rank=rank,
                world_size=world,
                seed=0,
                inputs="features",
                img_size=16,
                augment=AugmentConfig(),
                num_fake_poses=4,
            )
            sizes = []
            for epoch in range(2):
                loader.set_epoch(epoch)
                for b in loader:
                    sizes.append(len(b.info.key))
                    dist.all_reduce(torch.ones(1))  # a DDP step's collective
            result[f"{name}_batches"] = sizes
            result[f"{name}_len"] = len(loader)
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expected(keys: dict[str, int]) -> Counter:
    return Counter((k, w.start) for k, n in keys.items() for w in strided_windows(max(n, T), T))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_ranks_two_workers_exactly_once_and_equal_batches(tmp_path):
    lengths = [6, 13, 4, 20, 9, 7]
    val = write_clip_set(tmp_path / "val", [7, 3, 5, 1, 4], lengths)
    one = write_clip_set(tmp_path / "one", [3], lengths)  # fewer samples than slots
    write_clip_set(tmp_path / "train", [7, 3, 5, 1, 4], lengths, split="train")
    write_clip_set(tmp_path / "train_one", [3], [8, 9, 10], split="train")
    write_mocap_set(tmp_path / "mocap", 9, shard_size=4)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), str(tmp_path)), nprocs=2)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))

    for name, keys in (("val", val), ("one", one)):
        windows = r0[f"eval_{name}"]
        assert r0[f"eval_{name}"] == r1[f"eval_{name}"]  # both ranks gathered the same
        got = Counter((k, s) for k, s, _ in windows)
        want = expected(keys)
        assert got == want, "lost or duplicated evaluation windows"
        assert max(got.values()) == 1
        slots = {slot for _, _, slot in windows}
        if name == "val":
            assert slots == {0, 1, 2, 3}  # all 4 (rank, worker) slots took part

    for name in ("train", "train_one"):
        assert r0[f"{name}_len"] == r1[f"{name}_len"]
        assert len(r0[f"{name}_batches"]) == len(r1[f"{name}_batches"]) == 2 * r0[f"{name}_len"]
        assert set(r0[f"{name}_batches"]) == set(r1[f"{name}_batches"]) == {B}
