"""The manifest of a shard set: what ``manifest.json`` records and how it is read.

A shard set's ``manifest.json`` lists each shard's name, sample and frame counts, size and
sha256, and every sample of the shard in the order written: its key, frame count and the
sha256 of its members (:func:`sample_sha256`). Readers account for samples by these keys,
never by position, and check each sample's content against its digest. The writer of the
set is :class:`lightning_hmd.data.shards.ShardSetWriter`; :func:`read_manifest` reads and
validates what it wrote.

A clip set with features also records ``feature_sets``: the encoder ids of the feature sets
every clip holds, the primary (``phi.npy``) first (:mod:`lightning_hmd.data.schema`); a run
checks its sets by them before it reads a sample. Sets without features, and sets written
before the field existed, have none (readers then look at a sample).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from lightning_hmd.data.schema import KINDS
from lightning_hmd.errors import DataError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "lightning_hmd-shards"


class ManifestError(DataError):
    """A manifest is missing, unreadable or malformed."""


@dataclass(frozen=True)
class SampleEntry:
    """One sample of a shard as written: its key, frame count (1 for mocap) and the sha256 of
    its members (:func:`sample_sha256`)."""

    key: str
    frames: int
    sha256: str


@dataclass(frozen=True)
class ShardEntry:
    """One shard of a set: file name, counts, size in bytes, sha256 of the file and its
    samples in the order written."""

    name: str
    samples: int
    frames: int
    bytes: int
    sha256: str
    entries: tuple[SampleEntry, ...] = ()

    def to_json(self) -> dict:
        out = asdict(self)
        out["entries"] = [asdict(e) for e in self.entries]
        return out


@dataclass(frozen=True)
class Manifest:
    """The contents of ``manifest.json``; totals are derived from ``shards``."""

    kind: str
    dataset: str
    split: str
    source: str
    schema_version: int
    shards: tuple[ShardEntry, ...]
    feature_sets: tuple[str, ...] = ()  # encoder ids, the primary first; () when unrecorded

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.shards)

    @property
    def total_bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def to_json(self) -> dict:
        more = {"feature_sets": list(self.feature_sets)} if self.feature_sets else {}
        return more | {
            "format": MANIFEST_FORMAT,
            "schema_version": self.schema_version,
            "kind": self.kind,
            "dataset": self.dataset,
            "split": self.split,
            "source": self.source,
            "shards": [s.to_json() for s in self.shards],
            "totals": {
                "shards": len(self.shards),
                "samples": self.total_samples,
                "frames": self.total_frames,
                "bytes": self.total_bytes,
            },
        }


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sample_sha256(members: Mapping[str, bytes]) -> str:
    """The digest of one sample's members (``{member name: bytes}``, without the key and
    WebDataset's ``__key__``-style entries): sha256 over the members in name order, each as
    its name, a NUL, its length (8 bytes, little-endian) and its bytes."""
    h = hashlib.sha256()
    for name in sorted(n for n in members if not n.startswith("__")):
        data = members[name]
        h.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _field(obj: dict, name: str, types: type | tuple[type, ...], where: str) -> object:
    if name not in obj:
        raise ManifestError(f"{where}: missing field {name!r}")
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, types):
        raise ManifestError(f"{where}: field {name!r} has type {type(value).__name__}")
    return value


def shard_entry(s: dict, where: str) -> ShardEntry:
    """One shard entry of a manifest or journal, its sample list checked against its counts."""
    name = _field(s, "name", str, where)
    if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".tar"):
        raise ManifestError(f"{where}: shard name {name!r} must be a plain '*.tar' file name")
    if "entries" not in s:
        raise ManifestError(
            f"{where}: no 'entries' (the shard's sample keys and digests); the set was written "
            "by an older lightning_hmd: write it again (`lightning-hmd data convert` / `synth`)"
        )
    entries = []
    for j, e in enumerate(_field(s, "entries", list, where)):
        here = f"{where}.entries[{j}]"
        if not isinstance(e, dict):
            raise ManifestError(f"{here}: expected an object")
        entries.append(
            SampleEntry(
                key=_field(e, "key", str, here),
                frames=_field(e, "frames", int, here),
                sha256=_field(e, "sha256", str, here),
            )
        )
    entry = ShardEntry(
        name=name,
        samples=_field(s, "samples", int, where),
        frames=_field(s, "frames", int, where),
        bytes=_field(s, "bytes", int, where),
        sha256=_field(s, "sha256", str, where),
        entries=tuple(entries),
    )
    keys = [e.key for e in entries]
    if len(entries) != entry.samples or sum(e.frames for e in entries) != entry.frames:
        raise ManifestError(
            f"{where}: {len(entries)} entries of {sum(e.frames for e in entries)} frames, but "
            f"'samples' {entry.samples} and 'frames' {entry.frames}"
        )
    if len(set(keys)) != len(keys):
        raise ManifestError(f"{where}: a sample key is listed twice")
    return entry


def read_manifest(directory: str | Path) -> Manifest:
    """Read and validate ``<directory>/manifest.json``; raise :class:`ManifestError`."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest (is this a shard set directory?)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(obj, dict) or obj.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: 'format' is not {MANIFEST_FORMAT!r}")
    kind = _field(obj, "kind", str, str(path))
    if kind not in KINDS:
        raise ManifestError(f"{path}: kind must be one of {KINDS}, got {kind!r}")
    shards_obj = _field(obj, "shards", list, str(path))
    shards = []
    for i, s in enumerate(shards_obj):
        where = f"{path}: shards[{i}]"
        if not isinstance(s, dict):
            raise ManifestError(f"{where}: expected an object")
        shards.append(shard_entry(s, where))
    return Manifest(
        kind=kind,
        dataset=_field(obj, "dataset", str, str(path)),
        split=_field(obj, "split", str, str(path)),
        source=_field(obj, "source", str, str(path)),
        schema_version=_field(obj, "schema_version", int, str(path)),
        shards=tuple(shards),
        feature_sets=_feature_sets(obj, str(path)),
    )


def _feature_sets(obj: dict, where: str) -> tuple[str, ...]:
    """The optional ``feature_sets`` field: distinct non-empty encoder ids."""
    ids = obj.get("feature_sets", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ManifestError(f"{where}: 'feature_sets' must be a list of non-empty strings")
    if len(set(ids)) != len(ids):
        raise ManifestError(f"{where}: 'feature_sets' lists an encoder id twice: {ids}")
    return tuple(ids)


def manifest_bytes(manifest: Manifest) -> bytes:
    """``manifest.json`` as the writers write it (sorted keys, indented, one final newline)."""
    return (json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def record_feature_sets(directory: str | Path, ids: Sequence[str]) -> Manifest:
    """Record ``ids`` (encoder ids, the primary first) as the feature sets of the complete
    set in ``directory``: its manifest is replaced atomically (written beside it, fsynced,
    renamed), so a reader sees the old manifest or the new one, never a part."""
    manifest = replace(read_manifest(directory), feature_sets=tuple(ids))
    _feature_sets({"feature_sets": list(manifest.feature_sets)}, str(directory))
    path = Path(directory) / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(manifest_bytes(manifest))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest
