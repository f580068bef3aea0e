"""``lightning-hmd body synth|convert``: body model files."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning_hmd.commands.args import command_group


def run_synth(ns: argparse.Namespace) -> int:
    from lightning_hmd.body.synth import write_synthetic_model

    out = write_synthetic_model(Path(ns.out), seed=ns.seed)
    print(f"wrote synthetic body model (synthetic, not SMPL) to {out}")
    return 0


def run_convert(ns: argparse.Namespace) -> int:
    from lightning_hmd.body.convert import convert_smpl_pickle

    out = convert_smpl_pickle(
        Path(ns.pkl),
        Path(ns.out),
        mean_params_h5=Path(ns.mean_params) if ns.mean_params else None,
        h36m_regressor=Path(ns.h36m_regressor) if ns.h36m_regressor else None,
        gender=ns.gender,
    )
    print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    body = command_group(sub, "body", "body model files")
    p = body.add_parser("synth", help="write the synthetic SMPL-compatible model (not SMPL)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_synth)

    p = body.add_parser("convert", help="convert an official SMPL pickle to the chumpy-free layout")
    p.add_argument("pkl", help="SMPL_NEUTRAL.pkl or HMR's neutral_smpl_with_cocoplus*.pkl")
    p.add_argument("--out", required=True, help="output body model directory")
    p.add_argument("--mean-params", default=None, help="HMR's neutral_smpl_meanwjoints.h5")
    p.add_argument("--h36m-regressor", default=None, help="J_regressor_h36m.npy (17 x 6890)")
    p.add_argument("--gender", choices=["neutral", "male", "female"], default=None)
    p.set_defaults(func=run_convert)
