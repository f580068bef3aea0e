"""``lightning-hmd evaluate``: a checkpoint over evaluation shards -> ``metrics.json`` and a
per-video CSV, under a named protocol.

Each track (its chunks joined, :mod:`lightning_hmd.data.whole_tracks`) is encoded once,
predicted through the protocol's windows (:mod:`.predict`) and scored (:mod:`.scorer`);
validation during training runs :func:`score_item` on the same tracks, so the number a sweep
optimises is the number ``evaluate`` prints. Under ``torch.distributed`` each rank scores its
share of the tracks and the scores are gathered, so the numbers equal a single process's.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.data.whole_tracks import TrackItem, build_track_loader
from lightning_hmd.errors import ConfigError, DataError, MissingPathError
from lightning_hmd.evaluation.outputs import outputs_from_prediction, truth_of
from lightning_hmd.evaluation.predict import (
    ClipPrediction,
    blank_feature,
    encode_frames,
    predict_clip,
)
from lightning_hmd.evaluation.protocols import METRIC_DOC, Protocol, Windowing, get_protocol
from lightning_hmd.evaluation.scorer import Summary, TrackScore, score_track, summarise
from lightning_hmd.models.generator import HMMRGenerator


def wants_mesh(protocol: Protocol) -> tuple[bool, bool]:
    """(posed mesh, zero-pose mesh) needed by the protocol's metrics."""
    return "pve" in protocol.metrics, "pve_tpose" in protocol.metrics


def score_prediction(
    pred: ClipPrediction, item: TrackItem, body: BodyModel, protocol: Protocol, img_size: int
) -> TrackScore:
    """Score predictions of a track's frames (made on any device; scored on the CPU)."""
    posed, tpose = wants_mesh(protocol)
    mesh = posed and item.sample.pose is not None
    out = outputs_from_prediction(pred, body, mesh=mesh, tpose=tpose and mesh)
    truth = truth_of(item.sample, item.key, body, mesh=mesh, tpose=tpose and mesh)
    return score_track(out.cpu(), truth.cpu(), protocol, img_size)


@torch.no_grad()
def predict_item(
    generator: HMMRGenerator,
    item: TrackItem,
    protocol: Protocol,
    *,
    seq_len: int,
    mode: str = "temporal",
    blank: torch.Tensor | None = None,
) -> ClipPrediction:
    """The model's predictions of a whole track through the protocol's windows (on the
    model's device)."""
    device = next(generator.parameters()).device
    if item.images is not None:
        phi = encode_frames(generator, torch.as_tensor(item.images).to(device))
    else:
        phi = torch.as_tensor(item.phi).to(device).float()
    return predict_clip(generator, phi, seq_len, mode, protocol.windowing, blank)


def score_item(
    generator: HMMRGenerator,
    body: BodyModel,
    item: TrackItem,
    protocol: Protocol,
    *,
    seq_len: int,
    img_size: int,
    mode: str = "temporal",
    blank: torch.Tensor | None = None,
) -> TrackScore:
    """Predict one whole track with the model and score it."""
    pred = predict_item(generator, item, protocol, seq_len=seq_len, mode=mode, blank=blank)
    return score_prediction(pred, item, body, protocol, img_size)


def padding_feature(
    generator: HMMRGenerator, protocol: Protocol, inputs: str, img_size: int
) -> torch.Tensor | None:
    """HMMR's padding frames are blank images (``Tester.predict_all_images``,
    ``src/evaluation/tester.py``): their features where the model encodes images; None (edge
    frames repeated) with precomputed features."""
    if protocol.windowing is Windowing.CENTRE and inputs == "images":
        return blank_feature(generator, img_size)
    return None


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_scores(
    scores: list[TrackScore], skipped: Mapping[str, int]
) -> tuple[list[TrackScore], dict[str, int]]:
    """All ranks' track scores on every rank (sorted by key), and the summed skip counts."""
    if not (dist.is_available() and dist.is_initialized()):
        return sorted(scores, key=lambda s: s.key), dict(skipped)
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (scores, dict(skipped)))
    every = sorted((s for p in parts for s in p[0]), key=lambda s: s.key)
    counts: dict[str, int] = {}
    for _, c in parts:
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
    return every, counts


def _clean(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in values.items()}


def results(
    summary: Summary, protocol: Protocol, skipped: Mapping[str, int], meta: Mapping
) -> dict:
    """The ``metrics.json`` object."""
    names = list(summary.metrics)
    return {
        **meta,
        "protocol": protocol.describe(),
        "units": {
            k: METRIC_DOC.get(k, "mm, the pose predicted at t for t+dt against the GT at " "t+dt")
            for k in names
        },
        "num_videos": len(summary.videos),
        "num_tracks": summary.tracks,
        "num_frames": summary.frames,
        "num_scored_frames": summary.predicted,
        "skipped_samples": dict(skipped),
        "metrics": _clean(summary.metrics),
        "by_dataset": {ds: _clean(m) for ds, m in summary.by_dataset.items()},
    }


def write_results(
    out: Path,
    summary: Summary,
    protocol: Protocol,
    skipped: Mapping[str, int],
    meta: Mapping,
) -> dict:
    """``metrics.json`` and ``per_sequence.csv`` (one row per video) under ``out``, each
    written under a temporary name and renamed; returns the JSON object."""
    out.mkdir(parents=True, exist_ok=True)
    result = results(summary, protocol, skipped, meta)
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    tmp.replace(out / "metrics.json")
    names = list(summary.metrics)
    tmp = out / "per_sequence.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["protocol", "dataset", "sequence", "tracks", "frames", "scored_frames", *names])
        for r in summary.videos:
            w.writerow(
                [
                    protocol.name,
                    r.dataset,
                    r.sequence,
                    r.tracks,
                    r.frames,
                    r.predicted,
                    *(f"{r.values[m]:.6f}" for m in names),
                ]
            )
    tmp.replace(out / "per_sequence.csv")
    return result


def score_model(
    generator: HMMRGenerator,
    body: BodyModel,
    items: Iterable[TrackItem],
    protocol: Protocol,
    *,
    seq_len: int,
    inputs: str,
    img_size: int,
    mode: str = "temporal",
) -> list[TrackScore]:
    """Scores of every track of ``items`` (this rank's share)."""
    generator.eval()
    blank = padding_feature(generator, protocol, inputs, img_size)
    return [
        score_item(
            generator,
            body,
            item,
            protocol,
            seq_len=seq_len,
            img_size=img_size,
            mode=mode,
            blank=blank,
        )
        for item in items
    ]


def check_sets(set_dirs: Sequence[str | Path]) -> None:
    """What can be checked of the evaluation sets before a model is loaded: at least one set,
    each a clip shard set whose manifest lists samples.

    Raises:
        ValueError: no set, a missing folder, one without a manifest or of another kind, or
            an empty set (named, e.g. a conversion's split that ended without tracks).
    """
    from lightning_hmd.data.assign import read_manifests

    if not set_dirs:
        raise ConfigError("no evaluation set: give --set DIR or list them in data.test_sets")
    for d in set_dirs:
        if not Path(d).is_dir():
            raise MissingPathError(f"{d}: no such evaluation set (not a folder)")
    for d, m in zip(set_dirs, read_manifests(list(set_dirs), "clip"), strict=True):
        if m.total_samples == 0:
            name = f"{m.dataset}/{m.split}: " if m.dataset else ""  # unset when none written
            raise DataError(
                f"{d}: the evaluation set is empty ({name}its manifest lists 0 samples); "
                "convert it again or leave it out of --set / data.test_sets"
            )


def evaluate(
    cfg: DictConfig,
    ckpt: str | Path,
    set_dirs: Sequence[str | Path],
    out: Path,
    mode: str,
    protocol: str | None = None,
) -> dict:
    """Load ``ckpt`` (the config ``cfg`` comes from it, with overrides) and score
    ``set_dirs`` under ``protocol`` (default ``eval.protocol``); rank 0 writes the results.
    The sets are checked (:func:`check_sets`) before the model is loaded."""
    from lightning_hmd.config import to_container
    from lightning_hmd.train.module import HMMRModule, load_weights

    proto = get_protocol(protocol or cfg.eval.protocol)
    check_sets(set_dirs)
    module = HMMRModule(to_container(cfg))
    load_weights(module, ckpt)
    rank, world = _rank_world()
    loader = build_track_loader(
        set_dirs,
        rank=rank,
        world_size=world,
        num_workers=cfg.data.num_workers,
        inputs=cfg.data.inputs,
        img_size=cfg.data.img_size,
        features=OmegaConf.select(cfg, "data.features", default=""),  # the set it trained on
    )
    scores = score_model(
        module.generator,
        module.body,
        loader,
        proto,
        seq_len=cfg.data.seq_len,
        inputs=cfg.data.inputs,
        img_size=cfg.data.img_size,
        mode=mode,
    )
    scores, skipped = gather_scores(scores, loader.collect().counts())
    if not scores:
        raise DataError(
            f"{', '.join(map(str, set_dirs))}: no track to score (the sets are empty or every "
            f"sample was skipped: {dict(skipped) or 'none skipped'})"
        )
    if rank != 0:
        return {}
    meta = {"checkpoint": str(ckpt), "mode": mode, "sets": [str(s) for s in set_dirs]}
    return write_results(out, summarise(scores, proto), proto, skipped, meta)
