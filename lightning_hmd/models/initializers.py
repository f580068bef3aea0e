"""Weight initialisers with TF-1 ``tf.contrib.layers`` semantics.

Fans follow TF's convention for dense and conv kernels: for a weight of shape
``(C_out, C_in, *kernel)`` the fans are ``fan_in = C_in * prod(kernel)`` and
``fan_out = C_out * prod(kernel)`` (TF's HWIO kernels give the same numbers).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _fans(weight: Tensor) -> tuple[int, int]:
    if weight.ndim < 2:
        raise ValueError(f"fans need a weight with >= 2 dims, got shape {tuple(weight.shape)}")
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def variance_scaling_uniform_(weight: Tensor, factor: float) -> Tensor:
    """TF ``variance_scaling_initializer(factor, mode='FAN_AVG', uniform=True)`` in place.

    Samples ``U(-limit, limit)`` with ``limit = sqrt(3 * factor / ((fan_in + fan_out) / 2))``.
    ``factor=1`` is Glorot/Xavier uniform.
    """
    fan_in, fan_out = _fans(weight)
    limit = math.sqrt(3.0 * factor / ((fan_in + fan_out) / 2.0))
    return weight.uniform_(-limit, limit)


def init_layer_(layer: nn.Linear | nn.Conv1d | nn.Conv2d, factor: float = 1.0) -> None:
    """Variance-scaling (FAN_AVG, uniform) weights and zero biases, as slim layers default to.

    ``factor=1`` reproduces the slim default (Xavier uniform); HMMR's "small xavier" output
    layers (``small_xavier`` in ``src/models.py``) use ``factor=0.01`` (IEF) or ``0.001``
    (residual branches).
    """
    variance_scaling_uniform_(layer.weight, factor)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
