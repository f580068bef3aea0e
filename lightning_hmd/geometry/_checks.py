"""Shape validation shared by the geometry, loss and metric functions."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def _spec(trailing: Sequence[int | None]) -> str:
    return ", ".join("*" if d is None else str(d) for d in trailing)


def check_trailing(x: Tensor, name: str, trailing: Sequence[int | None]) -> None:
    """Raise ``ValueError`` unless ``x`` has shape ``(..., *trailing)``; ``None`` matches any size.

    The message names the argument and gives the expected and the actual shape.
    """
    n = len(trailing)
    ok = x.dim() >= n and all(
        want is None or got == want
        for want, got in zip(trailing, x.shape[x.dim() - n :], strict=True)
    )
    if not ok:
        raise ValueError(f"{name} must have shape (..., {_spec(trailing)}), got {tuple(x.shape)}")


def check_min_size(x: Tensor, name: str, dim: int, minimum: int) -> None:
    """Raise ``ValueError`` unless ``x.shape[dim] >= minimum`` (``dim`` counted from the end)."""
    if x.dim() < -dim or x.shape[dim] < minimum:
        raise ValueError(
            f"{name} must have at least {minimum} entries in dim {dim}, got shape {tuple(x.shape)}"
        )
