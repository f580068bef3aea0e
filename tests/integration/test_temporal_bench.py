"""The temporal-model bench at a tiny size: sweeps/temporal_models.yaml through `sweep run`
(the five encoders with the pose discriminator, 3 seeds), then `compare`'s table with the
protocol's metrics and each encoder's parameters, FLOPs and training time."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lightning_hmd.commands import main
from lightning_hmd.config import load_config
from lightning_hmd.models.summary import parameter_counts, step_flops
from lightning_hmd.train.run_dir import read_summary

SWEEP = Path(__file__).parents[2] / "sweeps" / "temporal_models.yaml"
KINDS = ("hmmr_conv", "gru", "tcmr", "transformer", "none")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_five_encoders_three_seeds_through_sweep_run_and_compare(synth_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    over = [
        f"body.model_dir={synth_dir / 'body_model'}",
        f"data.train_sets=[{synth_dir / 'train'}]",
        f"data.val_sets=[{synth_dir / 'val'}]",
        f"data.mocap_sets=[{synth_dir / 'mocap'}]",
        f"run.root={runs}",
        "trainer.max_batches=2",
        "trainer.val_every_batches=2",
        "trainer.ckpt_every_batches=0",
        "trainer.image_every_batches=0",
    ]
    sweep = ["sweep", "run", "--preset", "tiny", "--where", "model.discriminator=pose"]
    assert main([*sweep, "--seeds", "3", str(SWEEP), *over]) == 0
    summaries = [read_summary(d) for d in sorted(runs.iterdir())]
    assert len(summaries) == 15 and all(s["finished"] for s in summaries)
    assert sorted(s["model"]["temporal_kind"] for s in summaries) == sorted(KINDS * 3)
    assert {s["model"]["discriminator"] for s in summaries} == {"pose"}

    capsys.readouterr()
    assert main(["compare", str(runs), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    metrics = ("val/pa_mpjpe", "val/mpjpe", "val/accel_error", "val/vel_error")
    assert printed.splitlines()[0] == (
        "| configuration | protocol | seeds | "
        + " | ".join(f"{m} [hmmr]" for m in metrics)
        + " | params (M) | temporal params (M) | GFLOP / batch | train time (min) |"
    )
    with open(tmp_path / "cmp" / "compare.csv") as f:
        rows = {r["configuration"]: r for r in csv.DictReader(f)}
    assert len(rows) == 5
    for kind in KINDS:
        row = rows[f"model.temporal.kind={kind} model.discriminator=pose"]
        assert row["protocol"] == "hmmr" and row["seeds"] == "3"
        for m in metrics:  # every metric scored on every seed
            assert float(row[f"{m} [hmmr] mean"]) >= 0 and float(row[f"{m} [hmmr] std"]) >= 0
        cfg = load_config("tiny", overrides=[f"model.temporal.kind={kind}"])
        counts = parameter_counts(cfg.model)
        assert float(row["parameters mean"]) == counts["total"]
        assert float(row["temporal_parameters mean"]) == counts["temporal_encoder"]
        assert (kind == "none") == (counts["temporal_encoder"] == 0)
        flops = step_flops(cfg.model, cfg.data.batch_size, cfg.data.seq_len)["generator"]
        assert float(row["gflops_per_batch mean"]) == flops
        assert float(row["train_seconds mean"]) > 0
    # the seeds differ (their metrics are not all equal) and the single-frame model's
    # encoder costs nothing
    pa = [
        float(rows[f"model.temporal.kind={k} model.discriminator=pose"]["val/pa_mpjpe [hmmr] std"])
        for k in KINDS
    ]
    assert any(v > 0 for v in pa)
    assert (tmp_path / "cmp" / "accuracy_vs_smoothness.png").stat().st_size > 0
