"""Hallucinator: predicts the movie strip from a single frame's features.

HMMR's ``fc2_res`` (``src/models.py``).
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_hmd.models.initializers import init_layer_

OUTPUT_INIT_FACTOR = 0.001  # "small xavier": Phi_hat starts near phi


class Hallucinator(nn.Module):
    """Per-frame residual MLP phi_t -> Phi_hat_t: (..., D) -> (..., D), e.g. (B, T, D).

    ``fc1`` hidden ReLU -> ``fc2`` hidden ReLU -> ``fc3`` D (linear) -> + phi. Frames are
    processed independently.
    """

    def __init__(self, feat_dim: int, hidden: int = 2048):
        super().__init__()
        self.fc1 = nn.Linear(feat_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, feat_dim)
        init_layer_(self.fc1)
        init_layer_(self.fc2)
        init_layer_(self.fc3, factor=OUTPUT_INIT_FACTOR)

    def forward(self, phi: Tensor) -> Tensor:
        """phi: (B, T, D) -> Phi_hat: (B, T, D)."""
        return phi + self.fc3(self.fc2(self.fc1(phi).relu()).relu())
