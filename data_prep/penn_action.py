"""``penn-action``: Penn Action videos with 13 annotated joints (2D only).

Source layout (as published)::

    SRC/frames/0001/000001.jpg ...   one folder of JPEG frames per video (1-based names)
    SRC/labels/0001.mat              per video: x, y, visibility (N, 13), train (1 / -1),
                                     action, bbox, dimensions, nframes

Splits as HMMR's ``src/datasets/upenn_to_tfrecords_video.py``: the official ``train`` flag; of
the official test videos every 10th (in sorted order, starting with the first) is validation.
Tracks are cut where 4 or fewer joints are visible and runs shorter than 40 frames are dropped;
each remaining run is one track. Joints map to the 25-keypoint order with the head on
``head_top``, the ankles on the separate ankle keypoints (23/24), and no neck. A split left
without tracks (no video in it, or none with a track) is not written, and a warning names it
and why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.io

from data_prep.common import (
    DEFAULT_CHUNK_LEN,
    DEFAULT_SHARD_SIZE,
    Track,
    read_image,
    require_keys,
    require_layout,
    write_splits,
)
from lightning_hmd.body.joints import KEYPOINT_NAMES, NUM_KEYPOINTS
from lightning_hmd.data.cropping import visible_runs
from lightning_hmd.data.manifest import Manifest
from lightning_hmd.errors import DataError

NAME = "penn-action"
LAYOUT = "frames/<video>/<frame>.jpg and labels/<video>.mat"
FPS = 30.0
PENN_JOINTS = (
    "head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)  # fmt: skip
_TARGET = {"head": "head_top", "l_ankle": "l_ankle", "r_ankle": "r_ankle"}
PENN_TO_KEYPOINT = tuple(KEYPOINT_NAMES.index(_TARGET.get(n, n)) for n in PENN_JOINTS)
MIN_VISIBLE = 5  # tracks are cut where <= 4 joints are visible
MIN_TRACK_LEN = 40
VAL_EVERY = 10
log = logging.getLogger(__name__)


def read_labels(path: Path) -> dict[str, np.ndarray]:
    """One ``labels/*.mat`` -> x, y, visibility (N, 13) and the train flag."""
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError) as err:
        raise DataError(f"{path}: unreadable .mat ({err})") from err
    mat = require_keys(mat, ("x", "y", "visibility", "train"), path)
    x, y, vis = (np.asarray(mat[k], np.float64) for k in ("x", "y", "visibility"))
    for k, a in (("x", x), ("y", y), ("visibility", vis)):
        if a.ndim != 2 or a.shape[1] != len(PENN_JOINTS) or a.shape != x.shape:
            raise DataError(f"{path}: {k!r} has shape {a.shape}, expected (N, {len(PENN_JOINTS)})")
    return {"x": x, "y": y, "visibility": vis, "train": int(np.asarray(mat["train"]).ravel()[0])}


def to_keypoints(x: np.ndarray, y: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Penn Action (N, 13) coordinates and visibility -> (N, 25, 3) keypoints."""
    kp = np.zeros((len(x), NUM_KEYPOINTS, 3))
    idx = list(PENN_TO_KEYPOINT)
    kp[:, idx, 0], kp[:, idx, 1], kp[:, idx, 2] = x, y, vis > 0
    return kp


def video_splits(label_files: list[Path]) -> dict[str, list[Path]]:
    """Official train/test flag; every 10th test video (sorted) becomes validation."""
    splits: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    tests = 0
    for path in sorted(label_files):
        if read_labels(path)["train"] == 1:
            splits["train"].append(path)
        else:
            splits["val" if tests % VAL_EVERY == 0 else "test"].append(path)
            tests += 1
    return splits


def video_tracks(src: Path, label: Path, split: str) -> Iterator[Track]:
    """The tracks of one video: runs with enough visible joints, at least 40 frames long."""
    lab = read_labels(label)
    kp = to_keypoints(lab["x"], lab["y"], lab["visibility"])
    frames_dir = src / "frames" / label.stem
    frames = sorted(frames_dir.glob("*.jpg"))
    if len(frames) < len(kp):
        raise DataError(f"{frames_dir}: {len(frames)} frames, but {label} labels {len(kp)}")
    for track_id, run in enumerate(visible_runs(kp[..., 2].sum(-1), MIN_VISIBLE, MIN_TRACK_LEN)):
        idx = np.arange(run.start, run.stop)
        yield Track(
            dataset=NAME,
            split=split,
            sequence=label.stem,
            track_id=track_id,
            fps=FPS,
            frame_index=idx,
            kp2d=kp[idx],
            load_frame=lambda i, idx=idx: read_image(frames[idx[i]]),
        )


def split_tracks(src: Path, labels: list[Path], split: str) -> Iterator[Track]:
    """The tracks of one split's videos, in order."""
    for label in labels:
        yield from video_tracks(src, label, split)


def _why_empty(split: str, labels: list[Path], splits: dict[str, list[Path]]) -> str:
    """Why a split has no track: no video in it, or no run long enough in its videos."""
    if labels:
        names = ", ".join(p.stem for p in labels[:5]) + (", ..." if len(labels) > 5 else "")
        return (
            f"none of its {len(labels)} video(s) ({names}) has {MIN_TRACK_LEN} consecutive "
            f"frames with at least {MIN_VISIBLE} visible joints"
        )
    if split == "test" and splits["val"]:
        names = ", ".join(p.stem for p in splits["val"][:5])
        return (
            f"the {len(splits['val'])} official test video(s) ({names}) all went to val (every "
            f"{VAL_EVERY}th official test video, in sorted order from the first, is validation)"
        )
    flag = "train 1" if split == "train" else "train -1 (official test)"
    return f"no video's labels/*.mat has {flag}"


def convert(
    src: Path,
    out: Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    chunk_len: int = DEFAULT_CHUNK_LEN,
    jpeg: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Manifest]:
    """Convert Penn Action to ``OUT/{train,val,test}``; returns manifests by split.

    A split without tracks is not written (so a later conversion that finds its videos
    writes it); each is named in a warning with the reason.

    Raises:
        LayoutError: ``src`` does not have the published layout.
        ValueError: a bad label file, a video with fewer frames than labels, or no track in
            any split.
    """
    src = Path(src)
    require_layout(src, ["labels/*.mat", "frames/*/*.jpg"], NAME, LAYOUT)
    splits = video_splits(list((src / "labels").glob("*.mat")))
    # the tracks come from the labels alone (frames are read when written): cheap to list
    tracks = {split: list(split_tracks(src, labels, split)) for split, labels in splits.items()}
    empty = {s: _why_empty(s, splits[s], splits) for s, t in tracks.items() if not t}
    if len(empty) == len(tracks):
        reasons = "; ".join(f"{split}: {why}" for split, why in empty.items())
        raise DataError(f"{src}: no track in any split ({reasons})")
    for split, why in empty.items():
        log.warning("%s: the %s split is empty and was not written: %s", NAME, split, why)
    return write_splits(
        out,
        {split: t for split, t in tracks.items() if t},
        source="Penn Action",
        shard_size=shard_size,
        chunk_len=chunk_len,
        jpeg=jpeg,
        overwrite=overwrite,
        progress=progress,
    )
