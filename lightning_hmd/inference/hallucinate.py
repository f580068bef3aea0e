"""``lightning-hmd hallucinate``: past, present and future poses from one image.

The person's crop (HMMR's ``process_image`` in ``src/evaluation/run_video.py``: the box's
diagonal made 150 px of a 224 crop, at the model's input size) is encoded once; the
hallucinator maps that frame's features to its movie-strip features, and f_3D and every Δt
head read them (``evaluation.predict.predict_clip`` in ``hallucinator`` mode). The picture
shows the bodies side by side in offset order, each rendered over the crop with its own
predicted camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from lightning_hmd.data.cropping import CropBox, crop_image
from lightning_hmd.data.synth.render import BodyRenderer
from lightning_hmd.errors import ConfigError
from lightning_hmd.evaluation.predict import encode_frames, predict_clip
from lightning_hmd.geometry.camera import weak_perspective_to_translation
from lightning_hmd.inference.inputs import InputError, check_image_input
from lightning_hmd.inference.predict import Predictor, model_crop
from lightning_hmd.inference.tracks import box_track
from lightning_hmd.structures import SMPLParams

PANEL = 224  # side of each picture panel in pixels
PANEL_FOCAL = 1000.0  # the panels' pinhole camera; weak perspective becomes this depth


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB.

    Raises:
        InputError: a missing or unreadable image.
    """
    image = cv2.imread(str(check_image_input(path)), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_crop(image: np.ndarray, box: Sequence[float] | None, img_size: int) -> CropBox:
    """HMMR's crop (``process_image``, ``src/evaluation/run_video.py``) of the person in
    ``box`` (``x0, y0, x1, y1``; default the whole image), as ``predict`` crops a frame of a
    box track (without smoothing: one frame).

    Raises:
        InputError: an empty box or one not inside the image.
    """
    h, w = image.shape[:2]
    params = box_track(box, w, h, frames=1, what="image").box_params(1)
    return model_crop(params.center[0], params.scale[0], img_size)


@torch.no_grad()
def hallucinate(
    predictor: Predictor, image: np.ndarray, box: Sequence[float] | None = None
) -> tuple[dict[int, SMPLParams], CropBox]:
    """Predictions per offset (0: the current frame) from one image, and its crop."""
    g = predictor.generator
    if g.hallucinator is None:
        raise ConfigError("the model has no hallucinator (trained with model.hallucinator=false)")
    crop = image_crop(image, box, predictor.img_size)
    pixels = crop_image(image, crop)
    phi = encode_frames(g, torch.from_numpy(pixels.transpose(2, 0, 1).copy())[None])
    pred = predict_clip(g, phi, predictor.seq_len, mode="hallucinator")
    return {0: pred.current, **pred.deltas}, crop


def picture(
    predictor: Predictor, image: np.ndarray, crop: CropBox, poses: dict[int, SMPLParams]
) -> np.ndarray:
    """(PANEL, PANEL * n, 3) uint8: the bodies in offset order over the person's crop."""
    background = crop_image(image, CropBox(crop.cx, crop.cy, crop.scale * PANEL / crop.size, PANEL))
    renderer = BodyRenderer(predictor.body.faces.numpy(), PANEL, PANEL_FOCAL)
    panels = []
    try:
        for dt in sorted(poses):
            p = poses[dt]
            with torch.no_grad():
                verts = predictor.body(p.pose_rotmat, p.betas).vertices[0].numpy()
            t = weak_perspective_to_translation(p.cam[0], PANEL_FOCAL, PANEL).numpy()
            colour = np.array([0.65, 0.74, 0.86]) if dt == 0 else np.array([0.9, 0.65, 0.5])
            panel, _ = renderer.render(verts + t, colour, background.copy())
            label = "now" if dt == 0 else f"{dt:+d} frames"
            cv2.putText(
                panel,
                label,
                (6, 18),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            panels.append(panel)
    finally:
        renderer.close()
    return np.concatenate(panels, axis=1)


def save_hallucination(poses: dict[int, SMPLParams], path: Path) -> None:
    """``dt<k>/pose_aa`` ... for every offset (``dt+0`` the current frame)."""
    arrays = {}
    for dt, p in poses.items():
        arrays.update(
            {
                f"dt{dt:+d}/pose_aa": p.pose_aa[0].numpy(),
                f"dt{dt:+d}/pose_rotmat": p.pose_rotmat[0].numpy(),
                f"dt{dt:+d}/betas": p.betas[0].numpy(),
                f"dt{dt:+d}/cam": p.cam[0].numpy(),
            }
        )
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, offsets=np.array(sorted(poses)), **arrays)
    tmp.replace(path)
