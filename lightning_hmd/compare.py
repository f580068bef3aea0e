"""``lightning-hmd compare``: final metrics and learning curves of runs, per configuration.

Reads local run directories (``summary.json`` written at the end of ``train``, ``sweep.json``
written by ``sweep run``, curves from the CSV logger's ``metrics.csv`` or the W&B offline logs
in the run's ``wandb/``) given directly or found below a folder (a sweep's run root), W&B
offline run directories on their own (``wandb/offline-run-*``: config, summary and history
from the log), and W&B sweeps through the API when online. Runs that differ only in their
seed form one configuration; the table gives mean ± std over seeds. Writes ``compare.md``,
``compare.csv``, ``learning_curves.png`` (validation metric against batches, mean over
seeds) and, for each swept parameter, ``<metric>_vs_<parameter>.png``.
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

from lightning_hmd.train.run_dir import SUMMARY, read_summary, read_sweep_record
from lightning_hmd.wandb_offline import OFFLINE_GLOB, OfflineRun, offline_runs

METRICS_CSV = "metrics.csv"
STEP_KEY = "trainer/global_step"  # what Lightning's WandbLogger logs as the step
DEFAULT_METRICS = ("val/pa_mpjpe", "val/mpjpe")


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
            raise FileNotFoundError(f"{p}: no such run directory or folder")
        dirs = [p] if (p / SUMMARY).is_file() else sorted(s.parent for s in p.rglob(SUMMARY))
        for d in dirs:
            found[d.resolve()] = read_run(d, curve_keys)
        if not dirs and (p.name.startswith("offline-run-") or any(p.rglob(OFFLINE_GLOB))):
            for run in offline_runs(p).values():
                found[run.paths[-1].resolve()] = offline_record(run, curve_keys)
        elif not dirs:
            raise FileNotFoundError(
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
            )
        )
    return records


@dataclass(frozen=True)
class ConfigRow:
    """One configuration: its label, parameters, runs (seeds) and per-metric mean and std."""

    label: str
    params: dict
    runs: int
    mean: dict[str, float]
    std: dict[str, float]


def summarise_configs(runs: Sequence[RunRecord], metrics: Sequence[str]) -> list[ConfigRow]:
    """Group runs by configuration (everything but the seed); mean and sample std over seeds
    (std 0 for a single run)."""
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[r.config_label].append(r)
    rows = []
    for label, rs in groups.items():
        mean, std = {}, {}
        for m in metrics:
            vals = np.array([r.metrics[m] for r in rs if m in r.metrics], dtype=float)
            mean[m] = float(vals.mean()) if len(vals) else math.nan
            std[m] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0 if len(vals) else math.nan
        rows.append(ConfigRow(label, rs[0].params, len(rs), mean, std))
    return rows


def _fmt(mean: float, std: float) -> str:
    return "—" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def markdown_table(rows: Sequence[ConfigRow], metrics: Sequence[str]) -> str:
    """The table of configurations: seeds and mean ± std of each metric."""
    lines = ["| configuration | seeds | " + " | ".join(metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]  # fmt: skip
    for r in rows:
        cells = " | ".join(_fmt(r.mean[m], r.std[m]) for m in metrics)
        lines.append(f"| {r.label} | {r.runs} | {cells} |")
    return "\n".join(lines) + "\n"


def write_tables(rows: Sequence[ConfigRow], metrics: Sequence[str], out: Path) -> None:
    """``compare.md`` (Markdown) and ``compare.csv`` (mean and std columns)."""
    (out / "compare.md").write_text(markdown_table(rows, metrics))
    with open(out / "compare.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["configuration", "seeds", *(f"{m} {s}" for m in metrics for s in ("mean", "std"))]
        )
        for r in rows:
            w.writerow([r.label, r.runs, *(v for m in metrics for v in (r.mean[m], r.std[m]))])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def write_plots(
    runs: Sequence[RunRecord], rows: Sequence[ConfigRow], metric: str, out: Path
) -> list[str]:
    """Learning curves per configuration and ``metric`` against each swept parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(7, 4))
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[r.config_label].append(r)
    for label, rs in groups.items():
        curves = [dict(r.curves.get(metric, [])) for r in rs]
        steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        if steps:
            ax.plot(
                steps, [np.mean([c[s] for c in curves]) for s in steps], marker="o", label=label
            )
    ax.set(title=f"{metric} (mean over seeds)", xlabel="batch", ylabel=metric)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=100)
    names.append("learning_curves.png")

    keys = sorted({k for r in rows for k in r.params})
    for key in keys:
        pts = [(r.params[key], r.mean[metric], r.std[metric]) for r in rows if key in r.params]
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = [str(v) for v, _, _ in pts]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v, _, _ in pts)
        x = [v for v, _, _ in pts] if numeric else list(range(len(pts)))
        order = np.argsort(x)
        ax.errorbar(np.asarray(x)[order], [pts[i][1] for i in order], [pts[i][2] for i in order],
                    marker="o", capsize=4)  # fmt: skip
        if not numeric:
            ax.set_xticks(x, labels)
        ax.set(title=f"{metric} against {key}", xlabel=key, ylabel=metric)
        fig.tight_layout()
        name = f"{_slug(metric)}_vs_{_slug(key)}.png"
        fig.savefig(out / name, dpi=100)
        names.append(name)
    plt.close("all")
    return names


def compare(
    paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] = DEFAULT_METRICS
) -> dict:
    """Read the runs below ``paths`` and write tables and plots to ``out``; returns
    ``{"runs": N, "configurations": M, "files": [...]}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs(paths, metrics)
    rows = summarise_configs(runs, metrics)
    write_tables(rows, metrics, out)
    pictures = write_plots(runs, rows, metrics[0], out)
    unfinished = [str(r.path) for r in runs if not r.finished]
    return {
        "runs": len(runs),
        "configurations": len(rows),
        "unfinished": unfinished,
        "files": ["compare.md", "compare.csv", *pictures],
    }
