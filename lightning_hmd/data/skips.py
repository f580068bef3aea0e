"""Skipped samples: their reasons, and the channel that brings them from loader workers.

Readers never stop on a damaged sample: they skip it and report one :class:`SkipEvent` (the
shard, the sample key or member, the reason, how many samples it cost) through a
:class:`SkipChannel`, a multiprocessing queue of its own beside the batch stream, so that skip
statistics never ride inside a batch. The main process drains it into a :class:`SkipLog`:
distinct events (a training stream that meets a damaged sample again on a later pass, or
after a resume, counts it once), counts by reason, the worst shards, and the fraction of the
sets found damaged. A log's state goes into checkpoints with the loader's position.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import time
from collections import Counter
from collections.abc import Container
from dataclasses import astuple, dataclass, field
from pathlib import Path

from lightning_hmd.errors import RunError

log = logging.getLogger(__name__)

# Reasons (the keys of every count by reason).
TRUNCATED = "truncated_tar"  # the tar ends or breaks before the sample
UNSAFE_MEMBER = "unsafe_member"  # absolute, '..', directory part, link or device member
UNKNOWN_MEMBER = "unknown_member"  # a member name the schema does not know
DUPLICATE_MEMBER = "duplicate_member"  # one member twice within a sample
OVERSIZE = "oversize_member"  # a member larger than the schema allows (never read)
MISSING_MEMBER = "missing_member"
WRONG_SHAPE = "wrong_shape"
WRONG_DTYPE = "wrong_dtype"
NON_FINITE = "non_finite"
UNREADABLE = "unreadable_member"  # a member that does not parse (npy, JSON, JPEG magic)
UNDECODABLE_FRAME = "undecodable_frame"  # a JPEG frame whose body does not decode
CHECKSUM = "checksum_mismatch"  # members differ from the manifest's digest of the sample
INVALID = "invalid_sample"  # any other schema violation
NOT_IN_MANIFEST = "not_in_manifest"  # a sample whose key the shard's manifest entry lacks
DUPLICATE_SAMPLE = "duplicate_sample"  # a key met again after it was delivered or judged
MISSING_SAMPLE = "missing_sample"  # a listed key the shard does not hold
SHORT_CLIP = "shorter_than_seq_len"  # intact, but too short for a training window

REASONS = (
    TRUNCATED, UNSAFE_MEMBER, UNKNOWN_MEMBER, DUPLICATE_MEMBER, OVERSIZE, MISSING_MEMBER,
    WRONG_SHAPE, WRONG_DTYPE, NON_FINITE, UNREADABLE, UNDECODABLE_FRAME, CHECKSUM, INVALID,
    NOT_IN_MANIFEST, DUPLICATE_SAMPLE, MISSING_SAMPLE, SHORT_CLIP,
)  # fmt: skip
# Reasons that are not damage: they do not count towards data.max_skip_fraction.
NOT_DAMAGE = frozenset({SHORT_CLIP})


def reason_of(message: str) -> str:
    """The reason of a schema or member problem message (:class:`SchemaError` texts)."""
    rules = (
        ("non-finite", NON_FINITE),
        ("expected shape", WRONG_SHAPE),
        ("expected dtype", WRONG_DTYPE),
        ("missing member", MISSING_MEMBER),
        ("unknown member", UNKNOWN_MEMBER),
        ("duplicate member", DUPLICATE_MEMBER),
        ("absolute member path", UNSAFE_MEMBER),
        ("escapes the shard", UNSAFE_MEMBER),
        ("directory part", UNSAFE_MEMBER),
        ("not a regular file", UNSAFE_MEMBER),
        ("has no extension", UNSAFE_MEMBER),
        ("larger than the schema allows", OVERSIZE),
        ("without pickle", UNREADABLE),
        ("not valid JSON", UNREADABLE),
        ("not JPEG data", UNREADABLE),
        ("does not decode", UNDECODABLE_FRAME),
    )
    return next((reason for text, reason in rules if text in message), INVALID)


@dataclass(frozen=True)
class SkipEvent:
    """One skip: ``count`` samples of ``shard`` lost at ``where`` (a sample key, a member
    name, or a position for a truncated tar) for ``reason``."""

    shard: str
    where: str
    reason: str
    detail: str
    count: int = 1

    @property
    def mark(self) -> tuple[str, str, str]:
        return (self.shard, self.where, self.reason)


class SkipChannel:
    """A queue from the reader (in loader workers or in the main process) to the main
    process; created before the workers start, so that they inherit it."""

    def __init__(self) -> None:
        self._queue = mp.get_context().Queue()

    def put(self, item: SkipEvent | int) -> None:
        """A skip, or the slot number of a reader that has finished (``done``)."""
        self._queue.put(item if isinstance(item, int) else astuple(item))

    def drain(self) -> list[SkipEvent | int]:
        out = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return out
            out.append(item if isinstance(item, int) else SkipEvent(*item))

    def wait(self, slots: int, timeout: float = 60.0) -> list[SkipEvent | int]:
        """Everything until ``slots`` readers said they finished (or ``timeout`` passed)."""
        out, done, end = [], 0, time.monotonic() + timeout
        if slots <= 0:
            return self.drain()
        while done < slots and time.monotonic() < end:
            try:
                item = self._queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(item, int):
                done += 1
            out.append(item if isinstance(item, int) else SkipEvent(*item))
        return out


@dataclass
class SkipCounter:
    """The reader's side: each distinct skip is logged once as a warning naming the shard,
    key and reason, counted, and sent on the channel (when there is one). ``known``: the
    marks (:attr:`SkipEvent.mark`) the main process already holds, from earlier passes or
    the checkpoint: skipped again, but neither logged nor sent again."""

    channel: SkipChannel | None = None
    known: frozenset = frozenset()
    counts: Counter = field(default_factory=Counter)
    _seen: set = field(default_factory=set)

    def skip(self, reason: str, shard: Path | str, where: str, detail: str, n: int = 1) -> None:
        event = SkipEvent(str(shard), str(where), reason, detail, int(n))
        if event.mark in self._seen or n <= 0:
            return
        self._seen.add(event.mark)
        self.counts[reason] += n
        if event.mark in self.known:
            return
        log.warning("skipped %d sample(s) of %s [%s]: %s: %s", n, shard, where, reason, detail)
        if self.channel is not None:
            self.channel.put(event)

    def done(self, slot: int) -> None:
        if self.channel is not None:
            self.channel.put(slot)


@dataclass
class SkipLog:
    """The main process's record of distinct skips (all its loader's slots)."""

    events: dict[tuple[str, str, str], SkipEvent] = field(default_factory=dict)

    def add(self, items: list[SkipEvent | int]) -> None:
        for item in items:
            if isinstance(item, SkipEvent):
                self.events.setdefault(item.mark, item)

    def counts(self) -> dict[str, int]:
        """Skipped samples by reason (reasons with none left out)."""
        out: Counter = Counter()
        for e in self.events.values():
            out[e.reason] += e.count
        return dict(sorted(out.items()))

    def damaged(self, shards: Container[str] | None = None) -> int:
        """Samples lost to damage (reasons outside :data:`NOT_DAMAGE`), of ``shards`` only
        when given (shard paths)."""
        return sum(n for _, n in self._damage(shards))

    def worst_shards(
        self, n: int = 3, shards: Container[str] | None = None
    ) -> list[tuple[str, int]]:
        """The ``n`` shards (of ``shards`` when given) with the most damaged samples."""
        per: Counter = Counter()
        for shard, count in self._damage(shards):
            per[shard] += count
        return per.most_common(n)

    def _damage(self, shards: Container[str] | None) -> list[tuple[str, int]]:
        return [
            (e.shard, e.count)
            for e in self.events.values()
            if e.reason not in NOT_DAMAGE and (shards is None or e.shard in shards)
        ]

    def marks(self) -> frozenset:
        """The marks of every skip so far (what readers of a later pass need not report)."""
        return frozenset(self.events)

    def state_dict(self) -> list[list]:
        return [list(astuple(e)) for e in self.events.values()]

    def load_state_dict(self, state: list[list]) -> None:
        self.events = {}
        self.add([SkipEvent(*e) for e in state])


class TooManySkippedError(RunError):
    """More of the data than ``data.max_skip_fraction`` was damaged."""


def too_many(damaged: int, total: int, fraction: float) -> bool:
    """Whether ``damaged`` of ``total`` samples is more than ``fraction``."""
    return total > 0 and damaged > fraction * total


def check_fraction(
    damaged: int, total: int, fraction: float, worst: list[tuple[str, int]], what: str = "samples"
) -> None:
    """Raise :class:`TooManySkippedError` when ``damaged`` of ``total`` samples exceeds
    ``fraction``, naming the worst shards (``what``: the samples' name in the message)."""
    if too_many(damaged, total, fraction):
        shards = ", ".join(f"{s} ({n})" for s, n in worst) or "unknown"
        raise TooManySkippedError(
            f"{damaged} of {total} {what} ({damaged / total:.1%}) were damaged, more than "
            f"data.max_skip_fraction={fraction}; worst shards: {shards}; run `lightning-hmd "
            "data check` on them"
        )
