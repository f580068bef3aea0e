"""The reader under DDP: 2 ranks (gloo processes) x 2 loader workers, uneven shards.

Evaluation must deliver every track exactly once, whole, over all ranks and workers (tracks
whose chunks cross shard boundaries and slot boundaries included); training must give every
rank the same number of full batches (each batch is followed by an all-reduce, as a DDP step
would be, so unequal counts would hang and hit the timeout).
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
from fixtures.clips import write_clip_set, write_mocap_set, write_track_set

from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.whole_tracks import build_track_loader

T = 6
B = 3
# 9 tracks of 20 chunks over uneven shards (boundaries at 7, 10, 15, 16): tracks 2, 4 and 6
# cross shard boundaries and hold the 4 slots' sample boundaries 5, 10 and 15, which move to
# the track starts 8, 12 and 17.
TRACKS = [[6, 13], [4], [20, 9, 7, 6, 13], [4], [20, 9, 7], [6], [13, 4, 20, 9], [7], [6, 13]]
SHARDS = [7, 3, 5, 1, 4]


def _worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        result = {}
        for name in ("val", "one"):
            loader = build_track_loader(
                [Path(root) / name],
                rank=rank,
                world_size=world,
                num_workers=2,
                inputs="features",
                img_size=16,
            )
            mine = [
                (item.key, item.slot, item.sample.frame_index.tolist(), len(item.phi))
                for item in loader
            ]
            mine.sort()  # loader workers interleave
            gathered = [None] * world
            dist.all_gather_object(gathered, [mine, loader.collect().counts()])
            result[f"eval_{name}"] = [t for part, _ in gathered for t in part]
            result[f"skipped_{name}"] = [skipped for _, skipped in gathered]
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


def frames(tracks) -> dict[str, list[int]]:
    return {k: [f for c in chunks for f in c.frame_index.tolist()] for k, chunks in tracks.items()}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_ranks_two_workers_exactly_once_and_equal_batches(tmp_path):
    lengths = [6, 13, 4, 20, 9, 7]
    val = write_track_set(tmp_path / "val", TRACKS, SHARDS)
    one = write_track_set(tmp_path / "one", [[5, 8, 3]], [1, 1, 1])  # fewer chunks than slots
    write_clip_set(tmp_path / "train", [7, 3, 5, 1, 4], lengths, split="train")
    write_clip_set(tmp_path / "train_one", [3], [8, 9, 10], split="train")
    write_mocap_set(tmp_path / "mocap", 9, shard_size=4)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), str(tmp_path)), nprocs=2)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))

    for name, tracks in (("val", val), ("one", one)):
        delivered = r0[f"eval_{name}"]
        assert r0[f"eval_{name}"] == r1[f"eval_{name}"]  # both ranks gathered the same
        got = Counter(k for k, *_ in delivered)
        assert got == dict.fromkeys(tracks, 1), "lost or duplicated evaluation tracks"
        assert {k: f for k, _, f, _ in delivered} == frames(tracks)  # whole, in order
        assert all(n == len(f) for _, _, f, n in delivered)
        assert r0[f"skipped_{name}"] == [{}, {}]
    # slot ranges [0, 8), [8, 12), [12, 17), [17, 20): every (rank, worker) slot took part
    slot_of = {k: slot for k, slot, *_ in r0["eval_val"]}
    assert [slot_of[k] for k in val] == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert sum(len(f) for _, _, f, _ in r0["eval_val"]) == sum(map(sum, TRACKS)) == 196
    assert [(slot, len(f)) for _, slot, f, _ in r0["eval_one"]] == [(1, 16)]  # slot 1: [0, 3)

    for name in ("train", "train_one"):
        assert r0[f"{name}_len"] == r1[f"{name}_len"]
        assert len(r0[f"{name}_batches"]) == len(r1[f"{name}_batches"]) == 2 * r0[f"{name}_len"]
        assert set(r0[f"{name}_batches"]) == set(r1[f"{name}_batches"]) == {B}
