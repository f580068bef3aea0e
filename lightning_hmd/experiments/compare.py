"""``lightning-hmd compare``: final metrics and learning curves of runs, per configuration.

Reads local run directories (``summary.json`` written at the end of ``train``, ``sweep.json``
written by ``sweep run``, curves from the CSV logger's ``metrics.csv`` or the W&B offline logs
in the run's ``wandb/``) given directly or found below a folder (a sweep's run root), W&B
offline run directories on their own (``wandb/offline-run-*``: config, summary and history
from the log), and W&B sweeps through the API when online. Runs that differ only in their
seed form one configuration; the table gives mean ± std over seeds. Every number carries the
evaluation protocol it was scored under (``summary.json``'s ``protocol``, the W&B summary's
``protocol``): columns are per metric and protocol, ``val/pa_mpjpe [hmmr]``, so numbers of
different protocols never share a column, and ``compare.md`` ends with each protocol's card.
The cost of each configuration follows its metrics: parameters (all, and the temporal
encoder's), FLOPs per training batch and training time (``summary.json``'s ``model`` and
``train_seconds``; mean ± std over seeds).
Writes ``compare.md``, ``compare.csv``, ``learning_curves.png`` (validation metric against
batches, mean over seeds), ``accuracy_vs_smoothness.png`` (PA-MPJPE against acceleration
error per configuration) and, for each swept parameter, ``<metric>_vs_<parameter>.png``.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from lightning_hmd.errors import MissingPathError
from lightning_hmd.evaluation.protocols import PROTOCOLS
from lightning_hmd.experiments.compare_plots import ACCURACY, SMOOTHNESS, write_plots
from lightning_hmd.experiments.compare_study import (
    is_study,
    read_studies,
    study_markdown,
    study_urls,
)
from lightning_hmd.experiments.wandb_offline import OFFLINE_GLOB, OfflineRun, offline_runs
from lightning_hmd.train.run_dir import SUMMARY, read_summary, read_sweep_record

METRICS_CSV = "metrics.csv"
STEP_KEY = "trainer/global_step"  # what Lightning's WandbLogger logs as the step
DEFAULT_METRICS = ("val/pa_mpjpe", "val/mpjpe", "val/accel_error", "val/vel_error")
UNRECORDED = "protocol not recorded"  # runs written before results named their protocol
# the cost columns: key -> (header, scale of the recorded number, digits)
COSTS = {
    "parameters": ("params (M)", 1e-6, 2),
    "temporal_parameters": ("temporal params (M)", 1e-6, 3),
    "gflops_per_batch": ("GFLOP / batch", 1e-9, 2),
    "train_seconds": ("train time (min)", 1 / 60, 1),
}
WANDB_COSTS = {  # the COSTS keys in a W&B run's summary
    "parameters": "params/total",
    "temporal_parameters": "params/temporal_encoder",
    "gflops_per_batch": "flops_per_batch/generator",
    "train_seconds": "train_seconds",
}


def summary_cost(summary: dict) -> dict[str, float]:
    """The recorded costs of a run from its ``summary.json`` (unscaled: parameters, FLOPs,
    seconds); keys the summary lacks (runs written before they were recorded) are left out."""
    model = summary.get("model") or {}
    params, flops = model.get("parameters") or {}, model.get("flops_per_batch") or {}
    found = {
        "parameters": params.get("total"),
        "temporal_parameters": params.get("temporal_encoder"),
        "gflops_per_batch": flops.get("generator"),
        "train_seconds": summary.get("train_seconds"),
    }
    return _recorded(found)


def _recorded(found: dict) -> dict[str, float]:
    return {k: float(v) for k, v in found.items() if v is not None}


@dataclass
class RunRecord:
    """One run: its directory, sweep parameters (empty outside a sweep), seed, final metrics
    and curves (metric -> [(batch, value)])."""

    path: Path
    sweep: str
    params: dict
    seed: int | None
    finished: bool
    metrics: dict[str, float]
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    protocol: str = UNRECORDED  # the evaluation protocol of its validation metrics
    cost: dict[str, float] = field(default_factory=dict)  # COSTS keys the run recorded

    @property
    def config_label(self) -> str:
        """The configuration without the seed, e.g. ``model.delta_t=[-5, 5]``."""
        if not self.params:
            return self.path.name
        return " ".join(f"{k}={v}" for k, v in self.params.items())


def wandb_curves(run: OfflineRun, keys: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """``keys`` from a W&B run's history against the batch count (Lightning's logged step,
    ``trainer/global_step``, is the batch index there as in ``metrics.csv``)."""
    return {
        k: [(float(h[STEP_KEY]) + 1, float(h[k])) for h in run.history if k in h and STEP_KEY in h]
        for k in keys
    }


def read_curves(run_dir: Path, keys: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """``keys`` from the CSV logger's ``metrics.csv`` against the batch count (the logged
    ``step`` is the last finished batch index, so batches = step + 1), or from the W&B
    offline logs in ``run_dir/wandb`` when the run logged to W&B."""
    curves: dict[str, list[tuple[float, float]]] = {k: [] for k in keys}
    path = Path(run_dir) / METRICS_CSV
    if not path.is_file():
        runs = offline_runs(run_dir / "wandb") if (run_dir / "wandb").is_dir() else {}
        return (
            wandb_curves(runs[Path(run_dir).name], keys) if Path(run_dir).name in runs else curves
        )
    with open(path) as f:
        for row in csv.DictReader(f):
            for k in keys:
                if row.get(k) and row.get("step"):
                    curves[k].append((float(row["step"]) + 1, float(row[k])))
    return curves


def _seed_of(run_dir: Path) -> int | None:
    """The seed in the run's logged config (``hparams.yaml``), when there is one."""
    hparams = run_dir / "hparams.yaml"
    return yaml.safe_load(hparams.read_text()).get("seed") if hparams.is_file() else None


def read_run(run_dir: Path, curve_keys: Sequence[str] = DEFAULT_METRICS) -> RunRecord:
    """One run directory (it must hold a ``summary.json``)."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir) or {}
    sweep = read_sweep_record(run_dir)
    return RunRecord(
        path=run_dir,
        sweep=sweep.get("sweep", ""),
        params=sweep.get("params", {}),
        seed=sweep.get("seed", _seed_of(run_dir)),
        finished=bool(summary.get("finished")),
        metrics={k: float(v) for k, v in summary.get("metrics", {}).items()},
        curves=read_curves(run_dir, curve_keys),
        protocol=(summary.get("protocol") or {}).get("name") or UNRECORDED,
        cost=summary_cost(summary),
    )


def offline_record(run: OfflineRun, curve_keys: Sequence[str] = DEFAULT_METRICS) -> RunRecord:
    """A run known only from its W&B offline log: parameters are the config's swept keys
    (``sweep.parameters``, logged by ``train`` in a sweep), metrics its summary's."""
    c = run.config
    return RunRecord(
        path=run.paths[-1],
        sweep=c.get("sweep.name") or run.group,
        params={k: c.get(k) for k in c.get("sweep.parameters", [])},
        seed=c.get("sweep.seed", c.get("seed")),
        finished=bool(run.summary.get("finished")),
        metrics={k: float(v) for k, v in run.summary.items() if k.startswith("val/")},
        curves=wandb_curves(run, curve_keys),
        protocol=str(run.summary.get("protocol") or UNRECORDED),
        cost=_wandb_cost(run.summary),
    )


def _wandb_cost(summary: dict) -> dict[str, float]:
    """The costs ``train`` writes to a W&B run's summary (``train/fit.py``)."""
    return _recorded({k: summary.get(key) for k, key in WANDB_COSTS.items()})


def find_runs(
    paths: Iterable[str | Path], curve_keys: Sequence[str] = DEFAULT_METRICS
) -> list[RunRecord]:
    """Runs at or below each path, sorted by path: folders holding ``summary.json``, or, where
    there are none, W&B offline runs (``offline-run-*`` folders, one record per run id).

    Raises:
        FileNotFoundError: a path that does not exist or holds no run.
    """
    found: dict[Path, RunRecord] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise MissingPathError(f"{p}: no such run directory or folder")
        dirs = [p] if (p / SUMMARY).is_file() else sorted(s.parent for s in p.rglob(SUMMARY))
        for d in dirs:
            found[d.resolve()] = read_run(d, curve_keys)
        if not dirs and (p.name.startswith("offline-run-") or any(p.rglob(OFFLINE_GLOB))):
            for run in offline_runs(p).values():
                found[run.paths[-1].resolve()] = offline_record(run, curve_keys)
        elif not dirs:
            raise MissingPathError(
                f"{p}: no run at or below it (no {SUMMARY}, no W&B {OFFLINE_GLOB} folder)"
            )
    return [found[k] for k in sorted(found)]


def runs_from_wandb(
    sweep_path: str, curve_keys: Sequence[str] = DEFAULT_METRICS
) -> list[RunRecord]:
    """The runs of a W&B sweep (``entity/project/sweep_id``) through the W&B API (online).

    Parameters are the sweep's swept keys; metrics come from each run's summary (written by
    ``train``), curves from its history against ``trainer/global_step`` (Lightning's logged
    step, the batch count of this package's runs).
    """
    import wandb

    sweep = wandb.Api().sweep(sweep_path)
    keys = list(sweep.config.get("parameters", {}))
    records = []
    for run in sweep.runs:
        history = run.history(keys=[*curve_keys, "trainer/global_step"], pandas=False)
        curves = {
            k: [(float(h["trainer/global_step"]), float(h[k])) for h in history if k in h]
            for k in curve_keys
        }
        records.append(
            RunRecord(
                path=Path(run.id),
                sweep=sweep.name or sweep.id,
                params={k: run.config.get(k) for k in keys},
                seed=run.config.get("seed"),
                finished=run.state == "finished",
                metrics={k: float(v) for k, v in run.summary.items() if k.startswith("val/")},
                curves=curves,
                protocol=str(run.summary.get("protocol") or UNRECORDED),
                cost=_wandb_cost(dict(run.summary)),
            )
        )
    return records


@dataclass(frozen=True)
class ConfigRow:
    """One configuration under one protocol: its label, parameters, runs (seeds) and
    per-metric mean and std."""

    label: str
    params: dict
    runs: int
    mean: dict[str, float]
    std: dict[str, float]
    protocol: str = UNRECORDED
    cost_mean: dict[str, float] = field(default_factory=dict)  # COSTS keys, unscaled
    cost_std: dict[str, float] = field(default_factory=dict)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (std 0 for one value; both NaN for none)."""
    vals = np.asarray(values, dtype=float)
    if not len(vals):
        return math.nan, math.nan
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0


def summarise_configs(runs: Sequence[RunRecord], metrics: Sequence[str]) -> list[ConfigRow]:
    """Group runs by configuration (everything but the seed) and protocol; mean and sample
    std over seeds (std 0 for a single run) of each metric and each recorded cost."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[(r.config_label, r.protocol)].append(r)
    rows = []
    for (label, protocol), rs in groups.items():
        mean, std, cost_mean, cost_std = {}, {}, {}, {}
        for m in metrics:
            mean[m], std[m] = _mean_std([r.metrics[m] for r in rs if m in r.metrics])
        for k in COSTS:
            if any(k in r.cost for r in rs):
                cost_mean[k], cost_std[k] = _mean_std([r.cost[k] for r in rs if k in r.cost])
        rows.append(
            ConfigRow(label, rs[0].params, len(rs), mean, std, protocol, cost_mean, cost_std)
        )
    return rows


def cost_columns(rows: Sequence[ConfigRow]) -> list[str]:
    """The ``COSTS`` keys some row recorded, in ``COSTS`` order."""
    return [k for k in COSTS if any(k in r.cost_mean for r in rows)]


def _cost_cell(row: ConfigRow, key: str) -> str:
    """A cost scaled to its column's unit: mean, and ± std where the seeds differ (training
    time; parameters and FLOPs are the same for every seed)."""
    if key not in row.cost_mean:
        return "—"
    _, scale, digits = COSTS[key]
    mean, std = row.cost_mean[key] * scale, row.cost_std[key] * scale
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std > 0 else "")


def columns(rows: Sequence[ConfigRow], metrics: Sequence[str]) -> list[tuple[str, str]]:
    """(metric, protocol) of each value column: a metric gets one column per protocol."""
    protocols = sorted({r.protocol for r in rows})
    return [(m, p) for m in metrics for p in protocols]


def column_name(metric: str, protocol: str) -> str:
    return f"{metric} [{protocol}]"


def _fmt(mean: float, std: float) -> str:
    return "—" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def _cell(row: ConfigRow, metric: str, protocol: str) -> tuple[float, float]:
    if row.protocol != protocol:
        return math.nan, math.nan
    return row.mean[metric], row.std[metric]


def markdown_table(rows: Sequence[ConfigRow], metrics: Sequence[str]) -> str:
    """The table of configurations: protocol, seeds and mean ± std of each metric, one
    column per metric and protocol; then the card of each protocol in the table."""
    cols, costs = columns(rows, metrics), cost_columns(rows)
    heads = [column_name(m, p) for m, p in cols] + [COSTS[k][0] for k in costs]
    lines = [
        "| configuration | protocol | seeds | " + " | ".join(heads) + " |",
        "|---|---|---|" + "---|" * len(heads),
    ]
    for r in rows:
        cells = [_fmt(*_cell(r, m, p)) for m, p in cols] + [_cost_cell(r, k) for k in costs]
        lines.append(f"| {r.label} | {r.protocol} | {r.runs} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in sorted({r.protocol for r in rows}):
        proto = PROTOCOLS.get(name)
        if proto is None:
            lines.append(f"- **{name}**: these runs' summaries do not name their protocol.")
            continue
        rules = "; ".join(f"{k}: {v}" for k, v in proto.card.items())
        lines.append(f"- **{name}** protocol: {rules}")
    return "\n".join(lines) + "\n"


def write_tables(rows: Sequence[ConfigRow], metrics: Sequence[str], out: Path) -> None:
    """``compare.md`` (Markdown) and ``compare.csv`` (mean and std per metric and protocol,
    then per cost, unscaled: parameters, FLOPs per batch, training seconds... as recorded)."""
    (out / "compare.md").write_text(markdown_table(rows, metrics))
    cols, costs = columns(rows, metrics), cost_columns(rows)
    with open(out / "compare.csv", "w", newline="") as f:
        w = csv.writer(f)
        heads = [f"{column_name(m, p)} {s}" for m, p in cols for s in ("mean", "std")]
        heads += [f"{k} {s}" for k in costs for s in ("mean", "std")]
        w.writerow(["configuration", "protocol", "seeds", *heads])
        for r in rows:
            values = [v for m, p in cols for v in _cell(r, m, p)]
            values += [
                v
                for k in costs
                for v in (r.cost_mean.get(k, math.nan), r.cost_std.get(k, math.nan))
            ]
            w.writerow([r.label, r.protocol, r.runs, *values])


def compare(
    paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] = DEFAULT_METRICS
) -> dict:
    """Read the runs below ``paths`` (and the sweep studies they name or hold, with the runs
    of their trials) and write tables and plots to ``out``; returns ``{"runs": N,
    "configurations": M, "studies": [...], "files": [...]}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    studies = [r for url in study_urls(paths) for r in read_studies(url)]
    trial_dirs = [t.run_dir for r in studies for t in r.trials if t.run_dir]
    run_paths = [p for p in paths if not is_study(p)]
    run_paths += [d for d in trial_dirs if (Path(d) / SUMMARY).is_file()]
    runs = find_runs(run_paths, metrics)
    rows = summarise_configs(runs, metrics)
    write_tables(rows, metrics, out)
    if studies:
        with open(out / "compare.md", "a") as f:
            f.write("\n" + study_markdown(studies))
    trade_off = summarise_configs(runs, [ACCURACY, SMOOTHNESS])
    pictures = write_plots(runs, rows, trade_off, metrics[0], out)
    unfinished = [str(r.path) for r in runs if not r.finished]
    return {
        "runs": len(runs),
        "configurations": len(rows),
        "unfinished": unfinished,
        "studies": [
            {"name": r.name, "states": r.states, "best": r.best and r.best.number} for r in studies
        ],
        "files": ["compare.md", "compare.csv", *pictures],
    }
