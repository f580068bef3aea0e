"""``lightning-hmd predict``: a trained model over the person tracks of a video.

Per track, as HMMR's demo (``predict_on_tracks`` in ``demo_video.py``, with
``get_smooth_bbox_params`` of ``src/util/smooth_bbox.py`` and ``process_image`` of
``src/evaluation/run_video.py``): boxes from the track (keypoints or detection boxes), smoothed
(gaps interpolated, median 11, Gaussian sigma 3), the person scaled to 150 px of a 224 crop
(at the model's input size), edge-padded. The video is decoded once and every track's crops
are cut in that pass; each frame's features are computed once, then the temporal encoder runs
over HMMR's centre windows (``Tester.predict_all_images``, ``src/evaluation/tester.py``) in
batches (``evaluation.predict.predict_clip``; short tracks are edge-padded to a window).

Outputs are in the input's pixels and a pinhole camera of ``focal`` pixels at the image
centre: the weak-perspective camera ``[s, tx, ty]`` of a crop whose side is ``b`` original
pixels and whose centre is ``(cx, cy)`` is the translation
``[tx + 2 (cx - px) / (s b), ty + 2 (cy - py) / (s b), 2 focal / (s b)]`` of the body in that
camera (``px, py`` the principal point), which projects the body where the crop's camera put
it, up to perspective within the body.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.checkpoint import CheckpointError, checkpoint_config
from lightning_hmd.data.cropping import (
    EVAL_CROP_SIZE,
    CropBox,
    crop_image,
    from_crop_normalised,
    smooth_boxes,
)
from lightning_hmd.errors import ConfigError, DataError
from lightning_hmd.evaluation.predict import encode_frames, predict_clip
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.inference.frames import FrameSource
from lightning_hmd.inference.tracks import PersonTrack
from lightning_hmd.models.generator import HMMRGenerator
from lightning_hmd.structures import SMPLParams


@dataclass
class Predictor:
    """A trained generator with its body model and the windows it was trained on."""

    generator: HMMRGenerator
    body: BodyModel
    seq_len: int
    img_size: int


def load_predictor(
    ckpt: str | Path, overrides: Sequence[str] = (), encoder: str | Path | None = None
) -> Predictor:
    """The model of a training checkpoint (its config, with ``overrides`` such as
    ``body.model_dir=...``). A model trained on precomputed features needs ``encoder``: the
    HMR init file (or encoder state dict) those features were computed with.

    Raises:
        CheckpointError: not a lightning_hmd checkpoint, weights of another model, or a
            features model without ``encoder``.
    """
    from lightning_hmd.config import config_from_container, to_container
    from lightning_hmd.data.features import build_feature_encoder
    from lightning_hmd.train.module import HMMRModule, load_weights

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise CheckpointError(f"--ckpt {ckpt}: no such checkpoint")
    cfg = config_from_container(checkpoint_config(ckpt), overrides)
    module = HMMRModule(to_container(cfg))
    try:
        load_weights(module, ckpt)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    generator = module.generator
    if generator.image_encoder is None:
        if encoder is None:
            raise CheckpointError(
                f"{ckpt}: the model was trained on precomputed features (data.inputs=features); "
                "give --encoder, the HMR init file or encoder weights they were computed with"
            )
        generator.image_encoder, _ = build_feature_encoder(
            cfg.model.encoder, cfg.model.feat_dim, encoder, cfg.seed
        )
    return Predictor(generator.eval(), module.body.eval(), cfg.data.seq_len, cfg.data.img_size)


@dataclass
class TrackCrops:
    """A track's smoothed boxes over frames ``start:stop`` and their crops."""

    track: PersonTrack
    start: int
    stop: int
    boxes: list[CropBox]
    box_scale: np.ndarray  # (T,) HMMR's 150 px scale of each frame
    crops: np.ndarray  # (T, S, S, 3) uint8


def model_crop(center: np.ndarray, scale: float, img_size: int) -> CropBox:
    """HMMR's 224 px crop around ``center`` at the 150-px ``scale`` (``process_image``,
    ``src/evaluation/run_video.py``), resized to the model's input size ``img_size``."""
    return CropBox(
        float(center[0]), float(center[1]), float(scale) * img_size / EVAL_CROP_SIZE, img_size
    )


def plan_crops(track: PersonTrack, num_frames: int, img_size: int) -> TrackCrops:
    """HMMR's smoothed boxes of a track (``get_smooth_bbox_params``,
    ``src/util/smooth_bbox.py``), as crops of the model's input size."""
    smooth, start, stop = smooth_boxes(track.box_params(num_frames))
    boxes = [model_crop(c, s, img_size) for c, s in zip(smooth.center, smooth.scale, strict=True)]
    crops = np.zeros((stop - start, img_size, img_size, 3), np.uint8)
    return TrackCrops(track, start, stop, boxes, smooth.scale.copy(), crops)


def cut_crops(source: FrameSource, plans: Sequence[TrackCrops], progress: bool = True) -> None:
    """Decode the input once and cut every track's crops from it (in place)."""
    for f, frame in enumerate(
        tqdm(source.frames(), total=source.count, unit="frame", desc="crops", disable=not progress)
    ):
        for p in plans:
            if p.start <= f < p.stop:
                p.crops[f - p.start] = crop_image(frame, p.boxes[f - p.start])


@dataclass
class TrackPrediction:
    """Per-frame predictions of one track over frames ``frames`` (T,).

    Attributes:
        cam: (T, 3) weak-perspective ``[s, tx, ty]`` of each crop.
        current: SMPL parameters (pose_rotmat (T, 24, 3, 3), pose_aa (T, 24, 3), betas (T, 10)).
        deltas: per offset Δt, the pose predicted for frame t + Δt at frame t.
        joints3d: (T, J, 3) metres, body-model frame.
        keypoints2d: (T, J, 2) the joints projected into the input's pixels.
        kps_crop: (T, J, 2) the same in normalised crop coordinates (HMMR's ``kps``,
            ``Tester.make_fetch_dict`` in ``src/evaluation/tester.py``).
        translation: (T, 3) metres, the body in the pinhole camera of ``focal`` px.
        vertices: (T, V, 3) metres, body-model frame, when asked for.
    """

    track_id: str
    frames: np.ndarray
    box_center: np.ndarray
    box_scale: np.ndarray
    cam: np.ndarray
    current: SMPLParams
    deltas: dict[int, SMPLParams]
    joints3d: np.ndarray
    keypoints2d: np.ndarray
    kps_crop: np.ndarray
    translation: np.ndarray
    focal: float
    vertices: np.ndarray | None = None


def crop_cam_to_translation(
    cam: np.ndarray, boxes: Sequence[CropBox], focal: float, principal: tuple[float, float]
) -> np.ndarray:
    """(T, 3) weak-perspective cameras of crops -> (T, 3) translations in the full image's
    pinhole camera (module docstring)."""
    s, tx, ty = cam[:, 0], cam[:, 1], cam[:, 2]
    side = np.array([b.size / b.scale for b in boxes])  # crop side in input pixels
    cx = np.array([b.cx for b in boxes])
    cy = np.array([b.cy for b in boxes])
    half = s * side / 2.0
    return np.stack(
        [tx + (cx - principal[0]) / half, ty + (cy - principal[1]) / half, focal / half], axis=1
    )


@torch.no_grad()
def predict_track(
    predictor: Predictor,
    plan: TrackCrops,
    focal: float,
    principal: tuple[float, float],
    mode: str = "temporal",
    vertices: bool = False,
) -> TrackPrediction:
    """One track: features once per frame, the windowed temporal model, the body model."""
    g = predictor.generator
    images = torch.from_numpy(np.ascontiguousarray(plan.crops.transpose(0, 3, 1, 2)))
    phi = encode_frames(g, images)
    pred = predict_clip(g, phi, predictor.seq_len, mode)
    cur = pred.current
    out = predictor.body(cur.pose_rotmat, cur.betas, joints_only=not vertices)
    joints = out.joints
    kps = project_weak_perspective(joints, cur.cam).numpy().astype(np.float64)
    pixels = np.stack([from_crop_normalised(k, b) for k, b in zip(kps, plan.boxes, strict=True)])
    centre = np.array([[b.cx, b.cy] for b in plan.boxes], np.float64)
    cam = cur.cam.numpy()
    return TrackPrediction(
        track_id=plan.track.track_id,
        frames=np.arange(plan.start, plan.stop),
        box_center=centre,
        box_scale=plan.box_scale,
        cam=cam,
        current=cur,
        deltas=pred.deltas,
        joints3d=joints.numpy(),
        keypoints2d=pixels,
        kps_crop=kps,
        translation=crop_cam_to_translation(cam, plan.boxes, focal, principal),
        focal=focal,
        vertices=out.vertices.numpy() if vertices else None,
    )


def predict_tracks(
    predictor: Predictor,
    source: FrameSource,
    tracks: Sequence[PersonTrack],
    focal: float | None = None,
    mode: str = "temporal",
    vertices: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[TrackPrediction]:
    """Every track of a video (features once per frame; the input decoded once).

    Raises:
        ValueError: names the track that cannot be predicted and why.
    """
    focal = float(focal or max(source.width, source.height))
    principal = ((source.width - 1) / 2.0, (source.height - 1) / 2.0)
    plans = []
    for t in tracks:
        try:
            plans.append(plan_crops(t, source.count, predictor.img_size))
        except ValueError as e:
            raise DataError(f"track {t.track_id}: {e}") from None
    cut_crops(source, plans, progress)
    results = []
    for p in tqdm(plans, unit="track", desc="predict", disable=not progress):
        results.append(predict_track(predictor, p, focal, principal, mode, vertices))
        echo(f"track {p.track.track_id}: frames {p.start}..{p.stop - 1} ({p.stop - p.start})")
    return results


def _arrays(params: SMPLParams, prefix: str = "") -> dict[str, np.ndarray]:
    return {
        f"{prefix}pose_rotmat": params.pose_rotmat.numpy(),
        f"{prefix}pose_aa": params.pose_aa.numpy(),
        f"{prefix}betas": params.betas.numpy(),
        f"{prefix}cam": params.cam.numpy(),
    }


def save_npz(pred: TrackPrediction, path: Path, source: FrameSource) -> None:
    """``predictions.npz`` of one track (keys in the README; Δt predictions as
    ``dt+5/pose_aa`` ...). Written under a temporary name and renamed."""
    arrays = {
        "frames": pred.frames,
        "fps": np.float64(source.fps),
        "image_size": np.array([source.width, source.height]),
        "focal": np.float64(pred.focal),
        "box_center": pred.box_center,
        "box_scale": pred.box_scale,
        **_arrays(pred.current),
        "joints3d": pred.joints3d,
        "keypoints2d": pred.keypoints2d,
        "translation": pred.translation,
    }
    for dt, params in pred.deltas.items():
        arrays.update(_arrays(params, f"dt{dt:+d}/"))
    if pred.vertices is not None:
        arrays["vertices"] = pred.vertices
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def save_hmmr_pkl(pred: TrackPrediction, path: Path) -> None:
    """HMMR's ``hmmr_output.pkl`` fields (written by ``predict_on_tracks`` in
    ``demo_video.py``, keys of ``Tester.make_fetch_dict`` in ``src/evaluation/tester.py``):
    ``cams`` (T, 3), ``joints`` (T, J, 3), ``kps`` (T, J, 2, normalised crop coordinates),
    ``poses`` (T, 24, 3, 3), ``shapes`` (T, 10), ``verts`` (T, V, 3), ``omegas`` (T, 85:
    camera, pose, shape)."""
    if pred.vertices is None:
        raise ConfigError("the hmmr-pkl format holds vertices: predict with vertices")
    cur = pred.current
    data = {
        "cams": pred.cam,
        "joints": pred.joints3d,
        "kps": pred.kps_crop,
        "poses": cur.pose_rotmat.numpy(),
        "shapes": cur.betas.numpy(),
        "verts": pred.vertices,
        "omegas": cur.to_theta().numpy(),
    }
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=2)
    tmp.replace(path)
