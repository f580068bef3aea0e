"""``lightning-hmd compare``: final metrics per configuration (mean ± std over seeds) and
plots, from run directories."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(ns: argparse.Namespace) -> int:
    from lightning_hmd.experiments.compare import DEFAULT_METRICS, compare

    result = compare(ns.runs, ns.out, tuple(ns.metric or DEFAULT_METRICS))
    print((Path(ns.out) / "compare.md").read_text(), end="")
    print(
        f"{result['runs']} runs, {result['configurations']} configurations; wrote "
        f"{', '.join(result['files'])} to {ns.out}"
    )
    for study in result["studies"]:
        print(f"study {study['name']}: {study['states']}, best trial {study['best']}")
    if result["unfinished"]:
        print(f"unfinished runs (last metrics shown): {', '.join(result['unfinished'])}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="final metrics per configuration (mean ± std over seeds) and plots"
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="run directories, folders holding runs (a sweep's), or sweep agents' studies "
        "(a *.optuna.db file or a database URL)",
    )
    p.add_argument("--out", required=True, help="folder for compare.md, compare.csv and PNGs")
    p.add_argument(
        "--metric",
        action="append",
        default=None,
        help="metric to tabulate (repeatable; the first is plotted); default val/pa_mpjpe, "
        "val/mpjpe, val/accel_error, val/vel_error. Parameters, FLOPs per batch and training "
        "time follow as recorded",
    )
    p.set_defaults(func=run)
