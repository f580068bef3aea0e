"""Label-free terms: shape constancy, shape prior, hallucination feature regression."""

from __future__ import annotations

from torch import Tensor

from lightning_hmd.geometry._checks import check_trailing
from lightning_hmd.losses.reductions import masked_mean
from lightning_hmd.structures import NUM_BETAS


def shape_constancy_loss(betas: Tensor) -> Tensor:
    """``0.5 * MSE(betas[:, :-1], betas[:, 1:])``: shape should not change along a clip.

    Args:
        betas: (B, T, 10) predicted shape per frame.

    Returns:
        () scalar; 0 when T < 2.
    """
    if betas.dim() != 3 or betas.shape[-1] != NUM_BETAS:
        raise ValueError(f"betas must have shape (B, T, {NUM_BETAS}), got {tuple(betas.shape)}")
    return 0.5 * masked_mean((betas[:, :-1] - betas[:, 1:]) ** 2)


def shape_prior_loss(betas: Tensor) -> Tensor:
    """L2 prior on shape, ``mean(beta^2)`` over all elements.

    Args:
        betas: (..., 10) predicted shapes.

    Returns:
        () scalar.
    """
    check_trailing(betas, "betas", (NUM_BETAS,))
    return masked_mean(betas**2)


def hallucination_loss(movie_strip: Tensor, hallucinated_strip: Tensor) -> Tensor:
    """``mean((Phi - Phi_hat)^2)`` over all elements; gradients reach both inputs.

    Args:
        movie_strip: (B, T, D) temporal encoding Phi.
        hallucinated_strip: (B, T, D) hallucinated Phi_hat.

    Returns:
        () scalar.
    """
    if movie_strip.shape != hallucinated_strip.shape:
        raise ValueError(
            f"hallucinated_strip must have the shape of movie_strip {tuple(movie_strip.shape)}, "
            f"got {tuple(hallucinated_strip.shape)}"
        )
    return masked_mean((movie_strip - hallucinated_strip) ** 2)
