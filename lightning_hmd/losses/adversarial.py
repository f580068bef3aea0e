"""Least-squares GAN losses for the pose discriminator (one logit per output head).

The terms and what each pulls towards: ``docs/derivations.md`` (LSGAN terms).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lightning_hmd.geometry._checks import check_trailing


def _mean_of_sums(squared: Tensor) -> Tensor:
    return squared.sum(dim=-1).mean()


def lsgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """``mean_M sum_L (D(fake) - 1)^2``.

    Args:
        fake_logits: (M, L) discriminator outputs on predicted poses (L heads, 24 in HMMR's
            ``PoseDiscriminator``, ``src/discriminators.py``); any extra leading dims are
            averaged like M.

    Returns:
        () scalar.
    """
    check_trailing(fake_logits, "fake_logits", (None, None))
    return _mean_of_sums((fake_logits - 1.0) ** 2)


@dataclass
class DiscriminatorLoss:
    """The two parts of the LSGAN discriminator loss (unweighted scalars), the terms
    ``disc/real`` and ``disc/fake`` of :func:`lightning_hmd.objective.discriminator_terms`.

    Attributes:
        real: () ``mean_M sum_L (D(real) - 1)^2``.
        fake: () ``mean_M sum_L D(fake)^2``.
    """

    real: Tensor
    fake: Tensor


def lsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> DiscriminatorLoss:
    """LSGAN discriminator loss on mocap (real) and predicted (fake, detached by the caller) poses.

    Args:
        real_logits: (M, L) discriminator outputs on mocap poses.
        fake_logits: (M', L) discriminator outputs on predicted poses.

    Returns:
        DiscriminatorLoss with ``real`` and ``fake`` parts.
    """
    check_trailing(real_logits, "real_logits", (None, None))
    check_trailing(fake_logits, "fake_logits", (None, real_logits.shape[-1]))
    return DiscriminatorLoss(
        real=_mean_of_sums((real_logits - 1.0) ** 2), fake=_mean_of_sums(fake_logits**2)
    )
