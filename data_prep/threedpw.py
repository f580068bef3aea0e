"""``3dpw``: 3D Poses in the Wild, for evaluation (train/validation/test as published).

Source layout (as published)::

    SRC/sequenceFiles/{train,validation,test}/<sequence>.pkl
    SRC/imageFiles/<sequence>/image_00000.jpg ...

Each pickle (Python 2, latin-1) holds per person ``poses`` (N, 72), ``trans`` (N, 3),
``betas`` (10,), ``poses2d`` (N, 3, 18) (OpenPose COCO-18 x, y, confidence),
``campose_valid`` (N,) and ``genders``, and per frame ``cam_poses`` (N, 4, 4) world-to-camera
and ``img_frame_ids`` (N,).

Ground truth as HMMR's ``src/datasets/3dpw_to_tfrecords_video.py``:

- 2D keypoints: ``poses2d`` mapped to the 25-keypoint order, visible where the confidence
  exceeds 0.1.
- 3D joints (with ``body_model_dir``): the 14 LSP joints of the cocoplus regressor applied to
  the mesh of the person's **gendered** model (``SMPL_MALE`` / ``SMPL_FEMALE``; the neutral
  model if those files are absent), in camera coordinates.
- SMPL: the pose with the global rotation taken into the camera frame, and neutral-model
  betas fitted to the gendered T-pose mesh. HMMR fits them with 5000 gradient steps
  (``save_neutral_shape`` in ``src/datasets/threedpw/compute_neutral_shape.py``); the
  T-pose mesh is linear in the betas, so here the same least-squares fit is solved exactly.
- Frames where the camera pose is not valid end a track; each run of valid frames of a
  person becomes a track (numbered in order of person, then time).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from data_prep.common import (
    DEFAULT_CHUNK_LEN,
    DEFAULT_SHARD_SIZE,
    Track,
    load_pickle,
    read_image,
    require_keys,
    require_layout,
    write_splits,
)
from lightning_hmd.body.joints import KEYPOINT_NAMES, NUM_BETAS, NUM_KEYPOINTS, NUM_LSP_JOINTS
from lightning_hmd.body.model_files import load_smpl_arrays, smpl_filename
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.cropping import visible_runs
from lightning_hmd.data.manifest import Manifest
from lightning_hmd.errors import DataError
from lightning_hmd.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

NAME = "3dpw"
LAYOUT = "sequenceFiles/{train,validation,test}/<sequence>.pkl and imageFiles/<sequence>/"
FPS = 30.0
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}
VIS_THRESHOLD = 0.1
COCO18_NAMES = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear",
    "l_ear",
)  # fmt: skip
# COCO ankles are the LSP ankles (keypoints 0 and 5, as the 3D joints).
_TARGET = {"r_ankle": "r_heel", "l_ankle": "l_heel"}
COCO18_TO_KEYPOINT = tuple(KEYPOINT_NAMES.index(_TARGET.get(n, n)) for n in COCO18_NAMES)
PERSON_KEYS = ("poses", "trans", "betas", "poses2d", "campose_valid", "genders")
GENDERS = {"m": "male", "f": "female"}


def coco18_to_keypoints(poses2d: np.ndarray) -> np.ndarray:
    """(N, 3, 18) OpenPose COCO-18 x, y, confidence -> (N, 25, 3) keypoints."""
    kp = np.zeros((len(poses2d), NUM_KEYPOINTS, 3))
    kp[:, list(COCO18_TO_KEYPOINT)] = np.transpose(poses2d, (0, 2, 1))
    return kp


def fit_neutral_betas(gendered: dict, neutral: dict) -> callable:
    """A function ``betas_gendered (10,) -> betas_neutral (10,)``: the least-squares fit of the
    neutral T-pose mesh to the gendered T-pose mesh (exact, since both are linear in betas)."""
    s_n = neutral["shapedirs"][..., :NUM_BETAS].reshape(-1, NUM_BETAS)
    pinv = np.linalg.pinv(s_n)

    def fit(betas: np.ndarray) -> np.ndarray:
        mesh = gendered["v_template"] + gendered["shapedirs"][..., :NUM_BETAS] @ betas
        return (pinv @ (mesh - neutral["v_template"]).reshape(-1)).astype(np.float32)

    return fit


class _Models:
    """Gendered body models (or the neutral one where a gendered file is absent)."""

    def __init__(self, model_dir: Path) -> None:
        self.dir = Path(model_dir)
        self.neutral = load_smpl_arrays(model_dir, "neutral")
        self._cache: dict[str, tuple[BodyModel, object]] = {}

    def get(self, gender: str) -> tuple[BodyModel, object]:
        name = GENDERS.get(gender, "neutral")
        if not (self.dir / smpl_filename(name)).is_file():
            name = "neutral"
        if name not in self._cache:
            model = BodyModel.from_dir(self.dir, name, extra_regressors=("cocoplus",))
            arrays = self.neutral if name == "neutral" else load_smpl_arrays(self.dir, name)
            self._cache[name] = (model, fit_neutral_betas(arrays, self.neutral))
        return self._cache[name]


def camera_frame(pose: np.ndarray, cam_poses: np.ndarray) -> np.ndarray:
    """(N, 72) world-frame poses -> camera-frame poses (global rotation premultiplied)."""
    out = np.array(pose, np.float32)
    r_world = axis_angle_to_matrix(torch.from_numpy(out[:, :3]))
    r_cam = torch.from_numpy(np.asarray(cam_poses[:, :3, :3], np.float32))
    out[:, :3] = matrix_to_axis_angle(r_cam @ r_world).numpy()
    return out


def joints_in_camera(
    model: BodyModel, pose: np.ndarray, betas: np.ndarray, trans: np.ndarray, cam: np.ndarray
) -> np.ndarray:
    """(N, 14, 3) LSP joints of the posed mesh in camera coordinates (metres)."""
    rot = axis_angle_to_matrix(torch.from_numpy(np.asarray(pose, np.float32)).view(-1, 24, 3))
    with torch.no_grad():
        kp = model(rot, torch.from_numpy(np.asarray(betas, np.float32))).joints.numpy()
    world = kp[:, :NUM_LSP_JOINTS] + np.asarray(trans, np.float32)[:, None]
    return np.einsum("nij,nkj->nki", cam[:, :3, :3], world) + cam[:, None, :3, 3]


def sequence_tracks(src: Path, pkl: Path, split: str, models: _Models | None) -> Iterator[Track]:
    """The tracks of one sequence file."""
    seq = require_keys(load_pickle(pkl), ("sequence", "cam_poses", "img_frame_ids"), pkl)
    seq = require_keys(seq, PERSON_KEYS, pkl)
    name = str(seq["sequence"])
    cams = np.asarray(seq["cam_poses"], np.float64)
    frame_ids = np.asarray(seq["img_frame_ids"], np.int64)
    n = len(frame_ids)
    if cams.shape != (n, 4, 4):
        raise DataError(f"{pkl}: 'cam_poses' has shape {cams.shape}, expected ({n}, 4, 4)")
    images = src / "imageFiles" / name
    track_id = 0
    for person, gender in enumerate(seq["genders"]):
        poses2d = np.asarray(seq["poses2d"][person], np.float64)
        if poses2d.shape != (n, 3, len(COCO18_NAMES)):
            raise DataError(
                f"{pkl}: 'poses2d'[{person}] has shape {poses2d.shape}, expected ({n}, 3, 18)"
            )
        pose = np.asarray(seq["poses"][person], np.float64)
        trans = np.asarray(seq["trans"][person], np.float64)
        betas = np.asarray(seq["betas"][person], np.float64)[:NUM_BETAS]
        valid = np.asarray(seq["campose_valid"][person]).astype(bool)
        kp = coco18_to_keypoints(poses2d)
        joints3d, pose_cam, neutral = None, None, None
        if models is not None:
            model, fit = models.get(str(gender))
            joints3d = joints_in_camera(model, pose, betas, trans, cams)
            pose_cam = camera_frame(pose, cams)
            neutral = fit(betas)
        for run in visible_runs(valid.astype(int), 1, 1):
            idx = np.arange(run.start, run.stop)
            yield Track(
                dataset=NAME,
                split=split,
                sequence=name,
                track_id=track_id,
                fps=FPS,
                frame_index=frame_ids[idx],
                kp2d=kp[idx],
                load_frame=lambda i, idx=idx: read_image(
                    images / f"image_{frame_ids[idx[i]]:05d}.jpg"
                ),
                joints3d=None if joints3d is None else joints3d[idx],
                pose=None if pose_cam is None else pose_cam[idx],
                betas=neutral,
            )
            track_id += 1


def split_tracks(src: Path, folder: str, split: str, models: _Models | None) -> Iterator[Track]:
    """The tracks of one split's sequence files, in sorted order."""
    for pkl in sorted((src / "sequenceFiles" / folder).glob("*.pkl")):
        yield from sequence_tracks(src, pkl, split, models)


def convert(
    src: Path,
    out: Path,
    *,
    body_model_dir: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    chunk_len: int = DEFAULT_CHUNK_LEN,
    jpeg: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Manifest]:
    """Convert 3DPW to ``OUT/{train,val,test}``; returns manifests by split.

    Without ``body_model_dir`` only the 2D keypoints are written (no 3D joints, no SMPL).
    """
    src = Path(src)
    require_layout(src, ["sequenceFiles/*/*.pkl", "imageFiles/*"], NAME, LAYOUT)
    models = None if body_model_dir is None else _Models(Path(body_model_dir))
    tracks = {
        split: split_tracks(src, folder, split, models) for split, folder in SPLIT_FOLDERS.items()
    }
    return write_splits(
        out,
        tracks,
        source="3DPW" + ("" if models else " (2D keypoints only: no body model given)"),
        shard_size=shard_size,
        chunk_len=chunk_len,
        jpeg=jpeg,
        vis_threshold=VIS_THRESHOLD,
        overwrite=overwrite,
        progress=progress,
    )
