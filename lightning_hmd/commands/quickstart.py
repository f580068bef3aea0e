"""``lightning-hmd quickstart``: synthetic data, temporal and single-frame training,
evaluation and the report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lightning_hmd.commands.args import add_overrides, override


def run(ns: argparse.Namespace) -> int:
    from dataclasses import fields, replace

    from lightning_hmd.experiments.quickstart import Plan, run_quickstart

    given = {f.name: getattr(ns, f.name) for f in fields(Plan)}
    plan = replace(Plan(), **{k: v for k, v in given.items() if v is not None})
    metrics = run_quickstart(
        Path(ns.out),
        plan,
        overrides=ns.overrides,
        hmr_overrides=ns.hmr or [],
        progress=not ns.no_progress,
    )
    print(json.dumps(metrics, indent=2))
    print(f"wrote {Path(ns.out) / 'metrics.json'} and {Path(ns.out) / 'report.md'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="synthetic data, temporal and single-frame training, evaluation, report",
        description="Sizes default to lightning_hmd.experiments.quickstart.Plan.",
    )
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--clips", type=int, help="synthetic training clips")
    p.add_argument(
        "--train-frames", type=int, help="frames per training clip (0: as the test clips)"
    )
    p.add_argument("--test-clips", type=int, help="synthetic test clips")
    p.add_argument("--hmr-budget", type=int, help="HMR stage batches")
    p.add_argument("--hmr-batch-size", type=int, help="HMR stage single frames per batch")
    p.add_argument("--copies", type=int, help="augmented feature copies per training clip")
    p.add_argument("--budget", type=int, help="batches per temporal / single-frame run")
    p.add_argument("--batch-size", type=int, help="sequences per batch")
    p.add_argument(
        "--hmr", action="append", type=override, metavar="key=value", help="HMR stage override"
    )
    p.add_argument("--no-progress", action="store_true")
    add_overrides(p, help="overrides for the temporal runs")
    p.set_defaults(func=run)
