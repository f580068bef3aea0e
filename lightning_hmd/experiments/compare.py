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
DEFAULT_METRICS = ("val/pa_mpjpe", "val/mpjpe")
UNRECORDED = "protocol not recorded"  # runs written before results named their protocol


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
    )


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


def summarise_configs(runs: Sequence[RunRecord], metrics: Sequence[str]) -> list[ConfigRow]:
    """Group runs by configuration (everything but the seed) and protocol; mean and sample
    std over seeds (std 0 for a single run)."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[(r.config_label, r.protocol)].append(r)
    rows = []
    for (label, protocol), rs in groups.items():
        mean, std = {}, {}
        for m in metrics:
            vals = np.array([r.metrics[m] for r in rs if m in r.metrics], dtype=float)
            mean[m] = float(vals.mean()) if len(vals) else math.nan
            std[m] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0 if len(vals) else math.nan
        rows.append(ConfigRow(label, rs[0].params, len(rs), mean, std, protocol))
    return rows


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
    cols = columns(rows, metrics)
    lines = [
        "| configuration | protocol | seeds | "
        + " | ".join(column_name(m, p) for m, p in cols)
        + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for r in rows:
        cells = " | ".join(_fmt(*_cell(r, m, p)) for m, p in cols)
        lines.append(f"| {r.label} | {r.protocol} | {r.runs} | {cells} |")
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
    """``compare.md`` (Markdown) and ``compare.csv`` (mean and std per metric and protocol)."""
    (out / "compare.md").write_text(markdown_table(rows, metrics))
    cols = columns(rows, metrics)
    with open(out / "compare.csv", "w", newline="") as f:
        w = csv.writer(f)
        heads = [f"{column_name(m, p)} {s}" for m, p in cols for s in ("mean", "std")]
        w.writerow(["configuration", "protocol", "seeds", *heads])
        for r in rows:
            w.writerow([r.label, r.protocol, r.runs, *(v for m, p in cols for v in _cell(r, m, p))])


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
