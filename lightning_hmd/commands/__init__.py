"""The ``lightning-hmd`` command line: one module per command, each registering its parser
and running it.

The only package that reads ``sys.argv``. Commands import their implementation lazily, so
``lightning-hmd config`` starts without loading torch-heavy modules. Arguments shared by
several commands (config sources, ``key=value`` overrides, SLURM job options, the trained
model) are in :mod:`lightning_hmd.commands.args`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lightning_hmd.commands import (
    body,
    compare,
    config,
    dashboard,
    data,
    evaluate,
    import_tf,
    predict,
    quickstart,
    slurm,
    smoke,
    sweep,
    train,
)
from lightning_hmd.commands.args import override
from lightning_hmd.errors import LightningHMDError

# in the order ``lightning-hmd --help`` lists them
COMMANDS = (config, train, quickstart, evaluate, predict, import_tf, smoke, body, sweep, slurm,
            compare, dashboard, data)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-hmd",
        description="Learning 3D Human Dynamics from Video (HMMR) on PyTorch Lightning.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # argparse cannot split one positional list around options ("predict VIDEO --ckpt C
    # key=value"): key=value words after the options join the command's overrides
    ns, extra = parser.parse_known_args(argv)
    if extra:
        if not isinstance(getattr(ns, "overrides", None), list):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        try:
            ns.overrides = [*ns.overrides, *(override(e) for e in extra)]
        except argparse.ArgumentTypeError:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return ns.func(ns)
    except LightningHMDError as err:  # what the user gave is wrong; anything else is a bug
        print(f"lightning-hmd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
