"""The sample dataclasses: a clip (one chunk of one person track) and a mocap pose."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lightning_hmd.data.schema.members import SCHEMA_VERSION


@dataclass
class ClipSample:
    """One chunk of one person track: ``T`` frames, ``K = 25`` keypoints.

    Attributes:
        dataset: dataset name, lower-case (``penn-action``, ``h36m``, ``synthetic``...).
        split: ``train``, ``val`` or ``test`` (any non-empty name).
        sequence: sequence (video) name in the original dataset.
        track_id: person track id within the sequence, >= 0.
        fps: frame rate of the frames in this chunk, > 0.
        kp2d: (T, 25, 3) float32 normalised crop coordinates ``x, y`` and visibility in [0, 1].
        crop_box: (T, 4) float32 crop ``x0, y0, x1, y1`` in original image pixels,
            x1 > x0 and y1 > y0.
        crop_scale: (T,) float32 image scale applied before cropping, > 0.
        frame_index: (T,) int32 frame numbers in the original sequence, >= 0, increasing.
        chunk: position of this chunk within the track, >= 0.
        phi: optional (T, D) float16 features made by the encoder ``encoder_id``.
        encoder_id: id of the encoder that made ``phi``; set exactly when ``phi`` is.
        jpeg: optional list of T JPEG-encoded crops.
        joints3d: optional (T, 14, 3) float32 LSP-14 joints in metres.
        pose: optional (T, 72) float32 SMPL axis-angle pose; set exactly when ``betas`` is.
        betas: optional (10,) float32 SMPL shape.
        schema_version: the schema version the sample was written with.
        more_phi: further feature sets of the clip, encoder id -> (T, D_k) float16, in the
            order written (members ``phi_1.npy``, ``phi_2.npy``...); only with ``phi``, and
            no id twice (nor ``encoder_id``). A reader gives the model one set
            (:func:`lightning_hmd.data.stream.select_features`).
    """

    dataset: str
    split: str
    sequence: str
    track_id: int
    fps: float
    kp2d: np.ndarray
    crop_box: np.ndarray
    crop_scale: np.ndarray
    frame_index: np.ndarray
    chunk: int = 0
    phi: np.ndarray | None = None
    encoder_id: str | None = None
    jpeg: list[bytes] | None = None
    joints3d: np.ndarray | None = None
    pose: np.ndarray | None = None
    betas: np.ndarray | None = None
    schema_version: int = SCHEMA_VERSION
    more_phi: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def feature_sets(self) -> tuple[str, ...]:
        """The encoder ids of the feature sets the clip holds, the primary (``phi``) first;
        empty without phi."""
        if self.phi is None or self.encoder_id is None:
            return ()
        return (self.encoder_id, *self.more_phi)

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(np.shape(self.kp2d)[0]) if np.ndim(self.kp2d) else 0

    @property
    def has_3d_joints(self) -> bool:
        return self.joints3d is not None

    @property
    def has_smpl(self) -> bool:
        return self.pose is not None


@dataclass
class MocapSample:
    """One mocap pose for the discriminator.

    Attributes:
        pose: (72,) float32 SMPL axis-angle pose.
        betas: (10,) float32 SMPL shape.
        dataset: mocap source name, lower-case (``cmu``, ``h36m``, ``jointlim``, ``amass``...).
        schema_version: the schema version the sample was written with.
        sequence: the recording the pose comes from ("" when unknown); with ``frame`` it
            orders the poses into motions (windows of a motion discriminator).
        frame: the pose's index among the written poses of ``sequence`` (-1 when unknown);
            consecutive indices are consecutive written frames.
    """

    pose: np.ndarray
    betas: np.ndarray
    dataset: str = "mocap"
    schema_version: int = SCHEMA_VERSION
    sequence: str = ""
    frame: int = -1
