"""``lightning-hmd train``: train (or resume) the configured run."""

from __future__ import annotations

import argparse

from lightning_hmd.commands.args import add_config_args, resolve


def run(ns: argparse.Namespace) -> int:
    from lightning_hmd.train.fit import train

    train(resolve(ns), allow_config_change=ns.allow_config_change)  # prints the run directory
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train (or resume) the configured run")
    add_config_args(p)
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume last.ckpt even where the config differs from the one it was trained with "
        "in keys that are not safe to change (they are printed)",
    )
    p.set_defaults(func=run)
