"""``lightning-hmd config`` and ``lightning-hmd params``: the resolved config, the model's
parameter counts."""

from __future__ import annotations

import argparse

from lightning_hmd.commands.args import add_config_args, resolve
from lightning_hmd.config import to_yaml


def run_config(ns: argparse.Namespace) -> int:
    print(to_yaml(resolve(ns)), end="")
    return 0


def run_params(ns: argparse.Namespace) -> int:
    from lightning_hmd.models.summary import (
        format_parameter_counts,
        format_step_flops,
        parameter_counts,
        step_flops,
    )

    cfg = resolve(ns)
    b, t = cfg.data.batch_size, cfg.data.seq_len
    # as the run's summary counts them (train/fit.py model_summary): a run on stored features
    # builds no image encoder
    images = cfg.data.inputs == "images"
    print(format_parameter_counts(parameter_counts(cfg.model, with_image_encoder=images)))
    if not images:
        print(f"(data.inputs=features: no image encoder is trained; {cfg.model.encoder} ran "
              "once, when the features were extracted)")  # fmt: skip
    print()
    print(format_step_flops(step_flops(cfg.model, b, t), b, t))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print the resolved configuration as YAML")
    add_config_args(p)
    p.set_defaults(func=run_config)
    p = sub.add_parser(
        "params", help="print parameter counts and FLOPs per batch of the configured model"
    )
    add_config_args(p)
    p.set_defaults(func=run_params)
