"""The temporal encoders behind model.temporal.kind: shapes, what each output frame sees,
parameter counts by hand, TCMR's middle frame, window margins, config checks, and a few
training steps that lower the loss."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_hmd.config import load_config, to_container
from lightning_hmd.data.synth.batches import synthetic_clip_batch
from lightning_hmd.data.train_stream import num_fake_poses
from lightning_hmd.errors import ConfigError
from lightning_hmd.evaluation.windows import receptive_margin
from lightning_hmd.models.temporal_gru import GRUEncoder, TCMREncoder
from lightning_hmd.models.temporal_registry import (
    TEMPORAL_ENCODERS,
    build_temporal_encoder,
    window_margin,
)
from lightning_hmd.models.temporal_transformer import (
    TransformerTemporalEncoder,
    sinusoidal_positions,
)
from lightning_hmd.modes import TemporalKind
from lightning_hmd.train.module import HMMRModule

D, T = 16, 9
KINDS = [k.value for k in TemporalKind]


def _encoder(kind: str, *overrides: str) -> torch.nn.Module:
    cfg = load_config("tiny", overrides=[f"model.temporal.kind={kind}", *overrides])
    torch.manual_seed(0)
    return build_temporal_encoder(cfg.model.feat_dim, cfg.model.temporal).eval()


def _reach(encoder: torch.nn.Module, t: int, length: int = T) -> torch.Tensor:
    """(length,) bool: the output frames a change of input frame t moves."""
    dim = encoder_dim(encoder)
    g = torch.Generator().manual_seed(1)
    phi = torch.randn(1, length, dim, generator=g)
    bumped = phi.clone()
    bumped[:, t] += torch.randn(dim, generator=g)
    with torch.no_grad():
        return (encoder(bumped) - encoder(phi)).abs().amax(dim=-1)[0] > 0


def encoder_dim(encoder: torch.nn.Module) -> int:
    return load_config("tiny").model.feat_dim


def test_every_kind_is_registered_and_keeps_the_shape():
    assert set(TEMPORAL_ENCODERS) == set(TemporalKind)
    phi = torch.randn(2, T, load_config("tiny").model.feat_dim)
    for kind in KINDS:
        encoder = _encoder(kind)
        assert encoder(phi).shape == phi.shape, kind
        assert isinstance(encoder.causal, bool), kind


@pytest.mark.parametrize(
    ("kind", "overrides", "causal"),
    [
        ("gru", [], True),  # VIBE's default: unidirectional
        ("gru", ["model.temporal.gru.bidirectional=true"], False),
        ("tcmr", [], False),
        ("transformer", [], False),
        ("transformer", ["model.temporal.transformer.causal=true"], True),
    ],
)
def test_whole_window_encoders_reach_the_window_or_its_future_only(kind, overrides, causal):
    encoder = _encoder(kind, *overrides)
    assert encoder.receptive_field is None and encoder.causal is causal
    for t in (0, 4, T - 1):
        reach = _reach(encoder, t)
        expected = torch.arange(T) >= t if causal else torch.ones(T, dtype=torch.bool)
        assert torch.equal(reach, expected), (kind, overrides, t, reach)


def test_none_is_the_identity_and_reaches_its_own_frame_only():
    encoder = _encoder("none")
    assert encoder.receptive_field == 1 and not list(encoder.parameters())
    phi = torch.randn(2, T, encoder_dim(encoder))
    assert torch.equal(encoder(phi), phi)
    assert torch.equal(_reach(encoder, 3), torch.arange(T) == 3)


def _gru_count(inp: int, h: int, layers: int, dirs: int) -> int:
    """nn.GRU: per layer and direction 3 gates of (W_i: h x in, W_h: h x h, b_i, b_h)."""
    total = 0
    for layer in range(layers):
        width = inp if layer == 0 else h * dirs
        total += dirs * (3 * h * width + 3 * h * h + 6 * h)
    return total


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("bidirectional", "add_linear"), [(False, True), (True, True)])
def test_gru_parameter_count(bidirectional, add_linear):
    h, layers = 8, 2
    encoder = GRUEncoder(D, h, layers, bidirectional=bidirectional, add_linear=add_linear)
    dirs = 2 if bidirectional else 1
    assert _count(encoder) == _gru_count(D, h, layers, dirs) + (dirs * h * D + D)


def test_gru_without_linear_needs_hidden_equal_to_d():
    assert _count(GRUEncoder(D, D, 1, add_linear=False)) == _gru_count(D, D, 1, 1)
    with pytest.raises(ValueError, match="hidden = D = 16, got 8"):
        GRUEncoder(D, 8, 1, add_linear=False)


def test_tcmr_parameter_count():
    h, layers, a = 8, 2, 4
    encoder = TCMREncoder(D, h, layers, a)
    grus = _gru_count(D, h, layers, 2) + 2 * _gru_count(D, h, layers, 1)
    linears = (2 * h * D + D) + 2 * (h * D + D)
    attention = (D * a + a) + (3 * a * a + a) + (a * a + a) + (a * 3 + 3)
    assert _count(encoder) == grus + linears + attention


def test_transformer_parameter_count():
    w, layers, heads, ff = 8, 3, 2, 12
    encoder = TransformerTemporalEncoder(D, w, layers, heads, ff)
    per_layer = (3 * w * w + 3 * w) + (w * w + w) + (w * ff + ff) + (ff * w + w) + 2 * (2 * w)
    expected = (D * w + w) + layers * per_layer + 2 * w + (w * D + D)
    assert _count(encoder) == expected


def test_tcmr_middle_frame_is_tcmrs_feature():
    """Frame t's fused feature is TCMR's for a window whose middle frame is t: the past GRU over
    x[:t] (its last output), the future GRU over flip(x[t+1:]), the bidirectional GRU at t."""
    torch.manual_seed(0)
    enc = TCMREncoder(D, 8, 2, 4).eval()
    x = torch.randn(3, T, D)
    t = T // 2
    with torch.no_grad():
        cur = enc.linear_cur(enc.gru_cur(x)[0][:, t].relu())
        bef = enc.linear_bef(enc.gru_bef(x[:, :t])[0][:, -1].relu())
        aft = enc.linear_aft(enc.gru_aft(x[:, t + 1 :].flip(1))[0][:, -1].relu())
        y = torch.stack([bef, cur, aft], dim=1)  # (B, 3, D)
        expected = (y * enc.attention(y)[:, :, None]).sum(dim=1)
        got = enc(x)[:, t]
        first = enc(x)[:, 0]  # no past frames: the past feature is the linear layer's bias
        bias = enc.linear_bef.bias.expand(3, D)
        cur0 = enc.linear_cur(enc.gru_cur(x)[0][:, 0].relu())
        aft0 = enc.linear_aft(enc.gru_aft(x[:, 1:].flip(1))[0][:, -1].relu())
        y0 = torch.stack([bias, cur0, aft0], dim=1)
        expected0 = (y0 * enc.attention(y0)[:, :, None]).sum(dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(first, expected0, rtol=1e-5, atol=1e-6)


def test_sinusoidal_positions_by_hand():
    codes = sinusoidal_positions(3, 4)
    # channels (sin, cos) at rate 1 and (sin, cos) at rate 1e4 ** (-2 / 4) = 0.01
    expected = torch.tensor([[0.0, 1.0, 0.0, 1.0],
                             [0.841470985, 0.540302306, 0.009999833, 0.999950000],
                             [0.909297427, -0.416146837, 0.019998667, 0.999800007]])  # fmt: skip
    torch.testing.assert_close(codes, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seq_len", [8, 20])
def test_window_margins(seq_len):
    for blocks in (0, 1, 3):
        conv = _encoder("hmmr_conv", f"model.temporal.num_blocks={blocks}")
        assert window_margin(conv, seq_len) == receptive_margin(blocks, 3) == 2 * blocks
    assert window_margin(_encoder("none"), seq_len) == 0
    for kind in ("gru", "tcmr", "transformer"):
        assert window_margin(_encoder(kind), seq_len) == (seq_len - 1) // 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.temporal.kind=lstm"], "model.temporal.kind must be one of hmmr_conv, gru"),
        (["model.temporal.kind=transformer", "model.temporal.transformer.heads=5"],
         "model.temporal.transformer.width=32 must be even and divisible by "
         "model.temporal.transformer.heads=5"),
        (["model.temporal.kind=gru", "model.temporal.gru.add_linear=false"],
         "model.temporal.gru.hidden=32 must equal model.feat_dim=64"),
        (["model.temporal.kind=tcmr", "model.temporal.tcmr.hidden=0"],
         "model.temporal.tcmr.hidden must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_temporal_configs_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", overrides=overrides)


def test_other_kinds_ignore_the_conv_blocks_settings():
    """num_groups must divide D for HMMR's blocks only."""
    cfg = load_config("tiny", overrides=["model.temporal.kind=gru",
                                          "model.temporal.num_groups=7"])  # fmt: skip
    assert cfg.model.temporal.kind == "gru"


@pytest.mark.parametrize("kind", KINDS)
def test_a_few_steps_lower_the_loss(kind, synthetic_body_dir):
    """Eight G + D steps on one batch (features, no dropout) lower the generator's loss."""
    steps = 8
    overrides = [f"body.model_dir={synthetic_body_dir}", "data.inputs=features",
                 f"trainer.max_batches={steps}", f"model.temporal.kind={kind}",
                 "model.regressor_dropout=0.0", "model.temporal.transformer.dropout=0.0",
                 "optim.warmup_batches=0", "optim.gen_lr=1e-3"]  # fmt: skip
    cfg = load_config("tiny", overrides=overrides)
    torch.manual_seed(0)
    module = HMMRModule(to_container(cfg))
    d, m = cfg.data, cfg.model
    poses = num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)
    batch = synthetic_clip_batch(module.body, d.batch_size, d.seq_len, m.feat_dim, poses,
                                 torch.Generator().manual_seed(0))  # fmt: skip
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            losses.append(float(trainer.callback_metrics["train/loss/total"]))

    trainer = pl.Trainer(accelerator="cpu", max_steps=2 * steps, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0,
                         callbacks=[Record()])  # fmt: skip
    trainer.fit(module, DataLoader([batch] * steps, batch_size=None, collate_fn=lambda b: b))
    assert len(losses) == steps
    assert losses[-1] < 0.9 * losses[0], losses
