"""The streaming clip reader: windows, augmentation, dataset mixing, mocap, DDP-exact splits.

Training (:func:`build_train_loader`): every (rank, worker) slot streams its own share of each
source forever (reshuffled every pass; n // T random windows per clip of n frames and pass,
with uniform starts as HMMR's ``pick_sequences``); each batch holds a fixed number of windows
per group of sources (the configured weights, largest-remainder rounding; within a group each
window comes from a source drawn in proportion to its windows per pass, as HMMR's one
shuffled queue over its 2D sets) and ``num_fake_poses`` mocap
poses drawn from the slot's share of the mocap, held in memory (:class:`MocapBank`). The main
process cuts the epoch at ``batches_per_epoch`` batches, the same number on every rank (it is
computed from the manifests only), so uneven shards never leave one rank waiting in a
collective. Batches leave loader workers packed into one buffer (:mod:`.transport`).

Evaluation and validation read whole tracks instead (:mod:`lightning_hmd.data.whole_tracks`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lightning_hmd.data.assign import (
    ShardRef,
    read_sets,
    slot_index,
    spans,
    train_spans,
)
from lightning_hmd.data.augment import AugmentConfig, augment_clip, center_crop
from lightning_hmd.data.batch import (
    ClipBatch,
    SlotReport,
    WindowItem,
    collate_mocap,
    collate_windows,
)
from lightning_hmd.data.schema import ClipSample
from lightning_hmd.data.stream import Read, SkipCounter, read_span
from lightning_hmd.data.transport import Packed, pack, unpack
from lightning_hmd.data.windows import cut_window, window_starts
from lightning_hmd.structures import MocapBatch

INPUTS = ("features", "images")
SHORT_CLIP = "shorter_than_seq_len"


class ReaderError(RuntimeError):
    """The reader cannot go on (no valid sample, a missing input member, mixed encoders)."""


def num_fake_poses(batch_size: int, seq_len: int, num_deltas: int, hallucinator: bool) -> int:
    """M: poses the discriminator sees per batch (``objective.collect_fakes``): the current
    frame and every Δt head, for the movie strip and, with a hallucinator, its prediction."""
    return batch_size * seq_len * (1 + num_deltas) * (2 if hallucinator else 1)


def batch_counts(weights: Sequence[float], batch_size: int) -> list[int]:
    """Windows per source in each batch: ``batch_size * w / sum(w)`` rounded by largest
    remainder (ties to the earlier source), so the counts always sum to ``batch_size``."""
    if not weights or any(w <= 0 for w in weights):
        raise ValueError(f"source weights must be > 0, got {list(weights)}")
    raw = [batch_size * w / sum(weights) for w in weights]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: batch_size - sum(counts)]:
        counts[i] += 1
    return counts


def decode_jpegs(frames: Sequence[bytes]) -> np.ndarray:
    """JPEG crops -> (T, S, S, 3) uint8 RGB (OpenCV: the fastest decoder at hand)."""
    out = []
    for data in frames:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError("undecodable JPEG frame")
        out.append(bgr[..., ::-1])
    return np.stack(out)


@dataclass(frozen=True)
class WindowMaker:
    """Turns decoded windows into model inputs: features as stored, or decoded JPEG crops
    (augmented for training, centre-cropped for evaluation)."""

    inputs: str
    img_size: int
    augment: AugmentConfig | None  # None: evaluation crop

    def check(self, read: Read) -> None:
        s = read.sample
        member = "phi" if self.inputs == "features" else "JPEG frames"
        if (s.phi if self.inputs == "features" else s.jpeg) is None:
            raise ReaderError(
                f"{read.shard} [{read.key}]: data.inputs={self.inputs} but the sample has no "
                f"{member}; run `lightning-hmd data features` or change data.inputs"
            )

    def make(
        self,
        sample: ClipSample,
        key: str,
        start: int,
        rng: np.random.Generator | None,
    ) -> WindowItem:
        images = None
        training = self.augment is not None and rng is not None
        if self.inputs == "images":
            stored = decode_jpegs(sample.jpeg)
            if training:
                sample, images = augment_clip(sample, stored, self.augment, rng, self.img_size)
            else:
                sample, images = center_crop(sample, stored, self.img_size)
        elif training and self.augment.feature_noise > 0 and sample.phi is not None:
            phi = np.asarray(sample.phi, dtype=np.float32)
            noise = rng.normal(0.0, self.augment.feature_noise, phi.shape).astype(np.float32)
            sample = replace(sample, phi=phi + noise)
        sample = replace(sample, jpeg=None)
        return WindowItem(sample, key, start, images)


def _slot() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 0) if info is None else (info.id, info.num_workers)


def _clip_batch(
    items: list[WindowItem], mocap: MocapBatch | None, slot: int, counter: SkipCounter
) -> ClipBatch | Packed:
    """Collate a batch; packed into one buffer when it leaves a loader worker."""
    clips, info = collate_windows(items)
    batch = ClipBatch(
        clips=clips,
        info=info,
        mocap=mocap,
        slot=slot,
        skipped=dict(counter.counts),
    )
    return batch if get_worker_info() is None else pack(batch)


def _endless(
    shards: Sequence[ShardRef],
    kind: str,
    slot: int,
    num_slots: int,
    rng: np.random.Generator,
    counter: SkipCounter,
    shuffle_buffer: int,
) -> Iterator[Read]:
    """A slot's samples of one source, pass after pass, shuffled (span order and a buffer)."""
    my_spans = train_spans(shards, slot, num_slots)
    while True:
        delivered = 0
        buffer: list[Read] = []
        for i in rng.permutation(len(my_spans)):
            for read in read_span(my_spans[i], kind, counter):
                buffer.append(read)
                if len(buffer) >= shuffle_buffer:
                    yield buffer.pop(int(rng.integers(len(buffer))))
                    delivered += 1
        while buffer:
            yield buffer.pop(int(rng.integers(len(buffer))))
            delivered += 1
        if delivered == 0:
            where = ", ".join(f"{s.shard.path}[{s.start}:{s.stop}]" for s in my_spans)
            raise ReaderError(
                f"reader slot {slot}: no valid {kind} sample in {where} "
                f"(skipped: {dict(counter.counts)})"
            )


class MocapBank:
    """A slot's share of the mocap poses, decoded once and held in memory.

    The discriminator sees several mocap poses per generated frame, so decoding them from the
    shards pass after pass would cost more than the clips; each slot instead holds only its
    own spans (all slots together hold one copy) and draws uniformly with replacement, which
    is what HMMR's shuffle queue approximates.
    """

    def __init__(
        self, shards: Sequence[ShardRef], slot: int, num_slots: int, counter: SkipCounter
    ) -> None:
        samples = [
            r.sample for span in train_spans(shards, slot, num_slots)
            for r in read_span(span, "mocap", counter)
        ]  # fmt: skip
        if not samples:
            where = ", ".join(str(s.path) for s in shards)
            raise ReaderError(
                f"reader slot {slot}: no valid mocap sample in {where} "
                f"(skipped: {dict(counter.counts)})"
            )
        self.batch = collate_mocap(samples)

    def __len__(self) -> int:
        return len(self.batch.betas)

    def draw(self, count: int, rng: np.random.Generator) -> MocapBatch:
        idx = torch.from_numpy(rng.integers(len(self), size=count))
        return MocapBatch(pose_aa=self.batch.pose_aa[idx], betas=self.batch.betas[idx])


def group_shares(sources: Sequence[Sequence[ShardRef]], seq_len: int) -> list[float]:
    """Each source's size in windows per pass (``frames // T``, from the manifests): the
    share of its group's windows it gets."""
    return [float(max(1, sum(s.frames for s in shards) // seq_len)) for shards in sources]


class TrainWindows(IterableDataset):
    """Endless training batches: mixed sources, random windows, augmentation, mocap.

    ``weights`` has one entry per group of ``groups`` (the group index of each source; None:
    every source its own group)."""

    def __init__(
        self,
        sources: Sequence[Sequence[ShardRef]],
        weights: Sequence[float],
        mocap: Sequence[ShardRef] | None,
        *,
        groups: Sequence[int] | None = None,
        batch_size: int,
        seq_len: int,
        rank: int,
        world_size: int,
        seed: int,
        maker: WindowMaker,
        num_fake_poses: int,
        shuffle_buffer: int = 32,
        clip_buffer: int = 0,
    ) -> None:
        self.sources = [list(s) for s in sources]
        self.groups = list(groups) if groups is not None else list(range(len(self.sources)))
        if len(self.groups) != len(self.sources):
            raise ValueError(f"{len(self.sources)} sources but {len(self.groups)} group indices")
        self.counts = batch_counts(weights, batch_size)
        if len(self.counts) != max(self.groups) + 1:
            raise ValueError(f"{len(self.counts)} weights for {max(self.groups) + 1} groups")
        shares = group_shares(self.sources, seq_len)
        self.members = [
            [i for i, g in enumerate(self.groups) if g == k] for k in range(len(self.counts))
        ]
        self.share = [np.asarray([shares[i] for i in m]) / sum(shares[i] for i in m)
                      for m in self.members]  # fmt: skip
        self.mocap = None if mocap is None else list(mocap)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.maker, self.num_fake_poses = maker, num_fake_poses
        # Batches draw from a buffer of windows that must span many clips: a clip of n frames
        # puts n // T windows in it, and with short windows (T = 1 for single-frame training)
        # a buffer counted in windows would fill a batch from one or two clips, whose frames
        # are nearly the same picture. So it is counted in clips: 0 = automatic, 4 per batch
        # sequence (at least 32).
        self.shuffle_buffer = shuffle_buffer
        self.clip_buffer = clip_buffer or max(32, 4 * batch_size)
        self.epoch = 0

    def _windows(
        self, reads: Iterator[Read], rng: np.random.Generator, counter: SkipCounter
    ) -> Iterator[WindowItem]:
        """``n // T`` windows with uniform random starts per clip of ``n`` frames and pass.

        HMMR's ``pick_sequences`` takes one uniform window per track read; taking ``n // T``
        keeps the frames read per frame delivered near 1 for long chunks (150 frames) and
        makes one pass about ``frames // T`` windows, the epoch length. The windows go
        through a buffer of (clip, start) pairs holding windows of ``clip_buffer`` clips, so
        one clip's windows spread over batches; they are cropped and augmented only when
        drawn.
        """
        buffer: list[tuple[Read, int]] = []
        clips: dict[int, int] = {}  # windows in the buffer per clip read (pass after pass)

        def draw() -> WindowItem:
            read, start = buffer.pop(int(rng.integers(len(buffer))))
            clips[id(read)] -= 1
            if not clips[id(read)]:
                del clips[id(read)]
            cut = cut_window(read.sample, start, self.seq_len)
            return self.maker.make(cut, read.key, start, rng)

        for read in reads:
            self.maker.check(read)
            n = read.sample.num_frames
            if n < self.seq_len:
                counter.skip(SHORT_CLIP, read.shard, read.key, f"{n} < {self.seq_len} frames")
                continue
            starts = window_starts(n, self.seq_len, rng, count=n // self.seq_len)
            buffer.extend((read, int(s)) for s in starts)
            clips[id(read)] = len(starts)
            while len(clips) >= self.clip_buffer:
                yield draw()

    def __iter__(self) -> Iterator[ClipBatch]:
        worker, num_workers = _slot()
        slot, num_slots = slot_index(self.rank, self.world_size, worker, num_workers)
        counter = SkipCounter()

        def rng_for(stream: int) -> np.random.Generator:
            return np.random.default_rng([self.seed, self.epoch, slot, stream])

        streams = []
        for i, shards in enumerate(self.sources):
            rng = rng_for(i)
            reads = _endless(shards, "clip", slot, num_slots, rng, counter, self.shuffle_buffer)
            streams.append(self._windows(reads, rng, counter))
        bank = None
        if self.mocap is not None:
            mrng = rng_for(len(self.sources))
            bank = MocapBank(self.mocap, slot, num_slots, counter)
        pick = rng_for(len(self.sources) + 1)  # which source of a group gives each window

        def source(group: int) -> int:
            members = self.members[group]
            if len(members) == 1:
                return members[0]
            return members[int(pick.choice(len(members), p=self.share[group]))]

        while True:
            items = [next(streams[source(g)]) for g, c in enumerate(self.counts) for _ in range(c)]
            poses = None if bank is None else bank.draw(self.num_fake_poses, mrng)
            yield _clip_batch(items, poses, slot, counter)


@dataclass
class ReaderStats:
    """Skipped-sample counts that reached the main process, by reason (all slots summed)."""

    past: Counter = field(default_factory=Counter)
    current: dict[int, dict[str, int]] = field(default_factory=dict)

    def start_epoch(self) -> None:
        for counts in self.current.values():
            self.past.update(counts)
        self.current = {}

    def update(self, slot: int, counts: dict[str, int]) -> None:
        self.current[slot] = counts

    def totals(self) -> dict[str, int]:
        out = Counter(self.past)
        for counts in self.current.values():
            out.update(counts)
        return dict(out)


class EpochLoader:
    """A DataLoader over a reader dataset, cut at ``batches_per_epoch`` batches (training), and
    collecting the skip counts every batch carries into :class:`ReaderStats`."""

    def __init__(
        self, loader: DataLoader, batches_per_epoch: int | None, stats: ReaderStats
    ) -> None:
        self.loader = loader
        self.batches_per_epoch = batches_per_epoch
        self.stats = stats
        self.epoch = 0
        self.delivered = 0  # batches of the current epoch handed out so far
        self._skip = 0

    @property
    def dataset(self) -> IterableDataset:
        return self.loader.dataset

    def set_epoch(self, epoch: int) -> None:
        """Reseed the training streams (Lightning does not call this on custom iterables)."""
        if epoch != self.epoch:
            self._skip = 0  # a restored position belongs to the restored epoch only
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """Position in the stream, saved in checkpoints (Lightning calls this)."""
        if self.batches_per_epoch is not None and self.delivered >= self.batches_per_epoch:
            return {"epoch": self.epoch + 1, "delivered": 0}
        return {"epoch": self.epoch, "delivered": self.delivered}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume mid-epoch: the next iteration regenerates and drops the batches already
        delivered, so a resumed run sees the same batches as an uninterrupted one."""
        self.epoch, self._skip = int(state["epoch"]), int(state["delivered"])

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("evaluation loaders have no fixed length")
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[ClipBatch]:
        if hasattr(self.dataset, "epoch"):
            self.dataset.epoch = self.epoch
        self.stats.start_epoch()
        it = iter(self.loader)
        skip, self._skip, self.delivered = self._skip, 0, 0
        for batch in it:
            if isinstance(batch, Packed):
                batch = unpack(batch)
            self.stats.update(batch.slot, batch.skipped)
            if isinstance(batch, SlotReport):
                continue
            self.delivered += 1
            if self.delivered > skip:
                yield batch
            if self.batches_per_epoch is not None and self.delivered >= self.batches_per_epoch:
                break
        del it  # stops the endless workers
        self.epoch += 1
        self.delivered = 0


def derived_batches_per_epoch(
    sources: Sequence[Sequence[ShardRef]], seq_len: int, batch_size: int, world_size: int
) -> int:
    """ceil(windows / (world_size * batch_size)) with ``windows = frames // seq_len`` summed
    over the sources; from the manifests only, so every rank computes the same number."""
    windows = sum(s.frames for shards in sources for s in shards) // seq_len
    return max(1, math.ceil(windows / (world_size * batch_size)))


def _loader(dataset: IterableDataset, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, persistent_workers=False)


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
) -> EpochLoader:
    """The training loader (see the module docstring). ``weights``: one per group of
    ``groups`` (None: every source its own group). ``batches_per_epoch=0`` derives it from
    the manifests (:func:`derived_batches_per_epoch`); ``mocap_dirs`` may be empty (then
    batches carry no mocap)."""
    if inputs not in INPUTS:
        raise ValueError(f"data.inputs must be one of {INPUTS}, got {inputs!r}")
    num_groups = len(sources) if groups is None else max(groups, default=-1) + 1
    if num_groups != len(weights):
        raise ValueError(f"{num_groups} training groups but {len(weights)} weights")
    source_shards = [read_sets([d], "clip")[1] for d in sources]
    mocap = read_sets(mocap_dirs, "mocap")[1] if mocap_dirs else None
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
        maker=WindowMaker(inputs, img_size, augment if augment.enabled else None),
        num_fake_poses=num_fake_poses,
    )
    return EpochLoader(_loader(dataset, num_workers), n, ReaderStats())


def first_samples(dirs: Sequence[str | Path]) -> dict[str, ClipSample | None]:
    """The first readable sample of each set (None: none readable): what a run checks the
    sets against before it starts."""
    out: dict[str, ClipSample | None] = {}
    for d in dirs:
        shards = read_sets([d], "clip")[1]
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


__all__ = [
    "ClipBatch",
    "EpochLoader",
    "ReaderError",
    "ReaderStats",
    "batch_counts",
    "build_train_loader",
    "num_fake_poses",
]
