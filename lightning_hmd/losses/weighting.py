"""Loss-term names and the single place where weights are applied.

A term name is ``<base>`` or ``<base>/<qualifier>/...``, e.g. ``kp2d``, ``kp2d/dt+5``,
``kp2d/hal``, ``kp2d/hal/dt-5``, ``disc/real``. The weight of a term is the field ``<base>`` of
the weights object (``config_tree.LossWeights``, its OmegaConf node, or a plain mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

KP2D = "kp2d"
JOINTS3D = "joints3d"
SMPL = "smpl"
SHAPE_CONST = "shape_const"
ADV = "adv"
SHAPE_PRIOR = "shape_prior"
HALLUCINATE = "hallucinate"
DISC = "disc"
BASE_NAMES: tuple[str, ...] = (
    KP2D,
    JOINTS3D,
    SMPL,
    SHAPE_CONST,
    ADV,
    SHAPE_PRIOR,
    HALLUCINATE,
    DISC,
)
HAL = "hal"  # qualifier of terms computed on hallucinated predictions


def dt_qualifier(dt: int) -> str:
    """Qualifier for a frame offset: ``dt+5``, ``dt-5``."""
    return f"dt{dt:+d}"


def term_name(base: str, *qualifiers: str) -> str:
    """``base/q1/q2...``; raises ``ValueError`` for an unknown base."""
    if base not in BASE_NAMES:
        raise ValueError(f"unknown loss base {base!r}; expected one of {BASE_NAMES}")
    return "/".join((base, *qualifiers))


def base_name(term: str) -> str:
    """The ``<base>`` part of a term name; raises ``ValueError`` naming the term if unknown."""
    base = term.split("/", 1)[0]
    if base not in BASE_NAMES:
        raise ValueError(f"loss term {term!r} has unknown base {base!r}; expected {BASE_NAMES}")
    return base


def _weight(weights: Any, base: str, term: str) -> float:
    try:
        return weights[base] if isinstance(weights, Mapping) else getattr(weights, base)
    except (KeyError, AttributeError):
        raise ValueError(f"no weight {base!r} for loss term {term!r} in {weights!r}") from None


def weighted_sum(terms: Mapping[str, Tensor], weights: Any) -> Tensor:
    """``sum_name weight[base(name)] * terms[name]``.

    Args:
        terms: term name -> () unweighted scalar; must not be empty.
        weights: object with one attribute per base name (``LossWeights`` or an OmegaConf node)
            or a mapping from base name to weight.

    Returns:
        () weighted total.
    """
    if not terms:
        raise ValueError("terms must contain at least one loss term, got an empty mapping")
    parts = []
    for term, value in terms.items():
        if value.dim() != 0:
            raise ValueError(f"loss term {term!r} must be a scalar, got shape {tuple(value.shape)}")
        parts.append(float(_weight(weights, base_name(term), term)) * value)
    return torch.stack(parts).sum()
