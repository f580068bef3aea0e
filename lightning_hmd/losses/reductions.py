"""Masked reductions with TensorFlow's ``SUM_BY_NONZERO_WEIGHTS`` semantics (HMMR's losses,
``src/ops.py``).

Mask convention used by every loss: a per-sample mask has the shape of the *leading* dims of
the values (any prefix, e.g. (B,) or (B, T) for values (B, T, J, 3)). It is right-padded with
singleton dims and broadcast, so each sample's label gates all of its elements. This differs
from NumPy broadcasting, which aligns shapes from the right.
"""

from __future__ import annotations

import torch
from torch import Tensor


def expand_mask(mask: Tensor, values: Tensor, name: str = "mask") -> Tensor:
    """Broadcast a leading-dims mask to ``values.shape`` in ``values``' dtype.

    Args:
        mask: (P...) bool or float, where (P...) is a prefix of ``values.shape`` (sizes equal or 1).
        values: (P..., E...) the tensor the mask gates.
        name: argument name used in the error message.

    Returns:
        (P..., E...) weights.
    """
    prefix = values.shape[: mask.dim()]
    ok = mask.dim() <= values.dim() and all(
        m in (1, v) for m, v in zip(mask.shape, prefix, strict=True)
    )
    if not ok:
        raise ValueError(
            f"{name} must have shape equal to (or broadcastable to) a prefix of "
            f"{tuple(values.shape)}, e.g. {tuple(values.shape[:1])}, got {tuple(mask.shape)}"
        )
    padded = mask.reshape(*mask.shape, *([1] * (values.dim() - mask.dim())))
    return padded.to(values.dtype).expand(values.shape)


def masked_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """``sum(w * v) / count_nonzero(w)`` over all elements; 0 when no weight is non-zero.

    For 0/1 weights this is the mean over the selected elements.

    Args:
        values: (...) any shape.
        weights: None (all ones) or a tensor broadcastable to ``values.shape``.

    Returns:
        () scalar.
    """
    if weights is None:
        weights = torch.ones_like(values)
    weights = weights.to(values.dtype).expand(values.shape)
    count = (weights != 0).sum().clamp_min(1)
    return (weights * values).sum() / count


def select_target(pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """``target`` where the weight is non-zero, else ``pred.detach()``.

    Masked-out targets then contribute an exact 0 to the loss and its gradient, even when they
    hold garbage such as NaN.
    """
    return torch.where(weights != 0, target, pred.detach())
