"""``lightning-hmd data check|synth|features|convert``: dataset shards.

Converters are found by name among the ``lightning_hmd.converters`` entry points (the
project's own are declared in ``pyproject.toml``, modules of ``data_prep``), so that the
package never imports the converters' package, which imports it.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import yaml

from lightning_hmd.commands.args import command_group
from lightning_hmd.errors import ConfigError


def _cmd_check(ns: argparse.Namespace) -> int:
    from lightning_hmd.data.check import check_shards, format_report

    report = check_shards(Path(ns.dir), quick=ns.quick)
    print(format_report(report))
    if not report.ok:
        bad = ", ".join(report.bad_shards) or "; ".join(p.where for p in report.problems)
        print(f"lightning-hmd: error: shard check failed: {bad}", file=sys.stderr)
        return 1
    return 0


def _print_manifests(manifests: dict) -> None:
    for rel, m in sorted(manifests.items()):
        print(
            f"{rel}: {m.kind} {m.dataset}/{m.split}: {len(m.shards)} shards, "
            f"{m.total_samples} samples, {m.total_frames} frames"
        )


def _cmd_features(ns: argparse.Namespace) -> int:
    from lightning_hmd.config import load_config
    from lightning_hmd.data.features import add_features, build_feature_encoder, extract_features

    if ns.add and ns.keep_jpeg:
        raise ConfigError("--keep-jpeg: an added feature set keeps the crops the sets hold")
    cfg = load_config(ns.preset, [], ["model.init_checkpoint=none"])  # encoder settings only
    name = ns.encoder or cfg.model.encoder
    feat_dim = ns.feat_dim or cfg.model.feat_dim
    img_size = ns.img_size or cfg.data.img_size
    encoder, encoder_id = build_feature_encoder(name, feat_dim, ns.weights, ns.seed)
    augment = cfg.data.augment if ns.copies > 1 else None
    common = {
        "img_size": img_size,
        "batch_frames": ns.batch_frames,
        "overwrite": ns.overwrite,
        "progress": not ns.no_progress,
        "device": ns.device,
        "augment": augment,
        "copies": ns.copies,
        "seed": ns.seed,
    }
    if ns.add:
        manifests = add_features(ns.inp, ns.out, encoder, encoder_id, **common)
    else:
        manifests = extract_features(
            ns.inp, ns.out, encoder, encoder_id, keep_jpeg=ns.keep_jpeg, **common
        )
    _print_manifests(manifests)
    done = "added to the feature sets at" if ns.add else "written to"
    print(f"features {encoder_id} (D={feat_dim}, {img_size} px crops) {done} {ns.out}")
    return 0


def _parse_options(pairs: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        options[key.replace("-", "_")] = yaml.safe_load(value)
    return options


CONVERTERS = "lightning_hmd.converters"  # the entry-point group of the converters


def converter_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=CONVERTERS))


def load_converter(name: str) -> ModuleType:
    """The converter module registered under ``name`` (one naming the known ones if none)."""
    found = [ep for ep in entry_points(group=CONVERTERS) if ep.name == name]
    if not found:
        raise ConfigError(f"unknown converter {name!r}; known: {', '.join(converter_names())}")
    return found[0].load()


def _cmd_convert(ns: argparse.Namespace) -> int:
    module = load_converter(ns.name)
    options: dict[str, object] = {
        "overwrite": ns.overwrite,
        "progress": not ns.no_progress,
    }
    for flag in ("shard_size", "chunk_len", "body_model_dir"):
        if getattr(ns, flag) is not None:
            options[flag] = getattr(ns, flag)
    if ns.no_jpeg:
        options["jpeg"] = False
    options.update(_parse_options(ns.set))
    accepted = inspect.signature(module.convert).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(
            f"converter {ns.name!r} has no option {', '.join(unknown)}; it takes: "
            + ", ".join(k for k in accepted if k not in ("src", "out"))
        )
    manifests = module.convert(Path(ns.src), Path(ns.out), **options)
    _print_manifests(manifests)
    return 0


def _cmd_synth(ns: argparse.Namespace) -> int:
    from lightning_hmd.data.synth.make import make_synthetic_dataset
    from lightning_hmd.data.synth.spec import SynthSpec

    spec = SynthSpec(
        clips=ns.clips,
        val_clips=ns.val_clips,
        test_clips=ns.test_clips,
        frames=ns.frames,
        train_frames=ns.train_frames,
        image_size=ns.image_size,
        img_size=ns.img_size,
        mocap=ns.mocap,
        shard_size=ns.shard_size,
        seed=ns.seed,
        render=not ns.no_render,
    )
    manifests = make_synthetic_dataset(
        ns.out,
        spec,
        ns.body_model_dir,
        overwrite=ns.overwrite,
        progress=not ns.no_progress,
        workers=ns.workers,
    )
    _print_manifests(manifests)
    body = ns.body_model_dir or str(Path(ns.out) / "body_model")
    print(f"synthetic data written to {ns.out} (body model: {body})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Register ``data check|synth|features|convert`` under the ``data`` command."""
    data = command_group(sub, "data", "dataset shards")
    for add in (_add_check, _add_synth, _add_features, _add_convert):
        add(data)


def _add_check(data: argparse._SubParsersAction) -> None:
    p = data.add_parser(
        "check", help="validate shards against their manifests; non-zero exit on any problem"
    )
    p.add_argument("dir", help="a shard set directory (with manifest.json) or a folder of sets")
    p.add_argument(
        "--quick",
        action="store_true",
        help="check JPEG frames by their header only instead of decoding every frame",
    )
    p.set_defaults(func=_cmd_check)


def _add_synth(data: argparse._SubParsersAction) -> None:
    from lightning_hmd.data.synth.spec import SynthSpec

    d = SynthSpec()
    p = data.add_parser(
        "synth", help="synthetic train/val/test clips and mocap from the synthetic body model"
    )
    p.add_argument("--out", required=True, help="output folder (train/ val/ test/ mocap/)")
    p.add_argument("--clips", type=int, default=d.clips, help="training tracks")
    p.add_argument("--val-clips", type=int, default=d.val_clips)
    p.add_argument("--test-clips", type=int, default=d.test_clips)
    p.add_argument("--frames", type=int, default=d.frames, help="frames per track")
    p.add_argument(
        "--train-frames",
        type=int,
        default=d.train_frames,
        help="frames per training track (0: --frames)",
    )
    p.add_argument("--image-size", type=int, default=d.image_size, help="rendered frame side")
    p.add_argument("--img-size", type=int, default=d.img_size, help="model crop side C")
    p.add_argument("--mocap", type=int, default=d.mocap, help="mocap poses")
    p.add_argument("--shard-size", type=int, default=d.shard_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--body-model-dir", default=None, help="default: write the synthetic model")
    p.add_argument("--no-render", action="store_true", help="labels only, no JPEG crops")
    p.add_argument(
        "--workers", type=int, default=1, help="processes making and rendering the tracks"
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_synth)


def _add_features(data: argparse._SubParsersAction) -> None:
    p = data.add_parser(
        "features", help="precompute image features phi for clip shards (resumable)"
    )
    p.add_argument("--in", dest="inp", required=True, help="clip shard set(s)")
    p.add_argument("--out", required=True, help="output root (same relative layout)")
    p.add_argument("--preset", default="paper", help="config preset for encoder defaults")
    p.add_argument("--encoder", default=None, help="image encoder name (model.encoder)")
    p.add_argument("--feat-dim", type=int, default=None, help="D (model.feat_dim)")
    p.add_argument("--img-size", type=int, default=None, help="crop side (data.img_size)")
    p.add_argument(
        "--weights", default=None, help="HMR init file with the encoder, or its state dict"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="initialisation seed without --weights; jitter seed"
    )
    p.add_argument(
        "--copies",
        type=int,
        default=1,
        help="augmented copies per training clip with the preset's data.augment "
        "(HMMR: 5); 1 writes centre crops",
    )
    p.add_argument("--batch-frames", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--keep-jpeg", action="store_true", help="keep the encoder's crops")
    p.add_argument(
        "--add",
        action="store_true",
        help="add these features as a further feature set to the feature sets already at "
        "--out (written from --in with the same --copies, --seed, --img-size and preset); "
        "a run picks one by data.features",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace complete output sets (with --add: the feature set of this encoder)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_features)


def _add_convert(data: argparse._SubParsersAction) -> None:
    p = data.add_parser("convert", help="convert a public dataset from its original layout")
    p.add_argument("name", help=" | ".join(converter_names()))
    p.add_argument("src", help="the dataset's folder, in its original layout")
    p.add_argument("--out", required=True, help="output folder for the shard sets")
    p.add_argument("--shard-size", type=int, default=None, help="samples per shard")
    p.add_argument("--chunk-len", type=int, default=None, help="frames per chunk")
    p.add_argument("--body-model-dir", default=None, help="SMPL files (3dpw)")
    p.add_argument("--no-jpeg", action="store_true", help="write no image crops")
    p.add_argument("--overwrite", action="store_true", help="replace complete output sets")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="converter option"
    )
    p.set_defaults(func=_cmd_convert)
