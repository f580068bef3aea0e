"""``lightning-hmd evaluate``: a checkpoint, or another codebase's saved predictions, scored
on evaluation shards under a protocol."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lightning_hmd.commands.args import add_overrides
from lightning_hmd.config import load_config
from lightning_hmd.errors import ConfigError, MissingPathError

PROTOCOLS = ("hmmr", "vibe", "tcmr")


def run(ns: argparse.Namespace) -> int:
    if (ns.ckpt is None) == (ns.predictions is None):
        raise ConfigError("evaluate needs exactly one of --ckpt CKPT or --predictions FILE")
    if ns.predictions is not None:
        return _evaluate_predictions(ns)
    from lightning_hmd.checkpoint import checkpoint_config
    from lightning_hmd.config import config_from_container
    from lightning_hmd.evaluation.launch import launcher_process_group
    from lightning_hmd.evaluation.run import evaluate

    ckpt = Path(ns.ckpt)
    if not ckpt.is_file():
        raise MissingPathError(f"--ckpt {ckpt}: no such checkpoint")
    cfg = config_from_container(checkpoint_config(ckpt), ns.overrides)
    sets = ns.sets or list(cfg.data.test_sets)
    protocol = ns.protocol or cfg.eval.protocol
    out = Path(ns.out) if ns.out else ckpt.parent.parent / "eval" / f"{ns.mode}-{protocol}"
    # under srun or torchrun with several tasks, one process group; rank 0 writes
    with launcher_process_group(os.environ, cfg.run.collective_timeout_s):
        result = evaluate(cfg, ckpt, sets, out, ns.mode, protocol)
    if result:
        _print_results(result, out)
    return 0


def _print_results(result: dict, out: Path) -> None:
    print(f"protocol {result['protocol']['name']}: " + json.dumps(result["metrics"], indent=2))
    print(f"wrote {out / 'metrics.json'} and {out / 'per_sequence.csv'}")


def _evaluate_predictions(ns: argparse.Namespace) -> int:
    from lightning_hmd.body.smpl import BodyModel
    from lightning_hmd.data.whole_tracks import sequences_of
    from lightning_hmd.evaluation.external import (
        DEFAULT_SEQ_LEN,
        read_predictions,
        score_predictions,
    )
    from lightning_hmd.evaluation.protocols import get_protocol
    from lightning_hmd.evaluation.run import write_results
    from lightning_hmd.evaluation.scorer import summarise

    if ns.format is None:
        raise ConfigError("--predictions needs --format (hmmr, vibe or tcmr)")
    if not ns.sets:
        raise ConfigError("--predictions needs --set DIR: the ground truth to score against")
    if ns.seq_len is not None and ns.seq_len < 1:
        raise ConfigError(f"--seq-len {ns.seq_len}: the window length must be at least 1 frame")
    cfg = load_config(None, [], ["model.init_checkpoint=none", *ns.overrides])
    protocol = get_protocol(ns.protocol or cfg.eval.protocol)
    seq_len = DEFAULT_SEQ_LEN[ns.format] if ns.seq_len is None else ns.seq_len
    body = BodyModel.from_dir(cfg.body.model_dir, cfg.body.gender)
    preds = read_predictions(ns.predictions, ns.format, sequences_of(ns.sets))
    scores, skipped, unmatched = score_predictions(
        preds, ns.sets, body, protocol, seq_len=seq_len, img_size=cfg.data.img_size
    )
    out = Path(ns.out) if ns.out else Path(ns.predictions).with_suffix("") / f"eval-{protocol.name}"
    meta = {
        "predictions": str(ns.predictions),
        "format": ns.format,
        "seq_len": seq_len,
        "sets": [str(s) for s in ns.sets],
        "body_model": str(cfg.body.model_dir),
        "joints": "the predictions' SMPL parameters through this body model (the GT's joint "
        "regressor); 2D metrics not scored",
        "unmatched_predictions": unmatched,
    }
    result = write_results(out, summarise(scores, protocol), protocol, skipped, meta)
    _print_results(result, out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a checkpoint, or saved predictions of HMMR/VIBE/TCMR, on evaluation shards",
        description="Protocols: hmmr (default), vibe, tcmr (lightning_hmd/evaluation/"
        "protocols.py; each result file carries the protocol's card). The config is the "
        "checkpoint's; key=value overrides change it.",
    )
    p.add_argument("--ckpt", default=None, help="a lightning_hmd checkpoint")
    p.add_argument(
        "--predictions",
        default=None,
        metavar="FILE",
        help="another codebase's outputs (a file or folder), with --format",
    )
    p.add_argument("--format", choices=PROTOCOLS, default=None, help="the format of --predictions")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=None,
        metavar="DIR",
        help="a shard set to score (repeatable; default with --ckpt: data.test_sets)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="the scoring rules (default: eval.protocol, hmmr)",
    )
    p.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help="--predictions: the window length the protocol's windowing assumes "
        "(default: 20 for hmmr, 16 for vibe and tcmr)",
    )
    p.add_argument("--mode", choices=("temporal", "hallucinator", "constant"), default="temporal")
    p.add_argument("--out", default=None, help="output folder (default RUN/eval/MODE-PROTOCOL)")
    add_overrides(p)
    p.set_defaults(func=run)
