"""Deterministic shard writing.

A *shard set* is one directory holding the shards of one dataset split,
``<split>-000000.tar``, ``<split>-000001.tar``... and ``manifest.json``
(:mod:`lightning_hmd.data.manifest`). Shards are byte-reproducible: members are sorted
within a sample and carry ``mtime=0``, uid/gid 0, empty owner names and mode ``0o444``, so
the same samples in the same order give the same bytes. Each shard is written as
``<name>.tmp`` and renamed when complete; the manifest is written (atomically) only when the
whole set is complete.

An interrupted set can be resumed: after every completed shard the writer records the shard
and its sample keys in ``<split>.journal.json``. ``ShardSetWriter(..., resume=True)`` keeps
the journalled shards (after checking their sha256), drops anything else, skips samples
whose keys are already in a kept shard and numbers new shards after them. When the samples
arrive in the same order as in the interrupted run, the resumed set is byte-identical to
an uninterrupted one. The journal is removed when the manifest is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile
from pathlib import Path
from types import TracebackType

from lightning_hmd.data.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    SampleEntry,
    ShardEntry,
    sample_sha256,
    sha256_file,
    shard_entry,
)
from lightning_hmd.data.schema import (
    KINDS,
    SCHEMA_VERSION,
    ClipSample,
    MocapSample,
    SchemaError,
    check_key,
    encode_clip,
    encode_mocap,
)

JOURNAL_SUFFIX = ".journal.json"
TMP_SUFFIX = ".tmp"
MEMBER_MODE = 0o444
_SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def shard_name(split: str, index: int) -> str:
    """``<split>-%06d.tar``."""
    return f"{split}-{index:06d}.tar"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = MEMBER_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    tar.addfile(info, io.BytesIO(data))


class ShardSetWriter:
    """Write the samples of one dataset split into deterministic shards plus a manifest.

    Use as a context manager::

        with ShardSetWriter(out_dir, "train", 64, source="penn-action converter") as w:
            w.write(sample, key)

    Args:
        out_dir: directory of the set (created if missing).
        split_name: split name, also the shard file prefix; clip samples must carry it.
        max_samples_per_shard: samples per shard (the last shard may hold fewer).
        source: free text stored in the manifest (what produced the set).
        overwrite: remove an existing manifest and shards of this split first; otherwise
            an existing set raises ``FileExistsError``.
        resume: continue an interrupted set (see the module docstring); a complete set
            (one with a manifest) still needs ``overwrite``. Use :meth:`is_done` to skip
            the work of producing samples that a kept shard already holds.

    All samples must share one dataset and one kind (clip or mocap). On an exception inside
    the ``with`` block the shard being written is removed and no manifest is written.
    """

    def __init__(
        self,
        out_dir: str | Path,
        split_name: str,
        max_samples_per_shard: int,
        source: str,
        *,
        overwrite: bool = False,
        resume: bool = False,
    ) -> None:
        if not isinstance(split_name, str) or not _SPLIT_RE.match(split_name):
            raise ValueError(f"split name {split_name!r} must match [A-Za-z0-9][A-Za-z0-9_-]*")
        if max_samples_per_shard < 1:
            raise ValueError(f"max_samples_per_shard must be >= 1, got {max_samples_per_shard}")
        self.out_dir = Path(out_dir)
        self.split = split_name
        self.max_samples = int(max_samples_per_shard)
        self.source = str(source)
        self.overwrite = overwrite
        self.resume = resume
        self.skipped = 0  # samples not written again because a kept shard holds them
        self._done_keys: set[str] = set()
        self._shard_keys: list[list[str]] = []
        self._current: list[SampleEntry] = []
        self.kind: str | None = None
        self.dataset: str | None = None
        self.shards: list[ShardEntry] = []
        self.manifest: Manifest | None = None
        self._keys: set[str] = set()
        self._tar: tarfile.TarFile | None = None
        self._tmp: Path | None = None
        self._samples = 0
        self._frames = 0
        self._opened = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def journal_path(self) -> Path:
        return self.out_dir / f"{self.split}{JOURNAL_SUFFIX}"

    def __enter__(self) -> ShardSetWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pattern = re.compile(rf"^{re.escape(self.split)}-\d{{6}}\.tar(\{TMP_SUFFIX})?$")
        old = [p for p in self.out_dir.iterdir() if pattern.match(p.name)]
        manifest = self.out_dir / MANIFEST_NAME
        journal = self.journal_path
        if journal.exists():
            old.append(journal)
        if manifest.exists():
            old.append(manifest)
        if old and not self.overwrite and (manifest.exists() or not self.resume):
            what = "a complete set" if manifest.exists() else "an interrupted set"
            hint = "pass overwrite=True to replace it"
            if not manifest.exists():
                hint += " or resume=True to continue it"
            raise FileExistsError(
                f"{self.out_dir} already holds {what} ({sorted(p.name for p in old)[0]}); {hint}"
            )
        kept: set[str] = set()
        if self.resume and not self.overwrite and journal.exists():
            kept = self._load_journal()
        # The manifest goes first: a set without one is never taken as complete.
        for p in sorted(old, key=lambda p: p.name != MANIFEST_NAME):
            if p.name not in kept and p != journal:
                p.unlink()
        if not kept:
            journal.unlink(missing_ok=True)
        self._opened = True
        return self

    def _load_journal(self) -> set[str]:
        """Keep the journalled shards whose files are intact; return their file names."""
        try:
            obj = json.loads(self.journal_path.read_text(encoding="utf-8"))
            entries = [shard_entry(e, str(self.journal_path)) for e in obj["shards"]]
            keys = [list(k) for k in obj["keys"]]
            meta = (obj["kind"], obj["dataset"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ManifestError(f"{self.journal_path}: unreadable journal ({err})") from err
        kept: set[str] = set()
        for i, (entry, shard_keys) in enumerate(zip(entries, keys, strict=True)):
            path = self.out_dir / entry.name
            if entry.name != shard_name(self.split, i) or not path.is_file():
                break
            if path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
                break
            self.shards.append(entry)
            self._shard_keys.append(shard_keys)
            kept.add(entry.name)
        for shard_keys in self._shard_keys:
            self._done_keys.update(shard_keys)
            self._keys.update(shard_keys)
        if self.shards:
            self.kind, self.dataset = meta
        return kept

    def is_done(self, key: str) -> bool:
        """True when a shard kept by ``resume`` already holds the sample ``key``."""
        return key in self._done_keys

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._abort()
            return
        self.close()

    def _abort(self) -> None:
        if self._tar is not None:
            with contextlib.suppress(Exception):
                self._tar.close()
            self._tar = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
        self._opened = False

    def close(self) -> Manifest:
        """Finish the last shard and write ``manifest.json``; returns the manifest."""
        if self.manifest is not None:
            return self.manifest
        self._finish_shard()
        manifest = Manifest(
            kind=self.kind or "clip",
            dataset=self.dataset or "",
            split=self.split,
            source=self.source,
            schema_version=SCHEMA_VERSION,
            shards=tuple(self.shards),
        )
        data = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
        _write_atomic(self.out_dir / MANIFEST_NAME, data.encode("utf-8"))
        self.journal_path.unlink(missing_ok=True)
        self.manifest = manifest
        self._opened = False
        return manifest

    # ------------------------------------------------------------------ writing

    def write(self, sample: ClipSample | MocapSample, key: str) -> None:
        """Validate, encode and append one sample under ``key``."""
        if not self._opened:
            raise RuntimeError("ShardSetWriter.write outside its 'with' block")
        check_key(key)
        if key in self._done_keys:
            self.skipped += 1
            return
        if key in self._keys:
            raise SchemaError(f"duplicate sample key {key!r} in split {self.split!r}")
        if isinstance(sample, ClipSample):
            kind, members, frames = "clip", encode_clip(sample, key), sample.num_frames
            if sample.split != self.split:
                raise SchemaError(
                    f"sample {key!r} has split {sample.split!r}, writer split is {self.split!r}"
                )
        elif isinstance(sample, MocapSample):
            kind, members, frames = "mocap", encode_mocap(sample, key), 1
        else:
            raise TypeError(f"expected ClipSample or MocapSample, got {type(sample).__name__}")
        assert kind in KINDS
        if self.kind is not None and kind != self.kind:
            raise SchemaError(f"sample {key!r} is a {kind} sample in a set of {self.kind} samples")
        if self.dataset is not None and sample.dataset != self.dataset:
            raise SchemaError(
                f"sample {key!r} has dataset {sample.dataset!r}; this set holds {self.dataset!r}"
            )
        self.kind, self.dataset = kind, sample.dataset
        self._keys.add(key)

        if self._tar is None:
            self._open_shard()
        assert self._tar is not None
        payload = {m: d for m, d in members.items() if not m.startswith("__")}
        for member in sorted(payload):
            data = payload[member]
            assert isinstance(data, bytes)
            _tar_member(self._tar, f"{key}.{member}", data)
        self._current.append(SampleEntry(key, frames, sample_sha256(payload)))
        self._samples += 1
        self._frames += frames
        if self._samples >= self.max_samples:
            self._finish_shard()

    def end_shard(self) -> None:
        """Close the shard being written now (the next sample starts a new one); for writers
        that keep, e.g., one sequence per shard. A no-op between shards."""
        if not self._opened:
            raise RuntimeError("ShardSetWriter.end_shard outside its 'with' block")
        self._finish_shard()

    def _open_shard(self) -> None:
        name = shard_name(self.split, len(self.shards))
        self._tmp = self.out_dir / (name + TMP_SUFFIX)
        # Closed in _finish_shard or _abort: the tar stays open across write() calls.
        self._tar = tarfile.open(self._tmp, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._samples = self._frames = 0
        self._current = []

    def _finish_shard(self) -> None:
        if self._tar is None or self._tmp is None:
            return
        self._tar.close()
        with open(self._tmp, "rb+") as f:
            os.fsync(f.fileno())
        final = self._tmp.with_name(self._tmp.name[: -len(TMP_SUFFIX)])
        entry = ShardEntry(
            name=final.name,
            samples=self._samples,
            frames=self._frames,
            bytes=self._tmp.stat().st_size,
            sha256=sha256_file(self._tmp),
            entries=tuple(self._current),
        )
        os.replace(self._tmp, final)
        self.shards.append(entry)
        self._shard_keys.append([e.key for e in self._current])
        self._tar, self._tmp = None, None
        self._write_journal()

    def _write_journal(self) -> None:
        obj = {
            "kind": self.kind,
            "dataset": self.dataset,
            "shards": [e.to_json() for e in self.shards],
            "keys": self._shard_keys,
        }
        _write_atomic(self.journal_path, json.dumps(obj, sort_keys=True).encode("utf-8"))
