"""Windows and their collation into named batches for the generator and for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning_hmd.body.joints import NUM_BETAS, NUM_LSP_JOINTS, NUM_SMPL_JOINTS
from lightning_hmd.data.schema import ClipSample, MocapSample
from lightning_hmd.structures import MocapBatch, MocapWindows, SequenceBatch


@dataclass
class WindowItem:
    """One window of ``T`` frames before collation.

    Attributes:
        sample: the window's frames (labels; kp2d normalised to the output crop).
        key: the sample key in its shard.
        start: first frame of the window within the sample.
        images: (T, C, C, 3) uint8 output crops, or None for precomputed features.
    """

    sample: ClipSample
    key: str
    start: int
    images: np.ndarray | None = None


@dataclass
class WindowInfo:
    """Where each window of a batch comes from (B windows of T frames).

    Attributes:
        key, dataset, sequence: per window, lists of B strings.
        track_id: (B,) int64.
        start: (B,) int64 first frame of the window within its sample.
        frame_index: (B, T) int64 frame numbers in the original sequence.
    """

    key: list[str]
    dataset: list[str]
    sequence: list[str]
    track_id: Tensor
    start: Tensor
    frame_index: Tensor


@dataclass
class ClipBatch:
    """One batch from the reader.

    Attributes:
        clips: the generator's ground truth and inputs (phi or images).
        info: where each window comes from (logging).
        mocap: real poses for the discriminator (training batches with a mocap stream):
            single poses, or windows of consecutive poses for a motion discriminator.
        slot: the reader slot (rank and loader worker) that made the batch.
    """

    clips: SequenceBatch
    info: WindowInfo
    mocap: MocapBatch | MocapWindows | None = None
    slot: int = 0

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ClipBatch:
        """The batch with every tensor on ``device`` (tensors already there are kept).

        Lightning moves a batch with ``.to`` when it has one; without it, its generic mover
        deep-copies every dataclass it meets (``apply_to_collection`` of lightning_utilities),
        which on a CPU run cost more per batch than the transfer itself."""
        return _moved(self, torch.device(device), non_blocking)


def _moved(value: Any, device: torch.device, non_blocking: bool) -> Any:
    """``value`` with the tensors of it and of its nested dataclasses on ``device``."""
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=non_blocking and device.type != "cpu")
    if is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _moved(getattr(value, f.name), device, non_blocking) for f in fields(value)
        }
        return replace(value, **changes)
    return value


def _stack(values: Sequence[np.ndarray | None], shape: tuple[int, ...]) -> np.ndarray:
    return np.stack([np.zeros(shape, np.float32) if v is None else v for v in values])


def collate_windows(items: Sequence[WindowItem]) -> tuple[SequenceBatch, WindowInfo]:
    """Stack B windows of T frames into a SequenceBatch (zeros where labels are missing)."""
    samples = [it.sample for it in items]
    t = samples[0].num_frames
    pose = _stack([s.pose for s in samples], (t, 3 * NUM_SMPL_JOINTS))
    images = None
    # Images stay uint8 and phi float16 until they reach the model (Generator.forward
    # converts): a quarter / half of the bytes through the loader workers' queues.
    if items[0].images is not None:
        arr = np.stack([it.images for it in items])  # (B, T, C, C, 3) uint8
        images = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 1, 4, 2, 3)))
    phi = None
    if samples[0].phi is not None and images is None:
        phi = torch.from_numpy(np.stack([s.phi for s in samples]))
    batch = SequenceBatch(
        kp2d=torch.from_numpy(np.stack([s.kp2d for s in samples]).astype(np.float32)),
        joints3d=torch.from_numpy(_stack([s.joints3d for s in samples], (t, NUM_LSP_JOINTS, 3))),
        pose_aa=torch.from_numpy(pose).view(len(items), t, NUM_SMPL_JOINTS, 3),
        betas=torch.from_numpy(_stack([s.betas for s in samples], (NUM_BETAS,))),
        has_3d_joints=torch.tensor([float(s.has_3d_joints) for s in samples]),
        has_smpl=torch.tensor([float(s.has_smpl) for s in samples]),
        phi=phi,
        images=images,
    )
    info = WindowInfo(
        key=[it.key for it in items],
        dataset=[s.dataset for s in samples],
        sequence=[s.sequence for s in samples],
        track_id=torch.tensor([s.track_id for s in samples], dtype=torch.int64),
        start=torch.tensor([it.start for it in items], dtype=torch.int64),
        frame_index=torch.from_numpy(np.stack([s.frame_index for s in samples]).astype(np.int64)),
    )
    return batch, info


def collate_mocap(samples: Sequence[MocapSample]) -> MocapBatch:
    """M mocap samples -> MocapBatch with pose_aa (M, 24, 3) and betas (M, 10)."""
    pose = np.stack([s.pose for s in samples]).astype(np.float32)
    return MocapBatch(
        pose_aa=torch.from_numpy(pose).view(len(samples), NUM_SMPL_JOINTS, 3),
        betas=torch.from_numpy(np.stack([s.betas for s in samples]).astype(np.float32)),
    )
