"""Whole person tracks for evaluation: a track's chunks read together and joined, and tracks
split over (rank, loader worker) slots at track boundaries.

Converters cut long tracks into chunks (``data.tracks.chunk_ranges``), one sample each, keyed
``<dataset>__<sequence>__t<track>_c<chunk>`` and written one after another. HMMR's tester
(``Tester.predict_all_images``, ``src/evaluation/tester.py``) predicts a track as a whole (its
test records hold one example per person), so evaluation joins consecutive chunks of one track
back together: a track predicted in pieces would get other windows at every cut and lose the
acceleration windows across it.

Slots: the global sample range of a slot (:func:`lightning_hmd.data.assign.slot_range`) is
moved to the next track boundary at each end, from the manifests' sample keys alone, so every
slot agrees on the plan without talking to the others and each track is read, whole, by
exactly one slot; the reader delivers each intact listed sample once (:mod:`.stream`).
Chunks that do not continue each other (a chunk missing or damaged, frames not contiguous,
labels present in one chunk and not in the next) start a new piece, scored as a track of its
own. Each slot reports its skips on the loader's channel and, at its end, that it finished.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch.utils.data import IterableDataset

from lightning_hmd.data.assign import ShardRef, read_shards, slot_index, slot_range, spans
from lightning_hmd.data.epochs import EpochLoader, make_dataloader, worker_slot
from lightning_hmd.data.inputs import WindowMaker
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.skips import SkipChannel, SkipCounter
from lightning_hmd.data.stream import Read, read_span
from lightning_hmd.data.windows import PER_FRAME_ARRAYS

_TRACK_KEY = re.compile(r"^(?P<track>.+__t\d+)_c\d+$")


def track_of(key: str | None) -> str | None:
    """The track part of a sample key (``..._t0003_c0001`` -> ``..._t0003``); a key of
    another form is a track of its own."""
    if key is None:
        return None
    m = _TRACK_KEY.match(key)
    return m["track"] if m else key


def _same_track(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and track_of(a) == track_of(b)


def track_boundary(shards: Sequence[ShardRef], position: int) -> int:
    """The first position >= ``position`` where a new track starts (``position`` itself at
    either end of the set)."""
    keys = [k for s in shards for k in s.keys]
    total = len(keys)
    if position <= 0 or position >= total:
        return max(0, min(position, total))
    p = position
    while p < total and _same_track(keys[position - 1], keys[p]):
        p += 1
    return p


def slot_tracks(shards: Sequence[ShardRef], slot: int, num_slots: int) -> tuple[int, int]:
    """The global sample range ``[lo, hi)`` of one slot, both ends at track boundaries; the
    ranges of all slots partition the set."""
    total = sum(s.samples for s in shards)
    lo, hi = slot_range(total, slot, num_slots)
    return track_boundary(shards, lo), track_boundary(shards, hi)


def _continues(prev: ClipSample, nxt: ClipSample) -> bool:
    return (
        nxt.chunk == prev.chunk + 1
        and int(nxt.frame_index[0]) == int(prev.frame_index[-1]) + 1
        and (prev.joints3d is None) == (nxt.joints3d is None)
        and (prev.pose is None) == (nxt.pose is None)
        and (prev.phi is None) == (nxt.phi is None)
        and (prev.jpeg is None) == (nxt.jpeg is None)
        and prev.encoder_id == nxt.encoder_id
        and prev.feature_sets == nxt.feature_sets
    )


def _join(samples: Sequence[ClipSample]) -> ClipSample:
    first = samples[0]
    if len(samples) == 1:
        return first
    fields = {
        name: np.concatenate([getattr(s, name) for s in samples])
        for name in PER_FRAME_ARRAYS
        if getattr(first, name) is not None
    }
    if first.jpeg is not None:
        fields["jpeg"] = [frame for s in samples for frame in s.jpeg]
    if first.more_phi:
        fields["more_phi"] = {
            i: np.concatenate([s.more_phi[i] for s in samples]) for i in first.more_phi
        }
    return replace(first, **fields)


def join_chunks(reads: Sequence[Read]) -> list[Read]:
    """Consecutive reads of one track as pieces of continuing chunks, each with its first
    chunk's key and shard."""
    pieces: list[list[Read]] = []
    for read in reads:
        if pieces and _continues(pieces[-1][-1].sample, read.sample):
            pieces[-1].append(read)
        else:
            pieces.append([read])
    return [
        Read(
            p[0].key,
            p[0].shard,
            _join([r.sample for r in p]),
            None if p[0].images is None else np.concatenate([r.images for r in p]),
        )
        for p in pieces
    ]


def read_tracks(
    shards: Sequence[ShardRef],
    lo: int,
    hi: int,
    counter: SkipCounter,
    *,
    decode_frames: bool = False,
    features: str | None = None,
) -> Iterator[Read]:
    """The tracks of global samples ``[lo, hi)`` (damaged samples skipped and counted;
    ``decode_frames``: JPEG crops decoded, per chunk, before the chunks are joined;
    ``features``: only that feature set kept, as :func:`lightning_hmd.data.stream.read_span`
    keeps it)."""
    group: list[Read] = []
    for span in spans(shards, lo, hi):
        reads = read_span(span, "clip", counter, decode_frames=decode_frames, features=features)
        for read in reads:
            if group and not _same_track(group[-1].key, read.key):
                yield from join_chunks(group)
                group = []
            group.append(read)
    if group:
        yield from join_chunks(group)


@dataclass
class TrackItem:
    """One whole track for evaluation (the validation loader's "batch").

    Attributes:
        key: the key of the track's first chunk.
        sample: the joined track (labels; no JPEG data).
        phi: (N, D) stored features, or None.
        images: (N, 3, S, S) uint8 centre crops, or None.
        slot: the reader slot that read it.
    """

    key: str
    sample: ClipSample
    phi: np.ndarray | None = None
    images: np.ndarray | None = None
    slot: int = 0


class WholeTracks(IterableDataset):
    """Every track of the shard sets, whole, exactly once over all ranks and workers."""

    def __init__(
        self,
        shards: Sequence[ShardRef],
        *,
        rank: int,
        world_size: int,
        maker: WindowMaker,
        channel: SkipChannel | None = None,
    ) -> None:
        self.shards = list(shards)
        self.rank, self.world_size = rank, world_size
        self.maker = maker
        self.channel = channel
        self.known_skips: frozenset = frozenset()  # set by the EpochLoader before each pass

    def items(self, slot: int, num_slots: int, counter: SkipCounter) -> Iterator[TrackItem]:
        lo, hi = slot_tracks(self.shards, slot, num_slots)
        images = self.maker.inputs == "images"
        features = self.maker.read_features
        for read in read_tracks(
            self.shards, lo, hi, counter, decode_frames=images, features=features
        ):
            self.maker.check(read)
            key, sample = read.key, read.sample
            made = self.maker.make(sample, key, 0, None, read.images)
            images = None
            if made.images is not None:
                images = np.ascontiguousarray(made.images.transpose(0, 3, 1, 2))
            phi = None if images is not None or sample.phi is None else np.asarray(sample.phi)
            yield TrackItem(key, replace(made.sample, phi=None), phi, images, slot)

    def __iter__(self) -> Iterator[TrackItem]:
        worker, num_workers = worker_slot()
        slot, num_slots = slot_index(self.rank, self.world_size, worker, num_workers)
        counter = SkipCounter(self.channel, self.known_skips)
        yield from self.items(slot, num_slots, counter)
        counter.done(slot)


def build_track_loader(
    set_dirs: Sequence[str | Path],
    *,
    rank: int,
    world_size: int,
    num_workers: int,
    inputs: str,
    img_size: int,
    features: str = "",
) -> EpochLoader:
    """The evaluation and validation loader: one whole track per item, every track once over
    all ranks and workers; skip counts collect in the loader's ``stats``. ``features``: with
    ``inputs=features``, the feature set read (``data.features``; "": the only one held)."""
    shards = read_shards(list(set_dirs), "clip")
    channel = SkipChannel()
    maker = WindowMaker(inputs, img_size, None, features)
    dataset = WholeTracks(shards, rank=rank, world_size=world_size, maker=maker, channel=channel)
    listed = {"clip": {str(s.path): s.samples for s in shards}}
    return EpochLoader(make_dataloader(dataset, num_workers), None, channel, listed)


def sequences_of(set_dirs: Sequence[str | Path]) -> set[str]:
    """The sequence names of every sample of the sets."""
    shards = read_shards(list(set_dirs), "clip")
    total = sum(s.samples for s in shards)
    return {
        r.sample.sequence
        for span in spans(shards, 0, total)
        for r in read_span(span, "clip", SkipCounter())
    }
