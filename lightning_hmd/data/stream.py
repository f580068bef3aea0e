"""Samples read from shard spans: safe decoding, and bad samples skipped and counted.

Members are read as bytes by :func:`lightning_hmd.data.tario.iter_shard_members` and decoded
only by the schema (numpy without pickle, JSON, JPEG); WebDataset's default decoders, which
unpickle ``.pyd``/``.pickle`` members, are never used. A corrupt sample (a member of an
unknown kind, an escaping member name, a missing member, a wrong shape, a NaN) is skipped and
counted by reason; a truncated or corrupt tar ends its shard and the samples it lost are
counted. Each skip is logged once as a warning naming the shard, key and reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lightning_hmd.data.assign import ShardRef, ShardSpan
from lightning_hmd.data.schema import (
    ClipSample,
    MocapSample,
    SchemaError,
    decode_clip,
    decode_mocap,
)
from lightning_hmd.data.tario import Problem, TarReadError, iter_shard_members

log = logging.getLogger(__name__)

# Skip reasons (the keys of SkipCounter.counts).
TRUNCATED = "truncated_tar"
UNSAFE_MEMBER = "unsafe_member"
UNKNOWN_MEMBER = "unknown_member"
DUPLICATE = "duplicate_member"
MISSING_MEMBER = "missing_member"
WRONG_SHAPE = "wrong_shape"
NON_FINITE = "non_finite"
UNREADABLE = "unreadable_member"
INVALID = "invalid_sample"
NOT_IN_MANIFEST = "not_in_manifest"


def reason_of(message: str) -> str:
    """The skip reason of a schema or member problem message."""
    rules = (
        ("non-finite", NON_FINITE),
        ("expected shape", WRONG_SHAPE),
        ("missing member", MISSING_MEMBER),
        ("unknown member", UNKNOWN_MEMBER),
        ("duplicate member", DUPLICATE),
        ("absolute member path", UNSAFE_MEMBER),
        ("escapes the shard", UNSAFE_MEMBER),
        ("directory part", UNSAFE_MEMBER),
        ("not a regular file", UNSAFE_MEMBER),
        ("has no extension", UNSAFE_MEMBER),
        ("without pickle", UNREADABLE),
        ("not valid JSON", UNREADABLE),
        ("not JPEG data", UNREADABLE),
    )
    return next((reason for text, reason in rules if text in message), INVALID)


@dataclass
class SkipCounter:
    """Counts of skipped samples by reason; each (shard, position, reason) counts once even
    when a training stream meets it again on a later pass."""

    counts: Counter = field(default_factory=Counter)
    _seen: set = field(default_factory=set)

    def skip(self, reason: str, shard: Path, where: str, detail: str, n: int = 1) -> None:
        mark = (str(shard), where, reason)
        if mark in self._seen or n <= 0:
            return
        self._seen.add(mark)
        self.counts[reason] += n
        log.warning("skipped %d sample(s) of %s [%s]: %s: %s", n, shard, where, reason, detail)


@dataclass(frozen=True)
class Read:
    """One decoded sample: its key and shard."""

    key: str
    shard: Path
    sample: ClipSample | MocapSample


def _problem_reason(problems: list[Problem]) -> tuple[str, str]:
    msg = "; ".join(p.message for p in problems)
    return reason_of(problems[0].message), msg


def read_span(span: ShardSpan, kind: str, counter: SkipCounter) -> Iterator[Read]:
    """Decode the samples of one shard span, skipping and counting bad ones.

    Member-level faults that belong to no sample, and samples beyond the manifest's count,
    are counted by the slot that owns the shard's first sample, so each is counted once over
    all slots.
    """
    shard = span.shard
    path = shard.path
    owner = span.start == 0
    decode = decode_clip if kind == "clip" else decode_mocap
    pos = 0
    try:
        for key, members, problems in iter_shard_members(path, kind):
            if not members and problems and reason_of(problems[0].message) == UNSAFE_MEMBER:
                # A member that belongs to no sample (unsafe name): no position consumed.
                if owner:
                    counter.skip(*_skip_args(problems, path, key))
                continue
            here, pos = pos, pos + 1
            if here >= shard.samples:
                if owner:
                    counter.skip(NOT_IN_MANIFEST, path, key, "sample not listed in the manifest")
                continue
            if here < span.start:
                continue
            if here >= span.stop:
                return
            if problems:
                counter.skip(*_skip_args(problems, path, key))
                continue
            try:
                sample = decode(members)
            except SchemaError as err:
                counter.skip(reason_of(str(err)), path, key, str(err))
                continue
            yield Read(key, path, sample)
    except TarReadError as err:
        lost = span.stop - max(pos, span.start)
        counter.skip(TRUNCATED, path, f"from sample {max(pos, span.start)}", str(err), lost)
        return
    if pos < span.stop:  # the tar ended early without a read error (cut at a member boundary)
        lost = span.stop - max(pos, span.start)
        detail = f"the shard ends after {pos} of {shard.samples} samples"
        counter.skip(TRUNCATED, path, f"from sample {max(pos, span.start)}", detail, lost)


def iter_keys(shard: ShardRef, kind: str) -> Iterator[str]:
    """The sample keys of a shard at the positions :func:`read_span` gives them (member
    groups of unsafe names take no position; samples beyond the manifest's count are not
    listed), without decoding; a tar that cannot be read further ends the listing."""
    count = 0
    try:
        for key, members, problems in iter_shard_members(shard.path, kind):
            if not members and problems and reason_of(problems[0].message) == UNSAFE_MEMBER:
                continue
            if count >= shard.samples:
                return
            count += 1
            yield key
    except TarReadError:
        return


def _skip_args(problems: list[Problem], path: Path, key: str) -> tuple[str, Path, str, str]:
    reason, msg = _problem_reason(problems)
    return reason, path, key, msg
