"""``h36m``: Human3.6M videos with 2D and 3D joints (3D joints, no SMPL: MoSh is withheld).

Source layout (as published, one folder per subject)::

    SRC/S1/Videos/Directions 1.54138969.mp4              50 fps videos, or a folder of the
    SRC/S1/Videos/Directions 1.54138969/*.jpg            same name holding extracted frames
    SRC/S1/MyPoseFeatures/D2_Positions/Directions 1.54138969.cdf       Pose (1, N, 64) pixels
    SRC/S1/MyPoseFeatures/D3_Positions_mono/Directions 1.54138969.cdf  Pose (1, N, 96) mm

As HMMR's ``src/datasets/h36/read_human36m.py`` / ``src/datasets/h36_to_tfrecords_video.py``:
every 2nd frame (25 fps); the 14 LSP joints from the 17-joint Human3.6M skeleton (ids 3, 2, 1,
4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10), millimetres to metres; subjects S1, S6, S7, S8 train,
S5 validation, S9, S11 test; validation and test use camera 3 only (``58860488``), training
every camera. HMMR writes 5 augmented copies of each training track (``--num_copy 5`` in
``prepare_datasets.sh``); here augmentation happens online.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cdflib
import numpy as np

from data_prep.common import (
    DEFAULT_CHUNK_LEN,
    DEFAULT_SHARD_SIZE,
    Track,
    read_image,
    require_layout,
    write_splits,
)
from data_prep.video import VideoFrames
from lightning_hmd.body.joints import H36M_TO_LSP14, NUM_KEYPOINTS, NUM_LSP_JOINTS
from lightning_hmd.data.manifest import Manifest
from lightning_hmd.errors import DataError, MissingPathError

NAME = "h36m"
LAYOUT = "S<n>/Videos/<action>.<camera>.mp4 and S<n>/MyPoseFeatures/D{2,3}_Positions*/*.cdf"
SUBJECTS = {
    "train": ("S1", "S6", "S7", "S8"),
    "val": ("S5",),
    "test": ("S9", "S11"),
}
EVAL_CAMERAS = ("58860488",)  # HMMR's "cam03" (``*cam03*`` in ``src/evaluation/eval.py``)
FRAME_SKIP = 2  # 50 fps -> 25 fps
FPS = 50.0 / FRAME_SKIP
# The 17 joints of the usual Human3.6M skeleton within the 32 of the pose files.
H36M32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
_NAME_RE = re.compile(r"^(?P<action>.+)\.(?P<camera>\d+)$")


def read_pose(path: Path, dims: int) -> np.ndarray:
    """A pose ``.cdf`` -> (N, 32, dims) array; the error names the file."""
    try:
        pose = np.asarray(cdflib.CDF(str(path)).varget("Pose"), np.float64)
    except Exception as err:  # cdflib raises many types for unreadable files
        raise DataError(f"{path}: unreadable pose file ({err})") from err
    pose = pose.reshape(-1, pose.shape[-1])
    if pose.shape[-1] != 32 * dims:
        raise DataError(
            f"{path}: 'Pose' has {pose.shape[-1]} values per frame, expected {32 * dims}"
        )
    return pose.reshape(len(pose), 32, dims)


def to_lsp14(joints32: np.ndarray) -> np.ndarray:
    """(N, 32, C) Human3.6M joints -> (N, 14, C) LSP joints."""
    return joints32[:, list(H36M32_TO_17)][:, list(H36M_TO_LSP14)]


def _frames(videos: Path, stem: str) -> VideoFrames | list[Path]:
    folder = videos / stem
    if folder.is_dir():
        return sorted(folder.glob("*.jpg"))
    return VideoFrames(videos / f"{stem}.mp4")


def sequence_track(
    subject_dir: Path, d3: Path, split: str, frames: VideoFrames | list[Path]
) -> Track:
    """One camera view of one action as a track (every 2nd frame of ``frames``)."""
    stem = d3.stem
    d2_path = subject_dir / "MyPoseFeatures" / "D2_Positions" / d3.name
    if not d2_path.is_file():
        raise MissingPathError(f"{d2_path}: missing (the 2D joints of {d3})")
    j3 = to_lsp14(read_pose(d3, 3)) / 1000.0
    j2 = to_lsp14(read_pose(d2_path, 2))
    n = min(len(j3), len(j2))
    idx = np.arange(0, n, FRAME_SKIP)
    kp = np.zeros((len(idx), NUM_KEYPOINTS, 3))
    kp[:, :NUM_LSP_JOINTS, :2] = j2[idx]
    kp[:, :NUM_LSP_JOINTS, 2] = 1.0

    def load(i: int) -> np.ndarray:
        if isinstance(frames, list):
            return read_image(frames[idx[i]])
        return frames[int(idx[i])]

    return Track(
        dataset=NAME,
        split=split,
        sequence=f"{subject_dir.name}_{stem}",
        track_id=0,
        fps=FPS,
        frame_index=idx,
        kp2d=kp,
        load_frame=load,
        joints3d=j3[idx],
    )


def split_tracks(src: Path, split: str, cameras: tuple[str, ...] | None) -> Iterator[Track]:
    """Tracks of one split's subjects, sorted by subject and file name."""
    for subject in SUBJECTS[split]:
        d3_dir = src / subject / "MyPoseFeatures" / "D3_Positions_mono"
        for d3 in sorted(d3_dir.glob("*.cdf")):
            m = _NAME_RE.match(d3.stem)
            if m is None or (cameras is not None and m["camera"] not in cameras):
                continue
            frames = _frames(src / subject / "Videos", d3.stem)
            try:
                yield sequence_track(src / subject, d3, split, frames)
            finally:
                if isinstance(frames, VideoFrames):
                    frames.close()


def convert(
    src: Path,
    out: Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    chunk_len: int = DEFAULT_CHUNK_LEN,
    jpeg: bool = True,
    all_cameras: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Manifest]:
    """Convert Human3.6M to ``OUT/{train,val,test}``; returns manifests by split.

    ``all_cameras`` keeps every camera for validation and test too (HMMR: camera 3 only,
    ``main`` of ``src/evaluation/eval.py``).
    """
    src = Path(src)
    require_layout(src, ["S*/MyPoseFeatures/D3_Positions_mono/*.cdf"], NAME, LAYOUT)
    tracks = {
        split: split_tracks(src, split, None if split == "train" or all_cameras else EVAL_CAMERAS)
        for split in SUBJECTS
    }
    return write_splits(
        out,
        tracks,
        source="Human3.6M",
        shard_size=shard_size,
        chunk_len=chunk_len,
        jpeg=jpeg,
        overwrite=overwrite,
        progress=progress,
    )
