"""The quickstart end to end at a tiny budget: data, two trainings, evaluation, report."""

from __future__ import annotations

import json

import pytest

from lightning_hmd.cli import main


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_writes_metrics_report_and_pictures(offscreen_gl, tmp_path):
    out = tmp_path / "quickstart"
    args = ["quickstart", "--out", str(out), "--budget", "4", "--clips", "4", "--no-progress"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    keys = {"mpjpe", "pa_mpjpe", "pve", "pck", "accel", "accel_error"}
    assert keys <= set(metrics["baseline_mean_pose"])
    assert set(metrics["runs"]) == {"temporal", "single_frame"}
    for run in metrics["runs"].values():
        assert keys <= set(run) and all(run[k] is not None for k in keys)
    # the single-frame ablation really has no temporal blocks, the temporal model three
    assert "num_blocks: 0" in (out / "runs" / "single_frame" / "hparams.yaml").read_text()
    report = (out / "report.md").read_text()
    for picture in ("learning_curves.png", "per_joint_error.png", "acceleration.png",
                    "skeletons.png"):  # fmt: skip
        assert f"![{picture}]({picture})" in report
        assert (out / picture).stat().st_size > 5000
    assert "| temporal |" in report and "| mean-pose baseline |" in report
