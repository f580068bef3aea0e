"""The training loader and the checks a run makes on its sets before it starts.

Training batches come from :class:`lightning_hmd.data.train_stream.TrainWindows` (windows,
augmentation, dataset mixing, mocap, DDP-exact splits) through an
:class:`lightning_hmd.data.epochs.EpochLoader`, which cuts the endless stream at
``batches_per_epoch`` batches, the same number on every rank (computed from the manifests
only), so uneven shards never leave one rank waiting in a collective. Batches leave loader
workers packed into one buffer (:mod:`.transport`); skip reports travel on their own channel
(:mod:`.skips`).

Evaluation and validation read whole tracks instead (:mod:`lightning_hmd.data.whole_tracks`).

Features: a clip may hold several feature sets, one per encoder id; a run reads one
(``data.features``), the same for every set, and :func:`choose_feature_set` refuses sets
that do not hold it before any work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from lightning_hmd.data.assign import ShardRef, read_shards, spans
from lightning_hmd.data.augment import AugmentConfig
from lightning_hmd.data.epochs import EpochLoader, make_dataloader
from lightning_hmd.data.inputs import ReaderError, WindowMaker
from lightning_hmd.data.manifest import MANIFEST_NAME, read_manifest
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.skips import SkipChannel, SkipCounter
from lightning_hmd.data.stream import read_span
from lightning_hmd.data.train_stream import (
    TrainWindows,
    batch_counts,
    num_fake_poses,
    num_fake_windows,
)
from lightning_hmd.errors import ConfigError
from lightning_hmd.modes import Inputs


def derived_batches_per_epoch(
    sources: Sequence[Sequence[ShardRef]], seq_len: int, batch_size: int, world_size: int
) -> int:
    """ceil(windows / (world_size * batch_size)) with ``windows = frames // seq_len`` summed
    over the sources; from the manifests only, so every rank computes the same number."""
    windows = sum(s.frames for shards in sources for s in shards) // seq_len
    return max(1, math.ceil(windows / (world_size * batch_size)))


def build_train_loader(
    sources: Sequence[str | Path],
    weights: Sequence[float],
    mocap_dirs: Sequence[str | Path],
    *,
    batch_size: int,
    seq_len: int,
    num_workers: int,
    rank: int,
    world_size: int,
    seed: int,
    inputs: str,
    img_size: int,
    augment: AugmentConfig,
    num_fake_poses: int,
    batches_per_epoch: int = 0,
    groups: Sequence[int] | None = None,
    mocap_window: int = 0,
    features: str = "",
) -> EpochLoader:
    """The training loader (see the module docstring). ``weights``: one per group of
    ``groups`` (None: every source its own group). ``batches_per_epoch=0`` derives it from
    the manifests (:func:`derived_batches_per_epoch`); ``mocap_dirs`` may be empty (then
    batches carry no mocap). ``mocap_window`` > 0: ``num_fake_poses`` windows of that many
    consecutive mocap poses per batch instead of single poses (a motion discriminator).
    ``features``: with ``inputs=features``, the feature set read (``data.features``; "": the
    only one the sets hold); the clips' other sets are dropped before windows are cut."""
    inputs = Inputs.parse(inputs, "data.inputs")  # raises ValueError before any work
    num_groups = len(sources) if groups is None else max(groups, default=-1) + 1
    if num_groups != len(weights):
        raise ValueError(f"{num_groups} training groups but {len(weights)} weights")
    source_shards = [read_shards([d], "clip") for d in sources]
    mocap = read_shards(mocap_dirs, "mocap") if mocap_dirs else None
    channel = SkipChannel()
    n = batches_per_epoch or derived_batches_per_epoch(
        source_shards, seq_len, batch_size, world_size
    )
    dataset = TrainWindows(
        source_shards,
        weights,
        mocap,
        groups=groups,
        batch_size=batch_size,
        seq_len=seq_len,
        rank=rank,
        world_size=world_size,
        seed=seed,
        maker=WindowMaker(inputs, img_size, augment if augment.enabled else None, features),
        num_fake_poses=num_fake_poses,
        mocap_window=mocap_window,
        channel=channel,
    )
    listed = {
        "clip": {str(s.path): s.samples for shards in source_shards for s in shards},
        "mocap": {str(s.path): s.samples for s in mocap or []},
    }
    return EpochLoader(make_dataloader(dataset, num_workers), n, channel, listed)


def first_samples(dirs: Sequence[str | Path]) -> dict[str, ClipSample | None]:
    """The first readable sample of each set (None: none readable): what a run checks the
    sets against before it starts."""
    out: dict[str, ClipSample | None] = {}
    for d in dirs:
        shards = read_shards([d], "clip")
        out[str(d)] = next(
            (
                r.sample
                for span in spans(shards, 0, sum(s.samples for s in shards))
                for r in read_span(span, "clip", SkipCounter())
            ),
            None,
        )
    return out


def probe_encoder_ids(dirs: Sequence[str | Path]) -> dict[str, str | None]:
    """The encoder id of the first readable sample of each set (to refuse mixed features)."""
    return {d: None if s is None else s.encoder_id for d, s in first_samples(dirs).items()}


def check_same_encoder(dirs: Sequence[str | Path]) -> str | None:
    """The one encoder id shared by every set; a ReaderError naming the sets otherwise."""
    ids = probe_encoder_ids(dirs)
    distinct = set(ids.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{d}: {i}" for d, i in ids.items())
        raise ReaderError(f"shard sets hold features of different encoders ({listing})")
    return next(iter(distinct), None)


class FeatureSetMismatchError(ConfigError, ReaderError):
    """The sets do not hold the feature set ``data.features`` names, or hold several and none
    is named, or hold different encoders' features."""


def probe_feature_sets(dirs: Sequence[str | Path]) -> dict[str, tuple[str, ...]]:
    """The encoder ids of the feature sets each set's clips hold, the primary first: from
    the manifest's ``feature_sets`` where it records them, else from the first readable
    sample (() for a set without features or without a readable sample)."""
    out: dict[str, tuple[str, ...]] = {}
    probe = []
    for d in dirs:
        recorded = read_manifest(d).feature_sets if (Path(d) / MANIFEST_NAME).is_file() else ()
        out[str(d)] = recorded
        if not recorded:
            probe.append(d)
    for d, sample in first_samples(probe).items():
        out[d] = () if sample is None else sample.feature_sets
    return {str(d): out[str(d)] for d in dirs}


def choose_feature_set(held: Mapping[str, Sequence[str]], features: str) -> str:
    """The feature set a run reads from sets holding ``held`` (set, as messages name it ->
    encoder ids): the one ``features`` names, which every set must hold, or with
    ``features=""`` the one set every set holds alone ("" when no set holds features).

    Raises:
        FeatureSetMismatchError: naming ``data.features``, the set and the ids it holds.
    """
    sets = {d: tuple(ids) for d, ids in held.items() if ids}
    if features:
        for d, ids in sets.items():
            if features not in ids:
                raise FeatureSetMismatchError(
                    f"data.features={features} but {d} holds the feature sets "
                    f"{', '.join(ids)}: add it with `lightning-hmd data features --add` or "
                    "set data.features to one it holds"
                )
        return features
    for d, ids in sets.items():
        if len(ids) > 1:
            raise FeatureSetMismatchError(
                f"{d} holds {len(ids)} feature sets ({', '.join(ids)}) and "
                "data.features names none: set data.features to the one to read"
            )
    distinct = sorted({ids[0] for ids in sets.values()})
    if len(distinct) > 1:
        listing = ", ".join(f"{d}: {ids[0]}" for d, ids in sets.items())
        raise FeatureSetMismatchError(
            f"shard sets hold features of different encoders ({listing}); a run reads one "
            "encoder's: add the missing set with `lightning-hmd data features --add` and name "
            "it in data.features"
        )
    return distinct[0] if distinct else ""


__all__ = [
    "EpochLoader",
    "FeatureSetMismatchError",
    "ReaderError",
    "batch_counts",
    "build_train_loader",
    "check_same_encoder",
    "choose_feature_set",
    "first_samples",
    "num_fake_poses",
    "num_fake_windows",
    "probe_feature_sets",
]
