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
