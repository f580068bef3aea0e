"""``lightning-hmd smoke``: over-fit one synthetic batch with the training step."""

from __future__ import annotations

import argparse
import sys

from lightning_hmd.commands.args import add_config_args, resolve


def run(ns: argparse.Namespace) -> int:
    from lightning_hmd.experiments.smoke import format_smoke, run_smoke

    result = run_smoke(resolve(ns), steps=ns.steps)
    print(format_smoke(result))
    if not result.gen_total[-1] < result.gen_total[0]:
        print("lightning-hmd: error: the generator objective did not decrease", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "smoke", help="over-fit one synthetic batch: builds everything, prints every loss term"
    )
    add_config_args(p)
    p.add_argument("--steps", type=int, default=20)
    p.set_defaults(func=run)
