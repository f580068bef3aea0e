"""Parameter counts per component: paper config by hand formula, meta build, table."""

import torch

from lightning_hmd.config import load_config
from lightning_hmd.models import build_discriminator, build_generator
from lightning_hmd.models.summary import format_parameter_counts, parameter_counts


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_paper_counts_by_formula():
    counts = parameter_counts(load_config("paper", overrides=["model.init_checkpoint=none"]).model)
    D, H, hal = 2048, 1024, 2048
    temporal = 3 * (2 * (D * D * 3 + D) + 2 * 2 * D)  # 3 blocks: 2 convs k=3 + 2 GN affine
    ief_3d = _linear(D + 85, H) + _linear(H, H) + _linear(H, 85) + 85  # + learnable mean
    delta = _linear(D + 72, H) + _linear(H, H) + _linear(H, 72)
    hallucinator = _linear(D, hal) + _linear(hal, hal) + _linear(hal, D)
    disc = (
        _linear(9, 32)
        + _linear(32, 32)  # shared 1x1 convs
        + 23 * _linear(32, 1)  # per-joint heads
        + _linear(23 * 32, 1024)
        + _linear(1024, 1024)
        + _linear(1024, 1)  # all-joints MLP
    )
    expected = {
        "image_encoder": 23_519_360,  # derived in test_models_resnet_v2
        "temporal_encoder": temporal,
        "regressor": ief_3d,
        "delta_heads": 2 * delta,
        "hallucinator": hallucinator,
        "discriminator": disc,
    }
    expected["generator"] = sum(v for k, v in expected.items() if k != "discriminator")
    expected["total"] = expected["generator"] + disc
    assert counts == expected
    assert temporal == 75_534_336
    assert ief_3d == 3_322_026


def test_shape_discriminator_and_options_counts():
    model = load_config(
        "paper",
        overrides=[
            "model.init_checkpoint=none",
            "model.shape_discriminator=true",
            "model.hallucinator=false",
        ],
    ).model
    counts = parameter_counts(model)
    assert counts["hallucinator"] == 0
    pose_disc = parameter_counts(
        load_config("paper", overrides=["model.init_checkpoint=none"]).model
    )["discriminator"]
    assert counts["discriminator"] == pose_disc + _linear(10, 10) + _linear(10, 5) + _linear(5, 1)


def test_meta_counts_equal_a_real_build():
    model = load_config("tiny").model
    counts = parameter_counts(model)
    gen = build_generator(model, torch.zeros(24, 3), torch.zeros(10))
    disc = build_discriminator(model)
    assert counts["generator"] == sum(p.numel() for p in gen.parameters())
    assert counts["discriminator"] == sum(p.numel() for p in disc.parameters())


def test_format_table():
    table = format_parameter_counts(
        parameter_counts(load_config("paper", overrides=["model.init_checkpoint=none"]).model)
    )
    assert "temporal_encoder" in table and "75.53M" in table
    assert table.splitlines()[0].split() == ["component", "params", "millions"]


def _flops(kind: str, preset: str = "tiny") -> dict[str, int]:
    from lightning_hmd.models.summary import step_flops

    cfg = load_config(
        preset, overrides=[f"model.temporal.kind={kind}", "model.init_checkpoint=none"]
    )
    return step_flops(cfg.model, cfg.data.batch_size, cfg.data.seq_len)


def test_temporal_flops_by_formula():
    """HMMR's blocks: per block two convolutions, each a (B·T × k·D) by (k·D × D) product
    forward and two of that size backward (input and weight gradients)."""
    cfg = load_config("paper", overrides=["model.init_checkpoint=none"])
    flops = _flops("hmmr_conv", "paper")
    b, t, d, k, n = cfg.data.batch_size, cfg.data.seq_len, cfg.model.feat_dim, 3, 3
    assert flops["temporal_encoder"] == n * 2 * 3 * (2 * b * t * k * d * d)
    assert _flops("none")["temporal_encoder"] == 0
    for kind in ("gru", "tcmr", "transformer"):
        f = _flops(kind)
        assert 0 < f["temporal_encoder"] < f["generator"], kind
    # the rest of the generator is the same for every encoder
    rest = {k: f["generator"] - f["temporal_encoder"] for k, f in
            ((k, _flops(k)) for k in ("hmmr_conv", "gru", "none"))}  # fmt: skip
    assert len(set(rest.values())) == 1, rest


def test_params_command_prints_counts_and_flops(capsys):
    from lightning_hmd.commands import main

    assert main(["params", "--preset", "tiny", "model.temporal.kind=transformer"]) == 0
    out = capsys.readouterr().out
    assert "temporal_encoder" in out and "FLOPs per batch" in out and "(B = 2, T = 8" in out
    assert "no image encoder is trained" not in out
    # a features run: counted as its summary counts it, without the image encoder
    over = ["data.inputs=features", "model.temporal.kind=transformer"]
    assert main(["params", "--preset", "tiny", *over]) == 0
    out = capsys.readouterr().out
    cfg = load_config("tiny", overrides=over)
    total = parameter_counts(cfg.model, with_image_encoder=False)["total"]
    assert any(line.split()[:2] == ["total", f"{total:,}"] for line in out.splitlines())
    assert any(line.split()[:2] == ["image_encoder", "0"] for line in out.splitlines())
    assert f"(data.inputs=features: no image encoder is trained; {cfg.model.encoder} ran" in out


def test_a_features_model_counts_no_image_encoder():
    """A features run builds no image encoder, so its summary must not build one either (a
    feat_dim the default encoder refuses is fine there)."""
    over = ["data.inputs=features", "model.encoder=resnet50_v2", "model.feat_dim=8",
            "model.temporal.num_groups=8"]  # fmt: skip
    cfg = load_config("tiny", overrides=over)
    counts = parameter_counts(cfg.model, with_image_encoder=False)
    full = parameter_counts(load_config("tiny").model)
    assert counts["image_encoder"] == 0 and full["image_encoder"] > 0
    parts = ("temporal_encoder", "regressor", "delta_heads", "hallucinator")
    assert counts["generator"] == sum(counts[k] for k in parts)
