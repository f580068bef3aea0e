"""Parameter counts and FLOPs per training batch, computed on the meta device (no memory, no
arithmetic: instant)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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


def parameter_counts(
    model_cfg: DictConfig | ModelConfig, *, with_image_encoder: bool = True
) -> dict[str, int]:
    """Number of parameters of each component of the model ``cfg.model`` describes.

    Keys: ``image_encoder``, ``temporal_encoder``, ``regressor`` (f_3D including its learnable
    mean), ``delta_heads`` (all f_Δt together), ``hallucinator`` (0 when off),
    ``discriminator``, ``generator`` (the first five) and ``total`` (generator + discriminator).
    """
    with torch.device("meta"):
        generator = build_generator(
            model_cfg,
            torch.zeros(NUM_SMPL_JOINTS, 3),
            torch.zeros(NUM_BETAS),
            with_image_encoder=with_image_encoder,
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


def _flops_of(fn) -> int:  # noqa: ANN001
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def step_flops(
    model_cfg: DictConfig | ModelConfig, batch_size: int, seq_len: int
) -> dict[str, int]:
    """FLOPs (matrix products and convolutions, torch's ``FlopCounterMode``) of one batch of
    B = ``batch_size`` clips of T = ``seq_len`` frames from features phi, forward and backward:

    - ``temporal_encoder``: the encoder alone, phi (B, T, D) -> Phi;
    - ``generator``: the whole generator from phi (encoder, f_3D with its IEF stages, every
      Δt head, the hallucinator and its heads), without the body model and the losses.

    The image encoder (images mode) is not counted: the paper's recipe trains on features.
    """
    with torch.device("meta"):
        generator = build_generator(
            model_cfg, torch.zeros(NUM_SMPL_JOINTS, 3), torch.zeros(NUM_BETAS),
            with_image_encoder=False,
        )  # fmt: skip
        phi = torch.empty(batch_size, seq_len, model_cfg.feat_dim, requires_grad=True)

        def temporal() -> None:
            generator.temporal(phi).sum().backward()

        def whole() -> None:
            out = generator(phi=phi)
            total = out.movie_strip.sum()
            preds = [out.pred] if out.hallucinated is None else [out.pred, out.hallucinated]
            for pred in preds:
                for params in [pred.current, *pred.deltas.values()]:
                    total = total + params.pose_rotmat.sum() + params.betas.sum()
                    total = total + params.cam.sum()
            total.backward()

        return {"temporal_encoder": _flops_of(temporal), "generator": _flops_of(whole)}


def format_step_flops(flops: dict[str, int], batch_size: int, seq_len: int) -> str:
    """A plain-text table: part, GFLOP per batch (forward + backward)."""
    width = max(len(name) for name in flops)
    lines = [f"{'FLOPs per batch':<{width}}  {'GFLOP':>9}   (B = {batch_size}, T = {seq_len}, "
             "from phi, forward + backward)"]  # fmt: skip
    lines += [f"{name:<{width}}  {value / 1e9:>9.4f}" for name, value in flops.items()]
    return "\n".join(lines)
