"""The quickstart end to end at a tiny budget: data, two trainings, evaluation, report."""

from __future__ import annotations

import json

import pytest

from lightning_hmd.commands import main
from lightning_hmd.data.manifest import read_manifest
from lightning_hmd.experiments.quickstart import Plan, cpu_precision


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_writes_metrics_report_and_pictures(offscreen_gl, tmp_path):
    out = tmp_path / "quickstart"
    sizes = (
        "--budget 4 --clips 4 --test-clips 3 --hmr-budget 4 --hmr-batch-size 8 --copies 2 "
        "--batch-size 2"
    )
    args = ["quickstart", "--out", str(out), *sizes.split(), "--no-progress"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["name"] == "hmmr" and "visibility" in metrics["protocol"]["card"]
    keys = {"mpjpe", "pa_mpjpe", "pve", "pck", "accel", "accel_error", "vel_error", "jitter"}
    assert keys <= set(metrics["baseline_mean_pose"])
    assert set(metrics["runs"]) == {"temporal", "single_frame"}
    for run in metrics["runs"].values():
        assert keys <= set(run) and all(run[k] is not None for k in keys)
    # the single-frame ablation really has no temporal blocks, the temporal model three
    assert "num_blocks: 0" in (out / "runs" / "single_frame" / "hparams.yaml").read_text()
    # the HMR stage trained the encoder on single frames and wrote the HMR init file the
    # temporal runs start from; they read features with two augmented copies per clip
    hmr = (out / "runs" / "hmr" / "hparams.yaml").read_text()
    assert "seq_len: 1" in hmr and "inputs: images" in hmr and "freeze_encoder: false" in hmr
    temporal = (out / "runs" / "temporal" / "hparams.yaml").read_text()
    assert f"init_checkpoint: {out / 'hmr_init.pt'}" in temporal and "inputs: features" in temporal
    # both feature runs add the preset's per-frame noise to their training features
    for run in ("temporal", "single_frame"):
        assert "feature_noise: 2.0" in (out / "runs" / run / "hparams.yaml").read_text()
    # training clips of Plan.train_frames frames, test clips of 40
    frames = Plan().train_frames
    assert 20 <= frames < 40
    assert read_manifest(out / "data" / "train").total_frames == 4 * frames
    assert read_manifest(out / "features" / "train").total_frames == 2 * 4 * frames
    assert read_manifest(out / "features" / "test").total_frames == 3 * 40
    assert metrics["plan"]["copies"] == 2 and set(metrics["stage_time_s"]) == {
        "data", "hmr_stage", "features", "temporal_runs"}  # fmt: skip
    report = (out / "report.md").read_text()
    for picture in ("learning_curves.png", "per_joint_error.png", "acceleration.png",
                    "skeletons.png"):  # fmt: skip
        assert f"![{picture}]({picture})" in report
        assert (out / picture).stat().st_size > 5000
    assert "| temporal |" in report and "| mean-pose baseline |" in report
    assert "Scored under the `hmmr` protocol" in report and "- **visibility**: " in report
    assert f"4 training clips of {frames} frames" in report
    assert "3 test clips of 40 frames" in report
    # the HMR stage trains in bf16-mixed where the CPU computes bfloat16 natively
    assert f"precision: {cpu_precision()}" in hmr
