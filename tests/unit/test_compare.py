"""compare: runs grouped by configuration, mean ± std over seeds, curves, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_hmd.experiments.compare import compare, find_runs, read_curves, summarise_configs


def _run(
    root: Path, name: str, params: dict, seed: int, pa: float, curve: list, protocol="hmmr"
) -> Path:
    d = root / name
    d.mkdir(parents=True)
    metrics = {"val/pa_mpjpe": pa, "val/mpjpe": 2 * pa, "val/accel_error": pa / 10}
    summary = {"batches": 9, "finished": True, "metrics": metrics}
    if protocol:
        summary["protocol"] = {"name": protocol, "card": {"averaging": "..."}}
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "sweep.json").write_text(json.dumps({"sweep": "s", "params": params, "seed": seed}))
    rows = ["epoch,step,val/pa_mpjpe,train/loss/total"]
    rows += [f"0,{step},{v}," for step, v in curve] + ["0,3,,1.5"]
    (d / "metrics.csv").write_text("\n".join(rows) + "\n")
    return d


def test_configurations_average_over_seeds(tmp_path: Path):
    _run(tmp_path, "a1", {"model.temporal.num_blocks": 0}, 1, 100.0, [(4, 120.0), (9, 100.0)])
    _run(tmp_path, "a2", {"model.temporal.num_blocks": 0}, 2, 110.0, [(4, 130.0), (9, 110.0)])
    _run(tmp_path, "b1", {"model.temporal.num_blocks": 3}, 1, 90.0, [(4, 95.0), (9, 90.0)])
    runs = find_runs([tmp_path])
    assert [r.path.name for r in runs] == ["a1", "a2", "b1"]
    rows = {r.label: r for r in summarise_configs(runs, ["val/pa_mpjpe", "val/mpjpe"])}
    a = rows["model.temporal.num_blocks=0"]
    assert a.runs == 2 and a.mean["val/pa_mpjpe"] == 105.0
    assert a.std["val/pa_mpjpe"] == pytest.approx(50**0.5)  # sample std of 100 and 110
    assert rows["model.temporal.num_blocks=3"].std["val/mpjpe"] == 0.0  # one seed
    # logged step s is after batch s + 1; rows without the key are skipped
    assert read_curves(tmp_path / "a1", ["val/pa_mpjpe"])["val/pa_mpjpe"] == [
        (5, 120.0),
        (10, 100.0),
    ]
    result = compare([tmp_path / "a1", tmp_path / "a2", tmp_path / "b1"], tmp_path / "out")
    table = (tmp_path / "out" / "compare.md").read_text()
    assert "| configuration | protocol | seeds | val/pa_mpjpe [hmmr] | val/mpjpe [hmmr] |" in table
    assert "| model.temporal.num_blocks=0 | hmmr | 2 | 105.00 ± 7.07 | 210.00 ± 14.14 |" in table
    assert "- **hmmr** protocol: source: akanazawa/human_dynamics" in table  # its card
    assert result["files"][-1] == "val_pa_mpjpe_vs_model_temporal_num_blocks.png"
    assert "accuracy_vs_smoothness.png" in result["files"]
    csv_rows = (tmp_path / "out" / "compare.csv").read_text().splitlines()
    assert csv_rows[0].startswith("configuration,protocol,seeds,val/pa_mpjpe [hmmr] mean")
    assert csv_rows[1].startswith("model.temporal.num_blocks=0,hmmr,2,105.0,7.07")


def test_numbers_of_different_protocols_never_share_a_column(tmp_path: Path):
    params = {"model.temporal.num_blocks": 3}
    _run(tmp_path, "h1", params, 1, 90.0, [(4, 95.0)])
    _run(tmp_path, "h2", params, 2, 94.0, [(4, 95.0)])
    _run(tmp_path, "v1", params, 1, 60.0, [(4, 65.0)], protocol="vibe")
    _run(tmp_path, "old", params, 1, 70.0, [(4, 75.0)], protocol=None)
    runs = find_runs([tmp_path])
    assert sorted(r.protocol for r in runs) == ["hmmr", "hmmr", "protocol not recorded", "vibe"]
    rows = summarise_configs(runs, ["val/pa_mpjpe"])
    assert sorted((r.protocol, r.runs, r.mean["val/pa_mpjpe"]) for r in rows) == [
        ("hmmr", 2, 92.0), ("protocol not recorded", 1, 70.0), ("vibe", 1, 60.0)
    ]  # fmt: skip
    compare([tmp_path], tmp_path / "out", ["val/pa_mpjpe"])
    table = (tmp_path / "out" / "compare.md").read_text().splitlines()
    assert table[0] == (
        "| configuration | protocol | seeds | val/pa_mpjpe [hmmr] | "
        "val/pa_mpjpe [protocol not recorded] | val/pa_mpjpe [vibe] |"
    )
    label = "model.temporal.num_blocks=3"
    assert f"| {label} | hmmr | 2 | 92.00 ± 2.83 | — | — |" in table
    assert f"| {label} | vibe | 1 | — | — | 60.00 ± 0.00 |" in table
    assert any(line.startswith("- **vibe** protocol: source: mkocabas/VIBE") for line in table)


def test_missing_runs_are_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no such run"):
        find_runs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no run at or below it \(no summary.json"):
        find_runs([tmp_path / "empty"])


def _with_cost(d: Path, total: int, temporal: int, flops: float, seconds: float) -> None:
    summary = json.loads((d / "summary.json").read_text())
    summary["model"] = {
        "parameters": {"total": total, "temporal_encoder": temporal},
        "flops_per_batch": {"generator": flops, "temporal_encoder": flops / 4},
    }
    summary["train_seconds"] = seconds
    (d / "summary.json").write_text(json.dumps(summary))


def test_costs_follow_the_metrics_with_mean_and_std_over_seeds(tmp_path: Path):
    a = {"model.temporal.kind": "gru"}
    _with_cost(_run(tmp_path, "g1", a, 1, 100.0, [(4, 1.0)]), 2_500_000, 1_250_000, 3e9, 120.0)
    _with_cost(_run(tmp_path, "g2", a, 2, 110.0, [(4, 1.0)]), 2_500_000, 1_250_000, 3e9, 240.0)
    _run(tmp_path, "n1", {"model.temporal.kind": "none"}, 1, 130.0, [(4, 1.0)])  # no costs
    rows = {r.label: r for r in summarise_configs(find_runs([tmp_path]), ["val/pa_mpjpe"])}
    g = rows["model.temporal.kind=gru"]
    assert g.cost_mean == {
        "parameters": 2.5e6,
        "temporal_parameters": 1.25e6,
        "gflops_per_batch": 3e9,
        "train_seconds": 180.0,
    }
    assert g.cost_std["train_seconds"] == pytest.approx(7200**0.5)  # sample std of 120, 240
    assert g.cost_std["parameters"] == 0.0
    assert rows["model.temporal.kind=none"].cost_mean == {}
    compare([tmp_path], tmp_path / "out")
    table = (tmp_path / "out" / "compare.md").read_text()
    assert (
        "| val/vel_error [hmmr] | params (M) | temporal params (M) | GFLOP / batch "
        "| train time (min) |" in table
    )
    # pa 105 ± 7.07, mpjpe 210 ± 14.14, accel 10.5 ± 0.71, no vel_error; 2.50M, 1.250M,
    # 3.00 GFLOP, 3.0 ± 1.4 min (180 s ± 84.9 s); the run without costs shows dashes
    assert (
        "| model.temporal.kind=gru | hmmr | 2 | 105.00 ± 7.07 | 210.00 ± 14.14 | 10.50 ± 0.71 "
        "| — | 2.50 | 1.250 | 3.00 | 3.0 ± 1.4 |" in table
    )
    assert "| model.temporal.kind=none | hmmr | 1 | 130.00 ± 0.00 |" in table
    assert table.splitlines()[3].endswith("| — | — | — | — | — |")
    csv_rows = (tmp_path / "out" / "compare.csv").read_text().splitlines()
    assert csv_rows[0].endswith("train_seconds mean,train_seconds std")
    assert csv_rows[1].endswith(f",180.0,{7200**0.5}")


def test_plot_labels_name_only_the_parameters_that_differ():
    from lightning_hmd.experiments.compare_plots import short_labels

    params = [
        {"model.temporal.kind": "gru", "model.discriminator": "pose"},
        {"model.temporal.kind": "tcmr", "model.discriminator": "pose"},
    ]
    labels = ["model.temporal.kind=gru model.discriminator=pose", "model.temporal.kind=tcmr x"]
    assert short_labels(params, labels) == (
        ["model.temporal.kind=gru", "model.temporal.kind=tcmr"],
        "model.discriminator=pose",
    )
    # one configuration: nothing differs, the labels stay; runs outside a sweep keep theirs
    assert short_labels(params[:1], labels[:1]) == (labels[:1], "model.temporal.kind=gru "
                                                    "model.discriminator=pose")  # fmt: skip
    assert short_labels([{}, {}], ["run_a", "run_b"]) == (["run_a", "run_b"], "")
    # a key only some configurations set differs (absent is its own value)
    assert short_labels([{"a": 1}, {"a": 1, "b": 2}], ["x", "y"]) == (
        ["b=None", "b=2"],
        "a=1",
    )
