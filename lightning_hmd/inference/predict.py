"""``lightning-hmd predict``: a trained model over the person tracks of a video.

Per track, as HMMR's demo (``predict_on_tracks`` in ``demo_video.py``, with
``get_smooth_bbox_params`` of ``src/util/smooth_bbox.py`` and ``process_image`` of
``src/evaluation/run_video.py``): boxes from the track (keypoints or detection boxes), smoothed
(gaps interpolated, median 11, Gaussian sigma 3), the person scaled to 150 px of a 224 crop
(at the model's input size), edge-padded. The video is decoded once and every track's crops
are cut in that pass; each frame's features are computed once (all tracks' frames in large
encoder batches), then the temporal encoder runs over HMMR's centre windows
(``Tester.predict_all_images``, ``src/evaluation/tester.py``; positions outside a track take
its edge frame) of all tracks in batches, and the heads and the body model only on the
outputs those windows keep. HMMR's tester, which encodes each window's frames again, is kept
as the reference (:func:`predict_track_per_window`): the outputs are the same.

Outputs are in the input's pixels and a pinhole camera of ``focal`` pixels at the image
centre: the weak-perspective camera ``[s, tx, ty]`` of a crop whose side is ``b`` original
pixels and whose centre is ``(cx, cy)`` is the translation
``[tx + 2 (cx - px) / (s b), ty + 2 (cy - py) / (s b), 2 focal / (s b)]`` of the body in that
camera (``px, py`` the principal point), which projects the body where the crop's camera put
it, up to perspective within the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.checkpoint import CheckpointError, checkpoint_config
from lightning_hmd.data.cropping import (
    EVAL_CROP_SIZE,
    CropBox,
    crop_image,
    smooth_boxes,
)
from lightning_hmd.errors import DataError
from lightning_hmd.evaluation.predict import MODES
from lightning_hmd.evaluation.windows import centre_plan
from lightning_hmd.geometry.camera import project_weak_perspective
from lightning_hmd.inference.frames import FrameSource
from lightning_hmd.inference.tracks import PersonTrack
from lightning_hmd.models.generator import HMMRGenerator, normalise_images
from lightning_hmd.models.temporal_registry import window_margin
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
    predictor = Predictor(generator.eval(), module.body.eval(), cfg.data.seq_len, cfg.data.img_size)
    return channels_last(predictor)


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


def channels_last(predictor: Predictor) -> Predictor:
    """The image encoder's weights in channels-last (NHWC) layout, in place: the crops are
    NHWC already, and oneDNN's CPU convolutions run faster on it."""
    predictor.generator.image_encoder.to(memory_format=torch.channels_last)
    return predictor


def _margin(g: HMMRGenerator, seq_len: int) -> int:
    return window_margin(g.temporal, seq_len)


def _check_mode(g: HMMRGenerator, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "hallucinator" and g.hallucinator is None:
        raise ValueError("mode 'hallucinator' needs a model trained with model.hallucinator=true")


def _strip(g: HMMRGenerator, phi: Tensor, mode: str) -> Tensor:
    """(B, T, D) features -> (B, T, D) movie strip (hallucinated in ``hallucinator`` mode)."""
    return g.hallucinator(phi) if mode == "hallucinator" else g.temporal(phi)


_FIELDS = ("cam", "pose_aa", "pose_rotmat", "betas")


@dataclass
class _Rows:
    """Per-frame outputs of M frames: SMPL parameters (M,), Δt predictions, joints (M, J, 3),
    vertices (M, V, 3) or None."""

    current: SMPLParams
    deltas: dict[int, SMPLParams]
    joints: Tensor
    vertices: Tensor | None

    @staticmethod
    def cat(parts: Sequence[_Rows]) -> _Rows:
        def params(ps: Sequence[SMPLParams]) -> SMPLParams:
            return SMPLParams(*(torch.cat([getattr(p, f) for p in ps]) for f in _FIELDS))

        verts = None if parts[0].vertices is None else torch.cat([p.vertices for p in parts])
        deltas = {dt: params([p.deltas[dt] for p in parts]) for dt in parts[0].deltas}
        joints = torch.cat([p.joints for p in parts])
        return _Rows(params([p.current for p in parts]), deltas, joints, verts)

    def split(self, lengths: Sequence[int]) -> list[_Rows]:
        def params(p: SMPLParams) -> list[SMPLParams]:
            return [
                SMPLParams(*f)
                for f in zip(*(getattr(p, f).split(lengths) for f in _FIELDS), strict=True)
            ]

        cur = params(self.current)
        deltas = {dt: params(p) for dt, p in self.deltas.items()}
        joints = self.joints.split(lengths)
        verts = self.vertices.split(lengths) if self.vertices is not None else [None] * len(cur)
        return [_Rows(cur[k], {dt: d[k] for dt, d in deltas.items()}, joints[k], verts[k])
                for k in range(len(cur))]  # fmt: skip

    def take(self, index: Tensor) -> _Rows:
        def params(p: SMPLParams) -> SMPLParams:
            return SMPLParams(*(getattr(p, f)[index] for f in _FIELDS))

        verts = self.vertices[index] if self.vertices is not None else None
        deltas = {dt: params(p) for dt, p in self.deltas.items()}
        return _Rows(params(self.current), deltas, self.joints[index], verts)


def _heads_and_body(predictor: Predictor, feats: Tensor, mode: str, vertices: bool) -> _Rows:
    """(M, D) movie-strip rows -> the heads' predictions and the body of each row."""
    pred = predictor.generator.predict(feats)
    cur = pred.current
    deltas = {dt: cur if mode == "constant" else p for dt, p in pred.deltas.items()}
    out = predictor.body(cur.pose_rotmat, cur.betas, joints_only=not vertices)
    return _Rows(cur, deltas, out.joints, out.vertices if vertices else None)


def _crop_chunks(plans: Sequence[TrackCrops], size: int) -> Iterator[np.ndarray]:
    """The tracks' crops laid end to end, ``size`` frames at a time: (<= size, S, S, 3)."""
    bounds = np.cumsum([0, *(len(p.crops) for p in plans)])
    for lo in range(0, int(bounds[-1]), size):
        hi = min(lo + size, int(bounds[-1]))
        pieces = [p.crops[max(lo, a) - a : min(hi, b) - a]
                  for p, a, b in zip(plans, bounds[:-1], bounds[1:], strict=True)
                  if a < hi and b > lo]  # fmt: skip
        yield pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def encode_crops(
    g: HMMRGenerator, plans: Sequence[TrackCrops], chunk: int = 64, progress: bool = False
) -> Tensor:
    """Every track's crops through the image encoder, each frame once, ``chunk`` frames per
    call across track boundaries: (sum of T, D). The uint8 NHWC crops go in as a
    channels-last view of (N, 3, S, S), without a copy to NCHW."""
    device = next(g.parameters()).device
    total = sum(len(p.crops) for p in plans)
    parts = []
    with tqdm(total=total, unit="frame", desc="predict", disable=not progress) as bar:
        for crops in _crop_chunks(plans, chunk):
            images = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2)
            parts.append(g.image_encoder(normalise_images(images)).float())
            bar.update(len(crops))
    return torch.cat(parts)


def window_index(
    lengths: Sequence[int], seq_len: int, margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """HMMR's centre windows (:func:`~lightning_hmd.evaluation.windows.centre_plan`) of
    tracks of ``lengths`` frames, over their frames laid end to end.

    Returns:
        inputs: (W, T) int64 row of the concatenated frames fed at each position (positions
            before / after a track take its first / last frame).
        keep: (M,) int64 flat index into the (W * T) outputs of each kept one, in the order of
            the concatenated frames (M = sum of lengths; increasing).
    """
    inputs, keep = [], []
    frames = windows = 0
    for n in lengths:
        plan = centre_plan(n, seq_len, margin)
        inputs.append(np.clip(plan.inputs, 0, n - 1) + frames)
        flat = plan.outputs.reshape(-1)
        kept = np.flatnonzero(flat >= 0)
        keep.append(kept[np.argsort(flat[kept], kind="stable")] + windows * seq_len)
        frames, windows = frames + n, windows + len(plan.inputs)
    return np.concatenate(inputs), np.concatenate(keep)


def _track_prediction(
    plan: TrackCrops, rows: _Rows, focal: float, principal: tuple[float, float]
) -> TrackPrediction:
    """A track's outputs from its rows (one per frame ``plan.start:plan.stop``)."""
    cur = rows.current
    kps = project_weak_perspective(rows.joints, cur.cam).numpy().astype(np.float64)
    centre = np.array([[b.cx, b.cy] for b in plan.boxes], np.float64)  # (T, 2)
    scale = np.array([b.scale for b in plan.boxes], np.float64)[:, None, None]
    size = plan.boxes[0].size
    pixels = ((kps + 1.0) * size / 2.0 - size / 2.0) / scale + centre[:, None]
    cam = cur.cam.numpy()
    return TrackPrediction(
        track_id=plan.track.track_id,
        frames=np.arange(plan.start, plan.stop),
        box_center=centre,
        box_scale=plan.box_scale,
        cam=cam,
        current=cur,
        deltas=rows.deltas,
        joints3d=rows.joints.numpy(),
        keypoints2d=pixels,
        kps_crop=kps,
        translation=crop_cam_to_translation(cam, plan.boxes, focal, principal),
        focal=focal,
        vertices=rows.vertices.numpy() if rows.vertices is not None else None,
    )


@torch.inference_mode()
def predict_crops(
    predictor: Predictor,
    plans: Sequence[TrackCrops],
    focal: float,
    principal: tuple[float, float],
    mode: str = "temporal",
    vertices: bool = False,
    max_windows: int = 128,
    progress: bool = False,
) -> list[TrackPrediction]:
    """Every track from its cut crops, the same outputs as HMMR's tester
    (:func:`predict_track_per_window`) with each frame encoded once: the image encoder over
    all tracks' frames in large chunks, then HMMR's centre windows of all tracks gathered from
    those features by one index, ``max_windows`` windows per temporal-encoder call, and the
    heads and the body model on the kept (centre) outputs of each batch only."""
    g = predictor.generator
    _check_mode(g, mode)
    if not plans:
        return []
    phi = encode_crops(g, plans, progress=progress)
    lengths = [len(p.crops) for p in plans]
    inputs, keep = window_index(lengths, predictor.seq_len, _margin(g, predictor.seq_len))
    inputs = torch.from_numpy(inputs).to(phi.device)
    t = predictor.seq_len
    cuts = np.searchsorted(keep, np.arange(0, len(inputs) + max_windows, max_windows) * t)
    parts = []
    for b, lo in enumerate(range(0, len(inputs), max_windows)):
        strip = _strip(g, phi[inputs[lo : lo + max_windows]], mode).flatten(0, 1)
        rows = torch.from_numpy(keep[cuts[b] : cuts[b + 1]] - lo * t).to(phi.device)
        parts.append(_heads_and_body(predictor, strip[rows], mode, vertices))
    split = _Rows.cat(parts).split(lengths)
    return [_track_prediction(p, r, focal, principal) for p, r in zip(plans, split, strict=True)]


@torch.inference_mode()
def predict_track_per_window(
    predictor: Predictor,
    plan: TrackCrops,
    focal: float,
    principal: tuple[float, float],
    mode: str = "temporal",
    vertices: bool = False,
) -> TrackPrediction:
    """HMMR's tester (``Tester.predict_all_images``, ``src/evaluation/tester.py``), one window
    at a time: each window's T crops through the image encoder again, the temporal encoder,
    the heads and the body model on all T positions, the centre outputs kept. The reference
    :func:`predict_crops` equals (``benchmarks/predict_throughput.py`` times the two)."""
    g = predictor.generator
    _check_mode(g, mode)
    n = len(plan.crops)
    windows = centre_plan(n, predictor.seq_len, _margin(g, predictor.seq_len))
    images = torch.from_numpy(plan.crops).permute(0, 3, 1, 2)
    parts = []
    for frames, outputs in zip(windows.inputs, windows.outputs, strict=True):
        window = images[torch.from_numpy(np.clip(frames, 0, n - 1))]
        window = window.contiguous(memory_format=torch.channels_last)
        phi = g.image_encoder(normalise_images(window)).float()[None]  # (1, T, D)
        rows = _heads_and_body(predictor, _strip(g, phi, mode)[0], mode, vertices)
        kept = torch.from_numpy(np.flatnonzero(outputs >= 0))
        parts.append(rows.take(kept))
    return _track_prediction(plan, _Rows.cat(parts), focal, principal)


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
    """Every track of a video: the input decoded once, each frame's features computed once,
    all tracks' windows batched together (:func:`predict_crops`).

    Raises:
        DataError: names the track that cannot be predicted and why.
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
    results = predict_crops(predictor, plans, focal, principal, mode, vertices, progress=progress)
    for p in plans:
        echo(f"track {p.track.track_id}: frames {p.start}..{p.stop - 1} ({p.stop - p.start})")
    return results
