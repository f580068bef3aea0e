"""``lightning-hmd import-tf``: the released TensorFlow HMR/HMMR checkpoints as a
lightning_hmd checkpoint."""

from __future__ import annotations

import argparse

from lightning_hmd.commands.args import add_overrides


def run(ns: argparse.Namespace) -> int:
    from lightning_hmd.models.tf_import import import_tf

    report = import_tf(ns.hmr, ns.hmmr, ns.out, preset=ns.preset or "paper", overrides=ns.overrides)
    print("model: " + " ".join(report["overrides"]))
    print(
        f"imported {report['imported']} tensors; kept at their initial values: "
        f"{', '.join(report['kept']) or 'none'}"
    )
    if report["unused"]:
        print(
            f"TF variables not used ({len(report['unused'])}): {', '.join(report['unused'][:8])}"
            + (" ..." if len(report["unused"]) > 8 else "")
        )
    print(f"wrote {ns.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-tf",
        help="the released TensorFlow HMR/HMMR checkpoints as a lightning_hmd checkpoint",
        description="--hmr models/hmr_noS5.ckpt-642561 (image encoder), --hmmr "
        "models/hmmr_model.ckpt-1119816 (temporal model, heads, hallucinator, discriminator); "
        "checkpoint prefixes as TF names them. Needs tensorflow (pip install '.[tf]').",
    )
    p.add_argument("--hmr", default=None, help="HMR checkpoint prefix")
    p.add_argument("--hmmr", default=None, help="HMMR checkpoint prefix")
    p.add_argument("--out", required=True, help="the lightning_hmd checkpoint to write")
    p.add_argument("--preset", default="paper", help="config the model's sizes are set on")
    add_overrides(p)
    p.set_defaults(func=run)
