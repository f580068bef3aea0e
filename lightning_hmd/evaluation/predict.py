"""Per-frame predictions for whole clips: features once per frame, then the temporal model
over HMMR's centre windows in large batches.

HMMR's tester recomputes the image features of every frame for every overlapping window it
appears in; here each frame is encoded once and only the temporal encoder and the heads run
per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from lightning_hmd.evaluation.windows import centre_windows, receptive_margin
from lightning_hmd.models.generator import HMMRGenerator
from lightning_hmd.structures import SMPLParams

MODES = ("temporal", "hallucinator", "constant")


@dataclass
class ClipPrediction:
    """Per-frame predictions of one clip of N frames: ``current`` (N,) and, per offset Δt,
    the pose at frame t + Δt predicted at frame t (N,)."""

    current: SMPLParams
    deltas: dict[int, SMPLParams]


def encode_frames(generator: HMMRGenerator, images: Tensor, chunk: int = 64) -> Tensor:
    """(N, 3, S, S) crops -> (N, D) features, ``chunk`` frames at a time."""
    parts = [
        generator.encode_images(images[i : i + chunk][None])[0]
        for i in range(0, len(images), chunk)
    ]
    return torch.cat(parts)


def _pad(phi: Tensor, seq_len: int) -> tuple[Tensor, int]:
    """Edge-pad a clip shorter than ``seq_len`` (as HMMR pads short tracks); returns the
    padded features and the offset of the first real frame."""
    n = phi.shape[0]
    if n >= seq_len:
        return phi, 0
    before = (seq_len - n) // 2
    after = seq_len - n - before
    return torch.cat([phi[:1].expand(before, -1), phi, phi[-1:].expand(after, -1)]), before


def _select(params: SMPLParams, index: Tensor) -> SMPLParams:
    """Frames ``index`` of (W * T,)-flattened params."""
    return SMPLParams(*(rearrange(x, "w t ... -> (w t) ...")[index] for x in (
        params.cam, params.pose_aa, params.pose_rotmat, params.betas)))  # fmt: skip


@torch.no_grad()
def predict_clip(
    generator: HMMRGenerator,
    phi: Tensor,
    seq_len: int,
    mode: str = "temporal",
    max_windows: int = 256,
) -> ClipPrediction:
    """Predict every frame of a clip from its features ``phi`` (N, D).

    Modes: ``temporal`` (movie strip and Δt heads), ``hallucinator`` (each frame's movie strip
    hallucinated from its own features), ``constant`` (the temporal model's current pose
    also stands for every past/future offset: the constant-pose baseline).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "hallucinator" and generator.hallucinator is None:
        raise ValueError("mode 'hallucinator' needs a model trained with model.hallucinator=true")
    n = phi.shape[0]
    padded, offset = _pad(phi.float(), seq_len)
    margin = receptive_margin(len(generator.temporal.blocks), generator.temporal.kernel_size)
    # A receptive field as long as the window (5 blocks, 21 frames, at T = 20; HMMR's tester
    # keeps no frame then) leaves no frame clear of the window's zero padding: keep the most
    # central ones. Training supervised every frame of such windows, padding included.
    margin = min(margin, (seq_len - 1) // 2)
    wins = centre_windows(padded.shape[0], seq_len, margin)
    index = torch.cat([
        torch.arange(w.keep_start, w.keep_stop) - w.start + i * seq_len for i, w in enumerate(wins)
    ])[offset : offset + n]  # fmt: skip
    preds = []
    for lo in range(0, len(wins), max_windows):
        batch = torch.stack(
            [padded[w.start : w.start + seq_len] for w in wins[lo : lo + max_windows]]
        )
        strip = (
            generator.hallucinator(batch) if mode == "hallucinator" else generator.temporal(batch)
        )
        preds.append(generator.predict(strip))
    current = SMPLParams(*(torch.cat([getattr(p.current, f) for p in preds]) for f in (
        "cam", "pose_aa", "pose_rotmat", "betas")))  # fmt: skip
    current = _select(current, index)
    deltas = {}
    for dt in preds[0].deltas:
        if mode == "constant":
            deltas[dt] = current
            continue
        cat = SMPLParams(*(torch.cat([getattr(p.deltas[dt], f) for p in preds]) for f in (
            "cam", "pose_aa", "pose_rotmat", "betas")))  # fmt: skip
        deltas[dt] = _select(cat, index)
    return ClipPrediction(current, deltas)
