"""Person tracks to clip samples: HMMR's cropping, chunking and writing (the dataset scripts
of ``prepare_datasets.sh`` and ``src/util/smooth_bbox.py`` in akanazawa/human_dynamics).

A producer (a converter in ``data_prep/`` or the synthetic generator) builds one
:class:`Track` per person track (keypoints in original-image pixels, optional 3D joints and
SMPL, a frame loader) and hands it to :func:`write_track`, which applies HMMR's preprocessing
(boxes from visible keypoints, person scaled to 150 px, smoothed boxes, 300 px pre-crops for
training and 224 px crops otherwise), cuts the track into chunks of at most ``chunk_len``
frames and writes them as clip samples.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lightning_hmd.body.joints import NUM_KEYPOINTS
from lightning_hmd.data.cropping import (
    EVAL_CROP_SIZE,
    PERSON_HEIGHT_PX,
    TRAIN_CROP_SIZE,
    BoxParams,
    CropBox,
    box_from_keypoints,
    crop_image,
    smooth_boxes,
    to_crop_normalised,
)
from lightning_hmd.data.schema import ClipSample, make_key
from lightning_hmd.data.shards import ShardSetWriter

# HMMR cuts Human3.6M training tracks into 150-frame chunks (the ``max_sequence_length`` flag
# of ``src/datasets/h36_to_tfrecords_video.py``)
DEFAULT_CHUNK_LEN = 150
JPEG_QUALITY = 90


def crop_size_for(split: str) -> int:
    """300 px pre-crops for training (augmentation crops 224 later), 224 px otherwise."""
    return TRAIN_CROP_SIZE if split == "train" else EVAL_CROP_SIZE


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """(H, W, 3) uint8 -> JPEG bytes (deterministic for the same pixels)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class Track:
    """One person track of a sequence, before cropping.

    Attributes:
        dataset: dataset name (``penn-action``, ``3dpw``, ``h36m``...).
        split: ``train``, ``val`` or ``test``.
        sequence: sequence (video) name.
        track_id: person index within the sequence.
        fps: frame rate.
        frame_index: (N,) frame numbers in the original sequence, increasing.
        kp2d: (N, 25, 3) keypoints in original-image pixels with visibility (0/1 or
            confidence; see ``vis_threshold`` of :func:`write_track`).
        load_frame: ``load_frame(i)`` returns frame ``i`` of the track (position in
            ``frame_index``) as (H, W, 3) uint8; None writes no JPEG crops.
        joints3d: optional (N, 14, 3) LSP-14 joints in metres.
        pose: optional (N, 72) SMPL axis-angle pose.
        betas: optional (10,) SMPL shape.
    """

    dataset: str
    split: str
    sequence: str
    track_id: int
    fps: float
    frame_index: np.ndarray
    kp2d: np.ndarray
    load_frame: Callable[[int], np.ndarray] | None = None
    joints3d: np.ndarray | None = None
    pose: np.ndarray | None = None
    betas: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.frame_index)
        if np.shape(self.kp2d) != (n, NUM_KEYPOINTS, 3):
            raise ValueError(
                f"track {self.sequence}/{self.track_id}: kp2d has shape {np.shape(self.kp2d)}, "
                f"expected ({n}, {NUM_KEYPOINTS}, 3)"
            )


def chunk_ranges(start: int, stop: int, chunk_len: int) -> list[range]:
    """Cut frames ``start:stop`` into consecutive chunks of at most ``chunk_len`` frames."""
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk_len}")
    return [range(s, min(s + chunk_len, stop)) for s in range(start, stop, chunk_len)]


def _chunk_crops(boxes: BoxParams, start: int, frames: range, size: int) -> list[CropBox]:
    """The crop of each frame of a chunk, from the track's smoothed boxes (``boxes`` starts
    at frame ``start``)."""
    return [
        CropBox(
            cx=float(boxes.center[t - start, 0]),
            cy=float(boxes.center[t - start, 1]),
            scale=float(boxes.scale[t - start]),
            size=size,
        )
        for t in frames
    ]


def _chunk_jpegs(track: Track, frames: range, crops: list[CropBox]) -> list[bytes]:
    """The JPEG crops of a chunk's frames (each frame loaded with ``track.load_frame``)."""
    return [
        encode_jpeg(crop_image(track.load_frame(t), b)) for t, b in zip(frames, crops, strict=True)
    ]


def _chunk_sample(
    track: Track,
    chunk: int,
    frames: range,
    kp: np.ndarray,
    crops: list[CropBox],
    images: list[bytes] | None,
) -> ClipSample:
    """Chunk ``chunk`` of the track (its ``frames``, their ``crops`` and JPEG crops) as a
    clip sample: the track's keypoints ``kp`` (N, 25, 3; original-image pixels, visibility
    0/1) in crop-normalised coordinates, the labels sliced to the chunk."""
    sl = slice(frames.start, frames.stop)
    return ClipSample(
        dataset=track.dataset,
        split=track.split,
        sequence=track.sequence,
        track_id=track.track_id,
        fps=float(track.fps),
        chunk=chunk,
        kp2d=np.stack([to_crop_normalised(kp[t], b) for t, b in zip(frames, crops, strict=True)]),
        crop_box=np.asarray([b.extent for b in crops], np.float32),
        crop_scale=np.asarray([b.scale for b in crops], np.float32),
        frame_index=np.asarray(track.frame_index[sl], np.int32),
        jpeg=images,
        joints3d=None if track.joints3d is None else np.asarray(track.joints3d[sl], np.float32),
        pose=None if track.pose is None else np.asarray(track.pose[sl], np.float32),
        betas=None if track.betas is None else np.asarray(track.betas, np.float32),
    )


def write_track(
    writer: ShardSetWriter,
    track: Track,
    *,
    chunk_len: int = DEFAULT_CHUNK_LEN,
    crop_size: int | None = None,
    vis_threshold: float = 0.0,
    jpeg: bool = True,
    person_height: float = PERSON_HEIGHT_PX,
) -> int:
    """Crop a track as HMMR does, cut it into chunks and write them; returns chunks written.

    Frames before the first and after the last frame with visible keypoints are dropped
    (they have no box). Chunks that ``writer`` already holds (a resumed conversion) are
    skipped without loading their frames.

    Args:
        writer: the open shard set writer of the track's split.
        track: the track.
        chunk_len: frames per chunk (the last chunk may be shorter).
        crop_size: crop side in pixels; default :func:`crop_size_for` the split.
        vis_threshold: a keypoint is visible when its third value is above this.
        jpeg: write the JPEG crops (needs ``track.load_frame``).
        person_height: the person's height in crop pixels (HMMR: 150 in 300/224 px crops).
    """
    size = crop_size or crop_size_for(track.split)
    kp = np.asarray(track.kp2d, np.float64).copy()
    kp[..., 2] = kp[..., 2] > vis_threshold
    boxes, start, stop = smooth_boxes(box_from_keypoints(kp, person_height=person_height))
    written = 0
    for chunk, frames in enumerate(chunk_ranges(start, stop, chunk_len)):
        key = make_key(track.dataset, track.sequence, track.track_id, chunk)
        if writer.is_done(key):
            continue
        crops = _chunk_crops(boxes, start, frames, size)
        images = None
        if jpeg and track.load_frame is not None:
            images = _chunk_jpegs(track, frames, crops)
        writer.write(_chunk_sample(track, chunk, frames, kp, crops, images), key)
        written += 1
    return written
