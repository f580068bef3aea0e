"""Endless training batches: every (rank, loader worker) slot streams its own share of each
source forever (reshuffled every pass; n // T random windows per clip of n frames and pass,
with uniform starts as HMMR's ``pick_sequences``, ``src/util/data_utils.py``); each batch holds
a fixed number of windows per group of sources (the configured weights, largest-remainder
rounding; within a group each window comes from a source drawn in proportion to its windows
per pass, as HMMR's one shuffled queue over its 2D sets, ``SequenceDataLoader.get_loader`` in
``src/data_loader_sequence.py``) and ``num_fake_poses`` mocap poses drawn from the slot's
share of the mocap, held in memory (:class:`MocapBank`), or for a motion discriminator that
many windows of ``mocap_window`` consecutive poses of one recording. Damaged samples are skipped and
reported on the dataset's :class:`~lightning_hmd.data.skips.SkipChannel`; a clip whose JPEG
crops do not decode is dropped when its first window is drawn, and on every later pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lightning_hmd.data.assign import ShardRef, slot_index, spans, train_spans
from lightning_hmd.data.batch import ClipBatch, WindowItem, collate_mocap, collate_windows
from lightning_hmd.data.epochs import worker_slot
from lightning_hmd.data.inputs import ReaderError, WindowMaker
from lightning_hmd.data.skips import SHORT_CLIP, UNDECODABLE_FRAME, SkipChannel, SkipCounter
from lightning_hmd.data.stream import Read, UndecodableFrameError, read_span
from lightning_hmd.data.transport import Packed, pack
from lightning_hmd.data.windows import cut_window, window_starts
from lightning_hmd.errors import ConfigError
from lightning_hmd.structures import MocapBatch, MocapWindows

log = logging.getLogger(__name__)


def num_fake_poses(batch_size: int, seq_len: int, num_deltas: int, hallucinator: bool) -> int:
    """M: poses the discriminator sees per batch (``objective.collect_fakes``): the current
    frame and every Δt head, for the movie strip and, with a hallucinator, its prediction."""
    return batch_size * seq_len * (1 + num_deltas) * (2 if hallucinator else 1)


def num_fake_windows(batch_size: int, num_deltas: int, hallucinator: bool) -> int:
    """N: windows a motion discriminator sees per batch: one per sequence and prediction
    source (the current frame and every Δt head, of the movie strip and its hallucination)."""
    return batch_size * (1 + num_deltas) * (2 if hallucinator else 1)


def mocap_draws(
    batch_size: int, seq_len: int, num_deltas: int, hallucinator: bool, discriminator: str
) -> tuple[int, int]:
    """(count, window) of the real mocap a batch carries for ``model.discriminator``: as
    many single poses (window 0) as the per-frame discriminator judges fakes, or as many
    windows of ``seq_len`` consecutive poses as the motion discriminator judges."""
    if discriminator == "motion":
        return num_fake_windows(batch_size, num_deltas, hallucinator), seq_len
    return num_fake_poses(batch_size, seq_len, num_deltas, hallucinator), 0


def batch_counts(weights: Sequence[float], batch_size: int) -> list[int]:
    """Windows per source in each batch: ``batch_size * w / sum(w)`` rounded by largest
    remainder (ties to the earlier source), so the counts always sum to ``batch_size``."""
    if not weights or any(w <= 0 for w in weights):
        raise ConfigError(f"source weights must be > 0, got {list(weights)}")
    raw = [batch_size * w / sum(weights) for w in weights]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: batch_size - sum(counts)]:
        counts[i] += 1
    return counts


def _clip_batch(items: list[WindowItem], mocap: MocapBatch | None, slot: int) -> ClipBatch | Packed:
    """Collate a batch; packed into one buffer when it leaves a loader worker."""
    clips, info = collate_windows(items)
    batch = ClipBatch(clips=clips, info=info, mocap=mocap, slot=slot)
    return batch if get_worker_info() is None else pack(batch)


def _endless(
    shards: Sequence[ShardRef],
    kind: str,
    slot: int,
    num_slots: int,
    rng: np.random.Generator,
    counter: SkipCounter,
    shuffle_buffer: int,
    bad: set[tuple[Path, str]],
    features: str | None = None,
) -> Iterator[Read]:
    """A slot's samples of one source, pass after pass, shuffled (span order and a buffer).

    ``features``: the feature set to keep on each clip as it is read (``read_span``'s
    argument), so that the samples waiting in the shuffle buffer hold no set nobody reads.

    ``bad``: (shard, key) of clips found damaged after they were read (JPEG crops that do not
    decode), left out of every later pass. A slot whose share holds no intact sample reads
    the whole source instead (with a warning): training draws at random anyway, and a few
    damaged samples must not stop a run.
    """
    my_spans = train_spans(shards, slot, num_slots)
    whole = False
    while True:
        delivered = 0
        buffer: list[Read] = []
        for i in rng.permutation(len(my_spans)):
            for read in read_span(my_spans[i], kind, counter, features=features):
                if (read.shard, read.key) in bad:
                    continue
                buffer.append(read)
                if len(buffer) >= shuffle_buffer:
                    yield buffer.pop(int(rng.integers(len(buffer))))
                    delivered += 1
        while buffer:
            yield buffer.pop(int(rng.integers(len(buffer))))
            delivered += 1
        if delivered == 0 and not whole:
            log.warning(
                "reader slot %d: no intact %s sample in its share; it reads the whole " "source",
                slot,
                kind,
            )
            my_spans, whole = spans(shards, 0, sum(s.samples for s in shards)), True
        elif delivered == 0:
            where = ", ".join(str(s.path) for s in shards)
            raise ReaderError(
                f"reader slot {slot}: no intact {kind} sample in {where} "
                f"(skipped: {dict(counter.counts)})"
            )


class MocapBank:
    """A slot's share of the mocap poses, decoded once and held in memory.

    The discriminator sees several mocap poses per generated frame, so decoding them from the
    shards pass after pass would cost more than the clips; each slot instead holds only its
    own spans (all slots together hold one copy) and draws uniformly with replacement, which
    is what HMMR's shuffle queue (``SequenceDataLoader.get_smpl_loader``,
    ``src/data_loader_sequence.py``) approximates.
    """

    def __init__(
        self, shards: Sequence[ShardRef], slot: int, num_slots: int, counter: SkipCounter
    ) -> None:
        samples = [
            r.sample
            for span in train_spans(shards, slot, num_slots)
            for r in read_span(span, "mocap", counter)
        ]
        if not samples:  # no intact pose in this slot's share: the whole set instead
            samples = [
                r.sample
                for span in spans(shards, 0, sum(s.samples for s in shards))
                for r in read_span(span, "mocap", counter)
            ]
        if not samples:
            where = ", ".join(str(s.path) for s in shards)
            raise ReaderError(
                f"reader slot {slot}: no valid mocap sample in {where} "
                f"(skipped: {dict(counter.counts)})"
            )
        self.batch = collate_mocap(samples)
        self.where = ", ".join(str(s.path) for s in shards)
        self._runs = _consecutive_runs(samples)  # (start, length) of each ordered stretch
        self._starts: dict[int, np.ndarray] = {}  # window length -> valid starts

    def __len__(self) -> int:
        return len(self.batch.betas)

    def draw(self, count: int, rng: np.random.Generator) -> MocapBatch:
        idx = torch.from_numpy(rng.integers(len(self), size=count))
        return MocapBatch(pose_aa=self.batch.pose_aa[idx], betas=self.batch.betas[idx])

    def window_starts(self, length: int) -> np.ndarray:
        """Every index at which ``length`` consecutive poses of one recording begin.

        Raises:
            ReaderError: no recording of the slot's share has ``length`` ordered poses.
        """
        starts = [s + np.arange(n - length + 1) for s, n in self._runs if n >= length]
        if not starts:
            longest = max((n for _, n in self._runs), default=0)
            raise ReaderError(
                f"no {length} consecutive poses of one recording in the mocap of {self.where} "
                f"(longest ordered stretch: {longest}); a motion discriminator needs mocap "
                "written in frame order (sequence and frame in each sample's meta: "
                "data_prep.mocap or `lightning-hmd data synth`)"
            )
        return np.concatenate(starts)

    def draw_windows(self, count: int, length: int, rng: np.random.Generator) -> MocapWindows:
        """``count`` windows of ``length`` consecutive poses, uniform over every start."""
        if length not in self._starts:
            self._starts[length] = self.window_starts(length)
        starts = self._starts[length]
        first = starts[rng.integers(len(starts), size=count)]
        idx = torch.from_numpy(first[:, None] + np.arange(length))  # (N, W)
        return MocapWindows(pose_aa=self.batch.pose_aa[idx], betas=self.batch.betas[idx])


def _consecutive_runs(samples: Sequence) -> list[tuple[int, int]]:
    """(start, length) of each maximal stretch of samples of one (dataset, sequence) whose
    frames follow one another; samples of unknown order (no sequence) are runs of one."""
    runs: list[tuple[int, int]] = []
    for i, s in enumerate(samples):
        prev = samples[i - 1] if i else None
        follows = (
            prev is not None
            and s.sequence
            and (s.dataset, s.sequence) == (prev.dataset, prev.sequence)
            and s.frame == prev.frame + 1
        )
        if follows:
            start, n = runs[-1]
            runs[-1] = (start, n + 1)
        else:
            runs.append((i, 1))
    return runs


def group_shares(sources: Sequence[Sequence[ShardRef]], seq_len: int) -> list[float]:
    """Each source's size in windows per pass (``frames // T``, from the manifests): the
    share of its group's windows it gets."""
    return [float(max(1, sum(s.frames for s in shards) // seq_len)) for shards in sources]


class TrainWindows(IterableDataset):
    """Endless training batches: mixed sources, random windows, augmentation, mocap.

    ``weights`` has one entry per group of ``groups`` (the group index of each source; None:
    every source its own group). ``mocap_window``: 0 gives ``num_fake_poses`` single mocap
    poses per batch; W > 0 gives ``num_fake_poses`` windows of W consecutive poses."""

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
        mocap_window: int = 0,
        shuffle_buffer: int = 32,
        clip_buffer: int = 0,
        channel: SkipChannel | None = None,
    ) -> None:
        self.sources = [list(s) for s in sources]
        self.groups = list(groups) if groups is not None else list(range(len(self.sources)))
        if len(self.groups) != len(self.sources):
            raise ConfigError(f"{len(self.sources)} sources but {len(self.groups)} group indices")
        self.counts = batch_counts(weights, batch_size)
        if len(self.counts) != max(self.groups) + 1:
            raise ConfigError(f"{len(self.counts)} weights for {max(self.groups) + 1} groups")
        shares = group_shares(self.sources, seq_len)
        self.members = [
            [i for i, g in enumerate(self.groups) if g == k] for k in range(len(self.counts))
        ]
        self.share = [
            np.asarray([shares[i] for i in m]) / sum(shares[i] for i in m) for m in self.members
        ]
        self.mocap = None if mocap is None else list(mocap)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.maker, self.num_fake_poses = maker, num_fake_poses
        self.mocap_window = mocap_window  # 0: single poses; W: windows of W poses
        # Batches draw from a buffer of windows that must span many clips: a clip of n frames
        # puts n // T windows in it, and with short windows (T = 1 for single-frame training)
        # a buffer counted in windows would fill a batch from one or two clips, whose frames
        # are nearly the same picture. So it is counted in clips: 0 = automatic, 4 per batch
        # sequence (at least 32).
        self.shuffle_buffer = shuffle_buffer
        self.clip_buffer = clip_buffer or max(32, 4 * batch_size)
        self.channel = channel
        self.epoch = 0
        self.known_skips: frozenset = frozenset()  # set by the EpochLoader before each pass
        # (slot, num_slots) -> that slot's mocap, decoded on its first pass: the same on every
        # pass, and decoding it again cost seconds per epoch (kept for as long as the process
        # that decoded it: the main process, or a loader worker until its epoch ends)
        self._banks: dict[tuple[int, int], MocapBank] = {}

    def _windows(
        self,
        reads: Iterator[Read],
        rng: np.random.Generator,
        counter: SkipCounter,
        bad: set[tuple[Path, str]],
    ) -> Iterator[WindowItem]:
        """``n // T`` windows with uniform random starts per clip of ``n`` frames and pass.

        HMMR's ``pick_sequences`` (``src/util/data_utils.py``) takes one uniform window per
        track read; taking ``n // T`` keeps the frames read per frame delivered near 1 for long
        chunks (150 frames) and makes one pass about ``frames // T`` windows, the epoch length.
        The windows go through a buffer of (clip, start) pairs holding windows of
        ``clip_buffer`` clips, so one clip's windows spread over batches; they are cropped and
        augmented only when drawn.
        """
        buffer: list[tuple[Read, int]] = []
        clips: dict[int, int] = {}  # windows in the buffer per clip read (pass after pass)

        def draw() -> WindowItem | None:
            read, start = buffer.pop(int(rng.integers(len(buffer))))
            clips[id(read)] -= 1
            if not clips[id(read)]:
                del clips[id(read)]
            cut = cut_window(read.sample, start, self.seq_len)
            try:
                return self.maker.make(cut, read.key, start, rng)
            except UndecodableFrameError as err:  # the whole clip goes, now and on later passes
                counter.skip(UNDECODABLE_FRAME, read.shard, read.key, f"{err} (window at {start})")
                bad.add((read.shard, read.key))
                buffer[:] = [(r, s) for r, s in buffer if r is not read]
                clips.pop(id(read), None)
                return None

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
                item = draw()
                if item is not None:
                    yield item

    def __iter__(self) -> Iterator[ClipBatch]:
        worker, num_workers = worker_slot()
        slot, num_slots = slot_index(self.rank, self.world_size, worker, num_workers)
        # skips the main process already holds are not logged again; the clips themselves
        # are found again, so that each pass stays a function of (seed, epoch, slot) alone
        counter = SkipCounter(self.channel, self.known_skips)
        bad: set[tuple[Path, str]] = set()

        def rng_for(stream: int) -> np.random.Generator:
            return np.random.default_rng([self.seed, self.epoch, slot, stream])

        streams = []
        for i, shards in enumerate(self.sources):
            rng = rng_for(i)
            reads = _endless(
                shards,
                "clip",
                slot,
                num_slots,
                rng,
                counter,
                self.shuffle_buffer,
                bad,
                features=self.maker.read_features,
            )
            streams.append(self._windows(reads, rng, counter, bad))
        bank = None
        if self.mocap is not None:
            mrng = rng_for(len(self.sources))
            bank = self._banks.get((slot, num_slots))
            if bank is None:
                bank = self._banks[slot, num_slots] = MocapBank(
                    self.mocap, slot, num_slots, counter
                )
        pick = rng_for(len(self.sources) + 1)  # which source of a group gives each window

        def source(group: int) -> int:
            members = self.members[group]
            if len(members) == 1:
                return members[0]
            return members[int(pick.choice(len(members), p=self.share[group]))]

        while True:
            items = [next(streams[source(g)]) for g, c in enumerate(self.counts) for _ in range(c)]
            if bank is None:
                poses = None
            elif self.mocap_window:
                poses = bank.draw_windows(self.num_fake_poses, self.mocap_window, mrng)
            else:
                poses = bank.draw(self.num_fake_poses, mrng)
            yield _clip_batch(items, poses, slot)
