"""A self-contained end-to-end check of the model stack on synthetic data.

Loads the configured body model, builds the generator and discriminator from the config,
makes one batch of synthetic clips, and runs a few simultaneous generator/discriminator
Adam steps on it (HMMR's update order: generator, then discriminator on detached fakes).
Used by the quickstart until the training loop runs on shards; the numbers it returns show
every loss term and that the weighted objective goes down when over-fitting one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from lightning_hmd.body.model_files import load_mean_params
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.synthetic import synthetic_mocap_batch, synthetic_sequence_batch
from lightning_hmd.losses import weighted_sum
from lightning_hmd.models.build import build_discriminator, build_generator
from lightning_hmd.objective import discriminator_terms, generator_terms


@dataclass
class SmokeResult:
    """Per-term values at the first and the last step, and the weighted totals per step."""

    first: dict[str, float]
    last: dict[str, float]
    gen_total: list[float]
    disc_total: list[float]


def run_smoke(cfg: DictConfig, steps: int = 20) -> SmokeResult:
    """Over-fit one synthetic batch for ``steps`` generator + discriminator updates."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    body = BodyModel.from_dir(cfg.body.model_dir, cfg.body.gender)
    pose, shape = load_mean_params(cfg.body.model_dir)
    generator = build_generator(
        cfg.model,
        torch.as_tensor(pose, dtype=torch.float32).view(-1, 3),
        torch.as_tensor(shape, dtype=torch.float32),
        with_image_encoder=False,
    )
    disc = build_discriminator(cfg.model)
    o = cfg.optim
    g_opt = torch.optim.Adam(generator.parameters(), o.gen_lr, tuple(o.betas), o.eps)
    d_opt = torch.optim.Adam(disc.parameters(), o.disc_lr, tuple(o.betas), o.eps)
    batch = synthetic_sequence_batch(
        body, cfg.data.batch_size, cfg.data.seq_len, cfg.model.feat_dim, gen
    )
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    g_hist, d_hist = [], []
    for step in range(steps):
        out = generator(phi=batch.phi)
        g_terms, fakes = generator_terms(out, batch, body, disc)
        g_loss = weighted_sum(g_terms, cfg.loss.weights)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        mocap = synthetic_mocap_batch(fakes.betas.shape[0], gen)
        d_terms = discriminator_terms(disc, fakes, mocap)
        d_loss = weighted_sum(d_terms, cfg.loss.weights)
        d_opt.zero_grad(set_to_none=True)  # also drops D grads left by the generator's adv term
        d_loss.backward()
        d_opt.step()
        values = {k: float(v.detach()) for k, v in {**g_terms, **d_terms}.items()}
        if step == 0:
            first = values
        last = values
        g_hist.append(float(g_loss.detach()))
        d_hist.append(float(d_loss.detach()))
    return SmokeResult(first, last, g_hist, d_hist)


def format_smoke(result: SmokeResult) -> str:
    """A table of every term at the first and last step, then the weighted totals."""
    lines = [f"{'term':<22}{'first':>12}{'last':>12}"]
    lines += [f"{k:<22}{result.first[k]:>12.5f}{result.last[k]:>12.5f}" for k in result.first]
    lines.append(
        f"{'generator total':<22}{result.gen_total[0]:>12.4f}{result.gen_total[-1]:>12.4f}"
    )
    lines.append(
        f"{'discriminator total':<22}{result.disc_total[0]:>12.4f}{result.disc_total[-1]:>12.4f}"
    )
    return "\n".join(lines)
