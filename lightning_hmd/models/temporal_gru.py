"""Recurrent temporal encoders phi (B, T, D) -> Phi (B, T, D): VIBE's GRU and TCMR's three GRUs.

Both see the whole window (``receptive_field = None``); a unidirectional GRU is causal (frame t
sees frames 0..t of the window). PyTorch's ``nn.GRU`` runs batch-first here; the arithmetic is
that of the sequence-first GRUs of the originals.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GRUEncoder(nn.Module):
    """VIBE's ``TemporalEncoder`` (``lib/models/vibe.py``): a GRU over the window, then ReLU and a
    linear layer back to D (always when bidirectional, else with ``add_linear``), plus the
    input (``residual``).

    Without the linear layer the GRU's hidden size must be D, so that Phi has D channels.
    """

    causal: bool
    receptive_field = None  # the whole window

    def __init__(
        self,
        channels: int,
        hidden: int = 1024,
        num_layers: int = 2,
        *,
        bidirectional: bool = False,
        add_linear: bool = True,
        residual: bool = True,
    ):
        super().__init__()
        if not (bidirectional or add_linear) and hidden != channels:
            raise ValueError(
                f"a GRU without its linear layer needs hidden = D = {channels}, got {hidden}"
            )
        self.gru = nn.GRU(
            channels, hidden, num_layers=num_layers, bidirectional=bidirectional, batch_first=True
        )
        width = hidden * (2 if bidirectional else 1)
        self.linear = nn.Linear(width, channels) if bidirectional or add_linear else None
        self.residual = residual
        self.causal = not bidirectional

    def forward(self, phi: Tensor) -> Tensor:
        """phi: (B, T, D) -> Phi: (B, T, D)."""
        y, _ = self.gru(phi)  # (B, T, H or 2H)
        if self.linear is not None:
            y = self.linear(y.relu())
        return phi + y if self.residual else y


class FrameAttention(nn.Module):
    """TCMR's ``TemporalAttention`` with ``seq_len = 3``: scores over the (past, current, future)
    features of one frame. (N, 3, D) -> (N, 3) weights summing to 1."""

    def __init__(self, channels: int, hidden: int, sources: int = 3):
        super().__init__()
        self.fc = nn.Linear(channels, hidden)
        self.score = nn.Sequential(
            nn.Linear(hidden * sources, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, sources),
            nn.Tanh(),  # TCMR squashes the scores before the softmax too
        )

    def forward(self, y: Tensor) -> Tensor:
        """y: (N, 3, D) -> (N, 3)."""
        return self.score(self.fc(y).flatten(1)).softmax(dim=-1)


class TCMREncoder(nn.Module):
    """TCMR's ``TemporalEncoder`` (``lib/models/tcmr.py``) for every frame of the window.

    TCMR predicts the window's middle frame t from three features: a bidirectional GRU over the
    whole window at t, a GRU over the frames before t (its last output) and a GRU over the
    frames after t run backwards (its last output), each through ReLU and a linear layer to D,
    fused by attention. Here every frame t is a middle frame: the past GRU runs forwards over
    the window once and frame t takes its output at t - 1, the future GRU runs over the
    reversed window and t takes its output at t + 1, which are exactly the GRUs of TCMR over
    ``x[:t]`` and ``flip(x[t+1:])``. The first frame has no past and the last no future: their
    GRU state is the initial zero state, so that feature is the linear layer's bias. No input
    is added (TCMR's output is the fused feature).
    """

    causal = False
    receptive_field = None  # the whole window

    def __init__(
        self, channels: int, hidden: int = 1024, num_layers: int = 2, attention_hidden: int = 256
    ):
        super().__init__()
        h, layers = hidden, num_layers
        self.gru_cur = nn.GRU(channels, h, layers, bidirectional=True, batch_first=True)
        self.gru_bef = nn.GRU(channels, h, layers, batch_first=True)
        self.gru_aft = nn.GRU(channels, h, layers, batch_first=True)
        self.linear_cur = nn.Linear(2 * h, channels)
        self.linear_bef = nn.Linear(h, channels)
        self.linear_aft = nn.Linear(h, channels)
        self.attention = FrameAttention(channels, attention_hidden)

    def forward(self, phi: Tensor) -> Tensor:
        """phi: (B, T, D) -> Phi: (B, T, D)."""
        B, T, _ = phi.shape
        cur, _ = self.gru_cur(phi)  # (B, T, 2H)
        before, _ = self.gru_bef(phi)  # (B, T, H): frames 0..t
        after, _ = self.gru_aft(phi.flip(1))  # (B, T, H): reversed frames T-1..T-1-s
        after = after.flip(1)  # at t: frames T-1..t
        zero = before.new_zeros(B, 1, before.shape[-1])
        before = torch.cat([zero, before[:, :-1]], dim=1)  # at t: frames 0..t-1
        after = torch.cat([after[:, 1:], zero], dim=1)  # at t: frames T-1..t+1
        y = torch.stack(
            [
                self.linear_bef(before.relu()),
                self.linear_cur(cur.relu()),
                self.linear_aft(after.relu()),
            ],
            dim=2,
        )  # (B, T, 3, D): past, current, future as TCMR orders them
        weights = self.attention(y.flatten(0, 1)).view(B, T, 3, 1)
        return (y * weights).sum(dim=2)
