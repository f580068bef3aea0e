"""A tiny sweep run locally end to end: every trial trained once, finished ones skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_sweep

from lightning_hmd.commands import main
from lightning_hmd.experiments.sweep_run import run_sweep
from lightning_hmd.experiments.sweeps import load_sweep
from lightning_hmd.train.run_dir import read_summary

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "compare_ablations.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_sweep_trains_each_trial_once(offscreen_gl, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    args = ["data", "synth", "--out", str(data), "--clips", "4", "--val-clips", "1",
            "--test-clips", "1", "--frames", "16", "--mocap", "100", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    (tmp_path / "tiny.yaml").write_text(tiny_sweep("tiny_depth"))
    sweep = load_sweep(tmp_path / "tiny.yaml")
    over = [
        f"body.model_dir={data / 'body_model'}",
        f"data.train_sets=[{data / 'train'}]",
        f"data.val_sets=[{data / 'val'}]",
        f"data.mocap_sets=[{data / 'mocap'}]",
        f"run.root={tmp_path / 'runs'}",
        "trainer.max_batches=2",
        "trainer.val_every_batches=2",
        "trainer.ckpt_every_batches=2",
    ]
    runs = run_sweep(sweep, seeds=2, overrides=over, echo=lambda _: None)
    assert [r.status for r in runs] == ["trained"] * 4
    names = sorted(r.run_dir.name for r in runs)
    assert names == [f"tiny_depth-{t:03d}-seed{s}" for t in (0, 1) for s in (1, 2)]
    for r in runs:
        summary = read_summary(r.run_dir)
        assert summary["finished"] and summary["batches"] == 2
        assert "val/pa_mpjpe" in summary["metrics"]
        record = json.loads((r.run_dir / "sweep.json").read_text())
        assert record["sweep"] == "tiny_depth" and record["seed"] == r.trial.seed
        assert record["params"] == {"model.temporal.num_blocks": r.trial.index}
        hparams = (r.run_dir / "hparams.yaml").read_text()
        assert f"num_blocks: {r.trial.index}" in hparams and "group: tiny_depth" in hparams
        assert f"seed: {r.trial.seed}" in hparams
    # compare: one row per configuration, mean and std over the two seeds, and the plots
    from lightning_hmd.experiments.compare import compare

    result = compare([tmp_path / "runs"], tmp_path / "cmp")
    assert result["runs"] == 4 and result["configurations"] == 2 and not result["unfinished"]
    for blocks in (0, 1):
        pa = [read_summary(r.run_dir)["metrics"]["val/pa_mpjpe"] for r in runs
              if r.trial.index == blocks]  # fmt: skip
        mean, std = sum(pa) / 2, abs(pa[0] - pa[1]) / 2**0.5
        assert (
            f"| model.temporal.num_blocks={blocks} | hmmr | 2 | {mean:.2f} ± {std:.2f} |"
            in (tmp_path / "cmp" / "compare.md").read_text()
        )
    for name in ("learning_curves.png", "val_pa_mpjpe_vs_model_temporal_num_blocks.png",
                 "accuracy_vs_smoothness.png"):  # fmt: skip
        assert (tmp_path / "cmp" / name).stat().st_size > 5000
    # the notebook does the same interactively: executed here, so it never rots
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("LIGHTNING_HMD_RUNS", str(tmp_path / "runs"))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    nbformat.write(nb, tmp_path / "compare_ablations.executed.ipynb")
    texts = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "4 runs below" in texts and "| model.temporal.num_blocks=1 | hmmr | 2 |" in texts
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1
    # a re-run finds every trial finished and trains nothing
    again = run_sweep(sweep, seeds=2, overrides=over, echo=print)
    assert [r.status for r in again] == ["skipped"] * 4
    assert capsys.readouterr().out.count("finished before, skipped") == 4
