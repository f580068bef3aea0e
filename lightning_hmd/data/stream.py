"""Samples of shard spans, accounted for by the manifest's keys: each delivered at most once,
every damaged one skipped and counted.

A span is the part of a shard's manifest list a slot owns (:mod:`lightning_hmd.data.assign`).
Its reader groups the shard's members with webdataset (:func:`lightning_hmd.data.tario.
shard_samples`) and judges each sample by key, never by position:

- a key the shard's manifest entry lacks is a foreign sample (``not_in_manifest``); a key met
  again after its first run of members is a duplicate (``duplicate_sample``); a member of no
  sample is ``unsafe_member``. These belong to no slot's keys, so the slot that owns the
  shard's first listed sample counts them (it reads every header of the shard), and each is
  counted once over all slots;
- the first run of a listed key is the sample: one with a member problem (unsafe, unknown,
  duplicate or oversize member), a schema violation (shape, dtype, NaN, unreadable member),
  members that differ from the manifest's digest (``checksum_mismatch``) or, when frames are
  decoded, a JPEG body that does not decode (``undecodable_frame``) is skipped and counted by
  the slot that owns the key;
- a listed key the shard never reaches is ``truncated_tar`` when the tar broke and
  ``missing_sample`` when it ended cleanly.

So the samples of a set that reach the model are exactly the intact listed ones, once each,
however many slots read it. Nothing is unpickled: members are bytes decoded by the schema.

A clip may hold several feature sets (one per encoder id, :mod:`lightning_hmd.data.schema`);
given ``features``, the reader keeps on each clip only the set it names
(:func:`select_features`), so the others never travel further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from lightning_hmd.data.assign import ShardSpan
from lightning_hmd.data.manifest import sample_sha256
from lightning_hmd.data.schema import (
    ClipSample,
    MocapSample,
    SchemaError,
    decode_clip,
    decode_mocap,
)
from lightning_hmd.data.skips import (
    CHECKSUM,
    DUPLICATE_SAMPLE,
    MISSING_SAMPLE,
    NOT_IN_MANIFEST,
    TRUNCATED,
    UNDECODABLE_FRAME,
    UNSAFE_MEMBER,
    SkipCounter,
    reason_of,
)
from lightning_hmd.data.tario import RawSample, TarReadError, shard_samples
from lightning_hmd.errors import DataError


@dataclass(frozen=True)
class Read:
    """One intact sample: its key and shard, and its JPEG crops decoded when asked for
    ((T, S, S, 3) uint8 RGB; None otherwise)."""

    key: str
    shard: Path
    sample: ClipSample | MocapSample
    images: np.ndarray | None = None


class UndecodableFrameError(DataError):
    """A JPEG frame whose body does not decode."""


class FeatureSetError(DataError, RuntimeError):
    """A clip does not hold the feature set a run reads (or holds several, none named)."""


def select_features(sample: ClipSample, features: str) -> ClipSample:
    """The clip with exactly one feature set: the one whose encoder id is ``features``
    (moved into ``phi`` / ``encoder_id`` when it is an extra set), or with ``features=""``
    the only one the clip holds; a clip without features is returned as it is.

    Raises:
        FeatureSetError: the clip lacks the named set, or holds several and none is named;
            the message lists the sets it holds and names ``data.features``.
    """
    held = sample.feature_sets
    if not held:
        return sample
    if not features:
        if len(held) > 1:
            raise FeatureSetError(
                f"the clip holds {len(held)} feature sets ({', '.join(held)}) and "
                "data.features names none: set data.features to the one to read"
            )
        return sample
    if features == sample.encoder_id:
        return replace(sample, more_phi={}) if sample.more_phi else sample
    if features not in sample.more_phi:
        raise FeatureSetError(
            f"data.features={features} but the clip holds the feature sets {', '.join(held)}: "
            "add it with `lightning-hmd data features --add` or name one of these"
        )
    phi = sample.more_phi[features]
    if len(phi) != sample.num_frames:
        raise FeatureSetError(
            f"feature set {features}: {len(phi)} rows for a clip of {sample.num_frames} "
            "frames (select the set before cutting windows)"
        )
    return replace(sample, phi=phi, encoder_id=features, more_phi={})


def decode_jpegs(frames: list[bytes]) -> np.ndarray:
    """JPEG crops -> (T, S, S, 3) uint8 RGB (OpenCV: the fastest decoder at hand); raises
    :class:`UndecodableFrameError` naming the frame."""
    out = []
    for i, data in enumerate(frames):
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UndecodableFrameError(f"JPEG frame {i} (f{i:06d}.jpg) does not decode")
        out.append(bgr[..., ::-1])
    if len({f.shape for f in out}) > 1:
        raise UndecodableFrameError(f"JPEG frames differ in size: {sorted({f.shape for f in out})}")
    return np.stack(out)


def read_span(
    span: ShardSpan,
    kind: str,
    counter: SkipCounter,
    *,
    decode_frames: bool = False,
    features: str | None = None,
) -> Iterator[Read]:
    """The intact samples of one span, in shard order (see the module docstring).

    ``decode_frames``: decode the JPEG crops of every clip (evaluation reads them all);
    training decodes only the windows it draws (:class:`lightning_hmd.data.inputs.
    WindowMaker`). ``features``: keep on each clip only this feature set ("" the only one it
    holds; :func:`select_features`, raising :class:`FeatureSetError` naming the shard and
    key); None keeps every set.
    """
    shard = span.shard
    path = shard.path
    listed = {e.key: e for e in shard.entries}
    mine = {e.key: e for e in span.entries}
    owner = span.start == 0
    frames = {k: e.frames for k, e in listed.items()}
    decode = decode_clip if kind == "clip" else decode_mocap
    met: set[str] = set()  # keys whose first run of members has been judged
    mine_met = 0  # how many of them are this span's
    try:
        for raw in shard_samples(path, kind, frames, mine):
            key = raw.key
            if key is None:
                if owner:
                    p = raw.problems[0]
                    counter.skip(UNSAFE_MEMBER, path, p.key or "?", p.message)
                continue
            if key not in listed:
                if owner:
                    counter.skip(NOT_IN_MANIFEST, path, key, "key not listed in the manifest")
                continue
            if key in met:
                if owner:
                    counter.skip(DUPLICATE_SAMPLE, path, key, "key met again after its first run")
                continue
            met.add(key)
            if key not in mine:
                continue
            mine_met += 1
            read = _judge(raw, listed[key].sha256, path, decode, counter, decode_frames)
            if read is not None:
                yield read if features is None else _selected(read, features)
            if not owner and mine_met == len(mine):
                return  # every key of the span met; the owner reads on for strays
    except TarReadError as err:
        lost = [k for k in mine if k not in met]
        if lost:
            counter.skip(
                TRUNCATED,
                path,
                lost[0],
                f"{err}; {len(lost)} listed sample(s) " "from here on lost",
                len(lost),
            )
        return
    for k in mine:
        if k not in met:
            counter.skip(MISSING_SAMPLE, path, k, "listed in the manifest, not in the shard")


def _selected(read: Read, features: str) -> Read:
    if not isinstance(read.sample, ClipSample):
        return read
    try:
        return replace(read, sample=select_features(read.sample, features))
    except FeatureSetError as err:
        raise FeatureSetError(f"{read.shard} [{read.key}]: {err}") from None


def _judge(
    raw: RawSample,
    digest: str,
    path: Path,
    decode: Callable[[dict], ClipSample | MocapSample],
    counter: SkipCounter,
    decode_frames: bool,
) -> Read | None:
    """One listed sample's first run: a Read, or None (skipped and counted). Schema checks
    come before the digest, so that a fault the schema names is counted by its name."""
    key = raw.key
    if raw.problems:
        p = raw.problems[0]
        detail = "; ".join(q.message for q in raw.problems)
        counter.skip(reason_of(p.message), path, key, detail)
        return None
    try:
        sample = decode(raw.members)
    except SchemaError as err:
        counter.skip(reason_of(str(err)), path, key, str(err))
        return None
    if sample_sha256(raw.members) != digest:
        counter.skip(
            CHECKSUM, path, key, "members differ from the manifest's sha256 of the " "sample"
        )
        return None
    images = None
    if decode_frames and isinstance(sample, ClipSample) and sample.jpeg is not None:
        try:
            images = decode_jpegs(sample.jpeg)
        except UndecodableFrameError as err:
            counter.skip(UNDECODABLE_FRAME, path, key, str(err))
            return None
    return Read(key, path, sample, images)
