"""HMMR's online augmentation of stored crops and their keypoints (``src/util/tube_augmentation.py``
in akanazawa/human_dynamics).

Stored crops are square JPEG crops of side ``S`` (HMMR stores a 300 px pre-crop with the
person about 150 px tall, centred: ``process_image`` of its conversion scripts, e.g.
``src/datasets/h36_to_tfrecords_video.py``); keypoints are normalised crop coordinates
``x_norm = 2 * x_px / S - 1`` with pixel centres at integer coordinates (as in
:mod:`lightning_hmd.data.cropping`). Output crops have side ``C`` (``data.img_size``).

One frame's map, in normalised coordinates: ``u = s * x + 2 * t / C`` with scale
``s = 2^U(-scale_max, scale_max)`` and translation ``t ~ U(-trans_max, trans_max) * C / 224``
output pixels per axis (``trans_max`` is in pixels of HMMR's 224-pixel crop, so the jitter is
the same fraction of the crop at any ``C``); in pixels
``u_px = s * C / S * x_px + C / 2 * (1 - s) + t``. The pixels are warped with the same
affine map (OpenCV, edge-replicated borders as HMMR's padding), so the drawn person and its
keypoints stay aligned. A horizontal flip mirrors the whole sequence (``x_px -> S - 1 - x_px``),
swaps left and right keypoints and 3D joints, and reflects the SMPL pose. Precomputed features
cannot be warped or flipped consistently, so a clip without images
comes back unchanged (HMMR freezes augmentation into its precomputed features too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from lightning_hmd.body.joints import KEYPOINT_FLIP_PERM, LSP14_FLIP_PERM, SMPL_FLIP_PERM
from lightning_hmd.config_tree import AugmentConfig  # the settings live in the config tree
from lightning_hmd.data.schema import ClipSample

_POSE_SIGN = np.array([1.0, -1.0, -1.0], dtype=np.float32)


@dataclass(frozen=True)
class Jitter:
    """The random draw of one sequence: scale (T,), translation (T, 2) in output pixels,
    and one flip for the whole sequence."""

    scale: np.ndarray
    translation: np.ndarray
    flip: bool


REFERENCE_CROP = 224  # HMMR's crop side, the unit of ``trans_max`` (flags of ``src/config.py``)


def sample_jitter(
    num_frames: int, cfg: AugmentConfig, rng: np.random.Generator, out_size: int = REFERENCE_CROP
) -> Jitter:
    """Draw the scale, translation (output pixels of an ``out_size`` crop) and flip of one
    sequence of ``num_frames`` frames."""
    n = num_frames if cfg.per_frame else 1
    scale = 2.0 ** rng.uniform(-cfg.scale_max, cfg.scale_max, size=n)
    trans_max = cfg.trans_max * out_size / REFERENCE_CROP
    trans = rng.uniform(-trans_max, trans_max, size=(n, 2))
    flip = bool(rng.random() < cfg.flip_prob)
    if not cfg.per_frame:
        scale = np.repeat(scale, num_frames)
        trans = np.repeat(trans, num_frames, axis=0)
    return Jitter(scale.astype(np.float64), trans.astype(np.float64), flip)


def identity_jitter(num_frames: int) -> Jitter:
    """No scale, no translation, no flip: the evaluation crop."""
    return Jitter(np.ones(num_frames), np.zeros((num_frames, 2)), False)


def frame_affines(jitter: Jitter, stored_size: int, out_size: int) -> np.ndarray:
    """(T, 2, 3) maps from stored-crop pixels to output pixels (flip included)."""
    s = jitter.scale
    a = s * out_size / stored_size
    b = out_size / 2.0 * (1.0 - s)[:, None] + jitter.translation  # (T, 2)
    m = np.zeros((len(s), 2, 3))
    m[:, 0, 0] = -a if jitter.flip else a
    m[:, 0, 2] = b[:, 0] + (a * (stored_size - 1) if jitter.flip else 0.0)
    m[:, 1, 1] = a
    m[:, 1, 2] = b[:, 1]
    return m


def crop_frames(images: np.ndarray, jitter: Jitter, out_size: int) -> np.ndarray:
    """Warp stored crops with the jitter.

    Args:
        images: (T, S, S, 3) uint8 stored crops.

    Returns:
        (T, C, C, 3) uint8 output crops, ``C = out_size``.
    """
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"images must have shape (T, S, S, 3), got {images.shape}")
    affines = frame_affines(jitter, images.shape[1], out_size)
    out = np.empty((len(images), out_size, out_size, 3), dtype=np.uint8)
    for i, (image, m) in enumerate(zip(images, affines, strict=True)):
        shrink = abs(m[0, 0]) < 1.0
        cv2.warpAffine(
            image,
            m,
            (out_size, out_size),
            dst=out[i],
            flags=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


def jitter_keypoints(
    kp2d: np.ndarray, jitter: Jitter, stored_size: int, out_size: int
) -> np.ndarray:
    """Map normalised keypoints of the stored crops to normalised keypoints of the output crops.

    Invisible keypoints become ``(0, 0, 0)``; visible ones keep their place even outside the
    output crop (beyond [-1, 1]), still visible, as HMMR's
    ``TubePreprocessor.preprocess_image`` (``src/util/tube_augmentation.py``), which zeroes only
    the invisible ones. A flip also swaps left and right keypoints.

    Args:
        kp2d: (T, K, 3) normalised ``x, y`` and visibility.

    Returns:
        (T, K, 3) float32.
    """
    affines = frame_affines(jitter, stored_size, out_size)  # (T, 2, 3)
    px = (kp2d[..., :2].astype(np.float64) + 1.0) * stored_size / 2.0  # (T, K, 2)
    out_px = np.einsum("tij,tkj->tki", affines[:, :, :2], px) + affines[:, None, :, 2]
    xy = 2.0 * out_px / out_size - 1.0
    vis = kp2d[..., 2] > 0
    out = np.where(vis[..., None], np.concatenate([xy, kp2d[..., 2:3]], -1), 0.0)
    if jitter.flip:
        out = out[:, list(KEYPOINT_FLIP_PERM)]
    return out.astype(np.float32)


def flip_pose_aa(pose: np.ndarray) -> np.ndarray:
    """Reflect SMPL axis-angle poses (..., 72): swap left/right joints, negate y and z
    (HMMR's ``reflect_pose``, ``src/util/data_utils.py``; the numpy twin of
    ``geometry.flip.flip_smpl_pose``)."""
    p = pose.reshape(*pose.shape[:-1], 24, 3)[..., list(SMPL_FLIP_PERM), :] * _POSE_SIGN
    return p.reshape(pose.shape).astype(pose.dtype)


def flip_joints3d(joints: np.ndarray) -> np.ndarray:
    """Mirror LSP-14 joints (..., 14, 3) in x = 0 and swap left/right."""
    out = joints[..., list(LSP14_FLIP_PERM), :].copy()
    out[..., 0] *= -1.0
    return out


def _flip_labels(sample: ClipSample) -> ClipSample:
    """Flip the 3D labels of a sample (2D keypoints are handled with the pixels)."""
    return replace(
        sample,
        joints3d=None if sample.joints3d is None else flip_joints3d(sample.joints3d),
        pose=None if sample.pose is None else flip_pose_aa(sample.pose),
    )


def augment_clip(
    sample: ClipSample,
    images: np.ndarray | None,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    out_size: int,
) -> tuple[ClipSample, np.ndarray | None]:
    """HMMR's training augmentation of one window (``TubePreprocessor``,
    ``src/util/tube_augmentation.py``).

    Args:
        sample: the window's labels (kp2d normalised to the stored crops).
        images: (T, S, S, 3) uint8 stored crops, or None for precomputed features (returned
            unchanged, see the module docstring).
        cfg: augmentation settings; ``enabled=False`` gives the evaluation crop.
        rng: the random stream (deterministic for a seed).
        out_size: C.

    Returns:
        (sample with kp2d normalised to the output crops, (T, C, C, 3) uint8 or None).
    """
    if images is None:
        return sample, None
    n = sample.num_frames
    if len(images) != n:
        raise ValueError(f"{len(images)} images for a window of {n} frames")
    jitter = sample_jitter(n, cfg, rng, out_size) if cfg.enabled else identity_jitter(n)
    return apply_jitter(sample, images, jitter, out_size)


def apply_jitter(
    sample: ClipSample, images: np.ndarray, jitter: Jitter, out_size: int
) -> tuple[ClipSample, np.ndarray]:
    """Warp (T, S, S, 3) stored crops with ``jitter`` to (T, C, C, 3) and map the labels:
    kp2d to the output crops, 3D joints and pose reflected when the jitter flips."""
    kp = jitter_keypoints(sample.kp2d, jitter, images.shape[1], out_size)
    out = crop_frames(images, jitter, out_size)
    labels = _flip_labels(sample) if jitter.flip else sample
    return replace(labels, kp2d=kp), out


def center_crop(
    sample: ClipSample, images: np.ndarray, out_size: int
) -> tuple[ClipSample, np.ndarray]:
    """The evaluation crop: stored crops resized to C with the augmentation map at scale 1."""
    jitter = identity_jitter(sample.num_frames)
    kp = jitter_keypoints(sample.kp2d, jitter, images.shape[1], out_size)
    return replace(sample, kp2d=kp), crop_frames(images, jitter, out_size)
