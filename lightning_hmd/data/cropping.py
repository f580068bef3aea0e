"""Person boxes from keypoints, their temporal smoothing, and HMMR's scale-and-crop.

HMMR (``prepare_datasets.sh``'s conversion scripts and ``src/util/smooth_bbox.py`` in
akanazawa/human_dynamics) crops every frame of a track the same way:

1. a box from the visible keypoints: centre of their bounding box, person height = the
   diagonal of that box, image scale = ``150 / height`` (the person becomes 150 px tall);
2. over the track, the per-frame ``(cx, cy, scale)`` are smoothed: gaps linearly
   interpolated, then a median filter (kernel 11), then a Gaussian filter (sigma 3);
3. the image is scaled, edge-padded and cropped around the centre: 300 px pre-crops for
   training (augmentation then takes a 224 crop), 224 px crops for evaluation.

All functions are pure and work in original-image pixels. A crop is described by a
:class:`CropBox`; keypoints map into it with :func:`to_crop_normalised`
(``x_norm = 2 * x_crop / S - 1``, HMMR's convention).

The warp uses OpenCV's ``warpAffine`` with ``BORDER_REPLICATE`` (edge padding) instead of
scaling the whole frame and padding it as HMMR does: the result is the same crop up to
sub-pixel interpolation (HMMR rounds the scaled centre to whole pixels), at the cost of
only the output pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import medfilt

PERSON_HEIGHT_PX = 150.0
TRAIN_CROP_SIZE = 300
EVAL_CROP_SIZE = 224
MEDIAN_KERNEL = 11
GAUSSIAN_SIGMA = 3.0


@dataclass(frozen=True)
class BoxParams:
    """Per-frame box parameters of a track.

    Attributes:
        center: (T, 2) box centre ``x, y`` in original-image pixels (NaN where unknown).
        scale: (T,) image scale that makes the person ``PERSON_HEIGHT_PX`` tall (NaN where
            unknown).
    """

    center: np.ndarray
    scale: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """(T,) bool: frames with a box."""
        return np.isfinite(self.scale) & np.all(np.isfinite(self.center), axis=-1)


@dataclass(frozen=True)
class CropBox:
    """A square crop of side ``size`` px taken from an image scaled by ``scale``.

    ``x0, y0, x1, y1`` is the crop's extent in original-image pixels
    (``x1 - x0 = size / scale``).
    """

    cx: float
    cy: float
    scale: float
    size: int

    @property
    def extent(self) -> tuple[float, float, float, float]:
        half = self.size / (2.0 * self.scale)
        return (self.cx - half, self.cy - half, self.cx + half, self.cy + half)

    def affine(self) -> np.ndarray:
        """(2, 3) map from original-image pixels to crop pixels."""
        s, c = self.scale, self.size / 2.0
        return np.array([[s, 0.0, c - s * self.cx], [0.0, s, c - s * self.cy]], np.float64)


def box_from_keypoints(
    kp: np.ndarray, vis_threshold: float = 0.0, person_height: float = PERSON_HEIGHT_PX
) -> BoxParams:
    """HMMR's ``kp_to_bbox_param`` (``src/util/smooth_bbox.py``) for every frame.

    Args:
        kp: (T, K, 3) keypoints ``x, y`` in pixels and visibility (or confidence).
        vis_threshold: a keypoint counts when its third value is above this.
        person_height: the height in pixels the person is scaled to.

    Returns:
        BoxParams; frames without visible keypoints, or whose visible keypoints all
        coincide, are NaN.
    """
    kp = np.asarray(kp, np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (T, K, 3), got {kp.shape}")
    vis = kp[..., 2] > vis_threshold
    big = np.where(vis[..., None], kp[..., :2], np.inf)
    small = np.where(vis[..., None], kp[..., :2], -np.inf)
    lo, hi = big.min(axis=1), small.max(axis=1)  # (T, 2)
    height = np.linalg.norm(hi - lo, axis=-1)
    ok = vis.any(axis=1) & np.isfinite(height) & (height > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.where(ok[:, None], (lo + hi) / 2.0, np.nan)
        scale = np.where(ok, person_height / np.where(ok, height, 1.0), np.nan)
    return BoxParams(center=center, scale=scale)


def smooth_boxes(
    boxes: BoxParams, kernel: int = MEDIAN_KERNEL, sigma: float = GAUSSIAN_SIGMA
) -> tuple[BoxParams, int, int]:
    """HMMR's ``get_smooth_bbox_params`` (``src/util/smooth_bbox.py``): interpolate gaps,
    median filter, Gaussian filter.

    Frames before the first and after the last valid frame have no box; they are not
    extrapolated.

    Args:
        boxes: per-frame boxes with NaN gaps.
        kernel: median filter length (odd).
        sigma: Gaussian sigma in frames.

    Returns:
        ``(smoothed, start, stop)``: the smoothed boxes of frames ``start:stop`` (the
        first to the last valid frame) and that range. Raises ``ValueError`` when no
        frame has a box.
    """
    valid = boxes.valid
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        raise ValueError("no frame of the track has a box (no visible keypoints)")
    start, stop = int(idx[0]), int(idx[-1]) + 1
    params = np.concatenate([boxes.center, boxes.scale[:, None]], axis=1)[start:stop]
    frames = np.arange(start, stop)
    for d in range(3):
        params[:, d] = np.interp(frames, idx, params[valid[start:stop], d])
    if len(params) >= kernel:
        # medfilt zero-pads at the ends, as scipy.signal.medfilt in HMMR's
        # ``smooth_bbox_params`` (``src/util/smooth_bbox.py``) does.
        params = np.stack([medfilt(params[:, d], kernel) for d in range(3)], axis=1)
    params = gaussian_filter1d(params, sigma, axis=0)
    return BoxParams(center=params[:, :2], scale=params[:, 2]), start, stop


def crop_image(image: np.ndarray, box: CropBox) -> np.ndarray:
    """Scale ``image`` by ``box.scale`` and cut the ``size`` x ``size`` crop, edge-padded.

    Args:
        image: (H, W, 3) uint8.
        box: the crop.

    Returns:
        (size, size, 3) uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    interp = cv2.INTER_AREA if box.scale < 1.0 else cv2.INTER_LINEAR
    # warpAffine's pixel centres are at integer coordinates, as in our keypoint maps.
    return cv2.warpAffine(
        image,
        box.affine(),
        (box.size, box.size),
        flags=interp,
        borderMode=cv2.BORDER_REPLICATE,
    )


def to_crop_pixels(xy: np.ndarray, box: CropBox) -> np.ndarray:
    """(..., 2) original-image pixels -> crop pixels."""
    return (np.asarray(xy, np.float64) - (box.cx, box.cy)) * box.scale + box.size / 2.0


def to_crop_normalised(kp: np.ndarray, box: CropBox) -> np.ndarray:
    """(K, 3) keypoints in original pixels -> normalised crop coordinates with visibility.

    ``x_norm = 2 * x_crop / size - 1``. Invisible keypoints (third value <= 0) become
    ``(0, 0, 0)``, as HMMR stores them (``TubePreprocessor.preprocess_image``,
    ``src/util/tube_augmentation.py``); visible ones get visibility 1.
    """
    kp = np.asarray(kp, np.float64)
    vis = kp[..., 2] > 0
    xy = 2.0 * to_crop_pixels(kp[..., :2], box) / box.size - 1.0
    out = np.zeros(kp.shape, np.float32)
    out[..., :2] = np.where(vis[..., None], xy, 0.0)
    out[..., 2] = vis
    return out


def from_crop_normalised(xy: np.ndarray, box: CropBox) -> np.ndarray:
    """(..., 2) normalised crop coordinates -> original-image pixels."""
    crop_px = (np.asarray(xy, np.float64) + 1.0) * box.size / 2.0
    return (crop_px - box.size / 2.0) / box.scale + (box.cx, box.cy)


def visible_runs(num_visible: np.ndarray, min_visible: int, min_length: int) -> list[range]:
    """Frame ranges where at least ``min_visible`` keypoints are visible, >= ``min_length`` long.

    HMMR cuts tracks where too few keypoints are visible (Penn Action and InstaVariety:
    cut at <= 4 visible, drop tracks shorter than 40 frames; ``clean_video`` in
    ``src/datasets/upenn_to_tfrecords_video.py`` and
    ``src/datasets/insta_variety_to_tfrecords.py``).

    Args:
        num_visible: (T,) visible keypoints per frame.
        min_visible: frames with fewer visible keypoints end a run.
        min_length: shorter runs are dropped.
    """
    ok = np.asarray(num_visible) >= min_visible
    runs, start = [], None
    for t, good in enumerate([*ok.tolist(), False]):
        if good and start is None:
            start = t
        elif not good and start is not None:
            if t - start >= min_length:
                runs.append(range(start, t))
            start = None
    return runs
