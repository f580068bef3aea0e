"""Self-attention temporal encoder phi (B, T, D) -> Phi (B, T, D).

phi is projected to the attention width, given sinusoidal positions (``Attention Is All You
Need``, section 3.5), passed through pre-norm ``nn.TransformerEncoderLayer`` blocks and a final
LayerNorm, projected back to D and added to phi. The output projection starts small (HMMR's
"small Xavier" of its residual convolutions), so the encoder starts near the identity, as the
convolutional one does. With ``causal`` each frame attends to itself and earlier frames only
(an online model); otherwise to the whole window.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lightning_hmd.models.initializers import init_layer_
from lightning_hmd.models.temporal import RESIDUAL_INIT_FACTOR


def sinusoidal_positions(length: int, width: int, device=None) -> Tensor:  # noqa: ANN001
    """(T, W) position codes: sin on even channels, cos on odd ones, wavelengths 2π..10000·2π."""
    if width % 2:
        raise ValueError(f"sinusoidal positions need an even width, got {width}")
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    rate = torch.exp(
        torch.arange(0, width, 2, dtype=torch.float32, device=device) * (-math.log(1e4) / width)
    )
    codes = torch.zeros(length, width, device=device)
    codes[:, 0::2] = torch.sin(pos * rate)
    codes[:, 1::2] = torch.cos(pos * rate)
    return codes


class TransformerTemporalEncoder(nn.Module):
    """phi (B, T, D) -> phi + out(LN(layers(in(phi) + positions)))."""

    receptive_field = None  # the whole window (the past of each frame when causal)

    def __init__(
        self,
        channels: int,
        width: int = 512,
        num_layers: int = 2,
        heads: int = 8,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        *,
        causal: bool = False,
    ):
        super().__init__()
        if width % heads:
            raise ValueError(f"the attention width {width} must be divisible by heads={heads}")
        self.causal = causal
        self.width = width
        self.project_in = nn.Linear(channels, width)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff_dim, dropout, batch_first=True, norm_first=True
        )
        # no nested tensors: they apply to padded batches only, and warn with norm_first
        self.layers = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
        )
        self.project_out = nn.Linear(width, channels)
        init_layer_(self.project_in)
        init_layer_(self.project_out, factor=RESIDUAL_INIT_FACTOR)

    def forward(self, phi: Tensor) -> Tensor:
        """phi: (B, T, D) -> Phi: (B, T, D)."""
        T = phi.shape[1]
        x = self.project_in(phi) + sinusoidal_positions(T, self.width, phi.device).to(phi.dtype)
        mask = (
            nn.Transformer.generate_square_subsequent_mask(T, device=phi.device, dtype=x.dtype)
            if self.causal
            else None
        )
        x = self.layers(x, mask=mask, is_causal=self.causal)
        return phi + self.project_out(x)
