"""What the scorer compares: body-model joints, meshes and keypoints of one track's predictions
and of its ground truth, each computed once per track.

Predictions of this package (:class:`~lightning_hmd.evaluation.predict.ClipPrediction`) and
of other codebases (:mod:`.external`) both become :class:`TrackOutputs` through the same body
model, so every model is scored on the same joint and mesh definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lightning_hmd.body.joints import NUM_LSP_JOINTS
from lightning_hmd.body.smpl import KEYPOINTS, BodyModel
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.evaluation.predict import ClipPrediction
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.geometry.rotations import axis_angle_to_matrix

BODY_CHUNK = 512  # frames per body-model forward (bounds the memory of meshes)


@dataclass
class TrackTruth:
    """The ground truth of one track (N frames).

    Attributes:
        key: the track's key (its first chunk's sample key, see ``data.whole_tracks``).
        dataset, sequence, track_id: where it comes from; a video is (dataset, sequence).
        kp2d: (N, K, 3) keypoints, normalised crop coordinates and visibility.
        joints3d: (N, 14, 3) LSP joints in metres, or None.
        verts: (N, V, 3) GT mesh from the SMPL labels, or None.
        verts_tpose: (N, V, 3) GT zero-pose mesh (shape only), or None.
    """

    key: str
    dataset: str
    sequence: str
    track_id: int
    kp2d: Tensor
    joints3d: Tensor | None = None
    verts: Tensor | None = None
    verts_tpose: Tensor | None = None

    @property
    def num_frames(self) -> int:
        return int(self.kp2d.shape[0])

    def cpu(self) -> TrackTruth:
        return TrackTruth(
            self.key,
            self.dataset,
            self.sequence,
            self.track_id,
            self.kp2d.cpu(),
            *(
                None if t is None else t.cpu()
                for t in (self.joints3d, self.verts, self.verts_tpose)
            ),
        )


@dataclass
class TrackOutputs:
    """The predictions of M frames of a track, as the scorer needs them.

    Attributes:
        frames: (M,) int64 frame indices predicted, increasing.
        joints: (M, J, 3) predicted joints in metres, J >= 14 (the first 14 are LSP).
        kp2d: (M, K, 2) projected keypoints in normalised crop coordinates, or None.
        verts: (M, V, 3) predicted mesh, or None.
        verts_tpose: (M, V, 3) predicted zero-pose mesh, or None.
        deltas: Δt -> (M, J, 3) joints of frame ``frames + Δt`` predicted at ``frames``.
    """

    frames: np.ndarray
    joints: Tensor
    kp2d: Tensor | None = None
    verts: Tensor | None = None
    verts_tpose: Tensor | None = None
    deltas: dict[int, Tensor] = field(default_factory=dict)

    def cpu(self) -> TrackOutputs:
        return TrackOutputs(
            self.frames,
            self.joints.cpu(),
            *(None if t is None else t.cpu() for t in (self.kp2d, self.verts, self.verts_tpose)),
            {dt: j.cpu() for dt, j in self.deltas.items()},
        )


def _device(body: BodyModel) -> torch.device:
    return next(iter(body.buffers())).device


def _chunked(fn: Callable[[slice], Tensor], n: int) -> Tensor:
    return torch.cat([fn(slice(i, i + BODY_CHUNK)) for i in range(0, max(n, 1), BODY_CHUNK)])


def _zero_pose(n: int, device: torch.device) -> Tensor:
    return torch.eye(3, device=device).expand(n, 24, 3, 3)


@torch.no_grad()
def meshes(
    body: BodyModel, pose_rotmat: Tensor, betas: Tensor, tpose: bool = True
) -> tuple[Tensor, Tensor | None]:
    """(N, V, 3) posed and, with ``tpose``, zero-pose meshes of (N, 24, 3, 3) rotations and
    (N, 10) shapes, in chunks of frames."""
    n = pose_rotmat.shape[0]
    posed = _chunked(lambda s: body(pose_rotmat[s], betas[s]).vertices, n)
    if not tpose:
        return posed, None
    zero = _chunked(lambda s: body(_zero_pose(len(betas[s]), betas.device), betas[s]).vertices, n)
    return posed, zero


@torch.no_grad()
def joints_of(body: BodyModel, pose_rotmat: Tensor, betas: Tensor) -> Tensor:
    """(N, K, 3) body-model joints (the 25 HMMR keypoints, LSP first)."""
    n = pose_rotmat.shape[0]
    return _chunked(
        lambda s: body(pose_rotmat[s], betas[s], joints_only=True, regressors=KEYPOINTS).joints, n
    )


def outputs_from_prediction(
    pred: ClipPrediction,
    body: BodyModel,
    *,
    mesh: bool,
    tpose: bool = False,
    keypoints: bool = True,
) -> TrackOutputs:
    """Joints (and the posed mesh when ``mesh``, the zero-pose one when ``tpose``, projected
    keypoints when ``keypoints``) of a prediction's current frames and of each Δt head."""
    cur = pred.current
    frames = np.asarray(pred.frames, dtype=np.int64)
    if len(frames) == 0:  # a track the protocol's windows do not predict (too short)
        return TrackOutputs(frames=frames, joints=torch.zeros(0, NUM_LSP_JOINTS, 3))
    joints = joints_of(body, cur.pose_rotmat, cur.betas)
    out = TrackOutputs(frames=frames, joints=joints)
    if keypoints:
        out.kp2d = project_weak_perspective(joints, cur.cam)
    if mesh:
        out.verts, out.verts_tpose = meshes(body, cur.pose_rotmat, cur.betas, tpose=tpose)
    for dt, params in pred.deltas.items():
        out.deltas[dt] = (
            joints if params is cur else joints_of(body, params.pose_rotmat, params.betas)
        )
    return out


def truth_of(
    sample: ClipSample, key: str, body: BodyModel, *, mesh: bool, tpose: bool = False
) -> TrackTruth:
    """The ground truth of a (joined) track sample; meshes from its SMPL labels when ``mesh``
    (the zero-pose one too with ``tpose``), computed on the body model's device."""
    device = _device(body)
    truth = TrackTruth(
        key=key,
        dataset=sample.dataset,
        sequence=sample.sequence,
        track_id=int(sample.track_id),
        kp2d=torch.from_numpy(np.asarray(sample.kp2d, np.float32)),
    )
    if sample.joints3d is not None:
        truth.joints3d = torch.from_numpy(np.asarray(sample.joints3d, np.float32))
    if mesh and sample.pose is not None:
        n = sample.num_frames
        pose = torch.from_numpy(np.asarray(sample.pose, np.float32)).to(device)
        rot = axis_angle_to_matrix(pose.view(n, 24, 3))
        betas = torch.from_numpy(np.asarray(sample.betas, np.float32)).to(device).expand(n, 10)
        truth.verts, truth.verts_tpose = meshes(body, rot, betas, tpose=tpose)
    return truth
