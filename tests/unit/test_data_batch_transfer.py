"""A training batch moves to a device through its own ``to``: every tensor, nested dataclasses
included, and on the device it is on, the very same tensors (no copy)."""

from __future__ import annotations

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.batch import ClipBatch
from lightning_hmd.data.synth.batches import synthetic_clip_batch


def _batch(body_dir) -> ClipBatch:
    body = BodyModel.from_dir(body_dir)
    return synthetic_clip_batch(body, 2, 3, 8, 5, torch.Generator().manual_seed(0))


def _tensors(batch: ClipBatch) -> dict[str, torch.Tensor]:
    out = {}
    for part in ("clips", "info", "mocap"):
        for name, value in vars(getattr(batch, part)).items():
            if isinstance(value, torch.Tensor):
                out[f"{part}.{name}"] = value
    return out


def test_lightning_moves_the_batch_with_its_to_and_keeps_its_tensors(synthetic_body_dir):
    batch = _batch(synthetic_body_dir)
    moved = move_data_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, ClipBatch) and moved.info.key == batch.info.key
    before, after = _tensors(batch), _tensors(moved)
    assert set(after) == set(before) and len(before) >= 10
    # already on the device: the same tensor objects, not copies (Lightning's generic mover
    # deep-copies dataclasses)
    assert all(after[k] is before[k] for k in before)


def test_to_another_device_moves_every_nested_tensor(synthetic_body_dir):
    batch = _batch(synthetic_body_dir)
    moved = batch.to("meta")
    before, after = _tensors(batch), _tensors(moved)
    assert all(t.device.type == "meta" for t in after.values())
    assert all(after[k].shape == before[k].shape for k in before)
    assert all(t.device.type == "cpu" for t in _tensors(batch).values())  # the original stays
