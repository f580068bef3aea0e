"""Parameter counts per component, computed on the meta device (no memory, instant)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig
from torch import nn

from lightning_hmd.models.build import build_discriminator, build_generator
from lightning_hmd.structures import NUM_BETAS, NUM_SMPL_JOINTS

if TYPE_CHECKING:
    from lightning_hmd.config_tree import ModelConfig

COMPONENTS = (
    "image_encoder",
    "temporal_encoder",
    "regressor",
    "delta_heads",
    "hallucinator",
    "discriminator",
)


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def parameter_counts(model_cfg: DictConfig | ModelConfig) -> dict[str, int]:
    """Number of parameters of each component of the model ``cfg.model`` describes.

    Keys: ``image_encoder``, ``temporal_encoder``, ``regressor`` (f_3D including its learnable
    mean), ``delta_heads`` (all f_Δt together), ``hallucinator`` (0 when off),
    ``discriminator``, ``generator`` (the first five) and ``total`` (generator + discriminator).
    """
    with torch.device("meta"):
        generator = build_generator(
            model_cfg, torch.zeros(NUM_SMPL_JOINTS, 3), torch.zeros(NUM_BETAS)
        )
        discriminator = build_discriminator(model_cfg)
    counts = {
        "image_encoder": _count(generator.image_encoder),
        "temporal_encoder": _count(generator.temporal),
        "regressor": _count(generator.smpl_head),
        "delta_heads": _count(generator.delta_heads),
        "hallucinator": _count(generator.hallucinator),
        "discriminator": _count(discriminator),
    }
    counts["generator"] = _count(generator)
    counts["total"] = counts["generator"] + counts["discriminator"]
    return counts


def format_parameter_counts(counts: dict[str, int]) -> str:
    """A plain-text table: component, exact count, millions."""
    width = max(len(name) for name in counts)
    lines = [f"{'component':<{width}}  {'params':>12}  {'millions':>9}"]
    for name, count in counts.items():
        if name in ("generator", "total"):
            lines.append("-" * len(lines[0]))
        lines.append(f"{name:<{width}}  {count:>12,}  {count / 1e6:>8.2f}M")
    return "\n".join(lines)
