"""The quickstart's model stack end to end on the synthetic body model."""

from __future__ import annotations

import math

import pytest

from lightning_hmd.commands import main
from lightning_hmd.config import load_config
from lightning_hmd.experiments.smoke import run_smoke


def test_smoke_overfits_one_batch(synthetic_body_dir):
    cfg = load_config("tiny", overrides=[f"body.model_dir={synthetic_body_dir}"])
    result = run_smoke(cfg, steps=8)
    assert result.gen_total[-1] < result.gen_total[0]
    assert all(math.isfinite(v) for v in result.last.values())
    assert {"kp2d/hal/dt+2", "adv", "disc/real", "hallucinate"} <= set(result.first)


@pytest.mark.slow
def test_cli_smoke_and_missing_body_model(synthetic_body_dir, tmp_path, capsys):
    assert main(["smoke", "--preset", "tiny", f"body.model_dir={synthetic_body_dir}"]) == 0
    assert "generator total" in capsys.readouterr().out
    assert main(["smoke", "--preset", "tiny", f"body.model_dir={tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "none") in err and "body synth" in err
