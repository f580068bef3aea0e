"""Per-frame predictions for whole tracks: features once per frame, then the temporal model
over a protocol's windows (:mod:`.windows`) in large batches.

HMMR's tester (``Tester.predict_all_images``, ``src/evaluation/tester.py``) recomputes the
image features of every frame for every overlapping window it appears in; here each frame is
encoded once and only the temporal encoder and the heads run per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lightning_hmd.evaluation.protocols import Windowing
from lightning_hmd.evaluation.windows import make_plan
from lightning_hmd.models.generator import HMMRGenerator
from lightning_hmd.models.temporal_registry import window_margin
from lightning_hmd.structures import SMPLParams

MODES = ("temporal", "hallucinator", "constant")
_FIELDS = ("cam", "pose_aa", "pose_rotmat", "betas")


@dataclass
class ClipPrediction:
    """Predictions for the M frames ``frames`` of a track (all N frames, or those a
    protocol's windows predict): ``current`` (M,) and, per offset Δt, the pose at frame
    t + Δt predicted at frame t (M,)."""

    current: SMPLParams
    deltas: dict[int, SMPLParams]
    frames: np.ndarray  # (M,) int64 frame indices, increasing

    @property
    def num_predicted(self) -> int:
        return len(self.frames)


def encode_frames(generator: HMMRGenerator, images: Tensor, chunk: int = 64) -> Tensor:
    """(N, 3, S, S) crops -> (N, D) features, ``chunk`` frames at a time."""
    parts = [
        generator.encode_images(images[i : i + chunk][None])[0]
        for i in range(0, len(images), chunk)
    ]
    return torch.cat(parts)


def blank_feature(generator: HMMRGenerator, img_size: int) -> Tensor:
    """(D,) features of a blank crop (zero in [-1, 1]: HMMR's padding image, as in
    ``Tester.predict_all_images``, ``src/evaluation/tester.py``)."""
    device = next(generator.parameters()).device
    with torch.no_grad():
        blank = torch.zeros(1, 1, 3, img_size, img_size, device=device)
        return generator.encode_images(blank)[0, 0].float()


def _window_inputs(phi: Tensor, inputs: np.ndarray, blank: Tensor | None) -> Tensor:
    """(W, T, D) window features; positions outside the track are ``blank`` or, without it,
    the track's first / last frame."""
    n = phi.shape[0]
    index = torch.from_numpy(np.clip(inputs, 0, n - 1)).to(phi.device)
    x = phi[index]
    if blank is not None:
        outside = torch.from_numpy((inputs < 0) | (inputs >= n)).to(phi.device)
        x = torch.where(outside[..., None], blank.to(x), x)
    return x


def _cat(parts: list[SMPLParams]) -> SMPLParams:
    return SMPLParams(*(torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS))


def _take(params: SMPLParams, index: Tensor) -> SMPLParams:
    """Rows ``index`` of (W * T,)-flattened params."""
    return SMPLParams(*(getattr(params, f).flatten(0, 1)[index] for f in _FIELDS))


@torch.no_grad()
def predict_clip(
    generator: HMMRGenerator,
    phi: Tensor,
    seq_len: int,
    mode: str = "temporal",
    windowing: Windowing | str = Windowing.CENTRE,
    blank: Tensor | None = None,
    max_windows: int = 256,
) -> ClipPrediction:
    """Predict a track's frames from its features ``phi`` (N, D).

    Args:
        generator: the model (in eval mode).
        phi: (N, D) features of every frame.
        seq_len: T, the window length (the training length).
        mode: ``temporal`` (movie strip and Δt heads), ``hallucinator`` (each frame's movie
            strip hallucinated from its own features), ``constant`` (the temporal model's
            current pose also stands for every past/future offset: the constant baseline).
        windowing: the protocol's windows (:func:`.windows.make_plan`).
        blank: (D,) features of the padding frames of centre windows (HMMR: a blank image,
            ``src/evaluation/tester.py``); None: the track's edge frames repeated.
        max_windows: windows per forward pass.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "hallucinator" and generator.hallucinator is None:
        raise ValueError("mode 'hallucinator' needs a model trained with model.hallucinator=true")
    phi = phi.float()
    n = phi.shape[0]
    margin = window_margin(generator.temporal, seq_len)
    plan = make_plan(windowing, n, seq_len, margin)
    flat = plan.outputs.reshape(-1)
    keep = np.flatnonzero(flat >= 0)
    keep = keep[np.argsort(flat[keep], kind="stable")]  # output rows in frame order
    frames = flat[keep]
    keep = torch.from_numpy(keep).to(phi.device)
    if len(frames) == 0:
        z = {"device": phi.device}
        empty = SMPLParams(
            torch.zeros(0, 3, **z),
            torch.zeros(0, 24, 3, **z),
            torch.zeros(0, 24, 3, 3, **z),
            torch.zeros(0, 10, **z),
        )
        deltas = {dt: empty for dt in generator.delta_offsets}
        return ClipPrediction(empty, deltas, frames)
    current, deltas = [], {}
    for lo in range(0, len(plan.inputs), max_windows):
        batch = _window_inputs(phi, plan.inputs[lo : lo + max_windows], blank)
        strip = (
            generator.hallucinator(batch) if mode == "hallucinator" else generator.temporal(batch)
        )
        pred = generator.predict(strip)
        current.append(pred.current)
        for dt, params in pred.deltas.items():
            deltas.setdefault(dt, []).append(params)
    cur = _take(_cat(current), keep)
    out = {dt: cur if mode == "constant" else _take(_cat(p), keep) for dt, p in deltas.items()}
    return ClipPrediction(cur, out, frames)
