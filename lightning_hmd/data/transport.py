"""Batches packed into one buffer for the trip from a loader worker to the main process.

A DataLoader worker hands every tensor of a batch to the main process through its own
shared-memory segment; on the project's machines that costs about 0.65 ms per tensor, so a
ClipBatch of ~17 tensors spends more time in transport than in reading (see
``benchmarks/results/reader_throughput.md``). :func:`pack` copies every tensor of a batch
(nested dataclasses included) into one uint8 buffer; :func:`unpack` restores them as views of
that buffer, without copying. Written here because PyTorch's DataLoader has no such option.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

_ALIGN = 16


@dataclass
class Packed:
    """A batch whose tensors live in ``buffer``; ``layout`` maps each tensor's field path to
    ``(dtype, shape, offset)``; ``skeleton`` is the batch with those fields set to None."""

    buffer: Tensor
    layout: dict[tuple[str, ...], tuple[torch.dtype, tuple[int, ...], int]]
    skeleton: Any


def _tensors(obj: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Tensor]]:
    if isinstance(obj, Tensor):
        return [(path, obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [
            item
            for f in dataclasses.fields(obj)
            for item in _tensors(getattr(obj, f.name), (*path, f.name))
        ]
    return []


def _replace(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    child = getattr(obj, path[0])
    return dataclasses.replace(obj, **{path[0]: _replace(child, path[1:], value)})


def pack(batch: Any) -> Packed:
    """Copy every tensor of a (nested) dataclass batch into one buffer."""
    items = _tensors(batch)
    layout, offset = {}, 0
    for path, t in items:
        layout[path] = (t.dtype, tuple(t.shape), offset)
        offset += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
    buffer = torch.empty(offset, dtype=torch.uint8)
    skeleton = batch
    for path, t in items:
        _, shape, start = layout[path]
        nbytes = t.numel() * t.element_size()
        view = buffer[start : start + nbytes].view(t.dtype).view(shape)
        view.copy_(t)
        skeleton = _replace(skeleton, path, None)
    return Packed(buffer, layout, skeleton)


def unpack(packed: Packed) -> Any:
    """The batch of :func:`pack`, its tensors views of the one buffer."""
    batch = packed.skeleton
    for path, (dtype, shape, start) in packed.layout.items():
        nbytes = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
        view = packed.buffer[start : start + nbytes].view(dtype).view(shape)
        batch = _replace(batch, path, view)
    return batch
