"""HMMRGenerator: image encoder -> movie strip -> f_3D and f_Δt heads (+ hallucinator).

No losses and no Lightning here: the generator only predicts.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from lightning_hmd.models.hallucinator import Hallucinator
from lightning_hmd.models.regressor import SMPLHead
from lightning_hmd.structures import GeneratorOutput, Predictions


def normalise_images(images: Tensor) -> Tensor:
    """uint8 images (0..255) -> float in [-1, 1]; float images are returned unchanged."""
    if images.dtype == torch.uint8:
        return images.float().div_(127.5).sub_(1.0)
    return images


def delta_key(offset: int) -> str:
    """Module-dict key of a frame offset: ``5 -> "+5"``, ``-5 -> "-5"``."""
    if offset == 0:
        raise ValueError("offset 0 is the current frame, not a delta head")
    return f"{offset:+d}"


def delta_offset(key: str) -> int:
    """Inverse of :func:`delta_key`: ``"+5" -> 5``."""
    return int(key)


class HMMRGenerator(nn.Module):
    """The HMMR generator.

    Args:
        image_encoder: (N, 3, H, W) -> (N, D), or None when only precomputed phi are used.
        temporal: f_movie_strip, (B, T, D) -> (B, T, D), with ``receptive_field`` and
            ``causal`` (``models/temporal_registry.py``).
        smpl_head: f_3D for the current frame.
        delta_heads: f_Δt heads keyed by :func:`delta_key` (may be empty).
        hallucinator: phi -> Phi_hat, or None to skip hallucination.
    """

    def __init__(
        self,
        image_encoder: nn.Module | None,
        temporal: nn.Module,
        smpl_head: SMPLHead,
        delta_heads: nn.ModuleDict,
        hallucinator: Hallucinator | None = None,
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.temporal = temporal
        self.smpl_head = smpl_head
        self.delta_heads = delta_heads
        self.hallucinator = hallucinator

    @property
    def delta_offsets(self) -> list[int]:
        """The Δt values predicted, in head order."""
        return [delta_offset(key) for key in self.delta_heads]

    def encode_images(self, images: Tensor) -> Tensor:
        """images: (B, T, 3, H, W), uint8 or float in [-1, 1] -> phi: (B, T, D)."""
        if self.image_encoder is None:
            raise ValueError("this generator has no image encoder: pass precomputed phi")
        frames = rearrange(normalise_images(images), "b t c h w -> (b t) c h w")
        phi = self.image_encoder(frames)  # (B*T, D)
        return rearrange(phi, "(b t) d -> b t d", b=images.shape[0])

    def predict(self, feats: Tensor) -> Predictions:
        """Run f_3D and every f_Δt on a feature sequence: feats (B, T, D) -> Predictions (B, T)."""
        current = self.smpl_head(feats)
        deltas = {delta_offset(key): head(feats, current) for key, head in self.delta_heads.items()}
        return Predictions(current=current, deltas=deltas)

    def forward(self, images: Tensor | None = None, phi: Tensor | None = None) -> GeneratorOutput:
        """Predict from images (B, T, 3, H, W) or from precomputed phi (B, T, D); pass exactly one.

        Returns:
            GeneratorOutput with phi (B, T, D), movie_strip (B, T, D), pred (B, T) and, with a
            hallucinator, hallucinated_strip (B, T, D) and hallucinated (B, T). The hallucinated
            strip goes through the same heads as the movie strip.
        """
        if (images is None) == (phi is None):
            raise ValueError("pass exactly one of images (B, T, 3, H, W) or phi (B, T, D)")
        if phi is None:
            phi = self.encode_images(images)
        phi = phi.float()  # shards store float16 features
        movie_strip = self.temporal(phi)
        out = GeneratorOutput(phi=phi, movie_strip=movie_strip, pred=self.predict(movie_strip))
        if self.hallucinator is not None:
            out.hallucinated_strip = self.hallucinator(phi)
            out.hallucinated = self.predict(out.hallucinated_strip)
        return out
