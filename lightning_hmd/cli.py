"""The ``lightning-hmd`` command line.

The only module that reads ``sys.argv``. Sub-commands import their implementation
lazily so ``lightning-hmd config`` starts without loading torch-heavy modules.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from lightning_hmd.config import ConfigError, available_presets, load_config, to_yaml
from lightning_hmd.data.cli import add_data_commands


def _split_config_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Positional arguments: ``*.yaml``/``*.yml`` files and ``key=value`` overrides."""
    files, overrides = [], []
    for a in args:
        if "=" in a:
            overrides.append(a)
        elif a.endswith((".yaml", ".yml")):
            files.append(a)
        else:
            raise ConfigError(f"argument {a!r} is neither a YAML file nor a key=value override")
    return files, overrides


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset", choices=available_presets(), default=None, help="named preset (paper, tiny)"
    )
    p.add_argument("args", nargs="*", metavar="CONFIG.yaml|key=value")


def _resolve(ns: argparse.Namespace) -> DictConfig:
    files, overrides = _split_config_args(ns.args)
    return load_config(ns.preset, files, overrides)


def _cmd_config(ns: argparse.Namespace) -> int:
    print(to_yaml(_resolve(ns)), end="")
    return 0


def _cmd_params(ns: argparse.Namespace) -> int:
    from lightning_hmd.models.summary import format_parameter_counts, parameter_counts

    cfg = _resolve(ns)
    print(format_parameter_counts(parameter_counts(cfg.model)))
    return 0


def _cmd_smoke(ns: argparse.Namespace) -> int:
    from lightning_hmd.smoke import format_smoke, run_smoke

    cfg = _resolve(ns)
    result = run_smoke(cfg, steps=ns.steps)
    print(format_smoke(result))
    if not result.gen_total[-1] < result.gen_total[0]:
        print("lightning-hmd: error: the generator objective did not decrease", file=sys.stderr)
        return 1
    return 0


def _cmd_train(ns: argparse.Namespace) -> int:
    from lightning_hmd.train.fit import train

    # prints the run directory
    train(_resolve(ns), allow_config_change=ns.allow_config_change)
    return 0


def _cmd_sweep_run(ns: argparse.Namespace) -> int:
    from lightning_hmd.sweeps import load_sweep
    from lightning_hmd.train.sweep import run_sweep

    path, *rest = ns.args
    _, overrides = _split_config_args(rest)
    runs = run_sweep(
        load_sweep(path), seeds=ns.seeds, count=ns.count, overrides=overrides,
        dry_run=ns.dry_run, slurm=_job_spec(ns) if ns.slurm else None,
    )  # fmt: skip
    statuses = ("trained", "submitted", "skipped", "planned")
    counts = {s: sum(r.status == s for r in runs) for s in statuses}
    print(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trials")
    return 0


def _job_spec(ns: argparse.Namespace):  # noqa: ANN202 - JobSpec, imported lazily
    from lightning_hmd.slurm import JobSpec

    return JobSpec(
        nodes=ns.nodes, gpus_per_node=ns.gpus_per_node, cpu_tasks_per_node=ns.tasks_per_node,
        cpus_per_task=ns.cpus_per_task, time=ns.time, partition=ns.partition,
        account=ns.account,
    )  # fmt: skip


def _add_job_args(p: argparse.ArgumentParser) -> None:
    """What a SLURM job asks for (``slurm submit``, ``sweep run --slurm``)."""
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=1, help="0: CPU tasks")
    p.add_argument("--tasks-per-node", type=int, default=1, help="CPU tasks when no GPUs")
    p.add_argument("--cpus-per-task", type=int, default=8, help="loader workers + 1")
    p.add_argument("--time", default="1-00:00:00", help="SLURM time limit")
    p.add_argument("--partition", default="")
    p.add_argument("--account", default="")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """The trained model of ``predict`` and ``hallucinate``."""
    p.add_argument("--ckpt", required=True, help="a lightning_hmd checkpoint")
    p.add_argument("--encoder", default=None,
                   help="HMR init file / encoder weights (models trained on features)")  # fmt: skip


def _cmd_slurm_submit(ns: argparse.Namespace) -> int:
    from lightning_hmd.slurm import sbatch_script, submit

    files, overrides = _split_config_args(ns.args)
    if files:
        raise ConfigError("slurm submit takes key=value overrides, not YAML files")
    script, out = sbatch_script(ns.preset, overrides, _job_spec(ns))
    result = submit(script, out, dry_run=ns.dry_run)
    if ns.dry_run:
        print(script, end="")
        print(f"# written to {result} (not submitted)")
    else:
        print(f"submitted job {result}: {out / 'submit.sbatch'}; log {out}/slurm-{result}.out")
    return 0


def _cmd_compare(ns: argparse.Namespace) -> int:
    from lightning_hmd.compare import DEFAULT_METRICS, compare

    result = compare(ns.runs, ns.out, tuple(ns.metric or DEFAULT_METRICS))
    print((Path(ns.out) / "compare.md").read_text(), end="")
    print(f"{result['runs']} runs, {result['configurations']} configurations; wrote "
          f"{', '.join(result['files'])} to {ns.out}")  # fmt: skip
    if result["unfinished"]:
        print(f"unfinished runs (last metrics shown): {', '.join(result['unfinished'])}")
    return 0


def _cmd_predict(ns: argparse.Namespace) -> int:
    from lightning_hmd.inference.run import run_predict

    box = _parse_box(ns.box)
    input_path, *rest = ns.args
    files, overrides = _split_config_args(rest)
    if files:
        raise ConfigError("predict takes key=value overrides only (the config is the checkpoint's)")
    run_predict(
        input_path, ns.ckpt, ns.out, tracks_path=ns.tracks, box=box, encoder=ns.encoder,
        overrides=overrides, focal=ns.focal, mode=ns.mode, formats=ns.format or ["npz"],
        exports=ns.export or [],
        render=not ns.no_render, side_view=ns.side_view, pngs=ns.png,
        frame_base=ns.frame_base, progress=not ns.no_progress,
    )  # fmt: skip
    return 0


def _parse_box(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise ValueError(f"--box {text}: expected x0,y0,x1,y1 in pixels")
    return box


def _cmd_hallucinate(ns: argparse.Namespace) -> int:
    from lightning_hmd.inference.inputs import check_image_input, check_model_files, check_out_dir

    image_path, *rest = ns.args
    files, overrides = _split_config_args(rest)
    if files:
        raise ConfigError("hallucinate takes key=value overrides only")
    box = _parse_box(ns.box)
    # the paths before the heavy imports and the model
    check_image_input(image_path)
    check_model_files(ns.ckpt, ns.encoder)
    check_out_dir(ns.out)
    import cv2

    from lightning_hmd.inference.hallucinate import (
        hallucinate,
        picture,
        read_image,
        save_hallucination,
    )
    from lightning_hmd.inference.predict import load_predictor

    image = read_image(image_path)
    predictor = load_predictor(ns.ckpt, overrides, ns.encoder)
    poses, crop = hallucinate(predictor, image, box)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    save_hallucination(poses, out / "hallucinated.npz")
    strip = picture(predictor, image, crop, poses)
    cv2.imwrite(str(out / "hallucinated.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    offsets = ", ".join(f"{dt:+d}" for dt in sorted(poses))
    print(f"offsets {offsets}: wrote {out / 'hallucinated.npz'} and {out / 'hallucinated.png'}")
    return 0


def _cmd_import_tf(ns: argparse.Namespace) -> int:
    from lightning_hmd.models.tf_import import import_tf

    files, overrides = _split_config_args(ns.args)
    if files:
        raise ConfigError("import-tf takes key=value overrides only")
    report = import_tf(ns.hmr, ns.hmmr, ns.out, preset=ns.preset or "paper", overrides=overrides)
    print("model: " + " ".join(report["overrides"]))
    print(f"imported {report['imported']} tensors; kept at their initial values: "
          f"{', '.join(report['kept']) or 'none'}")  # fmt: skip
    if report["unused"]:
        print(f"TF variables not used ({len(report['unused'])}): {', '.join(report['unused'][:8])}"
              + (" ..." if len(report["unused"]) > 8 else ""))  # fmt: skip
    print(f"wrote {ns.out}")
    return 0


def _cmd_evaluate(ns: argparse.Namespace) -> int:
    files, overrides = _split_config_args(ns.args)
    if files:
        raise ConfigError(
            "evaluate takes key=value overrides only (the config is the checkpoint's)"
        )
    if (ns.ckpt is None) == (ns.predictions is None):
        raise ValueError("evaluate needs exactly one of --ckpt CKPT or --predictions FILE")
    if ns.predictions is not None:
        return _evaluate_predictions(ns, overrides)
    from lightning_hmd.checkpoint import checkpoint_config
    from lightning_hmd.config import config_from_container
    from lightning_hmd.evaluation.run import evaluate

    ckpt = Path(ns.ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {ckpt}: no such checkpoint")
    cfg = config_from_container(checkpoint_config(ckpt), overrides)
    sets = ns.sets or list(cfg.data.test_sets)
    protocol = ns.protocol or cfg.eval.protocol
    out = Path(ns.out) if ns.out else ckpt.parent.parent / "eval" / f"{ns.mode}-{protocol}"
    result = evaluate(cfg, ckpt, sets, out, ns.mode, protocol)
    if result:
        _print_results(result, out)
    return 0


def _print_results(result: dict, out: Path) -> None:
    print(f"protocol {result['protocol']['name']}: " + json.dumps(result["metrics"], indent=2))
    print(f"wrote {out / 'metrics.json'} and {out / 'per_sequence.csv'}")


def _evaluate_predictions(ns: argparse.Namespace, overrides: list[str]) -> int:
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
        raise ValueError("--predictions needs --format (hmmr, vibe or tcmr)")
    if not ns.sets:
        raise ValueError("--predictions needs --set DIR: the ground truth to score against")
    if ns.seq_len is not None and ns.seq_len < 1:
        raise ValueError(f"--seq-len {ns.seq_len}: the window length must be at least 1 frame")
    cfg = load_config(None, [], ["model.init_checkpoint=none", *overrides])
    protocol = get_protocol(ns.protocol or cfg.eval.protocol)
    seq_len = DEFAULT_SEQ_LEN[ns.format] if ns.seq_len is None else ns.seq_len
    body = BodyModel.from_dir(cfg.body.model_dir, cfg.body.gender)
    preds = read_predictions(ns.predictions, ns.format, sequences_of(ns.sets))
    scores, skipped, unmatched = score_predictions(
        preds, ns.sets, body, protocol, seq_len=seq_len, img_size=cfg.data.img_size
    )
    out = Path(ns.out) if ns.out else Path(ns.predictions).with_suffix("") / f"eval-{protocol.name}"
    meta = {
        "predictions": str(ns.predictions), "format": ns.format, "seq_len": seq_len,
        "sets": [str(s) for s in ns.sets], "body_model": str(cfg.body.model_dir),
        "joints": "the predictions' SMPL parameters through this body model (the GT's joint "
        "regressor); 2D metrics not scored",
        "unmatched_predictions": unmatched,
    }  # fmt: skip
    result = write_results(out, summarise(scores, protocol), protocol, skipped, meta)
    _print_results(result, out)
    return 0


def _cmd_quickstart(ns: argparse.Namespace) -> int:
    from dataclasses import fields, replace

    from lightning_hmd.quickstart import Plan, run_quickstart

    _, overrides = _split_config_args(ns.args)
    given = {f.name: getattr(ns, f.name) for f in fields(Plan)}
    plan = replace(Plan(), **{k: v for k, v in given.items() if v is not None})
    metrics = run_quickstart(
        Path(ns.out), plan, overrides=overrides, hmr_overrides=ns.hmr or [],
        progress=not ns.no_progress,
    )  # fmt: skip
    print(json.dumps(metrics, indent=2))
    print(f"wrote {Path(ns.out) / 'metrics.json'} and {Path(ns.out) / 'report.md'}")
    return 0


def _cmd_body_synth(ns: argparse.Namespace) -> int:
    from lightning_hmd.body.synth import write_synthetic_model

    out = write_synthetic_model(Path(ns.out), seed=ns.seed)
    print(f"wrote synthetic body model (synthetic, not SMPL) to {out}")
    return 0


def _cmd_body_convert(ns: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-hmd",
        description="Learning 3D Human Dynamics from Video (HMMR) on PyTorch Lightning.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print the resolved configuration as YAML")
    _add_config_args(p)
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("params", help="print parameter counts of the configured model")
    _add_config_args(p)
    p.set_defaults(func=_cmd_params)

    p = sub.add_parser("train", help="train (or resume) the configured run")
    _add_config_args(p)
    p.add_argument(
        "--allow-config-change", action="store_true",
        help="resume last.ckpt even where the config differs from the one it was trained with "
        "in keys that are not safe to change (they are printed)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "quickstart",
        help="synthetic data, temporal and single-frame training, evaluation, report",
        description="Sizes default to lightning_hmd.quickstart.Plan.",
    )
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--clips", type=int, help="synthetic training clips")
    p.add_argument("--test-clips", type=int, help="synthetic test clips")
    p.add_argument("--hmr-budget", type=int, help="HMR stage batches")
    p.add_argument("--hmr-batch-size", type=int, help="HMR stage single frames per batch")
    p.add_argument("--copies", type=int, help="augmented feature copies per training clip")
    p.add_argument("--budget", type=int, help="batches per temporal / single-frame run")
    p.add_argument("--batch-size", type=int, help="sequences per batch")
    p.add_argument("--hmr", action="append", metavar="key=value", help="HMR stage override")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("args", nargs="*", metavar="key=value", help="overrides for the temporal runs")
    p.set_defaults(func=_cmd_quickstart)

    p = sub.add_parser(
        "evaluate",
        help="score a checkpoint, or saved predictions of HMMR/VIBE/TCMR, on evaluation shards",
        description="Protocols: hmmr (default), vibe, tcmr (lightning_hmd/evaluation/"
        "protocols.py; each result file carries the protocol's card).",
    )
    p.add_argument("--ckpt", default=None, help="a lightning_hmd checkpoint")
    p.add_argument("--predictions", default=None, metavar="FILE",
                   help="another codebase's outputs (a file or folder), with --format")  # fmt: skip
    p.add_argument("--format", choices=("hmmr", "vibe", "tcmr"), default=None,
                   help="the format of --predictions")  # fmt: skip
    p.add_argument(
        "--set", dest="sets", action="append", default=None, metavar="DIR",
        help="a shard set to score (repeatable; default with --ckpt: data.test_sets)",
    )  # fmt: skip
    p.add_argument("--protocol", choices=("hmmr", "vibe", "tcmr"), default=None,
                   help="the scoring rules (default: eval.protocol, hmmr)")  # fmt: skip
    p.add_argument("--seq-len", type=int, default=None,
                   help="--predictions: the window length the protocol's windowing assumes "
                   "(default: 20 for hmmr, 16 for vibe and tcmr)")  # fmt: skip
    p.add_argument("--mode", choices=("temporal", "hallucinator", "constant"), default="temporal")
    p.add_argument("--out", default=None,
                   help="output folder (default RUN/eval/MODE-PROTOCOL)")  # fmt: skip
    p.add_argument("args", nargs="*", metavar="key=value")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="a trained model on a video or frame folder: predictions per track, an overlay",
        description="Tracks: AlphaPose/PoseFlow JSON, an OpenPose BODY_25 JSON folder, "
        "COCO/PoseTrack keypoints with track_id, or MOTChallenge boxes (frame,id,x,y,w,h). "
        "Without --tracks one person in --box, or the whole frame, on every frame.",
    )
    _add_model_args(p)
    p.add_argument("--tracks", default=None, help="tracks file or OpenPose folder")
    p.add_argument("--box", default=None, help="x0,y0,x1,y1 pixels, without --tracks")
    p.add_argument("--out", default="predictions", help="output folder")
    p.add_argument("--focal", type=float, default=None,
                   help="focal length in pixels for translations (default: max(W, H))")  # fmt: skip
    p.add_argument("--mode", choices=("temporal", "hallucinator"), default="temporal")
    p.add_argument("--format", action="append", choices=("npz", "hmmr-pkl"),
                   help="repeatable; default npz")  # fmt: skip
    p.add_argument("--export", action="append", choices=("smpl", "obj", "bvh"),
                   help="repeatable: smpl.npz (AMASS-style), mesh/*.obj, skeleton.bvh")  # fmt: skip
    p.add_argument("--no-render", action="store_true", help="skip overlay.mp4")
    p.add_argument("--side-view", action="store_true", help="overlay with a side view")
    p.add_argument("--png", action="store_true", help="also write the overlay frames as PNG")
    p.add_argument("--frame-base", type=int, default=0,
                   help="number of the first frame in the tracks file's frame names")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "args", nargs="+", metavar="INPUT [key=value ...]",
        help="a video file (PyAV) or a folder of frames, then config overrides",
    )  # fmt: skip
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "hallucinate",
        help="past, present and future poses of the person in one image (the hallucinator)",
    )
    _add_model_args(p)
    p.add_argument("--box", default=None, help="x0,y0,x1,y1 pixels (default: the whole image)")
    p.add_argument("--out", default="hallucinated", help="output folder")
    p.add_argument("args", nargs="+", metavar="IMAGE [key=value ...]")
    p.set_defaults(func=_cmd_hallucinate)

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
    p.add_argument("args", nargs="*", metavar="key=value")
    p.set_defaults(func=_cmd_import_tf)

    p = sub.add_parser(
        "smoke", help="over-fit one synthetic batch: builds everything, prints every loss term"
    )
    _add_config_args(p)
    p.add_argument("--steps", type=int, default=20)
    p.set_defaults(func=_cmd_smoke)

    body = sub.add_parser("body", help="body model files").add_subparsers(
        dest="body_command", required=True
    )
    p = body.add_parser("synth", help="write the synthetic SMPL-compatible model (not SMPL)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_body_synth)

    p = body.add_parser("convert", help="convert an official SMPL pickle to the chumpy-free layout")
    p.add_argument("pkl", help="SMPL_NEUTRAL.pkl or HMR's neutral_smpl_with_cocoplus*.pkl")
    p.add_argument("--out", required=True, help="output body model directory")
    p.add_argument("--mean-params", default=None, help="HMR's neutral_smpl_meanwjoints.h5")
    p.add_argument("--h36m-regressor", default=None, help="J_regressor_h36m.npy (17 x 6890)")
    p.add_argument("--gender", choices=["neutral", "male", "female"], default=None)
    p.set_defaults(func=_cmd_body_convert)

    sweep = sub.add_parser("sweep", help="W&B sweep files run locally").add_subparsers(
        dest="sweep_command", required=True
    )
    p = sweep.add_parser(
        "run",
        help="run a sweep's trials one after another (finished trials are skipped)",
        description="Grid sweeps run every combination; random ones run --count or run_cap "
        "draws. Each trial gets the arguments wandb agent would pass, then seed=1..K.",
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (1..K)")
    p.add_argument("--count", type=int, default=None, help="trials (random sweeps: draws)")
    p.add_argument("--dry-run", action="store_true", help="print the trials' commands")
    p.add_argument(
        "--slurm", action="store_true",
        help="submit each unfinished trial as its own SLURM job (options below) instead",
    )  # fmt: skip
    _add_job_args(p)
    p.add_argument(
        "args", nargs="+", metavar="SWEEP.yaml [key=value ...]",
        help="a sweeps/*.yaml file, then overrides for every trial",
    )  # fmt: skip
    p.set_defaults(func=_cmd_sweep_run)

    slurm = sub.add_parser("slurm", help="SLURM jobs").add_subparsers(
        dest="slurm_command", required=True
    )
    p = slurm.add_parser(
        "submit",
        help="write an sbatch script into the run directory and submit it",
        description="Nodes and GPUs per node set both the job and the Trainer (num_nodes, "
        "devices); the job checkpoints and requeues itself on SIGUSR1 90 s before its limit.",
    )
    _add_config_args(p)
    _add_job_args(p)
    p.add_argument("--dry-run", action="store_true", help="write and print the script only")
    p.set_defaults(func=_cmd_slurm_submit)

    p = sub.add_parser(
        "compare", help="final metrics per configuration (mean ± std over seeds) and plots"
    )
    p.add_argument("runs", nargs="+", help="run directories or folders holding runs (a sweep's)")
    p.add_argument("--out", required=True, help="folder for compare.md, compare.csv and PNGs")
    p.add_argument(
        "--metric", action="append", default=None,
        help="metric to tabulate (repeatable; the first is plotted); default val/pa_mpjpe, "
        "val/mpjpe",
    )  # fmt: skip
    p.set_defaults(func=_cmd_compare)

    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # argparse cannot split one positional list around options ("predict VIDEO --ckpt C
    # key=value"): key=value words after the options join the command's overrides
    ns, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(ns, "args", None), list) and all(
            "=" in e and not e.startswith("-") for e in extra
        ):
            ns.args = [*ns.args, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return ns.func(ns)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"lightning-hmd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
