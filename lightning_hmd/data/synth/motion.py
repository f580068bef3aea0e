"""Smooth, plausible motions: gait cycles and random smooth joint-angle trajectories.

Poses are SMPL axis-angle (T, 72) in HMR's camera convention (y down, z away from the camera:
an upright person has global rotation pi about x), joint angles kept within simple limits
(knees and elbows bend one way only, other joints within ``RANDOM_LIMIT`` rad of rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from lightning_hmd.body.joints import NUM_BETAS, SMPL_JOINT_NAMES

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
RANDOM_LIMIT = 0.5  # rad, largest deviation of a random joint angle from rest
# Scales of the unit-std smooth noise (:func:`_smooth_noise`), the same at every track length:
RANDOM_STD = 0.43  # rad, a random joint angle's deviation from rest (before the limit)
TURN_RATE = 0.03  # rad per frame per unit of noise: the body's slow turn (yaw)
DRIFT_RATE = 0.008  # metres per frame per unit of noise: the drift across the image
ARMS_DOWN = 1.2  # rad, shoulder rotation that lowers SMPL's T-pose arms


@dataclass(frozen=True)
class Motion:
    """One track's motion: pose (T, 72) axis-angle, betas (10,), translation (T, 3) metres in
    the camera frame (of the body model's origin)."""

    pose: np.ndarray
    betas: np.ndarray
    translation: np.ndarray


def _global_rotation(yaw: np.ndarray) -> np.ndarray:
    """(T,) yaw about the vertical (camera y) axis -> (T, 3) axis-angle of an upright body."""
    upright = Rotation.from_rotvec([np.pi, 0.0, 0.0])
    return (Rotation.from_euler("y", yaw[:, None]) * upright).as_rotvec()


def _smooth_noise(rng: np.random.Generator, t: int, dims: int, sigma: float) -> np.ndarray:
    """(t, dims) zero-mean noise smoothed over time (Gaussian of ``sigma`` frames) with unit
    standard deviation as a process, whatever ``t``.

    The scale is the filter's (the norm of its kernel), not the track's own spread: a track
    shorter than a few ``sigma`` holds little of the noise's variation, and dividing by its
    sample spread would inflate it (at ``sigma`` 8, about 4x for 22 frames, 2x for 40, 1.4x
    for 100), so that splits and mocap of different lengths would move differently.
    """
    pad = int(3 * sigma)
    x = gaussian_filter1d(rng.normal(size=(t + 2 * pad, dims)), sigma, axis=0)[pad : pad + t]
    impulse = np.zeros(2 * int(4 * sigma + 0.5) + 1)  # as long as the filter's kernel
    impulse[len(impulse) // 2] = 1.0
    return x / np.linalg.norm(gaussian_filter1d(impulse, sigma, mode="constant"))


def _rest_body(t: int) -> np.ndarray:
    body = np.zeros((t, 24, 3))
    body[:, J["l_shoulder"], 2] = -ARMS_DOWN
    body[:, J["r_shoulder"], 2] = ARMS_DOWN
    return body


def gait_pose(t: int, rng: np.random.Generator, fps: float) -> np.ndarray:
    """(t, 24, 3) body joint angles (global rotation left zero) of a walk cycle."""
    cadence = rng.uniform(0.8, 1.2)  # strides per second
    phase = 2 * np.pi * cadence * np.arange(t) / fps + rng.uniform(0, 2 * np.pi)
    stride = rng.uniform(0.3, 0.6)
    body = _rest_body(t)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        swing = sign * np.sin(phase)
        body[:, J[f"{side}_hip"], 0] = -stride * swing
        body[:, J[f"{side}_knee"], 0] = stride * 1.6 * np.clip(np.sin(phase * sign + 1.2), 0, 1)
        body[:, J[f"{side}_shoulder"], 1] = 0.5 * stride * swing * (1 if side == "r" else -1)
        body[:, J[f"{side}_elbow"], 1] = (-1 if side == "l" else 1) * rng.uniform(0.2, 0.6)
    body[:, J["spine1"], 1] = 0.1 * np.sin(phase)
    return body


def random_pose(t: int, rng: np.random.Generator) -> np.ndarray:
    """(t, 24, 3) random smooth joint-angle trajectories within the limits."""
    body = _rest_body(t)
    noise = _smooth_noise(rng, t, 24 * 3, sigma=rng.uniform(4, 10)).reshape(t, 24, 3)
    body += np.clip(RANDOM_STD * noise, -RANDOM_LIMIT, RANDOM_LIMIT)
    for side in ("l", "r"):
        body[:, J[f"{side}_knee"], 0] = np.abs(body[:, J[f"{side}_knee"], 0]) * 2
        body[:, J[f"{side}_knee"], 1:] = 0.0
        e = body[:, J[f"{side}_elbow"], 1]
        body[:, J[f"{side}_elbow"], 1] = (-1 if side == "l" else 1) * np.abs(e) * 2
    return body


def make_motion(
    t: int, rng: np.random.Generator, fps: float, depth: tuple[float, float] = (6.0, 9.0)
) -> Motion:
    """A track's motion: half gait cycles, half random smooth motions; a random, slowly
    turning body orientation, a random shape and a drifting position in front of the camera."""
    body = gait_pose(t, rng, fps) if rng.random() < 0.5 else random_pose(t, rng)
    # turn and drift accumulate per frame, so a longer track turns and drifts further
    yaw = rng.uniform(-np.pi, np.pi) + TURN_RATE * np.cumsum(_smooth_noise(rng, t, 1, 8.0)[:, 0])
    body[:, 0] = _global_rotation(yaw)
    z = rng.uniform(*depth)
    drift = DRIFT_RATE * np.cumsum(_smooth_noise(rng, t, 2, 10.0), axis=0)
    translation = np.zeros((t, 3))
    translation[:, :2] = rng.uniform(-0.3, 0.3, 2) + drift
    translation[:, 2] = z
    betas = np.clip(rng.normal(0.0, 1.0, NUM_BETAS), -2.5, 2.5)
    return Motion(body.reshape(t, 72).astype(np.float32), betas.astype(np.float32), translation)
