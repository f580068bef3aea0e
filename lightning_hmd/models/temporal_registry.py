"""The temporal encoders by name (``model.temporal.kind``), behind one contract.

Every encoder maps phi (B, T, D) to the movie strip Phi (B, T, D) and says what each output
frame sees:

- ``receptive_field``: the frames one output sees, centred on it (an odd int), or ``None``
  for the whole window (recurrent and attention encoders);
- ``causal``: True when an output never sees later frames.

Evaluation windows (``evaluation/windows.py``) keep the outputs whose field lies inside the
window: :func:`window_margin` is the number of frames an output needs on each side.

========================  ====================================================  ===============
kind                      module                                                field
========================  ====================================================  ===============
``hmmr_conv`` (default)   :class:`.temporal.TemporalEncoder` (HMMR)             4N + 1 (k = 3)
``gru``                   :class:`.temporal_gru.GRUEncoder` (VIBE)              whole window
``tcmr``                  :class:`.temporal_gru.TCMREncoder` (TCMR)             whole window
``transformer``           :class:`.temporal_transformer.TransformerTemporalEncoder`  whole window
``none``                  :class:`.temporal.TemporalEncoder` with no blocks      1 (Phi = phi)
========================  ====================================================  ===============
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from omegaconf import DictConfig
from torch import nn

from lightning_hmd.models.temporal import TemporalEncoder
from lightning_hmd.models.temporal_gru import GRUEncoder, TCMREncoder
from lightning_hmd.models.temporal_transformer import TransformerTemporalEncoder
from lightning_hmd.modes import TemporalKind

if TYPE_CHECKING:
    from lightning_hmd.config_tree import TemporalConfig

Builder = Callable[[int, "DictConfig | TemporalConfig"], nn.Module]


def _hmmr_conv(channels: int, t: DictConfig | TemporalConfig) -> nn.Module:
    return TemporalEncoder(
        channels, t.num_blocks, kernel_size=t.kernel_size, num_groups=t.num_groups, eps=t.norm_eps
    )


def _gru(channels: int, t: DictConfig | TemporalConfig) -> nn.Module:
    g = t.gru
    return GRUEncoder(
        channels,
        g.hidden,
        g.num_layers,
        bidirectional=g.bidirectional,
        add_linear=g.add_linear,
        residual=g.residual,
    )


def _tcmr(channels: int, t: DictConfig | TemporalConfig) -> nn.Module:
    c = t.tcmr
    return TCMREncoder(channels, c.hidden, c.num_layers, c.attention_hidden)


def _transformer(channels: int, t: DictConfig | TemporalConfig) -> nn.Module:
    c = t.transformer
    return TransformerTemporalEncoder(
        channels, c.width, c.num_layers, c.heads, c.ff_dim, c.dropout, causal=c.causal
    )


def _none(channels: int, t: DictConfig | TemporalConfig) -> nn.Module:
    return TemporalEncoder(channels, 0)


TEMPORAL_ENCODERS: dict[TemporalKind, Builder] = {
    TemporalKind.hmmr_conv: _hmmr_conv,
    TemporalKind.gru: _gru,
    TemporalKind.tcmr: _tcmr,
    TemporalKind.transformer: _transformer,
    TemporalKind.none: _none,
}


def build_temporal_encoder(channels: int, temporal_cfg: DictConfig | TemporalConfig) -> nn.Module:
    """The encoder ``temporal_cfg.kind`` names, on D = ``channels``."""
    kind = TemporalKind.parse(temporal_cfg.kind, "model.temporal.kind")
    return TEMPORAL_ENCODERS[kind](channels, temporal_cfg)


def window_margin(encoder: nn.Module, seq_len: int) -> int:
    """Frames an output of ``encoder`` sees on each side, for windows of ``seq_len`` frames.

    A centred field of f frames needs ``(f - 1) // 2`` (for HMMR's convolutions: two per block,
    ``k // 2`` frames each); a whole-window encoder needs the whole window, which no window
    leaves for its centre frames: ``(T - 1) // 2``, so that each window keeps its most central
    frames (the cap of ``evaluation.windows.centre_plan``).
    """
    if isinstance(encoder, TemporalEncoder):
        return len(encoder.blocks) * 2 * (encoder.kernel_size // 2)
    field = encoder.receptive_field
    if field is None:
        return (seq_len - 1) // 2
    return (int(field) - 1) // 2
