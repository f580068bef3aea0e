"""Run by ``srun`` on every task of a job: the reader's shares of one shard set, per rank.

``python two_node_data.py ROOT OUT``: each task joins the job's process group (the rendezvous
``evaluate`` uses, :mod:`lightning_hmd.evaluation.launch`), reads ``ROOT/val`` as evaluation
tracks and two epochs of ``ROOT/train`` as training batches with its rank, gathers what every
rank got, and rank 0 writes it to ``OUT`` as JSON: per rank its host, the tracks (key and
frames) and, per epoch, the windows (clip key and start).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.loader import build_train_loader
from lightning_hmd.data.whole_tracks import build_track_loader
from lightning_hmd.evaluation.launch import launcher_process_group

SEQ_LEN, BATCH = 6, 2


def shares(root: Path, rank: int, world: int) -> dict:
    tracks = build_track_loader([root / "val"], rank=rank, world_size=world, num_workers=0,
                                inputs="features", img_size=16)  # fmt: skip
    mine = {"host": socket.gethostname(), "rank": rank, "tracks": [], "epochs": []}
    for item in tracks:
        mine["tracks"].append([item.key, item.sample.frame_index.tolist()])
    train = build_train_loader(
        [root / "train"], [1.0], [root / "mocap"], batch_size=BATCH, seq_len=SEQ_LEN,
        num_workers=0, rank=rank, world_size=world, seed=0, inputs="features", img_size=16,
        augment=AugmentConfig(), num_fake_poses=4,
    )  # fmt: skip
    for epoch in range(2):
        train.set_epoch(epoch)
        windows = []
        for batch in train:
            windows += [[k, int(s)] for k, s in zip(batch.info.key, batch.info.start, strict=True)]
            dist.all_reduce(torch.ones(1))  # a DDP step's collective
        mine["epochs"].append(windows)
    return mine


def main(root: Path, out: Path) -> None:
    with launcher_process_group(os.environ, timeout_s=120) as ranks:
        assert ranks is not None, "run me under srun with several tasks"
        gathered: list = [None] * ranks.world_size
        dist.all_gather_object(gathered, shares(root, ranks.rank, ranks.world_size))
        if ranks.rank == 0:
            out.write_text(json.dumps(gathered))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
