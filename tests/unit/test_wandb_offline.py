"""W&B offline logs written by wandb itself, read back: records across 32 KiB blocks, a
resumed run's two directories joined, a damaged log's bad records counted, and ``compare``
on offline runs alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lightning_hmd.experiments.compare import compare, find_runs
from lightning_hmd.experiments.wandb_offline import OfflineLogError, offline_runs, read_payloads


def _log_run(root: Path, run_id: str, config: dict, rows: list[dict], summary: dict) -> Path:
    """A real offline run written by wandb (as Lightning's WandbLogger does: config, rows
    with ``trainer/global_step``, a summary)."""
    import wandb

    os.environ["WANDB_MODE"] = "offline"
    try:
        run = wandb.init(project="p", id=run_id, dir=str(root), config=config, group="g",
                         resume="allow", settings=wandb.Settings(silent=True))  # fmt: skip
        for row in rows:
            run.log(row)
        run.summary.update(summary)
        run.finish()
    finally:
        os.environ["WANDB_MODE"] = "disabled"
    return sorted(Path(root, "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))[-1]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wandb_runs")
    big = "x" * 70_000  # one record over two 32 KiB block boundaries
    for blocks, seed, pa in ((0, 1, 90.0), (0, 2, 94.0), (1, 1, 80.0)):
        config = {"model.temporal.num_blocks": blocks, "seed": seed, "sweep.name": "depth",
                  "sweep.seed": seed,
                  "sweep.parameters": ["model.temporal.num_blocks"]}  # fmt: skip
        rows = [{"trainer/global_step": s, "val/pa_mpjpe": pa + 10 - s} for s in (4, 9)]
        if (blocks, seed) == (0, 1):
            rows.insert(0, {"trainer/global_step": 0, "note": big})
        summary = {"val/pa_mpjpe": pa, "finished": True, "protocol": "hmmr",
                   "protocol_card": {"averaging": "per video"}}  # as train writes it  # fmt: skip
        _log_run(root, f"d{blocks}s{seed}", config, rows, summary)
    return root


def test_history_config_and_summary_come_back(logs):
    runs = offline_runs(logs)
    assert sorted(runs) == ["d0s1", "d0s2", "d1s1"]
    run = runs["d0s1"]
    assert run.corrupt == 0 and run.group == "g"
    assert run.config["model.temporal.num_blocks"] == 0 and run.config["sweep.seed"] == 1
    assert run.history[0]["note"] == "x" * 70_000
    assert [(h["trainer/global_step"], h["val/pa_mpjpe"]) for h in run.history[1:]] == [
        (4, 96.0), (9, 91.0)]  # fmt: skip
    assert run.summary["val/pa_mpjpe"] == 90.0 and run.summary["finished"] is True


def test_a_resumed_run_joins_its_directories_in_order(tmp_path):
    for steps in ((0, 1), (2, 3)):
        rows = [{"trainer/global_step": s, "train/batches": s + 1} for s in steps]
        _log_run(tmp_path, "again", {"seed": 1}, rows, {})
        time.sleep(1.1)  # offline directories are named by their start second
    run = offline_runs(tmp_path / "wandb")["again"]
    assert len(run.paths) == 2
    assert [h["train/batches"] for h in run.history] == [1, 2, 3, 4]


def test_damaged_logs(logs, tmp_path):
    log = next(logs.rglob("run-d0s2.wandb"))
    data = log.read_bytes()
    whole, bad = read_payloads(log)
    assert bad == 0
    (tmp_path / "cut.wandb").write_bytes(data[:-5])  # a killed writer's tail
    cut, bad = read_payloads(tmp_path / "cut.wandb")
    assert cut == whole[:-1] and bad == 1
    flipped = bytearray(data)
    flipped[20] ^= 0xFF  # inside the first record
    (tmp_path / "flip.wandb").write_bytes(bytes(flipped))
    rest, bad = read_payloads(tmp_path / "flip.wandb")
    assert rest == whole[1:] and bad == 1
    (tmp_path / "other.wandb").write_bytes(b"PK\x03\x04 not a log")
    with pytest.raises(OfflineLogError, match="other.wandb: not a W&B transaction log"):
        read_payloads(tmp_path / "other.wandb")


def test_compare_reads_offline_runs(logs, tmp_path):
    runs = find_runs([logs])
    assert [(r.params, r.seed, r.sweep) for r in runs] == [
        ({"model.temporal.num_blocks": 0}, 1, "depth"),
        ({"model.temporal.num_blocks": 0}, 2, "depth"),
        ({"model.temporal.num_blocks": 1}, 1, "depth"),
    ]
    assert runs[1].curves["val/pa_mpjpe"] == [(5.0, 100.0), (10.0, 95.0)]  # batches = step + 1
    result = compare([logs], tmp_path)
    assert result["runs"] == 3 and result["configurations"] == 2
    table = (tmp_path / "compare.md").read_text()
    assert "| model.temporal.num_blocks=0 | hmmr | 2 | 92.00 ± 2.83 |" in table
    assert "| model.temporal.num_blocks=1 | hmmr | 1 | 80.00 ± 0.00 |" in table
    assert all(r.protocol == "hmmr" for r in runs)
