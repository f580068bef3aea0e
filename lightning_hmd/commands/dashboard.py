"""``lightning-hmd dashboard``: TensorBoard's HParams view of runs or a study, on localhost."""

from __future__ import annotations

import argparse
import time


def run(ns: argparse.Namespace) -> int:
    from lightning_hmd.experiments.dashboard import start

    address = start(ns.runs, ns.port)
    print(f"dashboard at {address} (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard",
        help="TensorBoard on 127.0.0.1 over runs or a sweep study (the HParams view)",
        description="Runs write their swept values and final metrics in TensorBoard's HParams "
        "format; the HParams tab shows a sweep as a table and parallel coordinates.",
    )
    p.add_argument(
        "runs", nargs="+", help="folders holding runs, or a study (*.optuna.db or a database URL)"
    )
    p.add_argument("--port", type=int, default=6006, help="port on 127.0.0.1 (default 6006)")
    p.set_defaults(func=run)
